/**
 * The reference's replication and repinning scenarios (its Go tests in ipfscluster_test.go:
 * factor max, max lower, in between with a peer down, min/max without and with re-allocation,
 * not enough peers, rebalance on a holder's failure, disabled repinning, peer removal) on five
 * in-process peers: each a real Raft consensus on its own Deno KV (over a `MemoryNetwork`), a real
 * stateless tracker beside an IPFS double, a Cluster with the balanced allocator over one shared
 * metric view (what gossip gives every peer); peers reach each other only through the RPC mesh.
 * A peer goes "down" by crashing its Raft node and losing its metrics; its ping alert is raised on
 * every live peer's monitor, as their checkers would.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Cluster } from '../src/cluster.ts'
import type { ClusterConfig } from '../src/cluster/config.ts'
import type { PeerMonitor } from '../src/components.ts'
import { allocationFunction } from '../src/allocator/allocate.ts'
import { balancedAllocator } from '../src/allocator/balanced.ts'
import type { StatelessTracker } from '../src/pintracker/stateless.ts'
import {
  type Alert,
  defaultPinOptions,
  type Metric,
  newMetric,
  type Pin,
  type PinOptions,
} from '../src/types/mod.ts'
import { KvCluster, testConfig } from './consensus/raft/kv_cluster.ts'
import { type FakeIpfs, fakeIpfs } from './support/fake_ipfs.ts'
import { RpcMesh } from './support/rpc_mesh.ts'
import { inProcessPeer } from './support/in_process_peer.ts'
import { turn } from './support/manual_clock.ts'
import { alertQueue } from './support/alert_queue.ts'
import { NotFoundError } from '../src/errors.ts'

const IDS = [
  'QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD',
  'QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ',
  'QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu',
  '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N',
  '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U',
]
const IPFS_IDS = [
  'QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV',
  'QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq',
  'QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL',
  '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K',
  '12D3KooWQm2JRqKuYBoFEg8MgFfVeXjQkwmhpsRDPGzfsk8yvhm8',
]

interface Peer {
  id: string
  index: number
  ipfs: FakeIpfs
  tracker: StatelessTracker
  cluster: Cluster
  raise(a: Alert): void
}

/** The metric view every peer shares, and one monitor per peer on it with its own alerts. */
function sharedView() {
  const live = new Set<string>(IDS)
  const metrics = (name: string, now: number): Metric[] =>
    name !== 'freespace' ? [] : IDS.filter((p) => live.has(p)).map((p, i) => {
      // Distinct free space: the most free is the peer listed last.
      const free = 1e12 + i * 1e9
      return newMetric('freespace', p, String(free), 60_000, now, free)
    })
  const monitor = (clock: { now(): number }) => {
    const q = alertQueue()
    const m: PeerMonitor & { raise(a: Alert): void } = {
      raise: q.raise,
      publishMetric: () => Promise.resolve(),
      latestMetrics: (name) => metrics(name, clock.now()),
      metricNames: () => ['freespace'],
      alerts: q.alerts,
      stop: () => Promise.resolve(),
    }
    return m
  }
  return { live, monitor }
}

interface Setup {
  kvc: KvCluster
  peers: Peer[]
  /** Crashes a peer's Raft node, drops its metrics, and raises its ping alert on the others. */
  down(p: Peer, alert?: boolean): Promise<void>
  live(): Peer[]
  [Symbol.asyncDispose](): Promise<void>
}

async function fivePeers(config: Partial<ClusterConfig> = {}): Promise<Setup> {
  const kvc = new KvCluster(IDS, testConfig())
  const mesh = new RpcMesh(kvc.clock)
  const view = sharedView()
  const peers: Peer[] = []
  const downs = new Set<string>()
  for (const [i, id] of IDS.entries()) {
    const ipfs = fakeIpfs({ id: IPFS_IDS[i], addresses: [`/ip4/127.0.0.1/tcp/${4001 + i}`] })
    const monitor = view.monitor(kvc.clock)
    const { tracker, cluster } = await inProcessPeer(kvc, mesh, {
      id,
      name: `peer${i}`,
      ipfs,
      ipfsId: { id: IPFS_IDS[i], addresses: [] },
      monitor,
      config,
      allocate: allocationFunction({
        allocator: balancedAllocator({ allocate_by: ['freespace'] }),
        monitor,
      }),
    })
    peers.push({ id, index: i, ipfs, tracker, cluster, raise: (a) => monitor.raise(a) })
  }
  await kvc.waitLeader()
  await Promise.all(peers.map((p) => p.cluster.start()))
  const live = () => peers.filter((p) => !downs.has(p.id))
  return {
    kvc,
    peers,
    live,
    async down(p, alert = false) {
      downs.add(p.id)
      view.live.delete(p.id)
      await p.cluster.stop()
      await p.tracker.stop()
      await kvc.crash(p.id)
      await kvc.waitLeader(10_000)
      if (alert) {
        const a = { ...newMetric('ping', p.id, '', 1000, kvc.clock.now()), triggered_at: 'now' }
        for (const q of live()) q.raise(a)
      }
    },
    async [Symbol.asyncDispose]() {
      for (const p of live()) await p.cluster.stop()
      for (const p of live()) await p.tracker.stop()
      await kvc.close()
    },
  }
}

async function cidOf(tag: string): Promise<string> {
  const mh = await sha256.digest(new TextEncoder().encode(`replication ${tag}`))
  return CID.createV1(0x55, mh).toString()
}

const rf = (min: number, max: number, o: Partial<PinOptions> = {}): PinOptions => ({
  ...defaultPinOptions(),
  replication_factor_min: min,
  replication_factor_max: max,
  ...o,
})

/** Waits until exactly the peers `holders` (and no other live peer) pin `cid` on their IPFS. */
async function heldBy(s: Setup, cid: string, holders: string[]): Promise<void> {
  await s.kvc.until(
    () => s.live().every((p) => p.ipfs.isPinned(cid) === holders.includes(p.id)),
    `${cid} held by exactly ${holders.length} peers`,
    30_000,
  )
}

const sorted = (xs: readonly string[]) => [...xs].sort()

/** Waits until the async `cond` holds, on cluster time (as KvCluster.until does for sync ones). */
async function eventually(s: Setup, cond: () => Promise<boolean>, what: string): Promise<void> {
  const start = s.kvc.clock.now()
  const wallEnd = Date.now() + 60_000
  while (!(await cond())) {
    if (s.kvc.clock.now() - start > 30_000) {
      throw new Error(`${what}: not within 30 s of cluster time`)
    }
    if (Date.now() > wallEnd) throw new Error(`${what}: the cluster hung`)
    await turn()
  }
}

Deno.test('replication: factor max — n-1 peers hold it, the last is remote (TestClustersReplicationFactorMax)', async () => {
  await using s = await fivePeers()
  const cid = await cidOf('max')
  const pin = await s.peers[0].cluster.pin(cid, rf(1, 4))
  assert.equal(pin.allocations.length, 4)
  await heldBy(s, cid, pin.allocations)
  const g = await s.peers[2].cluster.status(cid)
  const st = Object.values(g.peer_map).map((p) => p.status).sort()
  assert.deepEqual(st, ['pinned', 'pinned', 'pinned', 'pinned', 'remote'])
})

Deno.test('replication: a lower max on a re-pin keeps the first allocations and unpins the rest (TestClustersReplicationFactorMaxLower)', async () => {
  await using s = await fivePeers()
  const cid = await cidOf('lower')
  const all = await s.peers[1].cluster.pin(cid, rf(1, 5))
  assert.equal(all.allocations.length, 5)
  await heldBy(s, cid, all.allocations)
  const two = await s.peers[3].cluster.pin(cid, rf(1, 2))
  assert.deepEqual(two.allocations, all.allocations.slice(0, 2))
  await heldBy(s, cid, two.allocations)
})

Deno.test('replication: in between — a peer down, max 5 gives the 4 up (TestClustersReplicationFactorInBetween)', async () => {
  await using s = await fivePeers()
  await s.down(s.peers[4])
  const cid = await cidOf('between')
  const pin = await s.peers[0].cluster.pin(cid, rf(1, 5))
  assert.deepEqual(sorted(pin.allocations), sorted(IDS.slice(0, 4)))
  await heldBy(s, cid, pin.allocations)
})

Deno.test('replication: min/max without re-allocation — a holder down, still at least min: the same allocations (TestClustersReplicationMinMaxNoRealloc)', async () => {
  await using s = await fivePeers()
  const cid = await cidOf('norealloc')
  const first = await s.peers[0].cluster.pin(cid, rf(1, 3))
  assert.equal(first.allocations.length, 3)
  await heldBy(s, cid, first.allocations)
  const gone = s.peers.find((p) => first.allocations.includes(p.id) && p !== s.peers[0])!
  await s.down(gone)
  const again = await s.peers[0].cluster.pin(cid, rf(1, 3))
  assert.deepEqual(again.allocations, first.allocations)
})

Deno.test('replication: min/max with re-allocation — two holders down, under min: live holders kept, new ones added (TestClustersReplicationMinMaxRealloc)', async () => {
  await using s = await fivePeers()
  const cid = await cidOf('realloc')
  const first = await s.peers[0].cluster.pin(cid, rf(3, 4))
  assert.equal(first.allocations.length, 4)
  await heldBy(s, cid, first.allocations)
  const gone = s.peers.filter((p) => first.allocations.includes(p.id) && p !== s.peers[0]).slice(
    0,
    2,
  )
  for (const g of gone) await s.down(g)
  const again = await s.peers[0].cluster.pin(cid, rf(3, 4))
  const kept = first.allocations.filter((p) => !gone.some((g) => g.id === p))
  assert.deepEqual(again.allocations.slice(0, kept.length), kept)
  assert.equal(again.allocations.length, 3, 'every live peer')
  assert.ok(again.allocations.every((p) => !gone.some((g) => g.id === p)))
  await heldBy(s, cid, again.allocations)
})

Deno.test('replication: not enough peers — two down, min 4: the reference error, nothing stored (TestClustersReplicationNotEnoughPeers)', async () => {
  await using s = await fivePeers()
  await s.down(s.peers[3])
  await s.down(s.peers[4])
  const cid = await cidOf('notenough')
  await assert.rejects(
    s.peers[0].cluster.pin(cid, rf(4, 4)),
    /not enough peers to allocate CID\. Needed at least: 4\. Wanted at most: 4\. Available candidates: 3\./,
  )
  await assert.rejects(s.peers[1].cluster.pinGet(cid), NotFoundError)
})

Deno.test('repinning: a holder fails: its pins move to live peers, the others keep theirs (TestClustersRebalanceOnPeerDown)', async () => {
  await using s = await fivePeers({ disable_repinning: false })
  const cids = await Promise.all(Array.from({ length: 12 }, (_, i) => cidOf(`rebalance ${i}`)))
  const pins: Pin[] = []
  for (const cid of cids) pins.push(await s.peers[0].cluster.pin(cid, rf(2, 2)))
  for (const p of pins) await heldBy(s, p.cid, p.allocations)
  const victim = s.peers.find((p) =>
    p !== s.peers[0] && pins.some((x) => x.allocations.includes(p.id))
  )!
  const moved = pins.filter((x) => x.allocations.includes(victim.id))
  await s.down(victim, true)
  for (const x of moved) {
    let now: string[] = []
    await eventually(s, async () => {
      now = (await s.peers[0].cluster.pinGet(x.cid)).allocations
      return now.length === 2 && !now.includes(victim.id)
    }, `${x.cid} re-allocated`)
    // The holder that stayed is kept; the new one pins it.
    assert.ok(now.includes(x.allocations.find((p) => p !== victim.id)!))
    await heldBy(s, x.cid, now)
  }
  for (const x of pins.filter((y) => !y.allocations.includes(victim.id))) {
    assert.deepEqual((await s.peers[0].cluster.pinGet(x.cid)).allocations, x.allocations)
  }
})

Deno.test('repinning: disabled (the default), a holder failing moves nothing', async () => {
  await using s = await fivePeers()
  const cid = await cidOf('disabled')
  const pin = await s.peers[0].cluster.pin(cid, rf(2, 2))
  await heldBy(s, cid, pin.allocations)
  const victim = s.peers.find((p) => p !== s.peers[0] && pin.allocations.includes(p.id))!
  await s.down(victim, true)
  await s.kvc.clock.advance(5_000)
  assert.deepEqual((await s.peers[0].cluster.pinGet(cid)).allocations, pin.allocations)
})

Deno.test('peers rm: the removed holder’s pins are re-allocated before it leaves (TestClustersPeerRemoveReallocsPins)', async () => {
  await using s = await fivePeers({ disable_repinning: false })
  const cids = await Promise.all(Array.from({ length: 6 }, (_, i) => cidOf(`remove ${i}`)))
  const pins: Pin[] = []
  for (const cid of cids) pins.push(await s.peers[0].cluster.pin(cid, rf(2, 2)))
  const victim = s.peers.find((p) =>
    p !== s.peers[0] && pins.some((x) => x.allocations.includes(p.id))
  )!
  await s.peers[0].cluster.peerRemove(victim.id)
  for (const x of pins) {
    const now = (await s.peers[0].cluster.pinGet(x.cid)).allocations
    assert.equal(now.length, 2)
    assert.ok(!now.includes(victim.id), x.cid)
  }
  const members = (await s.peers[0].cluster.id()).cluster_peers
  assert.ok(!members.includes(victim.id), members.join(' '))
})
