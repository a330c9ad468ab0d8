/**
 * Faults of a cluster of real processes on 127.0.0.1 (each beside an instant IPFS double): a leader
 * frozen by SIGSTOP past the election timeout and resumed (3 peers), a minority with the leader cut
 * off by the link proxies and healed (one of 3, two of 5). In each, nothing acknowledged is lost, there is never more than one leader
 * per term in any peer's view, and a write that cannot be served fails with a clear error instead
 * of hanging. The kill -9 test is cluster_faults_kill9.test.ts, the quorum loss
 * cluster_faults_quorum.test.ts, the snapshot catch-up cluster_faults_snapshot.test.ts.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { type ClusterPeer, TestCluster } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'
import {
  inlineCids,
  pinAll,
  pinsetOf,
  pinThrough,
  type RoleView,
  roleViews,
  startFormed,
  waitPinset,
} from './cluster_faults_support.ts'

/** Every role line of every peer's logs (every run of it), oldest first per peer. */
async function allViews(cluster: TestCluster): Promise<RoleView[]> {
  const views: RoleView[] = []
  const logs = join(cluster.workDir, 'logs')
  for await (const f of Deno.readDir(logs)) {
    const peer = cluster.peers.find((p) => f.name.endsWith(`-${p.name}.log`))
    if (peer) views.push(...await roleViews(peer, join(logs, f.name)))
  }
  return views
}

/** Asserts that no two peers were ever named leader of the same term, in anyone's view. */
function assertOneLeaderPerTerm(views: RoleView[]): void {
  const byTerm = new Map<number, Set<string>>()
  for (const v of views) {
    if (v.leader === 'unknown') continue
    const set = byTerm.get(v.term) ?? new Set()
    set.add(v.leader)
    byTerm.set(v.term, set)
  }
  assert.ok(byTerm.size > 0, 'the logs name leaders')
  for (const [term, leaders] of byTerm) {
    assert.equal(leaders.size, 1, `term ${term} had leaders ${[...leaders].join(', ')}`)
  }
}

/** The running peers whose newest role line says they lead. */
async function currentLeaders(cluster: TestCluster): Promise<ClusterPeer[]> {
  const out: ClusterPeer[] = []
  for (const p of cluster.peers) {
    if (!p.proc?.running()) continue
    if ((await roleViews(p, p.proc.logPath)).at(-1)?.role === 'leader') out.push(p)
  }
  return out
}

/** Waits until `peer`'s newest role line satisfies `want`; returns it. */
async function waitRole(
  peer: ClusterPeer,
  want: (v: RoleView) => boolean,
  what: string,
): Promise<RoleView> {
  let last: RoleView | undefined
  await waitFor(async () => {
    last = (await roleViews(peer, peer.proc!.logPath)).at(-1)
    return last !== undefined && want(last)
  }, { what: `${peer.name} ${what}`, timeoutMs: 30_000 })
  return last!
}

Deno.test({
  name: 'cluster faults: a leader frozen past the election timeout steps down when resumed',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await TestCluster.create({ impl: 'ours', peers: 3 })
    try {
      const old = await startFormed(cluster)
      const others = cluster.peers.filter((p) => p !== old)
      const oldView = await waitRole(old, (v) => v.role === 'leader', 'leads')
      const acked = inlineCids('sigstop-before', 20)
      await pinAll(cluster, [old], acked)

      cluster.sigstop(old)
      // Past the election timeout the others elect one of them.
      const next = await cluster.waitLeader(30_000, old)
      assert.ok(others.includes(next))
      // Writes sent to the frozen leader wait in its socket; writes through the others go on.
      const stalledCids = inlineCids('sigstop-stalled', 5)
      const stalled = stalledCids.map((cid) => pinThrough(cluster, old, cid, 60_000))
      const during = inlineCids('sigstop-during', 40)
      await pinAll(cluster, others, during)
      acked.push(...during)

      cluster.sigcont(old)
      // The old leader hears the new term and follows a new leader (the one elected, unless
      // the loaded machine made the others elect again meanwhile).
      const stepped = await waitRole(
        old,
        (v) => v.role === 'follower' && v.leader !== 'unknown' && v.leader !== old.id,
        'follows another peer',
      )
      assert.ok(stepped.term > oldView.term, `term ${stepped.term} after ${oldView.term}`)
      // What was sent to it while frozen is served once it runs again: through the new leader.
      for (const [i, res] of (await Promise.all(stalled)).entries()) {
        assert.equal(res.status, 200, `the write sent to the frozen leader: ${res.body}`)
        acked.push(stalledCids[i])
      }
      const after = inlineCids('sigstop-after', 20)
      await pinAll(cluster, [old, ...others], after)
      acked.push(...after)

      for (const p of cluster.peers) await waitPinset(cluster, p, acked, 30_000)
      assertOneLeaderPerTerm(await allViews(cluster))
      await waitFor(async () => (await currentLeaders(cluster)).length === 1, {
        what: 'exactly one peer to say it leads',
      })
    } finally {
      await cluster.close()
    }
  },
})

/**
 * `peers` peers; the leader and `cut - 1` followers are cut off from the rest by the link
 * proxies, then healed.
 */
async function minorityCutOff(peers: number, cut: number): Promise<void> {
  const cluster = await TestCluster.create({
    impl: 'ours',
    peers,
    links: true,
    edit: (cfg) => {
      cfg.consensus.raft.wait_for_leader_timeout = '4s'
    },
  })
  try {
    const old = await startFormed(cluster)
    const minority = [old, ...cluster.peers.filter((p) => p !== old).slice(0, cut - 1)]
    const majority = cluster.peers.filter((p) => !minority.includes(p))
    const acked = inlineCids('minority-before', 20)
    await pinAll(cluster, cluster.peers, acked)

    // The leader is in the minority: the others elect one of them, it steps down (check quorum),
    // and no peer of the minority knows a leader any more (it cannot elect one: no majority).
    cluster.isolate(minority.map((p) => p.index))
    const next = await cluster.waitLeader(30_000, old)
    assert.ok(majority.includes(next))
    for (const p of minority) {
      await waitRole(p, (v) => v.role !== 'leader' && v.leader === 'unknown', 'knows no leader')
    }

    // The majority keeps taking writes, through any of its peers.
    const during = inlineCids('minority-during', 60)
    await pinAll(cluster, majority, during)
    acked.push(...during)

    // A write to the minority fails after wait_for_leader_timeout (4 s), with the reason.
    const refused = inlineCids('minority-refused', minority.length)
    const answers = await Promise.all(
      minority.map((p, i) => pinThrough(cluster, p, refused[i], 60_000)),
    )
    for (const [i, res] of answers.entries()) {
      assert.equal(res.status, 503, `${minority[i].name}: ${res.body}`)
      assert.equal(
        JSON.parse(res.body).message,
        "no leader after waiting 4s (wait_for_leader_timeout): a write needs a majority of the cluster's peers running and reachable",
      )
      assert.ok(res.ms >= 3_500 && res.ms < 30_000, `refused after ${res.ms} ms`)
    }

    cluster.heal()
    for (const p of minority) {
      await waitRole(
        p,
        (v) =>
          v.role === 'follower' && v.leader !== 'unknown' &&
          !minority.some((m) => m.id === v.leader),
        'follows a leader of the majority',
      )
    }
    for (const p of cluster.peers) await waitPinset(cluster, p, acked, 30_000)
    // The refused writes were never proposed: no peer has them.
    for (const p of cluster.peers) {
      const pinset = await pinsetOf(cluster, p)
      assert.deepEqual(refused.filter((c) => pinset.has(c)), [], `${p.name} lacks the refused`)
    }
    // And the healed peers take writes again.
    const after = inlineCids('minority-after', 10)
    await pinAll(cluster, minority, after)
    for (const p of cluster.peers) await waitPinset(cluster, p, after, 30_000)
    assertOneLeaderPerTerm(await allViews(cluster))
  } finally {
    await cluster.close()
  }
}

Deno.test({
  name:
    'cluster faults: one of 3 cut off refuses writes after wait_for_leader_timeout, catches up when healed',
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => minorityCutOff(3, 1),
})

Deno.test({
  name:
    'cluster faults: two of 5 cut off refuse writes after wait_for_leader_timeout, catch up when healed',
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => minorityCutOff(5, 2),
})
