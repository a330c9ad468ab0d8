/**
 * End to end, four founders as real processes beside real Kubos, two tagged `group: a` and two
 * `group: b`, allocating by `["tag:group", "freespace"]`: every pin with replication 2 lands once
 * in each group; `ctl status` shows exactly 2 PINNED and 2 REMOTE; the two holders' Kubos pin it
 * and the other two do not. Replication 5 on 4 peers is the reference's error and stores nothing.
 */
import { deepEqual, equal, match } from 'node:assert/strict'
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

Deno.test({
  name: 'e2e cluster: tag groups — replication 2 lands one pin in each group',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const group = (i: number) => (i < 2 ? 'a' : 'b')
    const { cluster, kubos } = await kuboCluster(4, {
      edit(cfg, i) {
        quickTimings(cfg)
        cfg.informer.tags.tags = { group: group(i) }
        cfg.allocator.balanced.allocate_by = ['tag:group', 'freespace']
        cfg.cluster.replication_factor_min = 2
        cfg.cluster.replication_factor_max = 2
      },
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0] = cluster.peers
      for (const name of ['tag:group', 'freespace']) {
        await waitMetricPeers(cluster, p0, name, 4)
      }
      const groupOf = new Map(cluster.peers.map((p) => [p.id, group(p.index)]))

      await t.step(
        'each pin: one holder in group a, one in group b, pinned by exactly their Kubos',
        async () => {
          for (let i = 0; i < 4; i++) {
            const cid = await content(kubos[i], `tags ${i}`)
            const r = await cluster.request(cluster.peers[i], 'POST', `/pins/${cid}`)
            equal(r.status, 200, r.body)
            const allocs: string[] = JSON.parse(r.body).allocations
            equal(allocs.length, 2, r.body)
            deepEqual(allocs.map((p) => groupOf.get(p)).sort(), ['a', 'b'])
            await waitFor(async () => {
              const st = await ctl(p0, ['status', cid])
              return st.stdout.match(/: PINNED \|/g)?.length === 2 &&
                st.stdout.match(/: REMOTE \|/g)?.length === 2
            }, { what: `${cid}: 2 PINNED, 2 REMOTE`, timeoutMs: 30_000 })
            for (const p of cluster.peers) {
              equal(
                (await kuboPins(kubos[p.index])).has(cid),
                allocs.includes(p.id),
                `${p.name}'s Kubo`,
              )
            }
          }
        },
      )

      await t.step('replication 5 on 4 peers: the reference’s error, nothing stored', async () => {
        const cid = await content(kubos[0], 'five')
        const r = await ctl(p0, ['pin', 'add', '--replication', '5', cid])
        equal(r.code, 2, r.stderr) // as ipfs-cluster-ctl on an error answer
        match(
          r.stdout + r.stderr,
          /not enough peers to allocate CID\. Needed at least: 5\. Wanted at most: 5\. Available candidates: 4\./,
        )
        equal((await cluster.request(p0, 'GET', `/allocations/${cid}`)).status, 404)
      })
    } finally {
      await cluster.close()
    }
  },
})
