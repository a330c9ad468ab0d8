/**
 * kill -9 of the Raft leader of a 3-peer cluster (real processes, each beside a real Kubo) in the
 * middle of a 64-client ingest through the REST API of every peer: no acknowledged pin is lost —
 * every surviving peer's pinset holds each pin that got a 2xx, before or after the kill — another
 * peer is elected, writes resume, the killed peer restarted on its folder catches up, and every
 * Kubo pins every acknowledged pin.
 */
import assert from 'node:assert/strict'
import { TestCluster } from '../support/cluster.ts'
import type { KuboDaemon } from '../support/kubo.ts'
import {
  IngestPool,
  inlineCids,
  kuboPerPeer,
  missing,
  pinsetOf,
  startFormed,
  waitKuboPins,
  waitPinset,
} from './cluster_faults_support.ts'

Deno.test({
  name: 'cluster faults: kill -9 of the leader mid-ingest loses no acknowledged pin',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kubos: KuboDaemon[] = []
    const cluster = await TestCluster.create({
      impl: 'ours',
      peers: 3,
      ipfs: kuboPerPeer(kubos),
    })
    try {
      const leader = await startFormed(cluster)

      const pool = new IngestPool(cluster, inlineCids('kill9', 20_000), 64)
      await pool.until(() => pool.acked.length >= 600, '600 acknowledged pins before the kill')
      const beforeKill = pool.acked.length
      await cluster.kill9(leader)
      const killedAt = Date.now()
      const next = await cluster.waitLeader(30_000, leader)
      assert.notEqual(next, leader)
      // Writes resume: pins sent after the kill are acknowledged.
      await pool.until(
        () => pool.acked.filter((a) => a.sentAt > killedAt).length >= 600,
        '600 pins sent after the kill acknowledged',
      )
      await pool.stop()
      const acked = pool.acked.map((a) => a.cid)
      assert.ok(beforeKill >= 600 && acked.length >= 1200, `${acked.length} acknowledged`)

      // No acknowledged pin lost on the survivors (read once: they are acknowledged = applied on
      // the peer that answered, and committed, so a linearizable follower may still be applying).
      for (const p of cluster.peers.filter((p) => p !== leader)) {
        await waitPinset(cluster, p, acked, 30_000)
      }

      // The killed peer restarted on its folder catches up and takes writes again.
      cluster.start(leader)
      await cluster.waitReady(leader, 90_000)
      await cluster.waitFormed(30_000)
      await waitPinset(cluster, leader, acked, 60_000)
      const after = inlineCids('kill9-after', 1)[0]
      const res = await cluster.request(leader, 'POST', `/pins/${after}`)
      assert.equal(res.status, 200, res.body)
      for (const p of cluster.peers) {
        assert.deepEqual(missing([after], await pinsetOf(cluster, p)), [], `${p.name} has it`)
      }

      // And every Kubo pins every acknowledged pin.
      for (const [i, kubo] of kubos.entries()) {
        await waitKuboPins(kubo, cluster.peers[i].name, [...acked, after], 180_000)
      }
    } finally {
      await cluster.close()
    }
  },
})
