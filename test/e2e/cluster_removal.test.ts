/**
 * End to end, removing members: `ctl peers rm <id>` on a follower stops it within
 * `peer_watch_interval` (its process exits, its Raft data moves to `raft.old.0`), the others stop
 * listing and dialling it (their saved peerstore no longer holds it), a fresh peer joins in its
 * place; then removing the leader through another peer elects a new one and writes go on.
 */
import { equal, ok } from 'node:assert/strict'
import { join } from 'node:path'
import type { ClusterPeer } from '../support/cluster.ts'
import { exists } from '../../src/util/fs.ts'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  listed,
  quickTimings,
  waitAllReady,
  waitPinnedEverywhere,
} from './cluster_support.ts'

/** Waits for a removed peer's process to exit on its own; resolves with its exit code. */
async function exitsAlone(p: ClusterPeer): Promise<number> {
  return await Promise.race([
    p.proc!.exited,
    new Promise<number>((_, reject) =>
      setTimeout(() => reject(new Error(`${p.name} still runs 30 s after its removal`)), 30_000)
    ),
  ])
}

Deno.test({
  name: 'e2e cluster: peers rm — the removed peer stops and moves its data, a fresh one joins; ' +
    'removing the leader elects another',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(4, { edit: quickTimings })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const leader = await cluster.waitLeader(30_000)
      const [f1, f2, f3] = cluster.peers.filter((p) => p !== leader)
      const a = await content(kubos[0], 'removal A')
      equal((await cluster.request(f1, 'POST', `/pins/${a}`)).status, 200)
      await waitPinnedEverywhere(kubos, a)

      await t.step('peers rm: the removed peer exits and moves its Raft data aside', async () => {
        // f1 is down meanwhile: it learns of the removal only from the log when it is back. (Four
        // founders: the new peerset, f1 down, still has a quorum to commit the change.)
        equal(await cluster.stop(f1), 0)
        const r = await ctl(leader, ['peers', 'rm', f2.id])
        equal(r.code, 0, r.stderr + r.stdout)
        equal(r.stdout, '')
        equal(await exitsAlone(f2), 0)
        const log = await Deno.readTextFile(f2.proc!.logPath)
        ok(
          /(removed from the cluster|\(it was removed\)): shutting down/.test(log),
          log.slice(-2000),
        )
        ok(await exists(join(f2.dir, 'raft.old.0', 'state.kv')), 'raft.old.0 holds the data')
        ok(!(await exists(join(f2.dir, 'raft'))), 'no raft folder left')
      })

      await t.step('the others no longer list it, nor keep it in their peerstore', async () => {
        cluster.start(f1)
        await cluster.waitReady(f1, 90_000)
        const want = [leader.id, f1.id, f3.id].sort().join()
        for (const p of [leader, f1, f3]) {
          await waitFor(async () => (await listed(cluster, p)).join() === want, {
            what: `${p.name} to list the three remaining members`,
          })
        }
        // f1 had it in its peerstore when it stopped; once back, it forgets it (one watch round).
        await f1.proc!.waitForLog(new RegExp(`${f2.id} is no longer a member: forgotten`), 30_000)
        equal(await cluster.stop(f1), 0)
        const saved = await Deno.readTextFile(join(f1.dir, 'peerstore'))
        ok(saved.includes(leader.id), saved)
        ok(!saved.includes(f2.id), `the removed peer is still in the peerstore:\n${saved}`)
        cluster.start(f1)
        await cluster.waitReady(f1, 90_000)
        await cluster.waitFormed(30_000)
      })

      let fresh: ClusterPeer
      await t.step('a fresh peer joins in its place and gets the pinset', async () => {
        fresh = await cluster.join(f1)
        await cluster.waitReady(fresh, 90_000)
        await cluster.waitFormed(30_000)
        await waitPinnedEverywhere([kubos[fresh.index]], a)
      })

      await t.step(
        'removing the leader through another peer: a new leader, writes resume',
        async () => {
          const r = await ctl(fresh, ['peers', 'rm', leader.id])
          equal(r.code, 0, r.stderr + r.stdout)
          equal(await exitsAlone(leader), 0)
          ok(await exists(join(leader.dir, 'raft.old.0', 'state.kv')))
          const next = await cluster.waitLeader(30_000, leader)
          ok([f1, f3, fresh].includes(next), next.name)
          const b = await content(kubos[f1.index], 'removal B')
          await waitFor(
            async () => (await cluster.request(fresh, 'POST', `/pins/${b}`)).status === 200,
            { what: 'a pin after the leader left', timeoutMs: 30_000 },
          )
          await waitPinnedEverywhere([f1, f3, fresh].map((p) => kubos[p.index]), b)
          const want = [f1.id, f3.id, fresh.id].sort().join()
          for (const p of [f1, f3, fresh]) {
            await waitFor(async () => (await listed(cluster, p)).join() === want, {
              what: `${p.name} to list the three remaining members`,
            })
          }
        },
      )
    } finally {
      await cluster.close()
    }
  },
})
