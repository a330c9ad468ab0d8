/**
 * Following across implementations, both directions, each test inside one loopback-only network
 * namespace (test/support/go_cluster.ts's `netnsTest`):
 *
 * 1. **Our follower follows a Go cluster.** Two real `ipfs-cluster-service` 1.1.6 CRDT peers
 *    (go0, go1), each beside a Kubo, rebroadcasting their heads every 2 s (Go's default is 1 min:
 *    a follower that starts late learns the heads only from a rebroadcast). Their configuration,
 *    as the Go docs publish a follower's (go0's service.json, `peer_addresses` = the Go peers,
 *    `trusted_peers` = their IDs, a listen port for the follower), is served over HTTP on
 *    127.0.0.1, and our `cli/main.ts follow fol run --init <url>` (the deno.json follow task's
 *    permissions) runs beside its own Kubo.
 * 2. **The real Go `ipfs-cluster-follow` 1.1.6 follows a cluster of ours.** Two of our CRDT peers
 *    (processes with the service task's permissions, real Kubos, rebroadcast every 1 s); their
 *    configuration served the same way, plus the one `datastore` section Go's follower insists on
 *    (ours writes none); the Go follower beside its own Kubo (CLUSTER_IPFSHTTP_NODEMULTIADDRESS,
 *    the variable its IPFS wait and connector read).
 *
 * In both: a pin made before the follower starts is caught up; pins added on the followed
 * cluster (replication -1: everyone pins) show in the follower's `list` as pinned and in its
 * Kubo's `pin ls`; an unpin removes them from both; the follower's ping metric reaches the
 * followed cluster's monitor. The cluster RPC does not cross (ours is not gorpc, docs/rpc.md):
 * each side's cluster-wide calls (the status `pin add` prints, `peers ls`) log the other
 * implementation's peer as unreachable; the ctl commands used here still succeed. The follower's
 * Kubo is swarm-connected to the cluster's Kubos by the test: Kubo runs without routing here,
 * and how content travels between Kubos is not what these tests are about.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Processes } from '../../bench/process.ts'
import { cleanEnv } from '../../bench/peers.ts'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import { GO_FOLLOW, GO_SERVICE, netnsTest, startGoCluster } from '../support/go_cluster.ts'
import { freePort, mainArgs, runCmd, runMain, type RunResult } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  quickTimings,
  waitAllReady,
} from '../e2e/cluster_support.ts'

const ms = (t0: number) => Math.round(performance.now() - t0)

/** Serves `body()` as the followers' configuration on 127.0.0.1; returns its URL and server. */
function serveConfig(body: () => string): { url: string; server: Deno.HttpServer<Deno.NetAddr> } {
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen() {} },
    () => new Response(body(), { headers: { 'content-type': 'application/json' } }),
  )
  return { url: `http://127.0.0.1:${server.addr.port}/service.json`, server }
}

/** Connects `kubo` to each of `others` (Kubo runs without routing: it only asks whom it knows). */
async function swarmConnect(kubo: KuboDaemon, others: KuboDaemon[]): Promise<void> {
  for (const o of others) {
    const arg = encodeURIComponent(o.swarmAddrs[0])
    const res = await fetch(`${kubo.apiUrl}/api/v0/swarm/connect?arg=${arg}`, { method: 'POST' })
    assert.equal(res.status, 200, await res.text())
  }
}

/**
 * The lines of a follower's `list` (ours or Go's: `%-20s <cid> <name>`) as cid → status.
 * Throws with the output when the command fails.
 */
function listed(r: RunResult): Map<string, string> {
  assert.equal(r.code, 0, `list failed: ${r.stdout}${r.stderr}`)
  const out = new Map<string, string>()
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\s+(\S+)(?: .*)?$/.exec(line.trim())
    if (m) out.set(m[2], m[1])
  }
  return out
}

/**
 * Waits until the follower's list says `cid` is `status` (or lacks it: undefined) and its Kubo
 * pins it (or not); returns the milliseconds from `t0` to both.
 */
async function waitFollowed(
  list: () => Promise<RunResult>,
  kubo: KuboDaemon,
  cid: string,
  want: 'pinned' | undefined,
  t0: number,
  timeoutMs = 60_000,
): Promise<{ kuboMs: number; listMs: number }> {
  let kuboMs = -1
  let listMs = -1
  await waitFor(async () => {
    if (kuboMs < 0 && (await kuboPins(kubo)).has(cid) === (want !== undefined)) kuboMs = ms(t0)
    if (listMs < 0 && listed(await list()).get(cid) === want) listMs = ms(t0)
    return kuboMs >= 0 && listMs >= 0
  }, { what: `the follower to show ${cid} as ${want ?? 'gone'}`, timeoutMs })
  return { kuboMs, listMs }
}

/**
 * Runs `command` (a ctl call that changes the followed pinset) while the follower is polled, from
 * one start: milliseconds until the command returned and until the follower's Kubo and its list
 * showed the change (the ctl may return after the change arrived: Go's waits a second to print
 * the status).
 */
async function timedChange(
  command: () => Promise<RunResult>,
  list: () => Promise<RunResult>,
  kubo: KuboDaemon,
  cid: string,
  want: 'pinned' | undefined,
): Promise<{ ctlMs: number; kuboMs: number; listMs: number }> {
  const t0 = performance.now()
  let ctlMs = -1
  const [, seen] = await Promise.all([
    command().then((r) => {
      assert.equal(r.code, 0, r.stderr)
      ctlMs = ms(t0)
    }),
    waitFollowed(list, kubo, cid, want, t0),
  ])
  return { ctlMs, ...seen }
}

/** On failure: the tail of every process log the test's Processes wrote into `dir`. */
async function printLogs(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith('.log')) continue
    const text = await Deno.readTextFile(join(dir, e.name))
    console.error(`--- ${e.name} (tail) ---\n${text.split('\n').slice(-80).join('\n')}`)
  }
}

netnsTest(
  import.meta,
  'compat follow: our ipfs-cluster-follow follows two Go 1.1.6 CRDT peers (pins, unpins, catch-up)',
  async () => {
    const cluster = await startGoCluster(2, { rebroadcastInterval: '2s' })
    const [go0, go1] = cluster.peers
    const work = await Deno.makeTempDir({ prefix: 'follow-go-' })
    const procs = new Processes(work)
    let followerKubo: KuboDaemon | undefined
    let server: Deno.HttpServer | undefined
    const figures: Record<string, unknown> = {}
    try {
      // Before the follower exists: a pin both Go peers hold.
      const early = await content(go0.kubo, 'early')
      const r = await go0.ctl(['pin', 'add', '--name', 'early', early])
      assert.equal(r.code, 0, r.stderr)
      await waitFor(async () => (await go1.ctl(['pin', 'ls', early])).stdout.includes(early), {
        what: 'go1 to list the early pin',
        timeoutMs: 60_000,
      })

      const published = JSON.parse(await Deno.readTextFile(join(go0.dir, 'service.json')))
      published.cluster.peername = 'ts-follower'
      published.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${freePort()}`]
      published.cluster.peer_addresses = cluster.peers.map((p) => p.clusterAddr)
      published.consensus.crdt.trusted_peers = cluster.peers.map((p) => p.id)
      const served = serveConfig(() => JSON.stringify(published))
      server = served.server

      followerKubo = await startKubo()
      await swarmConnect(followerKubo, [go0.kubo, go1.kubo])
      const root = join(work, 'follow')
      const env = {
        ...cleanEnv(),
        HOME: work,
        CLUSTER_IPFSHTTP_NODEMULTIADDRESS: followerKubo.apiMultiaddr,
      }
      const list = () => runMain(['follow', '-c', root, 'fol', 'list'], { env })
      const t0 = performance.now()
      const proc = procs.start(
        'ts-follower',
        [Deno.execPath(), ...mainArgs(['follow', '-c', root, 'fol', 'run', '--init', served.url])],
        { env },
      )
      await proc.waitForLog(/IPFS Cluster is READY/, 90_000)
      figures.followerReadyMs = ms(t0)

      // Catch-up: the early pin comes through a Go rebroadcast and a DAG walk over bitswap.
      const caught = await waitFollowed(list, followerKubo, early, 'pinned', t0)
      figures.catchUpFromStartKuboMs = caught.kuboMs
      figures.catchUpFromStartListMs = caught.listMs

      // Live: a pin at go0, another at go1, unpinned at go0; then the early pin unpinned at go1.
      const liveCids: string[] = []
      for (const [i, go] of [go0, go1].entries()) {
        const cid = await content(go.kubo, `live ${i}`)
        liveCids.push(cid)
        const pin = () => go.ctl(['pin', 'add', '--name', `live-${i}`, cid])
        figures[`pinAtGo${i}`] = await timedChange(pin, list, followerKubo, cid, 'pinned')
        if (i === 1) {
          const rm = () => go0.ctl(['pin', 'rm', cid])
          figures.unpinAtGo0 = await timedChange(rm, list, followerKubo, cid, undefined)
        }
      }
      const rm = () => go1.ctl(['pin', 'rm', early])
      figures.unpinEarlyAtGo1 = await timedChange(rm, list, followerKubo, early, undefined)

      // What is left: live-0 only, pinned.
      assert.deepEqual([...listed(await list())], [[liveCids[0], 'pinned']])
      // Metrics cross too: go0's monitor holds the follower's ping.
      const followerId = JSON.parse(
        await Deno.readTextFile(join(root, 'fol', 'identity.json')),
      ).id
      await waitFor(async () => {
        const r = await go0.ctl(['--enc', 'json', 'health', 'metrics', 'ping'])
        return r.code === 0 && r.stdout.includes(followerId)
      }, { what: "the follower's ping at go0", timeoutMs: 60_000 })
      assert.equal(await proc.stop(), 0, 'the follower stops cleanly')
      console.log(`go→ts follow figures: ${JSON.stringify(figures)}`)
    } catch (err) {
      console.error(`figures so far: ${JSON.stringify(figures)}`)
      for (const p of [...cluster.peers]) {
        console.error(`--- ${p.id} log (tail) ---\n${p.log().split('\n').slice(-60).join('\n')}`)
      }
      await printLogs(work)
      throw err
    } finally {
      await procs.stopAll()
      await server?.shutdown()
      await followerKubo?.stop()
      await cluster.stop()
      await Deno.remove(work, { recursive: true }).catch(() => {})
    }
  },
)

netnsTest(
  import.meta,
  'compat follow: the Go ipfs-cluster-follow 1.1.6 follows two of our CRDT peers (pins, unpins, catch-up)',
  async () => {
    const work = await Deno.makeTempDir({ prefix: 'follow-ts-' })
    // Our peers come from our `init --consensus crdt` (the harness's); Go's init gives the
    // datastore section for the published configuration (Go's follower wants exactly one).
    const goInit = join(work, 'go-init')
    const r2 = await runCmd(GO_SERVICE, ['-c', goInit, 'init', '--consensus', 'crdt'])
    assert.equal(r2.code, 0, r2.stderr)
    const goDatastore = JSON.parse(await Deno.readTextFile(join(goInit, 'service.json'))).datastore
    assert.deepEqual(Object.keys(goDatastore), ['pebble'])
    // Pebble's defaults reserve a 1 GiB cache and 64 MiB memtables: too much for a few pins.
    goDatastore.pebble.pebble_options.cache_size_bytes = 8 << 20
    goDatastore.pebble.pebble_options.mem_table_size = 4 << 20

    const { cluster, kubos } = await kuboCluster(2, {
      workDir: join(work, 'cluster'),
      consensus: 'crdt',
      clusterName: 'ts-followed',
      edit: (cfg) => {
        quickTimings(cfg)
        cfg.consensus.crdt.rebroadcast_interval = '1s'
        cfg.cluster.pubsub.heartbeat_interval = '1s'
      },
    })
    const procs = new Processes(work)
    let followerKubo: KuboDaemon | undefined
    let server: Deno.HttpServer | undefined
    const figures: Record<string, unknown> = {}
    try {
      const [p0, p1] = cluster.peers
      const ids = cluster.peers.map((p) => p.id)
      for (const p of cluster.peers) {
        await cluster.editConfig(p, (cfg) => void (cfg.consensus.crdt.trusted_peers = ids))
      }
      cluster.startAll()
      await waitAllReady(cluster)
      await swarmConnect(kubos[0], [kubos[1]])

      // Before the follower exists: a pin both our peers hold.
      const early = await content(kubos[0], 'early')
      assert.equal((await ctl(p0, ['pin', 'add', '--name', 'early', early])).code, 0)
      await waitFor(async () => (await ctl(p1, ['pin', 'ls', early])).stdout.includes(early), {
        what: 'p1 to list the early pin',
        timeoutMs: 60_000,
      })

      // Our cluster's configuration as its operators would publish it for followers.
      const published = JSON.parse(await Deno.readTextFile(join(p0.dir, 'service.json')))
      published.cluster.peername = 'go-follower'
      published.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${freePort()}`]
      published.cluster.peer_addresses = cluster.peers.map((p) =>
        `/ip4/127.0.0.1/tcp/${p.clusterPort}/p2p/${p.id}`
      )
      published.datastore = goDatastore
      const served = serveConfig(() => JSON.stringify(published))
      server = served.server

      followerKubo = await startKubo()
      await swarmConnect(followerKubo, kubos)
      const root = join(work, 'follow')
      const env = {
        ...cleanEnv(),
        HOME: work,
        CLUSTER_IPFSHTTP_NODEMULTIADDRESS: followerKubo.apiMultiaddr,
      }
      const list = () => runCmd(GO_FOLLOW, ['--config', root, 'fol', 'list'], { env })
      const t0 = performance.now()
      const proc = procs.start(
        'go-follower',
        [GO_FOLLOW, '--config', root, 'fol', 'run', '--init', served.url],
        { env },
      )
      await proc.waitForLog(/IPFS Cluster is READY/, 90_000)
      figures.followerReadyMs = ms(t0)
      const followerId = JSON.parse(
        await Deno.readTextFile(join(root, 'fol', 'identity.json')),
      ).id

      // Catch-up: the early pin comes through our rebroadcast and Go's DAG walk over bitswap.
      const caught = await waitFollowed(list, followerKubo, early, 'pinned', t0)
      figures.catchUpFromStartKuboMs = caught.kuboMs
      figures.catchUpFromStartListMs = caught.listMs

      // Live: a pin at p0, another at p1, unpinned at p0; then the early pin unpinned at p1.
      const liveCids: string[] = []
      for (const [i, p] of [p0, p1].entries()) {
        const cid = await content(kubos[i], `live ${i}`)
        liveCids.push(cid)
        const pin = () => ctl(p, ['pin', 'add', '--name', `live-${i}`, cid])
        figures[`pinAtP${i}`] = await timedChange(pin, list, followerKubo, cid, 'pinned')
        if (i === 1) {
          const rm = () => ctl(p0, ['pin', 'rm', cid])
          figures.unpinAtP0 = await timedChange(rm, list, followerKubo, cid, undefined)
        }
      }
      const rm = () => ctl(p1, ['pin', 'rm', early])
      figures.unpinEarlyAtP1 = await timedChange(rm, list, followerKubo, early, undefined)

      assert.deepEqual([...listed(await list())], [[liveCids[0], 'pinned']])
      // Metrics cross too: p0's monitor holds the Go follower's ping.
      await waitFor(async () => {
        const r = await cluster.request(p0, 'GET', '/monitor/metrics/ping')
        return r.status === 200 && r.body.includes(followerId)
      }, { what: "the Go follower's ping at p0", timeoutMs: 60_000 })
      assert.equal(await proc.stop(), 0, 'the Go follower stops cleanly')
      console.log(`ts→go follow figures: ${JSON.stringify(figures)}`)
    } catch (err) {
      console.error(`figures so far: ${JSON.stringify(figures)}`)
      await printLogs(work)
      for (const p of cluster.peers) {
        if (p.proc) console.error(`--- ${p.name} (tail) ---\n${await p.proc.tail(60)}`)
      }
      throw err
    } finally {
      await procs.stopAll()
      await server?.shutdown()
      await followerKubo?.stop()
      await cluster.close()
      await Deno.remove(work, { recursive: true }).catch(() => {})
    }
  },
  { needs: [GO_FOLLOW] },
)
