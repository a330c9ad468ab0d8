/**
 * Follower mode (`cluster.follower_mode`, what ipfs-cluster-follow runs), end to end: two of our
 * peers as real processes beside real Kubos, peer 1 a follower. The follower pins what the other
 * peer pins (its Kubo holds it), answers status and recover for itself only, still publishes its
 * `ping`, and refuses every write through its REST API — pin, pin update, unpin, add, peer add and
 * peer rm — with the reference's message (403), leaving the pinset as it was. The same peer
 * without follower mode answers for both peers (so the assertions would fail without the mode).
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { FOLLOWER_ERROR } from '../src/cluster.ts'
import { waitFor } from './support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  ndjson,
  quickTimings,
  waitAllReady,
  waitMetricPeers,
  waitPinnedEverywhere,
} from './e2e/cluster_support.ts'

Deno.test({
  name: 'follower mode: follows the pinset, answers for itself, refuses writes, still pings',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(2, {
      edit(cfg, i) {
        quickTimings(cfg)
        if (i === 1) cfg.cluster.follower_mode = true
      },
    })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [writer, follower] = cluster.peers
      const cid = await content(kubos[0], 'followed')
      const r = await cluster.request(writer, 'POST', `/pins/${cid}`)
      equal(r.status, 200, r.body)
      await waitPinnedEverywhere(kubos, cid)

      await t.step('the follower still publishes its ping', async () => {
        await waitMetricPeers(cluster, writer, 'ping', 2)
        const pings = JSON.parse(
          (await cluster.request(writer, 'GET', '/monitor/metrics/ping')).body,
        )
        ok(pings.some((m: { peer: string }) => m.peer === follower.id))
      })

      await t.step(
        'status and recover: the writer answers for both, the follower for itself',
        async () => {
          await waitFor(async () => {
            const st = JSON.parse((await cluster.request(writer, 'GET', `/pins/${cid}`)).body)
            return Object.values(st.peer_map).every((p) =>
              (p as { status: string }).status === 'pinned'
            )
          }, { what: 'pinned on both peers' })
          const both = JSON.parse((await cluster.request(writer, 'GET', `/pins/${cid}`)).body)
          deepEqual(Object.keys(both.peer_map).sort(), [writer.id, follower.id].sort())

          const one = JSON.parse((await cluster.request(follower, 'GET', `/pins/${cid}`)).body)
          deepEqual(Object.keys(one.peer_map), [follower.id])
          equal(one.peer_map[follower.id].status, 'pinned')

          const all = ndjson((await cluster.request(follower, 'GET', '/pins')).body)
          deepEqual(all.map((g) => g.cid), [cid])
          deepEqual(Object.keys(all[0].peer_map), [follower.id])

          // Outside the pinset: `unpinned` for this peer only.
          const other = await content(kubos[1], 'not pinned')
          const none = JSON.parse((await cluster.request(follower, 'GET', `/pins/${other}`)).body)
          deepEqual(Object.keys(none.peer_map), [follower.id])
          equal(none.peer_map[follower.id].status, 'unpinned')

          const rec = await cluster.request(follower, 'POST', `/pins/${cid}/recover`)
          equal(rec.status, 200, rec.body)
          deepEqual(Object.keys(JSON.parse(rec.body).peer_map), [follower.id])
          const recAll = ndjson((await cluster.request(follower, 'POST', '/pins/recover')).body)
          for (const g of recAll) deepEqual(Object.keys(g.peer_map), [follower.id])
        },
      )

      await t.step('every write is refused with the reference message', async () => {
        const fresh = await content(kubos[1], 'refused')
        const writes: [string, string, string][] = [
          ['pin', 'POST', `/pins/${fresh}`],
          ['pin by path', 'POST', `/pins/ipfs/${fresh}`],
          ['pin update', 'POST', `/pins/${fresh}?pin-update=${cid}`],
          ['unpin', 'DELETE', `/pins/${cid}`],
          ['unpin by path', 'DELETE', `/pins/ipfs/${cid}`],
          ['peer rm', 'DELETE', `/peers/${writer.id}`],
          ['peer add', 'POST', '/peers'],
        ]
        for (const [what, method, path] of writes) {
          const body = what === 'peer add' ? JSON.stringify({ peer_id: writer.id }) : undefined
          const res = await cluster.request(follower, method, path, { body })
          equal(res.status, 403, `${what}: ${res.body}`)
          equal(JSON.parse(res.body).message, FOLLOWER_ERROR, what)
        }
        // ctl prints the API's error as the reference's ctl does (on stdout), and exits non-zero.
        const refused = /Code: 403\n {2}Message: this peer is configured to be in follower mode\./
        const pinned = await ctl(follower, ['pin', 'add', fresh])
        ok(pinned.code !== 0)
        match(pinned.stdout, refused)
        const file = await Deno.makeTempFile()
        try {
          await Deno.writeTextFile(file, `added to a follower ${crypto.randomUUID()}`)
          const added = await ctl(follower, ['add', file])
          ok(added.code !== 0, added.stdout)
          match(added.stdout + added.stderr, /follower mode\. Write operations are disabled/)
        } finally {
          await Deno.remove(file)
        }

        // Nothing changed: the pinset holds the one pin, the writer's peerset both peers.
        const pins = ndjson((await cluster.request(writer, 'GET', '/allocations')).body)
        deepEqual(pins.map((p) => p.cid), [cid])
        deepEqual(
          ndjson((await cluster.request(writer, 'GET', '/peers')).body).map((p) => p.id).sort(),
          [writer.id, follower.id].sort(),
        )
        ok(!(await kuboPins(kubos[1])).has(fresh))
      })
    } finally {
      await cluster.close()
    }
  },
})
