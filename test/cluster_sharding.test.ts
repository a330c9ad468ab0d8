/**
 * Sharded content in the cluster, on three in-process peers (real Raft on Deno KV, real stateless
 * trackers, IPFS doubles, the RPC mesh): a DAG sharded with the shard builder
 * (src/adder/sharding.ts) and committed as the adder commits it; each shard is pinned (depth 1)
 * on its own allocation only, the cluster DAG on every peer, the meta pin on none; the root's
 * status is `sharded` on every peer whatever its replication; shards and the cluster DAG refuse a
 * direct unpin with the reference's messages; unpinning the root removes every shard and the
 * cluster DAG first, from the pinset and from IPFS; an interrupted unpin finishes on retry; a
 * shard that another sharded DAG links is kept; an unreadable cluster DAG fails the unpin and
 * changes nothing; the pin type rules on commit.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ShardedDagBuilder } from '../src/adder/sharding.ts'
import { defaultPinOptions, type Pin, type PinOptions } from '../src/types/pin.ts'
import type { StatelessTracker } from '../src/pintracker/stateless.ts'
import type { Cluster } from '../src/cluster.ts'
import type { PeerMonitor } from '../src/components.ts'
import { KvCluster, testConfig, type TestNode } from './consensus/raft/kv_cluster.ts'
import { type FakeIpfs, fakeIpfs } from './support/fake_ipfs.ts'
import { RpcMesh } from './support/rpc_mesh.ts'
import { inProcessPeer } from './support/in_process_peer.ts'
import { alertQueue } from './support/alert_queue.ts'

const IDS = [
  'QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD',
  'QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ',
  '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N',
]

interface Peer {
  id: string
  node: TestNode
  ipfs: FakeIpfs
  tracker: StatelessTracker
  cluster: Cluster
  /** The unpins its tracker asked of its IPFS: CID and the pin's depth. */
  unpins: [string, number | undefined][]
}

interface Setup {
  kvc: KvCluster
  peers: Peer[]
  [Symbol.asyncDispose](): Promise<void>
}

function monitor(): PeerMonitor {
  const q = alertQueue()
  return {
    publishMetric: () => Promise.resolve(),
    latestMetrics: () => [],
    metricNames: () => [],
    alerts: q.alerts,
    stop: () => Promise.resolve(),
  }
}

async function threePeers(): Promise<Setup> {
  const kvc = new KvCluster(IDS, testConfig())
  const mesh = new RpcMesh(kvc.clock)
  const peers: Peer[] = []
  for (const [i, id] of IDS.entries()) {
    const ipfs = fakeIpfs({ id: `ipfs-${i}` })
    const unpins: [string, number | undefined][] = []
    const unpin = ipfs.unpin
    ipfs.unpin = (cid, signal, depth) => {
      unpins.push([cid, depth])
      return unpin(cid, signal)
    }
    const { node, tracker, cluster } = await inProcessPeer(kvc, mesh, {
      id,
      name: `peer${i}`,
      ipfs,
      ipfsId: { id: `ipfs-${i}`, addresses: [] },
      monitor: monitor(),
      // Replication 1 unless a pin says otherwise (allocations come preset from the adder).
      config: { replication_factor_min: 1, replication_factor_max: 1 },
    })
    peers.push({ id, node, ipfs, tracker, cluster, unpins })
  }
  await kvc.waitLeader()
  await Promise.all(peers.map((p) => p.cluster.start()))
  return {
    kvc,
    peers,
    async [Symbol.asyncDispose]() {
      for (const p of peers) await p.cluster.stop()
      for (const p of peers) await p.tracker.stop()
      await kvc.close()
    },
  }
}

async function rawCid(tag: string): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(tag))).toString()
}

const filler = new Uint8Array(4096)

/**
 * Shards `blocks` (tags, 100 bytes each, 3 a shard) as the adder does: shard n goes to peer
 * n % 3, the cluster DAG node to `dagPeers`; the pins are committed through `via`.
 */
async function shardedAdd(
  s: Setup,
  name: string,
  tags: string[],
  o: { via?: Peer; dagPeers?: Peer[]; opts?: Partial<PinOptions> } = {},
): Promise<{ root: string; pins: Pin[] }> {
  const byId = new Map(s.peers.map((p) => [p.id, p]))
  const opts: PinOptions = { ...defaultPinOptions(), name, shard_size: 350, ...o.opts }
  const sharder = new ShardedDagBuilder(opts, {
    allocate: (req) => Promise.resolve([s.peers[req.index % s.peers.length].id]),
    send: async (peers, blocks) => {
      const got: { cid: string; bytes: Uint8Array }[] = []
      for await (const b of blocks) got.push(b)
      for (const p of peers) await byId.get(p)!.ipfs.blockStream(toIterable(got))
    },
    clusterDagPeers: (o.dagPeers ?? s.peers).map((p) => p.id),
  })
  let root = ''
  for (const tag of tags) {
    root = await rawCid(tag)
    await sharder.add({ cid: root, bytes: filler.subarray(0, 100) })
  }
  const dag = await sharder.finish(root)
  const via = o.via ?? s.peers[0]
  for (const pin of dag.pins) await via.cluster.commitPin(pin)
  await s.kvc.converge() // every peer reads the pins
  return { root, pins: dag.pins }
}

async function* toIterable<T>(xs: T[]): AsyncGenerator<T> {
  yield* xs
}

const tags = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i}`)

/** Waits until every peer's IPFS holds exactly what `expected` says of each CID. */
async function ipfsHolds(s: Setup, expected: Map<string, string[]>, what: string): Promise<void> {
  await s.kvc.until(
    () =>
      [...expected].every(([cid, holders]) =>
        s.peers.every((p) => p.ipfs.isPinned(cid) === holders.includes(p.id))
      ),
    what,
    30_000,
  )
}

async function pinset(p: Peer): Promise<string[]> {
  const out: string[] = []
  for await (const pin of p.cluster.pins(0)) out.push(pin.cid)
  return out.sort()
}

Deno.test('sharding: each shard on its allocation (depth 1), the cluster DAG everywhere, the root sharded', async () => {
  await using s = await threePeers()
  const { root, pins } = await shardedAdd(s, 'big', tags('a', 7)) // 3 + 3 + 1 blocks
  const [shard0, shard1, shard2, dag, meta] = pins
  assert.deepEqual(pins.map((p) => p.type), [
    'shard-pin',
    'shard-pin',
    'shard-pin',
    'clusterdag-pin',
    'meta-pin',
  ])
  const all = IDS
  await ipfsHolds(
    s,
    new Map([
      [shard0.cid, [IDS[0]]],
      [shard1.cid, [IDS[1]]],
      [shard2.cid, [IDS[2]]],
      [dag.cid, all],
      [root, []],
    ]),
    'shards on their allocations, the cluster DAG everywhere, the root nowhere',
  )
  // The shard pins were committed with their allocation and depth; the meta pin without any.
  const stored = await s.peers[2].cluster.pinGet(shard1.cid)
  assert.deepEqual([stored.allocations, stored.max_depth, stored.reference], [
    [IDS[1]],
    1,
    shard0.cid,
  ])
  const storedMeta = await s.peers[1].cluster.pinGet(root)
  assert.deepEqual([storedMeta.type, storedMeta.allocations, storedMeta.reference], [
    'meta-pin',
    [],
    dag.cid,
  ])
  assert.equal(meta.cid, root)

  // Status of the root: `sharded` on every member (its replication is 1, not -1).
  const g = await s.peers[1].cluster.status(root)
  assert.deepEqual(
    Object.entries(g.peer_map).map(([id, p]) => [id, p.status]).sort(),
    IDS.map((id) => [id, 'sharded']).sort(),
  )
  assert.equal(g.name, 'big')
  // A shard: pinned on its peer, remote on the others.
  const gs = await s.peers[0].cluster.status(shard2.cid)
  assert.deepEqual(
    IDS.map((id) => gs.peer_map[id].status),
    ['remote', 'remote', 'pinned'],
  )
})

Deno.test('sharding: a shard or the cluster DAG cannot be unpinned directly; the root unpins them all', async () => {
  await using s = await threePeers()
  const { root, pins } = await shardedAdd(s, 'big', tags('b', 7))
  const dag = pins[3]
  await assert.rejects(
    s.peers[1].cluster.unpin(pins[1].cid),
    /^ClusterError: cannot unpin a shard directly\. Unpin content root CID instead$/,
  )
  await assert.rejects(
    s.peers[2].cluster.unpin(dag.cid),
    /^ClusterError: cannot unpin a Cluster DAG directly\. Unpin content root CID instead$/,
  )
  assert.equal((await pinset(s.peers[0])).length, 5)

  const removed = await s.peers[1].cluster.unpin(root)
  assert.equal(removed.type, 'meta-pin')
  await s.kvc.converge()
  for (const p of s.peers) assert.deepEqual(await pinset(p), [], `${p.id}'s pinset is empty`)
  await ipfsHolds(
    s,
    new Map(pins.map((p) => [p.cid, []])),
    'no IPFS holds a shard or the cluster DAG any more',
  )
  // Each shard was unpinned at its depth (so that a connector drops the blocks below it too).
  for (const [i, shard] of pins.slice(0, 3).entries()) {
    assert.deepEqual(s.peers[i].unpins.filter(([c]) => c === shard.cid), [[shard.cid, 1]])
  }
  for (const p of s.peers) assert.deepEqual(p.unpins.filter(([c]) => c === dag.cid), [[dag.cid, 0]])
  await assert.rejects(s.peers[0].cluster.unpin(root), /pin is not part of the pinset/)
})

Deno.test('sharding: an unpin interrupted after the shards and the cluster DAG finishes on retry', async () => {
  await using s = await threePeers()
  const { root, pins } = await shardedAdd(s, 'big', tags('c', 4))
  // What an unpin that stopped before its last commit leaves: the meta pin alone.
  const leader = await s.kvc.waitLeader()
  for (const pin of pins.slice(0, -1)) await leader.consensus.logUnpin(pin)
  await s.kvc.converge()
  const removed = await s.peers[2].cluster.unpin(root)
  assert.equal(removed.cid, root)
  assert.deepEqual(await pinset(s.peers[2]), [])
})

Deno.test('sharding: a shard that another sharded DAG links is kept until that one goes too', async () => {
  await using s = await threePeers()
  // The first three blocks are the same in both: both have the same shard 0.
  const a = await shardedAdd(s, 'a', [...tags('same', 3), ...tags('only a', 2)])
  const b = await shardedAdd(s, 'b', [...tags('same', 3), ...tags('only b', 2)])
  assert.equal(a.pins[0].cid, b.pins[0].cid)
  assert.notEqual(a.pins[1].cid, b.pins[1].cid)
  await s.peers[0].cluster.unpin(a.root)
  await s.kvc.converge()
  const left = await pinset(s.peers[0])
  assert.ok(left.includes(a.pins[0].cid), 'the shared shard stays')
  assert.ok(!left.includes(a.pins[1].cid), "a's own shard went")
  assert.deepEqual(left, [...b.pins.map((p) => p.cid)].sort())
  await s.peers[1].cluster.unpin(b.root)
  await s.kvc.converge()
  assert.deepEqual(await pinset(s.peers[0]), [])
})

Deno.test('sharding: a cluster DAG this peer cannot read fails the unpin and changes nothing', async () => {
  await using s = await threePeers()
  // The cluster DAG node only reached peer 0's IPFS.
  const { root } = await shardedAdd(s, 'big', tags('d', 4), { dagPeers: [s.peers[0]] })
  await assert.rejects(
    s.peers[2].cluster.unpin(root),
    /^ClusterError: error reading clusterDAG block from ipfs: block not found$/,
  )
  assert.equal((await pinset(s.peers[2])).length, 4)
  // A block that is not a shard node.
  const bad = await s.peers[1].cluster.pinGet(root)
  await s.peers[1].ipfs.blockStream(
    toIterable([{ cid: bad.reference!, bytes: new Uint8Array([1]) }]),
  )
  await assert.rejects(
    s.peers[1].cluster.unpin(root),
    /error parsing clusterDAG block: not a shard node/,
  )
  assert.equal((await pinset(s.peers[1])).length, 4)
  await s.peers[0].cluster.unpin(root)
  await s.kvc.converge()
  assert.deepEqual(await pinset(s.peers[0]), [])
})

Deno.test('sharding: the pin type rules hold on commit', async () => {
  await using s = await threePeers()
  const c = s.peers[0].cluster
  const cid = await rawCid('rules')
  const ref = await rawCid('ref')
  const base = (o: Partial<Pin>): Pin => ({
    ...defaultPinOptions(),
    cid,
    type: 'pin',
    allocations: [],
    max_depth: -1,
    reference: null,
    timestamp: '0001-01-01T00:00:00Z',
    ...o,
  })
  await assert.rejects(
    c.commitPin(base({ reference: ref })),
    /data pins should not reference other pins/,
  )
  await assert.rejects(
    c.commitPin(base({ type: 'shard-pin', max_depth: 2 })),
    /must pin shards go depth 1/,
  )
  await assert.rejects(
    c.commitPin(base({ type: 'clusterdag-pin', max_depth: 1, reference: ref })),
    /must pin roots directly/,
  )
  await assert.rejects(
    c.commitPin(base({ type: 'clusterdag-pin', max_depth: 0 })),
    /clusterDAG pins should reference a Meta pin/,
  )
  await assert.rejects(
    c.commitPin(base({ type: 'meta-pin', max_depth: 0, reference: ref, allocations: [IDS[0]] })),
    /meta pin should not specify allocations/,
  )
  await assert.rejects(
    c.commitPin(base({ type: 'meta-pin', max_depth: 0 })),
    /metaPins should reference a ClusterDAG/,
  )
  await assert.rejects(c.commitPin(base({ type: 'bad-type' })), /unrecognized pin type/)
  assert.deepEqual(await pinset(s.peers[0]), [])
})
