/**
 * ipfs-cluster-follow end to end: three of our peers form a CRDT cluster (each beside a real
 * Kubo, trusting each other only), their configuration is published on 127.0.0.1 by a Deno.serve
 * server, and a follower runs `ipfs-cluster-follow fol run --init <url>` as a process beside a
 * fourth Kubo. The follower:
 *
 * - pins what the writers pin (its Kubo holds it) and unpins what they unpin, `list` shows each
 *   pin's status on it, `info` says it runs;
 * - is seen by the writers (its ping), yet refuses writes on its socket API and is left out of a
 *   writer's `ipfs gc` (Cluster.RepoGCLocal is closed to other peers);
 * - refuses a second `run` while it runs; stops on SIGTERM (exit 0, socket gone), `list` then
 *   reads the pinset from disk (`offline`), a second `run` fetches the configuration again (a
 *   changed peer name shows), and after a kill -9 the next `run` clears the socket left behind.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import { freePort, mainArgs, runMain } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import { restClient } from '../../src/api/rest/client.ts'
import { ApiError } from '../../src/api/rest/client_types.ts'
import { FOLLOWER_ERROR } from '../../src/cluster.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  ndjson,
  quickTimings,
  waitAllReady,
} from './cluster_support.ts'

Deno.test({
  name: 'crdt follow: a follower of three CRDT peers pins what they pin, refuses writes, restarts',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, {
      consensus: 'crdt',
      clusterName: 'e2e-follow',
      logLevel: 'info,consensus:debug',
      edit: (cfg) => {
        quickTimings(cfg)
        cfg.consensus.crdt.rebroadcast_interval = '1s'
      },
    })
    let followerKubo: KuboDaemon | undefined
    let http: Deno.HttpServer<Deno.NetAddr> | undefined
    try {
      const writers = cluster.peers
      const ids = writers.map((p) => p.id)
      for (const p of writers) {
        await cluster.editConfig(p, (cfg) => void (cfg.consensus.crdt.trusted_peers = ids))
      }
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0] = writers

      // The cluster's configuration as its operators would publish it: a writer's, with the
      // writers as peer_addresses and a listen address for the follower.
      const published = JSON.parse(await Deno.readTextFile(join(p0.dir, 'service.json')))
      published.cluster.peername = 'follower-1'
      published.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${await freePort()}`]
      published.cluster.peer_addresses = writers.map((p) =>
        `/ip4/127.0.0.1/tcp/${p.clusterPort}/p2p/${p.id}`
      )
      let served = JSON.stringify(published)
      http = Deno.serve(
        { hostname: '127.0.0.1', port: 0, onListen() {} },
        () => new Response(served, { headers: { 'content-type': 'application/json' } }),
      )
      const url = `http://127.0.0.1:${http.addr.port}/cluster.json`

      followerKubo = await startKubo()
      const root = join(cluster.workDir, 'follow')
      const env = {
        HOME: cluster.workDir,
        CLUSTER_IPFSHTTP_NODEMULTIADDRESS: followerKubo.apiMultiaddr,
      }
      const follow = (args: string[]) => runMain(['follow', '-c', root, ...args], { env })
      const start = (args: string[]) =>
        cluster.procs.start('follower', [
          Deno.execPath(),
          ...mainArgs(['follow', '-c', root, ...args]),
        ], {
          env,
        })
      let proc = start(['fol', 'run', '--init', url])
      await proc.waitForLog(/IPFS Cluster is READY/, 90_000)
      const socket = join(root, 'fol', 'api-socket')
      const api = restClient({ host: `/unix${socket}`, timeoutMs: 30_000 })
      const followerId = (await api.id()).id

      await t.step('the writers see the follower; its info says it runs', async () => {
        await waitFor(async () => {
          const r = await cluster.request(p0, 'GET', '/monitor/metrics/ping')
          return JSON.parse(r.body).some((m: { peer: string }) => m.peer === followerId)
        }, { what: "the follower's ping at p0", timeoutMs: 60_000 })
        const info = await follow(['fol', 'info'])
        equal(info.code, 0, info.stderr)
        match(info.stdout, new RegExp(`Config source URL: Available \\(${url}\\)`))
        match(info.stdout, /Cluster Peer online: true\nIPFS peer online: true\n$/)
        const second = await follow(['fol', 'run'])
        equal(second.code, 1)
        match(
          second.stderr,
          /^a follower peer for this cluster is running already: its API answers on /,
        )
      })

      const cid = await content(kubos[0], 'followed')
      await t.step("a writer's pin reaches the follower's Kubo; list shows it pinned", async () => {
        equal((await ctl(p0, ['pin', 'add', '--name', 'followed', cid])).code, 0)
        await waitFor(async () => (await kuboPins(followerKubo!)).has(cid), {
          what: "the follower's Kubo to pin",
          timeoutMs: 90_000,
        }).catch(async (err) => {
          // What the follower saw, for whoever reads the failure.
          console.error(await proc.tail(60), (await follow(['fol', 'list'])).stdout)
          throw err
        })
        await waitFor(async () => {
          const r = await follow(['fol', 'list'])
          return r.stdout === `${'pinned'.padEnd(20)} ${cid} followed\n`
        }, { what: 'list: pinned', timeoutMs: 30_000 })
      })

      await t.step(
        "writes on the follower are refused; a writer's ipfs gc leaves it out",
        async () => {
          const other = await content(followerKubo!, 'refused')
          let err: unknown
          await api.pin(other).catch((e) => err = e)
          ok(err instanceof ApiError, String(err))
          equal(err.code, 403)
          equal(err.message, FOLLOWER_ERROR)
          const gc = await cluster.request(p0, 'POST', '/ipfs/gc', { timeoutMs: 60_000 })
          equal(gc.status, 200, gc.body)
          const peers = Object.keys(JSON.parse(gc.body).peer_map)
          deepEqual(peers.sort(), [...ids].sort(), 'every writer, not the follower')
          ok((await kuboPins(followerKubo!)).has(cid), 'its pins stay')
        },
      )

      const kept = await content(kubos[1], 'kept')
      await t.step('an unpin reaches it too', async () => {
        equal((await ctl(writers[1], ['pin', 'add', '--name', 'kept', kept])).code, 0)
        equal((await ctl(writers[2], ['pin', 'rm', cid])).code, 0)
        await waitFor(async () => {
          const pins = await kuboPins(followerKubo!)
          return pins.has(kept) && !pins.has(cid)
        }, { what: "the follower's Kubo to follow the unpin", timeoutMs: 90_000 })
      })

      await t.step(
        'SIGTERM stops it; list reads the state on disk; run fetches again',
        async () => {
          equal(await proc.stop(), 0)
          ok(!(await Deno.stat(socket).then(() => true, () => false)), 'socket removed')
          const offline = await follow(['fol', 'list'])
          equal(offline.stdout, `${'offline'.padEnd(20)} ${kept} kept\n`)
          published.cluster.peername = 'follower-renamed'
          served = JSON.stringify(published)
          proc = start(['fol', 'run'])
          await proc.waitForLog(/IPFS Cluster is READY/, 90_000)
          equal((await api.id()).peername, 'follower-renamed')
          equal((await api.id()).id, followerId, 'the same identity')
          equal(ndjson((await cluster.request(p0, 'GET', '/allocations')).body).length, 1)
          // Killed, it leaves its socket file; the next run clears it and starts.
          Deno.kill(proc.pid, 'SIGKILL')
          await proc.exited
          ok(await Deno.stat(socket).then(() => true, () => false), 'socket left behind')
          proc = start(['fol', 'run'])
          await proc.waitForLog(/IPFS Cluster is READY/, 90_000)
          equal((await api.version()).version, '1.1.6')
          equal(await proc.stop(), 0)
        },
      )
    } finally {
      await cluster.close()
      await http?.shutdown()
      await followerKubo?.stop()
    }
  },
})
