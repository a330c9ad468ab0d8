/**
 * End to end, joining: three founders beside real Kubos hold a pinset; one clean peer joins with
 * `daemon --bootstrap <member>`, another with `cluster.bootstrap` in its service.json. Each gets
 * the pinset, its Kubo pins the replication -1 pins (from the founders' Kubos, so they were
 * swarm-connected on join), every peer lists it, and it is a voter: with two founders stopped,
 * the three remaining of five voters still commit a pin.
 */
import { equal, match, ok } from 'node:assert/strict'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  ndjson,
  quickTimings,
  waitAllReady,
  waitPinnedEverywhere,
} from './cluster_support.ts'

Deno.test({
  name: 'e2e cluster: joins by --bootstrap and by cluster.bootstrap — voters with the pinset',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, { edit: quickTimings })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0] = cluster.peers
      // Through followers: the leader then learns of the joiner only from the join itself.
      const leader = await cluster.waitLeader(30_000)
      const [f1, f2] = cluster.peers.filter((p) => p !== leader)
      const a = await content(kubos[0], 'join A')
      const b = await content(kubos[1], 'join B')
      for (const cid of [a, b]) {
        const r = await cluster.request(p0, 'POST', `/pins/${cid}`)
        equal(r.status, 200, r.body)
      }
      await waitPinnedEverywhere(kubos, a)
      await waitPinnedEverywhere(kubos, b)

      const j1 = await cluster.addJoiner()
      const j2 = await cluster.addJoiner()

      await t.step(
        'daemon --bootstrap: the joiner gets the pinset and its Kubo pins it',
        async () => {
          cluster.startJoiner(j1, f1)
          await cluster.waitReady(j1, 90_000)
          const allocs = ndjson((await cluster.request(j1, 'GET', '/allocations')).body)
          equal(allocs.map((p) => p.cid).sort().join(), [a, b].sort().join())
          await waitPinnedEverywhere([kubos[j1.index]], a)
          await waitPinnedEverywhere([kubos[j1.index]], b)
        },
      )

      await t.step('cluster.bootstrap in service.json: the same without the flag', async () => {
        await cluster.editConfig(j2, (cfg) => {
          cfg.cluster.bootstrap = [cluster.addrFor(j2, f2)]
        })
        cluster.start(j2)
        await cluster.waitReady(j2, 90_000)
        await waitPinnedEverywhere([kubos[j2.index]], a)
        await waitPinnedEverywhere([kubos[j2.index]], b)
      })

      await t.step('every peer lists both joiners; peers ls shows their Kubos', async () => {
        await cluster.waitFormed(30_000)
        const r = await ctl(p0, ['peers', 'ls'])
        equal(r.code, 0, r.stderr)
        for (const j of [j1, j2]) {
          ok(r.stdout.includes(`${j.id} | ${j.name} | Sees 4 other peers`), r.stdout)
          ok(r.stdout.includes(`  > IPFS: ${kubos[j.index].peerId}`), r.stdout)
        }
      })

      await t.step(
        'the joiners are voters: two founders down, the other three commit',
        async () => {
          const [down1, down2, up] = [leader, f1, f2]
          await cluster.stop(down1)
          await cluster.stop(down2)
          const c = await content(kubos[up.index], 'join C')
          // Learners would leave one voter of three: no leader, no commit.
          await waitFor(async () => {
            const r = await cluster.request(j1, 'POST', `/pins/${c}`, { timeoutMs: 30_000 })
            return r.status === 200
          }, { what: 'a pin committed by three voters of five', timeoutMs: 60_000 })
          await waitPinnedEverywhere([kubos[up.index], kubos[j1.index], kubos[j2.index]], c)
          equal((await kuboPins(kubos[down1.index])).has(c), false, `${down1.name} is down`)
        },
      )

      await t.step(
        'peers ls and status show the members that are down with their error',
        async () => {
          const ls = await ctl(j2, ['peers', 'ls'])
          equal(ls.code, 0, ls.stderr)
          for (const p of [leader, f1]) match(ls.stdout, new RegExp(`^${p.id} \\| ERROR: \\S`, 'm'))
          match(ls.stdout, new RegExp(`^${j1.id} \\| ${j1.name} \\| Sees 4 other peers$`, 'm'))
          const r = await cluster.request(j2, 'GET', `/pins/${a}`)
          equal(r.status, 200, r.body)
          const map = JSON.parse(r.body).peer_map
          for (const p of [leader, f1]) {
            equal(map[p.id].status, 'cluster_error', p.name)
            ok(map[p.id].error, `${p.name} has an error message`)
          }
          for (const p of [f2, j1, j2]) equal(map[p.id].status, 'pinned', p.name)
        },
      )
    } finally {
      await cluster.close()
    }
  },
})
