/**
 * Adding across peers (issue 9's target: `ctl add` of a 1 GiB file with replication 2 on three
 * peers at no less than half the throughput of a plain `ipfs add` to one Kubo, the peers' RSS flat
 * while it streams). Three of our peers, each beside its own real Kubo, on 127.0.0.1. Printed:
 * the plain `ipfs add` (Kubo's CLI against the first Kubo, pinning, as a user adds), `ctl add
 * --replication 2` through the first peer twice — allocated by the cluster (the receiving peer is
 * usually among the two) and sent to the two other peers (every byte crosses the cluster RPC) —
 * each peer's RSS before and at its peak during the add, and the ratio to Kubo.
 *
 * @example
 * ```sh
 * deno run -A bench/add.ts [--mib 1024] [--keep]
 * ```
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuSecondsOf, memoryOf, sampleRss } from './process.ts'
import { type ClusterPeer, TestCluster } from '../test/support/cluster.ts'
import { type KuboDaemon, startKubo } from '../test/support/kubo.ts'
import { runCmd, runMain } from '../test/support/peer.ts'

const MiB = 1024 * 1024
const IPFS = join(import.meta.dirname!, '..', '.tools', 'bin', 'ipfs')

/** Writes `mib` MiB of incompressible, never-repeating bytes. */
async function writeContent(path: string, mib: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true })
  const chunk = new Uint8Array(MiB)
  for (let i = 0; i < mib; i++) {
    for (let off = 0; off < MiB; off += 65536) {
      crypto.getRandomValues(chunk.subarray(off, off + 65536))
    }
    let w = 0
    while (w < chunk.length) w += await f.write(chunk.subarray(w))
  }
}

interface AddRun {
  label: string
  seconds: number
  /** The content's root CID, as the cluster added it. */
  cid: string
  allocations: string[]
  rss: { peer: string; before: number; peak: number }[]
  /** CPU seconds of each peer and each Kubo during the add. */
  cpu: { name: string; seconds: number }[]
}

async function timedCtlAdd(
  peers: ClusterPeer[],
  kubos: KuboDaemon[],
  via: ClusterPeer,
  label: string,
  file: string,
  extra: string[],
): Promise<AddRun> {
  const before = await Promise.all(peers.map(async (p) => (await memoryOf(p.proc!.pid))?.rss ?? 0))
  const samplers = peers.map((p) => sampleRss(p.proc!.pid, 50))
  const pids = [...peers.map((p) => p.proc!.pid), ...kubos.map((k) => k.pid)]
  const cpu0 = await Promise.all(pids.map(cpuSecondsOf))
  const t0 = performance.now()
  const r = await runMain(
    [
      'ctl',
      '--host',
      `/ip4/127.0.0.1/tcp/${via.restPort}`,
      '--enc=json',
      'add',
      '--replication-min',
      '2',
      '--replication-max',
      '2',
      ...extra,
      file,
    ],
    { timeoutMs: 1_800_000 },
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu1 = await Promise.all(pids.map(cpuSecondsOf))
  const peaks = await Promise.all(samplers.map((s) => s.stop()))
  if (r.code !== 0) throw new Error(`ctl add failed: ${r.stderr}${r.stdout}`)
  const outs = r.stdout.trim().split(/\n(?=\{)/).map((s) => JSON.parse(s))
  return {
    label,
    seconds,
    cid: outs.at(-1).cid,
    allocations: outs.at(-1).allocations,
    rss: peers.map((p, i) => ({ peer: p.name, before: before[i], peak: peaks[i] })),
    cpu: pids.map((_, i) => ({
      name: i < peers.length ? peers[i].name : `kubo${i - peers.length}`,
      seconds: cpu1[i] - cpu0[i],
    })),
  }
}

async function main() {
  const { values } = parseArgs({
    options: { mib: { type: 'string', default: '1024' }, keep: { type: 'boolean' } },
  })
  const mib = Number(values.mib)
  const work = await Deno.makeTempDir({ prefix: 'bench-add-' })
  const file = join(work, 'content.bin')
  const kubos: KuboDaemon[] = []
  const cluster = await TestCluster.create({
    impl: 'ours',
    peers: 3,
    roleLog: false,
    ipfs: async (i) => {
      const k = await startKubo()
      kubos[i] = k
      return { api: k.apiMultiaddr, stop: k.stop }
    },
  })
  try {
    console.log(`writing ${mib} MiB of random bytes…`)
    await writeContent(file, mib)
    cluster.startAll()
    for (const p of cluster.peers) await cluster.waitReady(p, 120_000)
    await cluster.waitFormed(60_000)
    // Every peer's freespace must be known everywhere before a replication-2 allocation.
    for (const p of cluster.peers) {
      for (;;) {
        const r = await cluster.request(p, 'GET', '/monitor/metrics/freespace')
        if (r.status === 200 && JSON.parse(r.body).length === 3) break
        await new Promise((res) => setTimeout(res, 500))
      }
    }
    const [p0, p1, p2] = cluster.peers

    const kuboCpu0 = await cpuSecondsOf(kubos[0].pid)
    const t0 = performance.now()
    const plain = await runCmd(IPFS, ['--api', kubos[0].apiMultiaddr, 'add', '-Q', file], {
      env: { IPFS_PATH: join(work, 'no-repo') },
      timeoutMs: 1_800_000,
    })
    const kuboSeconds = (performance.now() - t0) / 1000
    const kuboCpu = await cpuSecondsOf(kubos[0].pid) - kuboCpu0
    if (plain.code !== 0) throw new Error(`ipfs add failed: ${plain.stderr}`)
    // Gone again, so that the cluster's adds store every block anew.
    await runCmd(IPFS, ['--api', kubos[0].apiMultiaddr, 'pin', 'rm', plain.stdout.trim()], {
      env: { IPFS_PATH: join(work, 'no-repo') },
    })
    await runCmd(IPFS, ['--api', kubos[0].apiMultiaddr, 'repo', 'gc', '-q'], {
      env: { IPFS_PATH: join(work, 'no-repo') },
    })

    const runs = [
      await timedCtlAdd(
        cluster.peers,
        kubos,
        p0,
        'ctl add, rf 2, allocated by the cluster',
        file,
        [],
      ),
    ]
    // Unpinned everywhere and collected, so that the second add stores every block anew.
    const root = runs[0].cid
    if (root !== plain.stdout.trim()) {
      throw new Error(`the cluster added ${root}, Kubo ${plain.stdout.trim()}: not the same DAG`)
    }
    const rm = await cluster.request(p0, 'DELETE', `/pins/${root}`)
    if (rm.status !== 200) throw new Error(`pin rm: ${rm.status} ${rm.body}`)
    for (const k of kubos) {
      for (;;) {
        const ls = await fetch(`${k.apiUrl}/api/v0/pin/ls?arg=${root}`, { method: 'POST' })
        await ls.body?.cancel()
        if (!ls.ok) break
        await new Promise((res) => setTimeout(res, 200))
      }
      await runCmd(IPFS, ['--api', k.apiMultiaddr, 'repo', 'gc', '-q'], {
        env: { IPFS_PATH: join(work, 'no-repo') },
      })
    }
    runs.push(
      await timedCtlAdd(cluster.peers, kubos, p0, 'ctl add, rf 2, to the two other peers', file, [
        '--allocations',
        `${p1.id},${p2.id}`,
      ]),
    )

    const rate = (s: number) => (mib / s).toFixed(1)
    console.log(`\n${mib} MiB, three peers, replication 2`)
    console.log(
      `  ipfs add to one Kubo: ${kuboSeconds.toFixed(2)} s, ${rate(kuboSeconds)} MiB/s, ${
        kuboCpu.toFixed(1)
      } CPU s in the daemon`,
    )
    for (const r of runs) {
      const names = r.allocations.map((a) => cluster.peers.find((p) => p.id === a)?.name ?? a)
      console.log(
        `  ${r.label}: ${r.seconds.toFixed(2)} s, ${rate(r.seconds)} MiB/s (${
          (kuboSeconds / r.seconds * 100).toFixed(0)
        } % of Kubo's), to ${names.join(', ')}`,
      )
      console.log(`    CPU s: ${r.cpu.map((c) => `${c.name} ${c.seconds.toFixed(1)}`).join(', ')}`)
      for (const m of r.rss) {
        console.log(
          `    ${m.peer} RSS ${(m.before / MiB).toFixed(0)} MiB before, peak ${
            (m.peak / MiB).toFixed(0)
          } MiB (+${((m.peak - m.before) / MiB).toFixed(0)})`,
        )
      }
    }
  } finally {
    await cluster.close({ keep: values.keep })
    await Deno.remove(work, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) await main()
