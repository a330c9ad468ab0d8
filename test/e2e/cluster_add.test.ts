/**
 * End to end, adding across peers: three founders as real processes beside real Kubos, content
 * added through one peer's REST API with our ctl. The blocks go to the allocated peers' Kubos over
 * the cluster RPC before the pin (each destination holds every block offline, the receiving peer's
 * Kubo none when it is not allocated), `--local` keeps them on the receiving peer, replication -1
 * sends them everywhere, and a CAR upload travels the same way. A sharded add (`--shard`) spreads
 * its shards over the peers, its root reads `sharded`, every Kubo reads the whole content back,
 * and `pin rm` of the root removes every shard.
 */
import { deepEqual, equal, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import { waitFor } from '../support/wait.ts'
import {
  ctl,
  kuboCluster,
  kuboPins,
  quickTimings,
  waitAllReady,
  waitMetricPeers,
} from './cluster_support.ts'

/** The bytes of `cid` read from a Kubo without the network (null when a block is missing). */
async function offlineCat(kubo: KuboDaemon, cid: string): Promise<Uint8Array | null> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/cat?arg=${cid}&offline=true`, { method: 'POST' })
  const bytes = new Uint8Array(await res.arrayBuffer())
  // Kubo answers 200 and puts a missing block's error in the X-Stream-Error trailer: compare sizes.
  return res.ok ? bytes : null
}

/** Whether a Kubo holds the block `cid` itself (no fetching). */
async function hasBlock(kubo: KuboDaemon, cid: string): Promise<boolean> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/block/stat?arg=${cid}&offline=true`, {
    method: 'POST',
  })
  await res.body?.cancel()
  return res.ok
}

const sameBytes = (a: Uint8Array | null, b: Uint8Array) =>
  a !== null && a.length === b.length && a.every((x, i) => x === b[i])

/** A file of `size` random bytes in `dir`. */
async function randomFile(dir: string, name: string, size: number) {
  const bytes = new Uint8Array(size)
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(bytes.subarray(off, Math.min(size, off + 65536)))
  }
  const path = join(dir, name)
  await Deno.writeFile(path, bytes)
  return { path, bytes }
}

/**
 * Three founders beside fresh Kubos, every peer knowing every peer's freespace (what an allocation
 * needs), and a temporary folder; all stopped and removed afterwards.
 */
async function withThreePeers(
  fn: (c: Awaited<ReturnType<typeof kuboCluster>>, dir: string) => Promise<void>,
): Promise<void> {
  const c = await kuboCluster(3, { edit: quickTimings })
  const dir = await Deno.makeTempDir()
  try {
    c.cluster.startAll()
    await waitAllReady(c.cluster)
    for (const p of c.cluster.peers) await waitMetricPeers(c.cluster, p, 'freespace', 3, 60_000)
    await fn(c, dir)
  } finally {
    await c.cluster.close()
    await Deno.remove(dir, { recursive: true })
  }
}

Deno.test({
  name: 'e2e cluster add: blocks go to the allocated peers’ Kubos first, then the pin',
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) =>
    withThreePeers(async ({ cluster, kubos }, dir) => {
      const [p0, p1, p2] = cluster.peers
      const file = (name: string, size: number) => randomFile(dir, name, size)
      const addVia = async (peer: typeof p0, args: string[]) => {
        const r = await ctl(peer, ['--enc=json', 'add', ...args])
        equal(r.code, 0, r.stderr + r.stdout)
        const outs = r.stdout.trim().split(/\n(?=\{)/).map((s) => JSON.parse(s))
        return outs[outs.length - 1] as { cid: string; allocations: string[] }
      }
      const pinOf = async (cid: string) => {
        const r = await ctl(p0, ['--enc=json', 'pin', 'ls', cid])
        equal(r.code, 0, r.stderr)
        return JSON.parse(r.stdout) as { allocations: string[]; replication_factor_min: number }
      }

      await t.step(
        'replication 2 on two other peers: only their Kubos get the blocks',
        async () => {
          const f = await file('two.bin', 3 * 1024 * 1024 + 123)
          const out = await addVia(p0, [
            '--replication-min',
            '2',
            '--replication-max',
            '2',
            '--allocations',
            `${p1.id},${p2.id}`,
            f.path,
          ])
          deepEqual([...out.allocations].sort(), [p1.id, p2.id].sort())
          deepEqual([...(await pinOf(out.cid)).allocations].sort(), [p1.id, p2.id].sort())
          // Sent before the pin was committed: every block is there without the network.
          for (const i of [1, 2]) {
            ok(sameBytes(await offlineCat(kubos[i], out.cid), f.bytes), `Kubo ${i} holds it all`)
          }
          equal(await hasBlock(kubos[0], out.cid), false, 'the receiving peer’s Kubo has none')
          await waitFor(async () =>
            (await kuboPins(kubos[1])).has(out.cid) &&
            (await kuboPins(kubos[2])).has(out.cid), {
            what: 'both holders pin it',
            timeoutMs: 30_000,
          })
        },
      )

      await t.step(
        '--local: the blocks stay on the receiving peer, which is allocated',
        async () => {
          const f = await file('local.bin', 600_000)
          const out = await addVia(p1, [
            '--local',
            '--replication-min',
            '1',
            '--replication-max',
            '1',
            f.path,
          ])
          deepEqual(out.allocations, [p1.id])
          ok(sameBytes(await offlineCat(kubos[1], out.cid), f.bytes))
          equal(await hasBlock(kubos[0], out.cid), false)
          equal(await hasBlock(kubos[2], out.cid), false)
          await waitFor(async () => (await kuboPins(kubos[1])).has(out.cid), {
            what: 'peer 1 pins it',
            timeoutMs: 30_000,
          })
        },
      )

      await t.step('replication -1: every Kubo gets the blocks and pins them', async () => {
        const f = await file('all.bin', 1_100_000)
        const out = await addVia(p2, ['--replication-min', '-1', '--replication-max', '-1', f.path])
        deepEqual([...out.allocations].sort(), cluster.peers.map((p) => p.id).sort())
        deepEqual((await pinOf(out.cid)).allocations, [], 'pinned everywhere: no allocations')
        for (const k of kubos) ok(sameBytes(await offlineCat(k, out.cid), f.bytes))
        await waitFor(async () => {
          for (const k of kubos) if (!(await kuboPins(k)).has(out.cid)) return false
          return true
        }, { what: 'every Kubo pins it', timeoutMs: 30_000 })
      })

      await t.step('a CAR file: its blocks to the allocated peers, its root pinned', async () => {
        // The CAR comes from a Kubo outside the cluster, so no cluster Kubo has its blocks.
        const outside = await startKubo({ offline: true })
        let root: string
        const f = await file('car-src.bin', 700_000)
        const carPath = join(dir, 'content.car')
        try {
          root = await outside.add(f.bytes)
          const res = await fetch(`${outside.apiUrl}/api/v0/dag/export?arg=${root}`, {
            method: 'POST',
          })
          equal(res.status, 200)
          await Deno.writeFile(carPath, new Uint8Array(await res.arrayBuffer()))
        } finally {
          await outside.stop()
        }
        const out = await addVia(p0, [
          '--format',
          'car',
          '--replication-min',
          '2',
          '--replication-max',
          '2',
          '--allocations',
          `${p0.id},${p2.id}`,
          carPath,
        ])
        equal(out.cid, root)
        deepEqual([...out.allocations].sort(), [p0.id, p2.id].sort())
        for (const i of [0, 2]) ok(sameBytes(await offlineCat(kubos[i], root), f.bytes))
        equal(await hasBlock(kubos[1], root), false)
      })
    }),
})

Deno.test({
  name: 'e2e cluster add --shard: shards spread over the peers, any Kubo reads it all, pin rm',
  sanitizeResources: false,
  sanitizeOps: false,
  // Fresh Kubos hold about the same: each shard then goes to the peer this add sent least.
  fn: (t) =>
    withThreePeers(async ({ cluster, kubos }, dir) => {
      const [p0, p1, p2] = cluster.peers
      const file = (name: string, size: number) => randomFile(dir, name, size)

      await t.step('--shard: shards spread over the peers, the root is sharded', async () => {
        const f = await file('big.bin', 3_500_000)
        const r = await ctl(p1, [
          '--enc=json',
          'add',
          '--shard',
          '--shard-size',
          String(1 << 20),
          '--replication-min',
          '1',
          '--replication-max',
          '1',
          '--name',
          'big',
          f.path,
        ])
        equal(r.code, 0, r.stderr + r.stdout)
        const outs = r.stdout.trim().split(/\n(?=\{)/).map((s) => JSON.parse(s)) as {
          name: string
          cid: string
          allocations?: string[]
        }[]
        const shards = outs.filter((o) => /^shard-\d+$/.test(o.name))
        ok(shards.length >= 3, r.stdout)
        const holders = new Set(shards.flatMap((s) => s.allocations ?? []))
        ok(holders.size >= 2, `shards on ${holders.size} peer(s): ${r.stdout}`)
        equal(outs.at(-1)!.name, 'big-clusterDAG')
        const root = outs.find((o) => o.name === 'big.bin')!.cid

        const st = await ctl(p0, ['--enc=json', 'status', root])
        equal(st.code, 0, st.stderr)
        const peerMap = JSON.parse(st.stdout).peer_map as Record<string, { status: string }>
        deepEqual(Object.values(peerMap).map((v) => v.status), ['sharded', 'sharded', 'sharded'])

        // Each shard node is pinned by the Kubo of its allocation.
        for (const s of shards) {
          const i = cluster.peers.findIndex((p) => p.id === s.allocations![0])
          await waitFor(async () => (await kuboPins(kubos[i])).has(s.cid), {
            what: `${s.name} pinned on p${i}`,
            timeoutMs: 30_000,
          })
        }
        // Every Kubo reads every byte back, from the others over bitswap where it lacks blocks.
        for (const a of kubos) {
          for (const b of kubos) {
            if (a === b) continue
            await fetch(`${a.apiUrl}/api/v0/swarm/connect?arg=${b.swarmAddrs[0]}`, {
              method: 'POST',
            }).then((res) => res.body?.cancel())
          }
        }
        for (const [i, k] of kubos.entries()) {
          const res = await fetch(`${k.apiUrl}/api/v0/cat?arg=${root}`, {
            method: 'POST',
            signal: AbortSignal.timeout(60_000),
          })
          ok(sameBytes(new Uint8Array(await res.arrayBuffer()), f.bytes), `Kubo ${i} reads it all`)
        }

        const rm = await ctl(p2, ['pin', 'rm', root])
        equal(rm.code, 0, rm.stderr + rm.stdout)
        const ls = await ctl(p0, ['--enc=json', 'pin', 'ls'])
        for (const s of [...shards.map((s) => s.cid), root, outs.at(-1)!.cid]) {
          equal(ls.stdout.includes(s), false, `${s} left the pinset`)
        }
        await waitFor(async () => {
          for (const k of kubos) {
            const pins = await kuboPins(k)
            if (shards.some((s) => pins.has(s.cid))) return false
          }
          return true
        }, { what: 'every Kubo drops the shards', timeoutMs: 30_000 })
      })
    }),
})
