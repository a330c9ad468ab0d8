/**
 * A follower that fell behind a compacted log catches up from a snapshot, in a 3-peer cluster of
 * real processes beside real Kubos, with compaction as eager as the config allows
 * (`snapshot_threshold` 1, `trailing_logs` 0, `snapshot_interval` 1 s):
 *
 * - stopped while pins are written, then started again: the leader sends it a snapshot, it
 *   installs it and has every pin, and its Kubo pins them;
 * - cut off while running (link proxies), then healed: it installs a snapshot while running, and
 *   its Kubo pins what the snapshot brought, which only the tracker's resync after an install does
 *   (restored pins do not pass through the apply hooks).
 */
import { type ClusterPeer, TestCluster } from '../support/cluster.ts'
import type { KuboDaemon } from '../support/kubo.ts'
import { waitFor } from '../support/wait.ts'
import {
  inlineCids,
  kuboPerPeer,
  pinAll,
  startFormed,
  waitKuboPins,
  waitPinset,
} from './cluster_faults_support.ts'

/** The numbers a peer's log gives after `re` (one capture), newest last. */
async function logged(peer: ClusterPeer, re: RegExp): Promise<number[]> {
  const log = await Deno.readTextFile(peer.proc!.logPath)
  return [...log.matchAll(re)].map((m) => Number(m[1]))
}

const COMPACTED = /raft: compacted the log up to (\d+)/g

const INSTALLED = /raft: installed snapshot (\d+)/g

/** Waits until `peer` logged `re` at least `n` times (log lines may trail what the API shows). */
async function waitLogged(peer: ClusterPeer, re: RegExp, n: number, what: string): Promise<void> {
  await waitFor(async () => (await logged(peer, re)).length >= n, {
    what: `${peer.name}: ${what}`,
    timeoutMs: 30_000,
  })
}

/**
 * The index up to which the quiet leader compacted its log: once no entry is added for a few
 * intervals it compacted everything applied, so a follower stopped now needs the entry after it.
 */
async function settledCompaction(leader: ClusterPeer): Promise<number> {
  let last = -1
  let since = Date.now()
  await waitFor(async () => {
    const now = (await logged(leader, COMPACTED)).at(-1) ?? 0
    if (now !== last) [last, since] = [now, Date.now()]
    return Date.now() - since > 3_000
  }, { what: `${leader.name}'s compaction to settle`, timeoutMs: 60_000 })
  return last
}

/** Waits until the leader compacted its log beyond `index`: the entry after it is gone. */
async function waitCompactedPast(leader: ClusterPeer, index: number): Promise<void> {
  await waitFor(
    async () => (await logged(leader, COMPACTED)).some((i) => i > index),
    { what: `${leader.name} to compact its log past ${index}`, timeoutMs: 30_000 },
  )
}

Deno.test({
  name:
    'cluster faults: a follower behind a compacted log catches up from a snapshot, and its IPFS pins it all',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kubos: KuboDaemon[] = []
    const cluster = await TestCluster.create({
      impl: 'ours',
      peers: 3,
      links: true,
      ipfs: kuboPerPeer(kubos),
      edit: (cfg) => {
        Object.assign(cfg.consensus.raft, {
          snapshot_threshold: 1,
          trailing_logs: 0,
          snapshot_interval: '1s',
        })
      },
    })
    try {
      const leader = await startFormed(cluster)
      const follower = cluster.peers.find((p) => p !== leader)!
      const all = inlineCids('snapshot-first', 10)
      await pinAll(cluster, [leader], all, 4)
      await waitPinset(cluster, follower, all, 30_000)

      // 1. Stopped: the log it needs is compacted away while it is down.
      const behind = await settledCompaction(leader)
      await cluster.stop(follower)
      const whileDown = inlineCids('snapshot-down', 40)
      await pinAll(cluster, [leader], whileDown, 4)
      all.push(...whileDown)
      await waitCompactedPast(leader, behind)
      cluster.start(follower)
      await cluster.waitReady(follower, 90_000)
      await waitPinset(cluster, follower, all, 60_000)
      await waitLogged(follower, INSTALLED, 1, 'installed a snapshot')
      await waitLogged(
        leader,
        new RegExp(`raft: sent snapshot (\\d+) to ${follower.id}`, 'g'),
        1,
        'sent it one',
      )
      await waitKuboPins(kubos[follower.index], follower.name, all, 120_000)

      // 2. Cut off while running: the snapshot is installed under the running tracker.
      const before = await settledCompaction(leader)
      cluster.isolate([follower.index])
      const installs = (await logged(follower, INSTALLED)).length
      const whileCut = inlineCids('snapshot-cut', 40)
      await pinAll(cluster, [leader], whileCut, 4)
      all.push(...whileCut)
      await waitCompactedPast(leader, before)
      cluster.heal()
      await waitPinset(cluster, follower, all, 60_000)
      await waitLogged(
        follower,
        INSTALLED,
        installs + 1,
        'installed another snapshot while running',
      )
      await waitKuboPins(kubos[follower.index], follower.name, whileCut, 120_000)
      for (const [i, kubo] of kubos.entries()) {
        await waitKuboPins(kubo, cluster.peers[i].name, all, 120_000)
      }
    } finally {
      await cluster.close()
    }
  },
})
