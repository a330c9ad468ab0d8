/**
 * End to end, a cluster's life beside real Kubos: leaving on shutdown (`daemon --leave`,
 * `cluster.leave_on_shutdown`) and what the leaver's next start says; stopping and starting every
 * peer brings the same pinset back; a peer whose Raft data is another peer's, or another
 * cluster's, refuses to start with one line of advice; a peer with another cluster's secret
 * cannot connect, and both sides say why.
 */
import { deepEqual, equal, match, notEqual, ok } from 'node:assert/strict'
import { join } from 'node:path'
import type { ClusterPeer, TestCluster } from '../support/cluster.ts'
import { runMain } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import { exists } from '../../src/util/fs.ts'
import {
  content,
  kuboCluster,
  kuboPins,
  listed,
  ndjson,
  quickTimings,
  waitAllReady,
  waitPinnedEverywhere,
} from './cluster_support.ts'

/** The CIDs a peer's `GET /allocations` lists. */
async function pinset(cluster: TestCluster, p: ClusterPeer): Promise<string[]> {
  return ndjson((await cluster.request(p, 'GET', '/allocations')).body).map((x) => x.cid).sort()
}

/** `service daemon` on a peer's folder, in the foreground, with the service task's flags. */
async function daemonOnce(p: ClusterPeer) {
  return await runMain(['service', '--config', p.dir, 'daemon'], { timeoutMs: 60_000 })
}

Deno.test({
  name: 'e2e cluster: --leave and leave_on_shutdown leave on SIGTERM; the leaver starts clean',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, {
      edit: (cfg, i) => {
        quickTimings(cfg)
        if (i !== 2) cfg.cluster.leave_on_shutdown = true
      },
    })
    try {
      const [p0, p1, p2] = cluster.peers
      cluster.start(p0)
      cluster.start(p1)
      cluster.start(p2, ['--leave'])
      await waitAllReady(cluster)
      const a = await content(kubos[0], 'leave A')
      equal((await cluster.request(p2, 'POST', `/pins/${a}`)).status, 200)
      await waitPinnedEverywhere(kubos, a)
      const b = await content(kubos[0], 'leave B')

      await t.step('daemon --leave: SIGTERM leaves, the others no longer hold it', async () => {
        equal(await cluster.stop(p2), 0)
        const log = await Deno.readTextFile(p2.proc!.logPath)
        match(log, /INFO\tcluster\tleaving the cluster/)
        ok(await exists(join(p2.dir, 'raft.old.0', 'state.kv')), 'its data moved aside')
        ok(!(await exists(join(p2.dir, 'raft'))))
        const want = [p0.id, p1.id].sort()
        for (const p of [p0, p1]) {
          await waitFor(async () => (await listed(cluster, p)).join() === want.join(), {
            what: `${p.name} to list two members`,
          })
        }
      })

      // The follower of the two leaves next: the leader stops replicating to it once it applied
      // its removal, so the follower learns it only from the others.
      const stay = await cluster.waitLeader(30_000)
      const go = stay === p0 ? p1 : p0
      await t.step('cluster.leave_on_shutdown: a follower leaves without the flag', async () => {
        equal(await cluster.stop(go), 0)
        match(await Deno.readTextFile(go.proc!.logPath), /leaving the cluster/)
        ok(await exists(join(go.dir, 'raft.old.0', 'state.kv')))
        // The leader is a cluster of one now: it lists itself and commits alone.
        await waitFor(async () => (await listed(cluster, stay)).join() === stay.id, {
          what: `${stay.name} to list itself only`,
        })
        await waitFor(
          async () => (await cluster.request(stay, 'POST', `/pins/${b}`)).status === 200,
          {
            what: 'a pin committed by the last member alone',
          },
        )
        deepEqual(await pinset(cluster, stay), [a, b].sort())
      })

      await t.step('the leaver starts clean: its start plan has no Raft data', async () => {
        // Without --bootstrap it has nothing of the old cluster: it starts as a new founder from
        // its init_peerset (which no longer matches anyone's peerset) instead of rejoining.
        cluster.start(p2)
        await p2.proc!.waitForLog(
          /INFO\traft\tno Raft data: initializing a new Raft cluster with the voters /,
          30_000,
        )
        // No leader comes (its old members run on without it): after wait_for_leader_timeout it
        // says so, and how to join them again.
        await p2.proc!.waitForLog(
          /no Raft leader yet: .*this peer left a cluster before .*raft\.old\.0.*start with --bootstrap/,
          60_000,
        )
        equal(await cluster.stop(p2), 0)
        // With --bootstrap it joins again (a clean folder, as after `state cleanup`).
        await Deno.remove(join(p2.dir, 'raft'), { recursive: true })
        cluster.start(p2, ['--bootstrap', cluster.addrFor(p2, stay)])
        await cluster.waitReady(p2, 90_000)
        await waitFor(
          async () => (await listed(cluster, stay)).join() === [stay.id, p2.id].sort().join(),
          {
            what: `${stay.name} to list p2 again`,
          },
        )
        deepEqual(await pinset(cluster, p2), [a, b].sort())
      })
    } finally {
      await cluster.close()
    }
  },
})

Deno.test({
  name: 'e2e cluster: restart every peer — the same pinset; foreign Raft data and another ' +
    'secret refused with one line',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, { edit: quickTimings })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0, p1, p2] = cluster.peers
      const cids: string[] = []
      for (const p of cluster.peers) {
        const cid = await content(kubos[p.index], `restart ${p.name}`)
        equal((await cluster.request(p, 'POST', `/pins/${cid}?name=${p.name}`)).status, 200)
        cids.push(cid)
      }
      cids.sort()
      for (const cid of cids) await waitPinnedEverywhere(kubos, cid)

      await t.step('stop all, start all: the same pinset on every peer', async () => {
        for (const p of cluster.peers) equal(await cluster.stop(p), 0, p.name)
        cluster.startAll()
        await waitAllReady(cluster)
        for (const p of cluster.peers) deepEqual(await pinset(cluster, p), cids, p.name)
        const all = ndjson((await cluster.request(p1, 'GET', '/pins')).body)
        equal(all.length, 3)
        for (const g of all) {
          for (const v of Object.values(g.peer_map)) {
            equal((v as { status: string }).status, 'pinned')
          }
        }
        // A write after the restart commits too.
        const d = await content(kubos[0], 'restart D')
        equal((await cluster.request(p2, 'POST', `/pins/${d}`)).status, 200)
        await waitPinnedEverywhere(kubos, d)
      })

      await t.step("another peer's Raft data: refused, one line naming the fix", async () => {
        equal(await cluster.stop(p0), 0)
        await Deno.rename(join(p0.dir, 'raft'), join(p0.dir, 'raft.mine'))
        equal(await cluster.stop(p1), 0)
        await copyDir(join(p1.dir, 'raft'), join(p0.dir, 'raft'))
        const r = await daemonOnce(p0)
        notEqual(r.code, 0)
        const lines = refusal(r.stderr)
        equal(lines.length, 1, r.stderr)
        match(lines[0], new RegExp(`is peer ${p1.id}'s, not this peer's \\(${p0.id}\\)`))
        match(lines[0], /state cleanup/)
        await Deno.remove(join(p0.dir, 'raft'), { recursive: true })
        await Deno.rename(join(p0.dir, 'raft.mine'), join(p0.dir, 'raft'))
      })

      await t.step('another cluster secret on old data: refused, one line', async () => {
        const { secret } = JSON.parse(await Deno.readTextFile(join(p1.dir, 'service.json'))).cluster
        await cluster.editConfig(p1, (cfg) => {
          cfg.cluster.secret = 'ab'.repeat(32)
        })
        const r = await daemonOnce(p1)
        notEqual(r.code, 0)
        const lines = refusal(r.stderr)
        equal(lines.length, 1, r.stderr)
        match(lines[0], /belongs to another cluster \(it was created with another cluster secret\)/)
        await cluster.editConfig(p1, (cfg) => {
          cfg.cluster.secret = secret
        })
        // Both back with their own data: the cluster is whole again.
        cluster.start(p0)
        cluster.start(p1)
        await waitAllReady(cluster, [p0, p1])
        for (const p of [p0, p1]) deepEqual((await pinset(cluster, p)).length, 4, p.name)
      })

      await t.step('a peer with another secret cannot join: one line on each side', async () => {
        const stranger = await cluster.addJoiner()
        await cluster.editConfig(stranger, (cfg) => {
          cfg.cluster.secret = 'cd'.repeat(32)
        })
        cluster.startJoiner(stranger, p2)
        const said = /the peer uses another cluster secret \(or none\)/
        await stranger.proc!.waitForLog(said, 30_000)
        await p2.proc!.waitForLog(said, 30_000)
        // It cannot become ready: one line, and it stops on its own with 1.
        await stranger.proc!.waitForLog(
          /error starting cluster: could not join the cluster through its bootstrap/,
          30_000,
        )
        equal(await stranger.proc!.exited, 1)
        // Not a member, nothing pinned in its Kubo.
        equal((await listed(cluster, p2)).includes(stranger.id), false)
        const pins = await kuboPins(kubos[stranger.index])
        for (const cid of cids) equal(pins.has(cid), false, cid)
      })
    } finally {
      await cluster.close()
    }
  },
})

/** stderr without the log lines (timestamped): what the CLI says about the failure. */
function refusal(stderr: string): string[] {
  return stderr.trim().split('\n').filter((l) => !/^\d{4}-\d\d-\d\dT\S+Z\t/.test(l))
}

/** Copies a folder (flat: the Raft data folder holds files only). */
async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true })
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name))
  }
}
