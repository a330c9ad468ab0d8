/**
 * End to end, three founders as real processes beside real Kubos, replication 2:
 * - a peer whose Kubo's `Datastore.StorageMax` is already filled up sends no freespace metric and
 *   gets no allocation: every pin lands on the other two;
 * - `ctl peers rm` of a holder (repinning on) first moves its pins to the other peers, whose Kubos
 *   pin them, then removes it; it leaves the peerset and stops.
 */
import { deepEqual, equal, ok } from 'node:assert/strict'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  quickTimings,
  waitAllReady,
  waitMetricPeers,
} from './cluster_support.ts'

// deno-lint-ignore no-explicit-any
function replication2(cfg: any) {
  quickTimings(cfg)
  cfg.cluster.replication_factor_min = 2
  cfg.cluster.replication_factor_max = 2
}

Deno.test({
  name: 'e2e cluster: a peer whose Kubo is full gets no new allocations',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A fresh repository already takes more than 10 kB: full from the start.
    const { cluster, kubos } = await kuboCluster(3, {
      edit: replication2,
      kubo: (i) => (i === 2 ? { config: { 'Datastore.StorageMax': '10kB' } } : {}),
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0, p1] = cluster.peers
      // Every peer's ping, but only the two with room send freespace.
      await waitMetricPeers(cluster, p1, 'ping', 3)
      const free = JSON.parse((await cluster.request(p1, 'GET', '/monitor/metrics/freespace')).body)
      deepEqual(free.map((m: { peer: string }) => m.peer).sort(), [p0.id, p1.id].sort())
      for (let i = 0; i < 4; i++) {
        const cid = await content(kubos[i % 2], `room ${i}`)
        const r = await cluster.request(cluster.peers[i % 3], 'POST', `/pins/${cid}`)
        equal(r.status, 200, r.body)
        deepEqual([...JSON.parse(r.body).allocations].sort(), [p0.id, p1.id].sort())
        await waitFor(
          async () => (await kuboPins(kubos[0])).has(cid) && (await kuboPins(kubos[1])).has(cid),
          {
            what: `${cid} on the two peers with room`,
            timeoutMs: 30_000,
          },
        )
        equal((await kuboPins(kubos[2])).has(cid), false, 'the full Kubo pins nothing')
      }
      // Replication 3 needs the full peer: the reference's error.
      const three = await cluster.request(
        p0,
        'POST',
        `/pins/${await content(kubos[0], 'three')}?replication-min=3&replication-max=3`,
      )
      equal(three.status, 500, three.body)
      ok(
        three.body.includes('Needed at least: 3. Wanted at most: 3. Available candidates: 2.'),
        three.body,
      )
    } finally {
      await cluster.close()
    }
  },
})

Deno.test({
  name: 'e2e cluster: peers rm of a holder moves its pins first, then removes it',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { cluster, kubos } = await kuboCluster(3, {
      edit(cfg) {
        replication2(cfg)
        cfg.cluster.disable_repinning = false
      },
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0] = cluster.peers
      for (const p of cluster.peers) {
        await waitMetricPeers(cluster, p, 'freespace', 3)
      }
      const pins: { cid: string; allocations: string[] }[] = []
      for (let i = 0; i < 4; i++) {
        const cid = await content(kubos[0], `rm ${i}`)
        const r = await cluster.request(p0, 'POST', `/pins/${cid}`)
        equal(r.status, 200, r.body)
        pins.push({ cid, allocations: JSON.parse(r.body).allocations })
      }
      const gone = cluster.peers.find((p) =>
        p !== p0 && pins.some((x) => x.allocations.includes(p.id))
      )!
      const stay = cluster.peers.filter((p) => p !== gone)
      const r = await ctl(p0, ['peers', 'rm', gone.id])
      equal(r.code, 0, r.stderr)
      // Answered once removed: every pin it held was re-allocated before.
      for (const x of pins) {
        const a = await cluster.request(p0, 'GET', `/allocations/${x.cid}`)
        const now: string[] = JSON.parse(a.body).allocations
        ok(!now.includes(gone.id), `${x.cid} still on ${gone.name}`)
        deepEqual([...now].sort(), stay.map((p) => p.id).sort())
      }
      for (const x of pins) {
        for (const p of stay) {
          await waitFor(async () => (await kuboPins(kubos[p.index])).has(x.cid), {
            what: `${x.cid} on ${p.name}`,
            timeoutMs: 30_000,
          })
        }
      }
      const peers = await ctl(p0, ['peers', 'ls'])
      ok(!peers.stdout.includes(gone.id), peers.stdout)
      try {
        await waitFor(() => !gone.proc!.running(), {
          what: `${gone.name} stops`,
          timeoutMs: 30_000,
        })
      } catch (err) {
        const log = await Deno.readTextFile(gone.proc!.logPath).catch(() => '')
        throw new Error(`${(err as Error).message}; its log ends:\n${log.slice(-3000)}`)
      }
    } finally {
      await cluster.close()
    }
  },
})
