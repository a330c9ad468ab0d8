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
 * cluster (replication -1: everyone pins) show in the follower's `list` as pinned and in its Kubo's
 * `pin ls`; an unpin removes them from both. The follower's Kubo is swarm-connected to the
 * cluster's Kubos by the test: Kubo runs without routing here, and how the content travels between
 * Kubos is not what these tests are about.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Processes } from '../../bench/process.ts'
import { cleanEnv } from '../../bench/peers.ts'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import { type GoPeer, netnsTest, startGoCluster } from '../support/go_cluster.ts'
import { freePort, mainArgs, runMain, type RunResult } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import { content, kuboPins } from '../e2e/cluster_support.ts'

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

/** Pins `cid` at a Go peer with its ctl (replication -1 by the Go init's default). */
async function goPin(go: GoPeer, args: string[]): Promise<void> {
  const r = await go.ctl(['pin', ...args])
  assert.equal(r.code, 0, r.stderr)
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
    const figures: Record<string, number | string> = {}
    try {
      // Before the follower exists: a pin both Go peers hold.
      const early = await content(go0.kubo, 'early')
      await goPin(go0, ['add', '--name', 'early', early])
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

      // Live: a pin at go0, another at go1.
      for (const [i, go] of [go0, go1].entries()) {
        const cid = await content(go.kubo, `live ${i}`)
        const t1 = performance.now()
        await goPin(go, ['add', '--name', `live-${i}`, cid])
        const live = await waitFollowed(list, followerKubo, cid, 'pinned', t1)
        figures[`pinAtGo${i}ToKuboMs`] = live.kuboMs
        figures[`pinAtGo${i}ToListMs`] = live.listMs
        if (i === 1) {
          // Unpinned at the other Go peer: gone from the list and from the follower's Kubo.
          const t2 = performance.now()
          await goPin(go0, ['rm', cid])
          const gone = await waitFollowed(list, followerKubo, cid, undefined, t2)
          figures.unpinAtGo0ToKuboMs = gone.kuboMs
          figures.unpinAtGo0ToListMs = gone.listMs
        }
      }
      const t3 = performance.now()
      await goPin(go1, ['rm', early])
      const gone = await waitFollowed(list, followerKubo, early, undefined, t3)
      figures.unpinEarlyAtGo1ToKuboMs = gone.kuboMs

      // What is left: live-0 only, pinned.
      const final = listed(await list())
      assert.equal(final.size, 1, `one pin left: ${[...final]}`)
      assert.deepEqual([...final.values()], ['pinned'])
      // The follower published its ping to the Go peers' monitor.
      const metrics = await go0.ctl(['--enc', 'json', 'health', 'metrics', 'ping'])
      figures.go0SeesFollowerPing = metrics.stdout.includes(
          JSON.parse(await Deno.readTextFile(join(root, 'fol', 'identity.json'))).id,
        )
        ? 'yes'
        : 'no'
      assert.equal(await proc.stop(), 0, 'the follower stops cleanly')
      console.log(`go→ts follow figures: ${JSON.stringify(figures)}`)
    } catch (err) {
      console.error(`figures so far: ${JSON.stringify(figures)}`)
      for (const p of [...cluster.peers]) {
        console.error(`--- ${p.id} log (tail) ---\n${p.log().split('\n').slice(-60).join('\n')}`)
      }
      for await (const e of Deno.readDir(work)) {
        if (e.name.endsWith('.log')) {
          const text = await Deno.readTextFile(join(work, e.name))
          console.error(`--- ${e.name} (tail) ---\n${text.split('\n').slice(-80).join('\n')}`)
        }
      }
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
