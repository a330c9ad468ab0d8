/**
 * End to end, three founders as real processes beside real Kubos: every peer's metrics reach every
 * peer over gossipsub (`GET /monitor/metrics/{name}`, `ctl health metrics`); with
 * `informer.disk.metric_ttl` at 2 s each peer renews its freespace every second, so all three stay
 * valid and a pin with replication 2 finds its two peers (before, metrics went out every 15 s
 * whatever their TTL and every such pin failed with "not enough peers to allocate").
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  quickTimings,
  waitAllReady,
} from './cluster_support.ts'

Deno.test({
  name: 'e2e cluster: metrics of every peer on every peer; a 2 s freespace TTL keeps them valid',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, {
      edit(cfg) {
        quickTimings(cfg)
        cfg.informer.disk.metric_ttl = '2s'
      },
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const ids = cluster.peers.map((p) => p.id).sort()
      const [p0, p1] = cluster.peers
      const metricPeers = async (p: typeof p0, name: string): Promise<string[]> => {
        const r = await cluster.request(p, 'GET', `/monitor/metrics/${name}`)
        equal(r.status, 200, r.body)
        return (JSON.parse(r.body) as { peer: string }[]).map((m) => m.peer)
      }

      await t.step('every peer holds every peer’s ping and freespace', async () => {
        for (const p of cluster.peers) {
          for (const name of ['ping', 'freespace']) {
            await waitFor(async () => (await metricPeers(p, name)).length === 3, {
              what: `${p.name}: ${name} of three peers`,
              timeoutMs: 30_000,
            })
            deepEqual(await metricPeers(p, name), ids)
          }
        }
        const names = await ctl(p1, ['health', 'metrics'])
        equal(names.code, 0, names.stderr)
        for (const n of ['freespace', 'ping']) {
          ok(names.stdout.split('\n').includes(n), names.stdout)
        }
        const fs = await ctl(p1, ['health', 'metrics', 'freespace'])
        equal(fs.code, 0, fs.stderr)
        const lines = fs.stdout.trim().split('\n')
        equal(lines.length, 3, fs.stdout)
        for (const l of lines) {
          match(l, /^\S+ \| freespace: \d+(\.\d+)? [KMGTP]?B \| Expires in: .+ from now$/)
        }
        deepEqual(lines.map((l) => l.split(' ')[0]).sort(), ids)
      })

      await t.step(
        'with a 2 s TTL the freespace metrics stay valid: renewed every second',
        async () => {
          // Six looks over ~6 s (three TTLs): each sees all three peers' metric unexpired.
          for (let i = 0; i < 6; i++) {
            deepEqual(await metricPeers(p0, 'freespace'), ids, `look ${i}`)
            await new Promise((r) => setTimeout(r, 1000))
          }
        },
      )

      await t.step(
        'a pin with replication 2 is allocated to two peers and pinned by their Kubos',
        async () => {
          const cid = await content(kubos[0], 'replication two')
          const r = await cluster.request(
            p0,
            'POST',
            `/pins/${cid}?replication-min=2&replication-max=2`,
          )
          equal(r.status, 200, r.body)
          const pin = JSON.parse(r.body)
          equal(pin.allocations.length, 2, r.body)
          for (const a of pin.allocations) ok(ids.includes(a), a)
          const holders = cluster.peers.filter((p) => pin.allocations.includes(p.id)).map((p) =>
            p.index
          )
          await waitFor(async () => {
            for (const i of holders) if (!(await kuboPins(kubos[i])).has(cid)) return false
            return true
          }, { what: 'the two holders pin it', timeoutMs: 30_000 })
          const other = cluster.peers.find((p) => !pin.allocations.includes(p.id))!
          equal(
            (await kuboPins(kubos[other.index])).has(cid),
            false,
            'the third Kubo does not pin it',
          )
        },
      )
    } finally {
      await cluster.close()
    }
  },
})
