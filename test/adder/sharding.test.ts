/**
 * The shard builder (src/adder/sharding.ts): fed the block sequences IPFS Cluster 1.1.6 sharded
 * (test/adder/fixtures/go_sharding_vectors.json: the real ipfs-cluster-service with Kubo 0.43.1,
 * three inputs, up to 19 links a shard and 11 shards), it groups the blocks into the same shards
 * and builds the same shard and cluster DAG nodes (same CIDs), and the pins the reference
 * commits; blocks stream to their shard's allocation as they arrive, with backpressure; the
 * departures from the reference (a shard closes at 5984 links, at most 5984 shards) and every
 * error case.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import {
  decodeLinkMap,
  encodeLinkMap,
  linkMapBlock,
  MAX_SHARD_LINKS,
  type ShardAllocationRequest,
  type ShardBlock,
  ShardedDagBuilder,
  type ShardInfo,
  type ShardingDeps,
  ShardNodeError,
} from '../../src/adder/sharding.ts'
import { defaultPinOptions, type PinOptions } from '../../src/types/pin.ts'
import { ZERO_TIME } from '../../src/types/time.ts'
import vectors from './fixtures/go_sharding_vectors.json' with { type: 'json' }

const PEER_A = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
const PEER_B = '12D3KooWKgTqKJsfvvoEDmWYtGbKYAHNfXu9dZ6ZxsTaRPk3nXmz'
const SELF = '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N'

/** Bytes of a given length; the builder never re-hashes a block, so any bytes stand in. */
const filler = new Uint8Array(1 << 20)
const bytesOf = (n: number) => filler.subarray(0, n)

/** A distinct raw-leaf CID per number. */
async function rawCid(i: number): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`block ${i}`))).toString()
}

/** Deps that record everything: each `send` reads its blocks to the end. */
function recordingDeps(allocations: (req: ShardAllocationRequest) => string[] = () => [PEER_A]) {
  const streams: { peers: string[]; blocks: ShardBlock[] }[] = []
  const shards: ShardInfo[] = []
  const requests: ShardAllocationRequest[] = []
  const deps: ShardingDeps = {
    allocate: (req) => {
      requests.push({ ...req, bytesSent: new Map(req.bytesSent) })
      return Promise.resolve(allocations(req))
    },
    send: async (peers, blocks) => {
      const s = { peers, blocks: [] as ShardBlock[] }
      streams.push(s)
      for await (const b of blocks) s.blocks.push(b)
    },
    clusterDagPeers: [SELF],
    onShard: (s) => shards.push(s),
  }
  return { deps, streams, shards, requests }
}

function options(o: Partial<PinOptions>): PinOptions {
  return { ...defaultPinOptions(), ...o }
}

const nextTurn = () => new Promise<void>((r) => setTimeout(r, 0))

for (const [i, run] of vectors.runs.entries()) {
  const p = run.add_params
  Deno.test(
    `go vector ${
      i + 1
    } (${p.bytes} bytes, ${p.chunker}, raw-leaves ${p.raw_leaves}, shard-size ${p.shard_size}): same shards, cluster DAG and pins`,
    async () => {
      const { deps, streams, shards } = recordingDeps()
      const opts = options({ name: p.name, shard_size: p.shard_size })
      const b = new ShardedDagBuilder(opts, deps)
      for (const [cid, size] of run.blocks) {
        await b.add({ cid: cid as string, bytes: bytesOf(size as number) })
      }
      const dag = await b.finish(run.root)

      assert.deepEqual(
        shards.map((s) => ({ name: `shard-${s.index}`, cid: s.cid, size: s.size, links: s.links })),
        run.shards,
      )
      assert.deepEqual(dag.clusterDag, run.cluster_dag)
      assert.equal(dag.shards, run.shards.length)

      // One stream per shard to its allocation: its blocks in order, the shard node last; then
      // the cluster DAG node alone to this peer.
      assert.equal(streams.length, run.shards.length + 1)
      let next = 0
      for (const [n, s] of run.shards.entries()) {
        const sent = streams[n]
        assert.deepEqual(sent.peers, [PEER_A])
        const data = sent.blocks.slice(0, -1).map((x) => [x.cid, x.bytes.byteLength])
        assert.deepEqual(data, run.blocks.slice(next, next + s.links))
        next += s.links
        const node = sent.blocks.at(-1)!
        assert.equal(node.cid, s.cid)
        assert.equal((await linkMapBlock(decodeLinkMap(node.bytes))).cid, s.cid)
      }
      const last = streams.at(-1)!
      assert.deepEqual(last.peers, [SELF])
      assert.equal(last.blocks.length, 1)
      assert.equal(last.blocks[0].cid, run.cluster_dag.cid)
      assert.deepEqual(decodeLinkMap(last.blocks[0].bytes), run.shards.map((s) => s.cid))

      // The pins, in commit order, as the reference stores them (crdt).
      const shardPins = dag.pins.slice(0, -2)
      assert.deepEqual(
        shardPins.map((x) => [x.cid, x.type, x.name, x.max_depth, x.mode, x.shard_size]),
        run.shards.map((
          s,
          n,
        ) => [s.cid, 'shard-pin', `sharded-shard-${n}`, 1, 'recursive', s.size]),
      )
      assert.deepEqual(
        shardPins.map((x) => x.reference),
        [null, ...run.shards.slice(0, -1).map((s) => s.cid)],
      )
      for (const x of shardPins) assert.deepEqual(x.allocations, [PEER_A])
      const [cd, meta] = dag.pins.slice(-2)
      assert.deepEqual(
        [cd.cid, cd.type, cd.name, cd.max_depth, cd.mode, cd.reference, cd.shard_size],
        [
          run.cluster_dag.cid,
          'clusterdag-pin',
          'sharded-clusterDAG',
          0,
          'direct',
          run.root,
          p.shard_size,
        ],
      )
      assert.deepEqual([cd.replication_factor_min, cd.replication_factor_max, cd.allocations], [
        -1,
        -1,
        [],
      ])
      assert.deepEqual(
        [
          meta.cid,
          meta.type,
          meta.name,
          meta.max_depth,
          meta.mode,
          meta.reference,
          meta.allocations,
        ],
        [run.root, 'meta-pin', 'sharded', 0, 'direct', run.cluster_dag.cid, []],
      )
      assert.equal(meta.shard_size, p.shard_size)
    },
  )
}

Deno.test('shard nodes are dag-cbor maps of tag-42 links, as the reference writes them', async () => {
  const v1 = 'bafkreiclmqgylkz3umh5ale7zhnuvcji6qldekwsoarouwfglkxoncsn6i'
  const v0 = 'QmQNCx28Wz6r3BgFfdhmBEaNQZhJ5QJ9MqEJ1CuLYdoMnk'
  const bytes = encodeLinkMap([v1, v0])
  const hex = Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('')
  // map(2) "0" tag42 bytes(37) 00 ‖ CIDv1 …, "1" tag42 bytes(35) 00 ‖ multihash of the CIDv0
  assert.ok(hex.startsWith('a26130d82a5825000155122'), hex)
  assert.ok(hex.includes('6131d82a5823001220'), hex)
  assert.deepEqual(decodeLinkMap(bytes), [v1, v0])
  // Keys past 9 sort after 9 (canonical order: shorter keys first).
  const many = await Promise.all(Array.from({ length: 12 }, (_, i) => rawCid(i)))
  assert.deepEqual(decodeLinkMap(encodeLinkMap(many)), many)
  assert.deepEqual(decodeLinkMap(encodeLinkMap([])), [])
  assert.throws(() => encodeLinkMap(new Array(MAX_SHARD_LINKS + 1).fill(v1)), /at most 5984 links/)
})

Deno.test('decoding refuses what is not a shard node', () => {
  const cbor = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)))
  assert.throws(() => decodeLinkMap(cbor('83010203')), ShardNodeError) // an array
  assert.throws(() => decodeLinkMap(cbor('a1613101')), /key "0" is missing/) // {"1": 1}
  assert.throws(() => decodeLinkMap(cbor('a1613001')), /key "0" is not a link/) // {"0": 1}
  assert.throws(() => decodeLinkMap(cbor('a16130d82a4101')), /bad link/) // tag 42 without 00
  assert.throws(() => decodeLinkMap(cbor('ff')), /not a shard node/)
  assert.throws(() => decodeLinkMap(new Uint8Array()), /not a shard node/)
})

Deno.test('blocks go to their shard as they arrive, and a slow destination holds the add back', async () => {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const received: string[] = []
  const deps: ShardingDeps = {
    allocate: () => Promise.resolve([PEER_A]),
    send: async (_peers, blocks) => {
      for await (const b of blocks) {
        received.push(b.cid)
        if (received.length === 1) await gate // the destination stalls after its first block
      }
    },
    clusterDagPeers: [SELF],
  }
  const b = new ShardedDagBuilder(options({ name: 'x', shard_size: 1 << 30 }), deps)
  const cids = await Promise.all(Array.from({ length: 64 }, (_, i) => rawCid(i)))
  await b.add({ cid: cids[0], bytes: bytesOf(10) })
  await nextTurn()
  assert.deepEqual(received, [cids[0]], 'the first block was sent before the shard completed')
  // The queue holds a bounded number of blocks: some add() waits while the destination stalls.
  let waiting = -1
  for (let i = 1; i < cids.length; i++) {
    let done = false
    const p = b.add({ cid: cids[i], bytes: bytesOf(10) }).then(() => (done = true))
    await nextTurn()
    if (!done) {
      waiting = i
      release()
      await p
      break
    }
  }
  assert.ok(waiting > 1 && waiting < cids.length, `add() waited at block ${waiting}`)
  await b.abort()
})

Deno.test('a shard closes before the block that would reach shard-size (strict <), and the allocation is asked per shard', async () => {
  const { deps, streams, shards, requests } = recordingDeps((
    req,
  ) => [req.index % 2 ? PEER_B : PEER_A])
  const b = new ShardedDagBuilder(options({ name: 'n', shard_size: 100 }), deps)
  const cids = await Promise.all(Array.from({ length: 5 }, (_, i) => rawCid(i)))
  // 40 + 40 = 80 < 100; + 20 = 100 is not < 100: the third block opens shard 1.
  for (const [i, size] of [40, 40, 20, 59, 50].entries()) {
    await b.add({ cid: cids[i], bytes: bytesOf(size) })
  }
  const dag = await b.finish(cids[4])
  assert.deepEqual(shards.map((s) => [s.size, s.links, s.allocations]), [
    [80, 2, [PEER_A]],
    [79, 2, [PEER_B]],
    [50, 1, [PEER_A]],
  ])
  assert.deepEqual(streams.map((s) => s.peers), [[PEER_A], [PEER_B], [PEER_A], [SELF]])
  assert.equal(dag.clusterDag.size, 209)
  // What each allocation was told: the shard limit and the bytes already sent to each peer.
  assert.deepEqual(requests.map((r) => [r.index, r.shardSize, Object.fromEntries(r.bytesSent)]), [
    [0, 100, {}],
    [1, 100, { [PEER_A]: 80 }],
    [2, 100, { [PEER_A]: 80, [PEER_B]: 79 }],
  ])
})

Deno.test('a shard closes at 5984 links however small its blocks (one node block, depth 1)', async () => {
  const { deps, shards } = recordingDeps()
  const b = new ShardedDagBuilder(options({ name: 'tiny', shard_size: 1 << 30 }), deps)
  let last = ''
  for (let i = 0; i <= MAX_SHARD_LINKS; i++) {
    last = await rawCid(i)
    await b.add({ cid: last, bytes: bytesOf(1) })
  }
  const dag = await b.finish(last)
  assert.deepEqual(shards.map((s) => s.links), [MAX_SHARD_LINKS, 1])
  for (const pin of dag.pins.slice(0, 2)) assert.equal(pin.max_depth, 1)
})

Deno.test('an add that needs more than 5984 shards is refused when the next one would open', async () => {
  const { deps, shards } = recordingDeps()
  const b = new ShardedDagBuilder(options({ name: 'many', shard_size: 2 }), deps)
  let err: unknown
  for (let i = 0; i <= MAX_SHARD_LINKS; i++) {
    try {
      await b.add({ cid: await rawCid(i), bytes: bytesOf(1) })
    } catch (e) {
      err = e
      assert.equal(i, MAX_SHARD_LINKS)
    }
  }
  assert.match(String(err), /at most 5984 shards: use a larger shard-size than 2 bytes/)
  assert.equal(shards.length, MAX_SHARD_LINKS)
})

Deno.test('a block seen before in the add is dropped, as the reference does', async () => {
  const { deps, streams, shards } = recordingDeps()
  const b = new ShardedDagBuilder(options({ name: 'd', shard_size: 1000 }), deps)
  const [x, y] = [await rawCid(1), await rawCid(2)]
  for (const c of [x, y, x, x, y]) await b.add({ cid: c, bytes: bytesOf(10) })
  await b.finish(y)
  assert.deepEqual(shards.map((s) => [s.links, s.size]), [[2, 20]])
  assert.equal(streams[0].blocks.length, 3) // x, y and the shard node
})

Deno.test('errors: block larger than a shard, empty add, bad CID, bad shard-size, no allocation', async () => {
  const cid = await rawCid(1)
  const { deps } = recordingDeps()
  const b = new ShardedDagBuilder(options({ name: 'e', shard_size: 100 }), deps)
  await assert.rejects(
    b.add({ cid, bytes: bytesOf(100) }),
    /block doesn't fit in empty shard: shard size too small\? \(block .* is 100 bytes, shard-size is 100\)/,
  )
  await assert.rejects(b.add({ cid: 'nope', bytes: bytesOf(1) }), /not a CID/)
  await assert.rejects(b.finish(cid), /nothing to shard: the add produced no blocks/)
  await assert.rejects(b.add({ cid, bytes: bytesOf(1) }), /already finished/)
  assert.throws(
    () => new ShardedDagBuilder(options({ shard_size: -1 }), deps),
    /shard-size must be/,
  )
  // shard_size 0 means the reference's default, 100 MiB.
  const d = new ShardedDagBuilder(options({ shard_size: 0 }), recordingDeps().deps)
  await d.add({ cid, bytes: bytesOf(1 << 20) })
  await d.abort()

  const none = new ShardedDagBuilder(options({}), recordingDeps(() => []).deps)
  await assert.rejects(none.add({ cid, bytes: bytesOf(1) }), /no peer allocated for shard 0/)
})

Deno.test('a destination failure reaches add(), and abort() ends the open stream with its reason', async () => {
  const cids = await Promise.all(Array.from({ length: 80 }, (_, i) => rawCid(i)))
  // Every destination failed after two blocks: the next add() (or the one after) says why.
  const failing: ShardingDeps = {
    allocate: () => Promise.resolve([PEER_A]),
    send: async (_p, blocks) => {
      let n = 0
      for await (const _ of blocks) {
        if (++n === 2) throw new Error('failed to put block on all destinations')
      }
    },
    clusterDagPeers: [SELF],
  }
  const b = new ShardedDagBuilder(options({ shard_size: 1 << 30 }), failing)
  await assert.rejects(async () => {
    for (const c of cids) await b.add({ cid: c, bytes: bytesOf(1) })
  }, /failed to put block on all destinations/)
  await b.abort()

  // The failure surfaces at finish() when the stream fails on the shard node.
  const late = new ShardedDagBuilder(options({ shard_size: 1 << 30 }), {
    ...failing,
    send: async (_p, blocks) => {
      for await (const blk of blocks) {
        if (blk.cid.startsWith('bafyrei')) throw new Error('destination gone')
      }
    },
  })
  await late.add({ cid: cids[0], bytes: bytesOf(1) })
  await assert.rejects(late.finish(cids[0]), /destination gone/)

  // abort(): the stream's consumer sees the reason, and abort() waits for it to end.
  let seen: unknown
  const aborted = new ShardedDagBuilder(options({ shard_size: 1 << 30 }), {
    ...failing,
    send: async (_p, blocks) => {
      try {
        for await (const _ of blocks) { /* reads on */ }
      } catch (err) {
        seen = err
        throw err
      }
    },
  })
  await aborted.add({ cid: cids[0], bytes: bytesOf(1) })
  await aborted.abort(new Error('client went away'))
  assert.match(String(seen), /client went away/)
  await aborted.abort() // twice is harmless

  // A send that returns without reading its blocks loses them: the shard fails.
  const lazy = new ShardedDagBuilder(options({ shard_size: 1 << 30 }), {
    ...failing,
    send: () => Promise.resolve(),
  })
  await lazy.add({ cid: cids[0], bytes: bytesOf(1) })
  await assert.rejects(lazy.finish(cids[0]), /ended before its last block/)
})

Deno.test('the add signal stops the builder', async () => {
  const ac = new AbortController()
  const b = new ShardedDagBuilder(options({}), recordingDeps().deps, ac.signal)
  await b.add({ cid: await rawCid(1), bytes: bytesOf(1) })
  ac.abort(new Error('stop'))
  await assert.rejects(b.add({ cid: await rawCid(2), bytes: bytesOf(1) }), /stop/)
  await b.abort()
})

Deno.test('shard and cluster DAG pins never expire on their own; the meta pin carries the expiry', async () => {
  const { deps } = recordingDeps()
  const expire = '2099-01-01T00:00:00Z'
  const b = new ShardedDagBuilder(
    options({
      name: 'e',
      shard_size: 100,
      expire_at: expire,
      replication_factor_min: 2,
      replication_factor_max: 3,
      metadata: { k: 'v' },
    }),
    deps,
  )
  const c = await rawCid(1)
  await b.add({ cid: c, bytes: bytesOf(10) })
  const { pins } = await b.finish(c)
  assert.deepEqual(pins.map((p) => p.expire_at), [ZERO_TIME, ZERO_TIME, expire])
  assert.deepEqual(pins.map((p) => [p.replication_factor_min, p.replication_factor_max]), [[2, 3], [
    -1,
    -1,
  ], [2, 3]])
  assert.deepEqual(pins.map((p) => p.metadata), [{ k: 'v' }, { k: 'v' }, { k: 'v' }])
})
