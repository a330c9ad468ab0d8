/**
 * End to end, three founders as real processes, each beside its own real Kubo on 127.0.0.1,
 * formed from `consensus.raft.init_peerset` as `service init --peers` writes it: a pin through
 * any peer (replication -1) is pinned by every Kubo; status (`GET /pins/{cid}`, `ctl status`,
 * `GET /pins`) merges every peer; `ctl peers ls` lists every member with its Kubo; the Kubos are
 * swarm-connected; the real `ipfs-cluster-ctl` 1.1.6 reads the same; a libp2p host that holds the
 * cluster secret but is no member is refused a trusted RPC method and served an open one.
 */
import { deepEqual, equal, match, ok, rejects } from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { startHost } from '../../src/net/host.ts'
import { rpcWire } from '../../src/rpc/wire.ts'
import type { RpcHandlers } from '../../src/rpc/methods.ts'
import { RpcForbiddenError } from '../../src/rpc/errors.ts'
import { runCmd, TOOLS_BIN } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  kuboSwarmPeers,
  ndjson,
  quickTimings,
  waitAllReady,
  waitPinnedEverywhere,
} from './cluster_support.ts'

const GO_CTL = join(TOOLS_BIN, 'ipfs-cluster-ctl')

/** Drops what legitimately differs between two runs: timestamps. */
function stable(s: string): string {
  return s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>')
}

/**
 * `peers ls` text as its per-peer blocks, sorted: both CLIs print the peers in the order their
 * answers arrive, which differs from one call to the next.
 */
function peerBlocks(s: string): string[] {
  return s.split(/\n(?=\S)/).map((b) => b.trim()).sort()
}

Deno.test({
  name: 'e2e cluster: 3 founders beside 3 Kubos — pin everywhere, merged status, peers ls, swarm',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { cluster, kubos } = await kuboCluster(3, { edit: quickTimings })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const [p0, p1, p2] = cluster.peers
      const ids = cluster.peers.map((p) => p.id).sort()

      // Content only Kubo 0 holds: the other Kubos can pin it only from a swarm peer.
      const a = await content(kubos[0], 'founders A')
      const b = await content(kubos[1], 'founders B')

      await t.step('a pin through any peer is pinned by every Kubo', async () => {
        const r1 = await cluster.request(p1, 'POST', `/pins/${a}?name=through-p1`)
        equal(r1.status, 200, r1.body)
        const r2 = await cluster.request(p2, 'POST', `/pins/${b}?name=through-p2`)
        equal(r2.status, 200, r2.body)
        await waitPinnedEverywhere(kubos, a)
        await waitPinnedEverywhere(kubos, b)
      })

      await t.step('GET /pins/{cid} from any peer merges every peer: pinned on each', async () => {
        for (const p of cluster.peers) {
          await waitFor(async () => {
            const r = await cluster.request(p, 'GET', `/pins/${a}`)
            if (r.status !== 200) return false
            const map = JSON.parse(r.body).peer_map
            return Object.keys(map).length === 3 &&
              Object.values(map).every((v) => (v as { status: string }).status === 'pinned')
          }, { what: `${p.name}: GET /pins/${a} pinned on every peer`, timeoutMs: 30_000 })
        }
        const info = JSON.parse((await cluster.request(p2, 'GET', `/pins/${a}`)).body)
        deepEqual(Object.keys(info.peer_map).sort(), ids)
        for (const [id, v] of Object.entries(info.peer_map)) {
          const peer = cluster.peers.find((p) => p.id === id)!
          // deno-lint-ignore no-explicit-any
          const pi = v as any
          equal(pi.peername, peer.name)
          equal(pi.ipfs_peer_id, kubos[peer.index].peerId, `${peer.name}'s Kubo`)
        }
      })

      await t.step('ctl status <cid> lists every peer PINNED', async () => {
        const r = await ctl(p0, ['status', a])
        equal(r.code, 0, r.stderr)
        const lines = r.stdout.trim().split('\n')
        equal(lines[0], `${a} | through-p1:`)
        equal(lines.length, 4, r.stdout)
        for (const p of cluster.peers) {
          match(r.stdout, new RegExp(`    > ${p.name}\\s+: PINNED \\|`))
        }
      })

      await t.step('GET /pins streams the merged status of every pin', async () => {
        const r = await cluster.request(p1, 'GET', '/pins')
        equal(r.status, 200, r.body)
        const all = ndjson(r.body)
        deepEqual(all.map((g) => g.cid).sort(), [a, b].sort())
        for (const g of all) {
          deepEqual(Object.keys(g.peer_map).sort(), ids, g.cid)
          for (const v of Object.values(g.peer_map)) {
            equal((v as { status: string }).status, 'pinned')
          }
        }
        // --local: this peer only.
        const local = ndjson((await cluster.request(p1, 'GET', '/pins?local=true')).body)
        for (const g of local) deepEqual(Object.keys(g.peer_map), [p1.id])
      })

      await t.step('ctl peers ls lists every member with its Kubo ID and addresses', async () => {
        const r = await ctl(p2, ['peers', 'ls'])
        equal(r.code, 0, r.stderr)
        for (const p of cluster.peers) {
          match(r.stdout, new RegExp(`^${p.id} \\| ${p.name} \\| Sees 2 other peers$`, 'm'))
          ok(r.stdout.includes(`  > IPFS: ${kubos[p.index].peerId}`), r.stdout)
          const swarm = kubos[p.index].swarmAddrs[0].replace(/\/p2p\/.*/, '')
          ok(r.stdout.includes(`    - ${swarm}/p2p/${kubos[p.index].peerId}`), r.stdout)
        }
        ok(!r.stdout.includes('ERROR'), r.stdout)
      })

      await t.step('the Kubos are swarm-connected to each other', async () => {
        for (const [i, k] of kubos.entries()) {
          const want = kubos.filter((_, j) => j !== i).map((o) => o.peerId)
          await waitFor(async () => {
            const peers = await kuboSwarmPeers(k)
            return want.every((id) => peers.has(id))
          }, { what: `Kubo ${i} connected to the other two`, timeoutMs: 30_000 })
        }
      })

      await t.step('the real ipfs-cluster-ctl 1.1.6 reads peers ls and status', async () => {
        const host = ['--host', `/ip4/127.0.0.1/tcp/${p0.restPort}`]
        const goPeers = await runCmd(GO_CTL, [...host, 'peers', 'ls'])
        equal(goPeers.code, 0, goPeers.stderr)
        for (const p of cluster.peers) {
          ok(goPeers.stdout.includes(`${p.id} | ${p.name} | Sees 2 other peers`), goPeers.stdout)
        }
        deepEqual(peerBlocks((await ctl(p0, ['peers', 'ls'])).stdout), peerBlocks(goPeers.stdout))
        for (const args of [['status', a], ['status']]) {
          const go = await runCmd(GO_CTL, [...host, ...args])
          equal(go.code, 0, go.stderr)
          equal(go.stdout.match(/: PINNED \|/g)?.length, args.length === 2 ? 3 : 6, go.stdout)
          equal(stable((await ctl(p0, args)).stdout), stable(go.stdout), args.join(' '))
        }
      })

      await t.step(
        'a non-member with the secret: trusted method refused, open one served',
        async () => {
          const cfg = JSON.parse(await Deno.readTextFile(join(p0.dir, 'service.json')))
          const host = await startHost({
            privateKey: await generateKeyPair('Ed25519'),
            listen: ['/ip4/127.0.0.1/tcp/0'],
            secret: cfg.cluster.secret,
          })
          const wire = await rpcWire({
            libp2p: host.libp2p,
            handlers: {} as RpcHandlers,
            isTrusted: () => false,
          })
          try {
            const remote = await host.connect(cluster.addrFor(p1, p0))
            equal(remote, p0.id)
            const id = await wire.client.call(p0.id, 'Cluster.ID', [], { timeoutMs: 20_000 })
            equal(id.id, p0.id)
            await rejects(
              wire.client.call(p0.id, 'PinTracker.Status', [a], { timeoutMs: 20_000 }),
              RpcForbiddenError,
            )
            await rejects(
              wire.client.call(p0.id, 'Consensus.RmPeer', [p1.id], { timeoutMs: 20_000 }),
              RpcForbiddenError,
            )
            // Still a member, still pinned everywhere.
            equal((await kuboPins(kubos[1])).has(a), true)
          } finally {
            await wire.stop()
            await host.stop({ save: false })
          }
          await cluster.waitFormed(10_000)
        },
      )
    } finally {
      await cluster.close()
    }
  },
})

Deno.test({
  name: 'e2e cluster: 5 founders beside 5 Kubos — a pin through any peer is pinned everywhere',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { cluster, kubos } = await kuboCluster(5, { edit: quickTimings })
    try {
      cluster.startAll()
      await waitAllReady(cluster)
      const ids = cluster.peers.map((p) => p.id).sort()
      const cids = []
      for (const p of cluster.peers) {
        const cid = await content(kubos[p.index], `five ${p.name}`)
        const r = await cluster.request(p, 'POST', `/pins/${cid}`)
        equal(r.status, 200, r.body)
        cids.push(cid)
      }
      for (const cid of cids) await waitPinnedEverywhere(kubos, cid)
      const last = cluster.peers[4]
      await waitFor(async () => {
        const all = ndjson((await cluster.request(last, 'GET', '/pins')).body)
        return all.length === 5 &&
          all.every((g) =>
            Object.keys(g.peer_map).sort().join() === ids.join() &&
            Object.values(g.peer_map).every((v) => (v as { status: string }).status === 'pinned')
          )
      }, { what: 'GET /pins: five pins, pinned on five peers', timeoutMs: 30_000 })
      const r = await ctl(cluster.peers[0], ['status', cids[4]])
      equal(r.code, 0, r.stderr)
      equal(r.stdout.match(/: PINNED \|/g)?.length, 5, r.stdout)
    } finally {
      await cluster.close()
    }
  },
})
