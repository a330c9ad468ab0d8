/**
 * Cluster-wide operations across three in-process peers (reference §5.6, §5.8): each peer is a
 * real Raft consensus (`raftConsensus` on its own Deno KV file, over a `MemoryNetwork`), a real
 * stateless tracker, a Cluster, and an IPFS double; the peers reach each other only through an
 * in-process RpcClient that applies the policy table as the wire does (test/support/rpc_mesh.ts).
 * Time is the Raft test cluster's manual clock, which moves only while the peers are idle.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Cluster } from '../src/cluster.ts'
import type { PeerMonitor } from '../src/components.ts'
import type { StatelessTracker } from '../src/pintracker/stateless.ts'
import {
  defaultPinOptions,
  type GlobalPinInfo,
  type ID,
  type Metric,
  type PinOptions,
} from '../src/types/mod.ts'
import { parseStatusFilter } from '../src/types/status.ts'
import { makeDot } from '../cli/ctl/graph.ts'
import { KvCluster, testConfig, type TestNode } from './consensus/raft/kv_cluster.ts'
import { inProcessPeer } from './support/in_process_peer.ts'
import { type FakeIpfs, fakeIpfs } from './support/fake_ipfs.ts'
import { RpcMesh } from './support/rpc_mesh.ts'
import { RpcForbiddenError } from '../src/rpc/errors.ts'
import { IPFS_PEERS, PEERS } from './cli/ctl/fake_cluster.ts'
import { HAVE_BIN, runOurs, same } from './cli/ctl/compat_support.ts'
import { restApi } from '../src/api/rest/server.ts'
import { restConfig } from './api/rest/helpers.ts'

/** One peer of the test cluster. */
interface Peer {
  id: string
  name: string
  node: TestNode
  ipfs: FakeIpfs & { connected: string[] }
  tracker: StatelessTracker
  cluster: Cluster
  /** Callers this peer trusts (its trusted RPC methods refuse the others). */
  trusted: Set<string>
}

/** Monitor doubles sharing one metric store (as gossip would fill each peer's). */
function sharedMonitors() {
  const latest = new Map<string, Metric>()
  return (): PeerMonitor => ({
    publishMetric(m) {
      latest.set(`${m.name} ${m.peer}`, m)
      return Promise.resolve()
    },
    latestMetrics: (name) => [...latest.values()].filter((m) => m.name === name),
    metricNames: () => [...new Set([...latest.values()].map((m) => m.name))],
    // deno-lint-ignore require-yield
    async *alerts(signal) {
      await new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }))
    },
    stop: () => Promise.resolve(),
  })
}

interface Setup {
  kvc: KvCluster
  mesh: RpcMesh
  peers: Peer[]
  [Symbol.asyncDispose](): Promise<void>
}

async function threePeers(): Promise<Setup> {
  const ids: string[] = [...PEERS]
  const kvc = new KvCluster(ids, testConfig())
  const mesh = new RpcMesh(kvc.clock)
  const monitor = sharedMonitors()
  const peers: Peer[] = []
  for (const [i, id] of ids.entries()) {
    const name = `peer${i}`
    const ipfs = Object.assign(
      fakeIpfs({ id: IPFS_PEERS[i], addresses: [`/ip4/127.0.0.1/tcp/${4001 + i}`] }),
      { connected: [] as string[] },
    )
    ipfs.connectSwarms = (addrs) => (ipfs.connected.push(...addrs), Promise.resolve())
    ipfs.swarmPeers = () => Promise.resolve(IPFS_PEERS.filter((p) => p !== IPFS_PEERS[i]))
    const trusted = new Set(ids)
    const { node, tracker, cluster } = await inProcessPeer(kvc, mesh, {
      id,
      name,
      ipfs,
      ipfsId: { id: IPFS_PEERS[i], addresses: [`/ip4/127.0.0.1/tcp/${4001 + i}`] },
      monitor: monitor(),
      connectedPeers: () => ids.filter((p) => p !== id),
      isTrusted: (caller) => trusted.has(caller),
    })
    peers.push({ id, name, node, ipfs, tracker, cluster, trusted })
  }
  await Promise.all(peers.map((p) => p.cluster.start()))
  return {
    kvc,
    mesh,
    peers,
    async [Symbol.asyncDispose]() {
      for (const p of peers) await p.cluster.stop()
      for (const p of peers) await p.tracker.stop()
      await kvc.close()
    },
  }
}

async function cidOf(i: number | string): Promise<string> {
  const mh = await sha256.digest(new TextEncoder().encode(`multi ${i}`))
  return CID.createV1(0x55, mh).toString()
}

const opts = (o: Partial<PinOptions> = {}): PinOptions => ({ ...defaultPinOptions(), ...o })

/** peer → status (and error) of a GlobalPinInfo, by peer name. */
function statuses(g: GlobalPinInfo): Record<string, string> {
  const out: Record<string, string> = {}
  for (const s of Object.values(g.peer_map)) {
    out[s.peername] = s.error ? `${s.status}: ${s.error}` : s.status
  }
  return out
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

Deno.test('multi-peer: a pin everywhere through any peer is pinned by every IPFS; status merges every member', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  const cid = await cidOf('everywhere')
  await b.cluster.pin(cid, opts())
  await s.kvc.until(() => s.peers.every((p) => p.ipfs.isPinned(cid)), 'pinned on every IPFS')
  await s.kvc.converge()

  const g = await c.cluster.status(cid)
  assert.equal(g.cid, cid)
  assert.deepEqual(Object.keys(g.peer_map), [...PEERS].sort(), 'sorted, as Go writes a map')
  assert.deepEqual(statuses(g), { peer0: 'pinned', peer1: 'pinned', peer2: 'pinned' })
  assert.equal(g.peer_map[a.id].ipfs_peer_id, IPFS_PEERS[0])

  // Not in the pinset: every member unpinned, without asking anyone.
  const absent = await a.cluster.status(await cidOf('absent'))
  assert.deepEqual(statuses(absent), { peer0: 'unpinned', peer1: 'unpinned', peer2: 'unpinned' })
  assert.deepEqual(absent.allocations, [])

  // --local stays local.
  assert.deepEqual(Object.keys((await c.cluster.statusLocal(cid)).peer_map), [c.id])
})

Deno.test('multi-peer: status asks the allocated peers; the other members are remote, named from their ping', async () => {
  await using s = await threePeers()
  const [a, , c] = s.peers
  const cid = await cidOf('allocated')
  // Without an allocator a replicated pin goes to the peer that took it.
  const pin = await a.cluster.pin(
    cid,
    opts({ replication_factor_min: 1, replication_factor_max: 1 }),
  )
  assert.deepEqual(pin.allocations, [a.id])
  await s.kvc.until(() => a.ipfs.isPinned(cid), 'pinned on a')
  await s.kvc.converge()
  const asked = s.mesh.streamed.size
  const g = await c.cluster.status(cid)
  assert.deepEqual(statuses(g), { peer0: 'pinned', peer1: 'remote', peer2: 'remote' })
  assert.equal(g.peer_map[c.id].ipfs_peer_id, IPFS_PEERS[2])
  assert.equal(s.mesh.streamed.size, asked)
  assert.equal(s.peers[1].ipfs.isPinned(cid), false)
})

Deno.test('multi-peer: a failing member is cluster_error with its message; a refusing one is left out; a silent one times out', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  const cid = await cidOf('faults')
  await a.cluster.pin(cid, opts())
  await s.kvc.until(() => s.peers.every((p) => p.ipfs.isPinned(cid)), 'pinned everywhere')

  s.mesh.fail(b.id, 'PinTracker.Status', new Error('tracker exploded'))
  s.mesh.down(c.id)
  let g = await a.cluster.status(cid)
  assert.deepEqual(statuses(g), {
    peer0: 'pinned',
    peer1: 'cluster_error: tracker exploded',
    peer2: `cluster_error: ${c.id}: peer unreachable`,
  })
  // A failing member's IPFS is what its ping said.
  assert.equal(g.peer_map[b.id].ipfs_peer_id, IPFS_PEERS[1])
  assert.equal(g.name, '')

  s.mesh.heal()
  c.trusted.delete(a.id)
  g = await a.cluster.status(cid)
  assert.deepEqual(statuses(g), { peer0: 'pinned', peer1: 'pinned' }, 'refused: left out')
  c.trusted.add(a.id)

  s.mesh.hang(b.id)
  const t0 = s.kvc.clock.now()
  g = await a.cluster.status(cid)
  assert.ok(s.kvc.clock.now() - t0 >= 15_000, 'waited the 15 s a member may take')
  assert.match(statuses(g).peer1, /^cluster_error: /)
  assert.equal(statuses(g).peer2, 'pinned')
})

Deno.test('multi-peer: statusAll of 10,000 pins merges every member per CID, holding one item per member', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  const n = 10_000
  const cids: string[] = []
  for (let i = 0; i < n; i++) cids.push(await cidOf(i))
  await Promise.all(cids.map((cid, i) => s.peers[i % 3].cluster.pin(cid, opts())))
  await s.kvc.until(
    () => s.peers.every((p) => p.ipfs.pins.size === n && p.tracker.operationCount() === 0),
    'every IPFS holds every pin',
    600_000,
  )
  await s.kvc.converge()

  let handed = 0
  let merged = 0
  let held = 0
  s.mesh.onItem = () => {
    handed++
    held = Math.max(held, handed - merged)
  }
  let count = 0
  let last = ''
  for await (const g of c.cluster.statusAll(0)) {
    assert.ok(g.cid > last, 'in key order')
    last = g.cid
    merged += Object.keys(g.peer_map).length
    if (count++ % 997 === 0) {
      assert.deepEqual(statuses(g), { peer0: 'pinned', peer1: 'pinned', peer2: 'pinned' })
    }
  }
  assert.equal(count, n)
  assert.equal(merged, 3 * n)
  assert.ok(held <= 3, `the merge held ${held} items at once`)

  // A member that fails part way: cluster_error for every CID merged after it failed.
  s.mesh.fail(b.id, 'PinTracker.StatusAll', new Error('stream reset'), 100)
  const all = await collect(a.cluster.statusAll(0))
  assert.equal(all.length, n)
  assert.deepEqual(statuses(all[99]), { peer0: 'pinned', peer1: 'pinned', peer2: 'pinned' })
  for (const g of [all[100], all[n - 1]]) {
    assert.deepEqual(statuses(g), {
      peer0: 'pinned',
      peer1: 'cluster_error: stream reset',
      peer2: 'pinned',
    })
  }
})

Deno.test('multi-peer: a filter lists the members whose status matched; recoverAll streams what members re-queued', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  const ok = await cidOf('ok')
  const bad = await cidOf('bad')
  b.ipfs.failPin.add(bad)
  await c.cluster.pin(ok, opts())
  await c.cluster.pin(bad, opts())
  await s.kvc.until(
    () => a.ipfs.isPinned(bad) && c.ipfs.isPinned(bad) && s.peers.every((p) => p.ipfs.isPinned(ok)),
    'pinned where it can be',
  )
  await s.kvc.until(
    () => b.tracker.operationCount() === 1 && !b.tracker.syncing(),
    'b gave up on the bad pin',
  )
  const errors = await collect(a.cluster.statusAll(parseStatusFilter('error')))
  assert.deepEqual(errors.map((g) => [g.cid, statuses(g)]), [[bad, {
    peer1: 'pin_error: pin failed',
  }]])
  const pinned = await collect(a.cluster.statusAll(parseStatusFilter('pinned')))
  assert.deepEqual(
    pinned.map((g) => [g.cid, Object.keys(statuses(g)).sort()]),
    [[ok, ['peer0', 'peer1', 'peer2']], [bad, ['peer0', 'peer2']]].sort((x, y) =>
      x[0] < y[0] ? -1 : 1
    ),
  )

  b.ipfs.failPin.clear()
  const recovered = await collect(a.cluster.recoverAll())
  assert.deepEqual(recovered.map((g) => [g.cid, Object.keys(statuses(g))]), [[bad, ['peer1']]])
  assert.match(statuses(recovered[0]).peer1, /^(pin_queued|pinning|pinned)$/)
  await s.kvc.until(() => b.ipfs.isPinned(bad), 'b pinned it once recovered')

  // recover of one CID asks the members that track it.
  const one = await c.cluster.recover(bad)
  assert.deepEqual(statuses(one), { peer0: 'pinned', peer1: 'pinned', peer2: 'pinned' })
})

Deno.test('multi-peer: peers lists every member with its IPFS; an unreachable one with its error', async () => {
  await using s = await threePeers()
  const [a, , c] = s.peers
  const byId = (ids: ID[]) => new Map(ids.map((i) => [i.id, i]))
  let ids = byId(await collect(a.cluster.peers()))
  assert.deepEqual([...ids.keys()].sort(), [...PEERS].sort())
  assert.equal(ids.get(c.id)?.peername, 'peer2')
  assert.equal(ids.get(c.id)?.ipfs.id, IPFS_PEERS[2])
  assert.deepEqual(ids.get(c.id)?.cluster_peers, [...PEERS].sort())

  s.mesh.down(c.id)
  ids = byId(await collect(a.cluster.peers()))
  assert.equal(ids.size, 3)
  assert.equal(ids.get(c.id)?.error, `${c.id}: peer unreachable`)
  assert.equal(ids.get(a.id)?.error, '')
  s.mesh.heal()

  // As they arrive: a member that does not answer comes last, after its 15 s.
  s.mesh.hang(s.peers[1].id)
  const t0 = s.kvc.clock.now()
  const order = await collect(a.cluster.peers())
  assert.deepEqual(order.map((i) => i.id).slice(0, 2).sort(), [a.id, c.id].sort())
  assert.equal(order[2].id, s.peers[1].id)
  assert.notEqual(order[2].error, '')
  assert.ok(s.kvc.clock.now() - t0 >= 15_000)
  s.mesh.heal()

  // The IPFS daemons were swarm-connected at start, each to the others' addresses.
  for (const [i, p] of s.peers.entries()) {
    assert.deepEqual(
      [...new Set(p.ipfs.connected)].sort(),
      [0, 1, 2].filter((j) => j !== i).map((j) => `/ip4/127.0.0.1/tcp/${4001 + j}`),
      p.name,
    )
  }
})

Deno.test('multi-peer: repoGC on every member; connectGraph has cluster, IPFS and trust links', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  s.mesh.fail(b.id, 'Cluster.RepoGCLocal', new Error('gc failed'))
  const gc = await c.cluster.repoGC()
  assert.deepEqual(Object.keys(gc.peer_map), [...PEERS].sort())
  assert.deepEqual(gc.peer_map[a.id], { peer: a.id, peername: 'peer0', keys: [] })
  assert.deepEqual(gc.peer_map[b.id], {
    peer: b.id,
    peername: 'peer1',
    keys: [],
    error: 'gc failed',
  })
  s.mesh.heal()

  s.mesh.down(c.id)
  const g = await a.cluster.connectGraph()
  assert.equal(g.cluster_id, a.id)
  assert.deepEqual(g.cluster_links[a.id], [b.id, c.id].sort())
  assert.deepEqual(g.cluster_links[c.id], [], 'an unreachable member has no links')
  assert.deepEqual(g.id_to_peername, { [a.id]: 'peer0', [b.id]: 'peer1' })
  assert.deepEqual(g.cluster_to_ipfs, { [a.id]: IPFS_PEERS[0], [b.id]: IPFS_PEERS[1] })
  assert.deepEqual(g.ipfs_links[IPFS_PEERS[0]], [IPFS_PEERS[1], IPFS_PEERS[2]])
  assert.deepEqual(g.cluster_trust_links, { [a.id]: true, [b.id]: true, [c.id]: true })
  // What `ctl health graph` draws from it: this peer, the two trusted members, the IPFS daemons
  // (the unreachable member's drawn as errored, linked by a dotted edge).
  const dot = makeDot(g, false)
  for (const node of ['C0', 'T1', 'T2', 'I0', 'I1', 'I2']) {
    assert.match(dot, new RegExp(`\\n${node} \\[`))
  }
  assert.match(dot, /\nT2 -> I2 \[ style="dotted" \]\n/)
  assert.match(dot, /\nI0 -> I1\nI1 -> I0\n/)
})

Deno.test('multi-peer: peer rm through any member leaves the others; the RPC policy refuses non-members', async () => {
  await using s = await threePeers()
  const [a, b, c] = s.peers
  await b.cluster.peerRemove(c.id)
  // The removed peer hears nothing more (the daemon shuts it down): only the others converge.
  await c.cluster.stop()
  await s.kvc.stop(c.id)
  await s.kvc.converge()
  assert.deepEqual(await a.node.consensus.peers(), [a.id, b.id].sort())
  const cid = await cidOf('after removal')
  await a.cluster.pin(cid, opts())
  await s.kvc.until(() => a.ipfs.isPinned(cid) && b.ipfs.isPinned(cid), 'pinned by the two')
  assert.deepEqual(Object.keys((await a.cluster.status(cid)).peer_map), [a.id, b.id].sort())

  // c is no member any more: a trusted method of a refuses it, an open one answers.
  a.trusted.delete(c.id)
  const rpc = s.mesh.client(c.id)
  await assert.rejects(rpc.call(a.id, 'PinTracker.Status', [cid]), RpcForbiddenError)
  assert.equal((await rpc.call(a.id, 'Cluster.ID', [])).id, a.id)
})

Deno.test({
  name: 'multi-peer: the merged status is read and printed by ipfs-cluster-ctl 1.1.6 as by our ctl',
  ignore: !HAVE_BIN,
  async fn() {
    await using s = await threePeers()
    const [a, b] = s.peers
    const everywhere = await cidOf('ctl everywhere')
    const here = await cidOf('ctl here')
    await b.cluster.pin(everywhere, opts({ name: 'shown' }))
    await a.cluster.pin(here, opts({ replication_factor_min: 1, replication_factor_max: 1 }))
    await s.kvc.until(
      () => s.peers.every((p) => p.ipfs.isPinned(everywhere)) && a.ipfs.isPinned(here),
      'pinned',
    )
    await s.kvc.converge()
    s.mesh.fail(b.id, 'PinTracker.Status', new Error('tracker exploded'))
    s.mesh.fail(b.id, 'PinTracker.StatusAll', new Error('stream reset'), 1)
    const api = restApi(restConfig(), { cluster: a.cluster, configDir: Deno.cwd(), peerId: a.id })
    await api.start()
    try {
      const host = api.addresses()[0]
      // The two CLIs ask one after the other, and the time this peer states for a failed or
      // remote member is the time of the request: those times differ, and only those.
      const at = (out: string) => out.replace(/"?\d{4}-\d\d-\d\dT\d\d:\d\d:[\d.]+Z"?/g, '<time>')
      for (const enc of ['text', 'json']) {
        for (
          const args of [
            ['status', everywhere],
            ['status', here],
            ['status'],
            ['status', '--filter', 'pinned,error'],
            ['peers', 'ls'],
          ]
        ) await same(host, [`--enc=${enc}`, ...args], {}, at)
      }
      // An unreachable member in `peers ls`: its ID and the error.
      s.mesh.down(s.peers[2].id)
      for (const enc of ['text', 'json']) await same(host, [`--enc=${enc}`, 'peers', 'ls'])
      const ls = await runOurs(['--host', host, 'peers', 'ls'])
      assert.match(ls.stdout, new RegExp(`^${s.peers[2].id} \\| ERROR: .*peer unreachable$`, 'm'))
      s.mesh.heal()
      s.mesh.fail(b.id, 'PinTracker.Status', new Error('tracker exploded'))
      s.mesh.fail(b.id, 'PinTracker.StatusAll', new Error('stream reset'), 1)

      // What they print: every member, the failing one with its message.
      const out = await runOurs(['--host', host, 'status', everywhere])
      assert.match(out.stdout, /> peer1 +: CLUSTER_ERROR: tracker exploded \|/)
      assert.match(out.stdout, /> peer2 +: PINNED \|/)
      const all = await runOurs(['--host', host, 'status'])
      assert.equal(all.code, 0)
      assert.match(all.stdout, /> peer1 +: CLUSTER_ERROR: stream reset \|/)
      assert.match(all.stdout, /> peer2 +: REMOTE \|/)
    } finally {
      await api.stop()
    }
  },
})
