/**
 * A 3-peer cluster of real processes loses its quorum (2 of 3 peers stopped): a write to the one
 * left fails with a clear error and never hangs. While the survivor still believes it leads (a
 * leader notices a lost quorum only at its next check, one election timeout later) the write is
 * proposed `commit_retries` + 1 times, `commit_retry_delay` apart, each attempt waiting
 * `network_timeout`; once it stepped down, the write waits `wait_for_leader_timeout` for a leader
 * and fails with that reason.
 *
 * The timeouts are chosen so that the phases cannot overlap: an election timeout of 10 s keeps the
 * survivor leading at least 10 s after the others stop (see check quorum in core/raft.ts), and the
 * retried write takes 3 × 1.5 s + 2 × 0.5 s = 5.5 s. The exact arithmetic is covered on a manual
 * clock by test/consensus/raft/; here the bounds are generous.
 */
import assert from 'node:assert/strict'
import { TestCluster } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'
import { inlineCids, pinThrough, roleViews, startFormed } from './cluster_faults_support.ts'

const RETRY = /WARN\tconsensus\traft: retrying a commit: /g

Deno.test({
  name:
    'cluster faults: without quorum a write fails after commit_retries, then after wait_for_leader_timeout',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await TestCluster.create({
      impl: 'ours',
      peers: 3,
      edit: (cfg) => {
        Object.assign(cfg.consensus.raft, {
          heartbeat_timeout: '1s',
          election_timeout: '10s',
          network_timeout: '1.5s',
          commit_retries: 2,
          commit_retry_delay: '500ms',
          // Also how long a peer waits for a leader at start: above a first election's 10–20 s.
          wait_for_leader_timeout: '30s',
        })
      },
    })
    try {
      // A first election takes 10–20 s with these timeouts.
      const survivor = await startFormed(cluster, 120_000)
      const [ok] = inlineCids('quorum-ok', 1)
      assert.equal((await pinThrough(cluster, survivor, ok)).status, 200)

      for (const p of cluster.peers) if (p !== survivor) await cluster.stop(p)
      const log = () => Deno.readTextFile(survivor.proc!.logPath)
      const retriesBefore = [...(await log()).matchAll(RETRY)].length

      // Still the leader: the write is proposed, times out, and is proposed again, twice.
      const [first] = inlineCids('quorum-first', 1)
      const res = await pinThrough(cluster, survivor, first, 60_000)
      assert.equal(res.status, 503, res.body)
      assert.equal(
        JSON.parse(res.body).message,
        "timed out waiting for the operation to commit within network_timeout (1.5s): a write needs a majority of the cluster's peers running and reachable",
      )
      const retries = [...(await log()).matchAll(RETRY)].length - retriesBefore
      assert.equal(retries, 2, `the write was retried ${retries} times (commit_retries: 2)`)
      assert.ok(res.ms >= 5_000 && res.ms < 30_000, `failed after ${res.ms} ms (5.5 s expected)`)

      // Then it steps down, and a write waits for a leader, then says why it failed.
      await waitFor(async () => {
        const last = (await roleViews(survivor, survivor.proc!.logPath)).at(-1)
        return last !== undefined && last.role !== 'leader'
      }, { what: `${survivor.name} to step down`, timeoutMs: 30_000 })
      const [second] = inlineCids('quorum-second', 1)
      const res2 = await pinThrough(cluster, survivor, second, 90_000)
      assert.equal(res2.status, 503, res2.body)
      assert.equal(
        JSON.parse(res2.body).message,
        "no leader after waiting 30s (wait_for_leader_timeout): a write needs a majority of the cluster's peers running and reachable",
      )
      assert.ok(res2.ms >= 29_000 && res2.ms < 60_000, `failed after ${res2.ms} ms (30 s expected)`)
    } finally {
      await cluster.close()
    }
  },
})
