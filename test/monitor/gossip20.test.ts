/**
 * Twenty cluster hosts in one process (real libp2p on 127.0.0.1, each dialled to two others): every
 * monitor comes to hold the same view — all twenty peers' latest ping and freespace — and keeps it
 * as the metrics are renewed; the gossip bytes each peer moved are counted (bench/gossip.ts reports
 * them per minute).
 */
import assert from 'node:assert/strict'
import { newMetric } from '../../src/types/metric.ts'
import { waitFor } from '../support/wait.ts'
import { gossipBytes, gossipPeers, stopGossipPeers } from '../support/gossip_peers.ts'

Deno.test({
  name: 'gossip: twenty peers in one process hold one consistent metric view',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const peers = await gossipPeers(20, { heartbeatMs: 200 })
    try {
      const ids = peers.map((p) => p.id).sort()
      let round = 0
      const publish = async () => {
        round++
        for (const [i, p] of peers.entries()) {
          await p.monitor.publishMetric(newMetric('ping', p.id, '', 30_000, Date.now()))
          const free = 1e9 + i * 1000 + round
          await p.monitor.publishMetric(
            newMetric('freespace', p.id, String(free), 30_000, Date.now(), free),
          )
        }
      }
      await waitFor(async () => {
        await publish()
        await new Promise((r) => setTimeout(r, 200))
        return peers.every((p) =>
          p.monitor.latestMetrics('ping').length === 20 &&
          p.monitor.latestMetrics('freespace').length === 20
        )
      }, { what: 'every view complete', timeoutMs: 60_000 })
      // One more round: every view converges on its values.
      await publish()
      const last = round
      await waitFor(
        () =>
          peers.every((p) =>
            p.monitor.latestMetrics('freespace').every((m) => Number(m.value) % 1000 === last)
          ),
        { what: 'every view on the last round' },
      )
      const views = peers.map((p) =>
        JSON.stringify(p.monitor.latestMetrics('freespace').map((m) => [m.peer, m.value]))
      )
      assert.equal(new Set(views).size, 1, 'one view')
      assert.deepEqual(peers[0].monitor.latestMetrics('ping').map((m) => m.peer), ids)
      for (const p of peers) assert.ok(gossipBytes(p) > 0, p.id)
    } finally {
      await stopGossipPeers(peers)
    }
  },
})
