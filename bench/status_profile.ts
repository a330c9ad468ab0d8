/**
 * The cluster-wide status (`GET /pins`) of a 3-peer cluster of ours alone, to find where its time
 * goes: three founders import N pins offline (`state import`; their IPFS doubles hold them),
 * form, then `GET /pins` (every member, merged) and `GET /pins?local=true` are read to the end
 * through a follower, each peer's RSS sampled; `--prof` runs the daemons under V8's sampling
 * profiler and prints where each peer's CPU went (bench/ingest_profile.ts's summary).
 *
 * @example
 * ```sh
 * deno run -A bench/status_profile.ts --pins 100000
 * deno run -A bench/status_profile.ts --pins 100000 --prof --keep /tmp/status-prof
 * ```
 */
import { parseArgs } from 'node:util'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inputFile } from './cids.ts'
import { cpuSecondsOf, memoryOf, sampleRss, waitIdle } from './process.ts'
import { TestCluster } from '../test/support/cluster.ts'
import { taskFlags } from '../test/support/peer.ts'
import { latestProfile, summarize } from './ingest_profile.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')
const MiB = 1024 * 1024

/** Lines of an NDJSON answer read to the end, the seconds it took, and its cluster_error lines. */
async function readAll(
  url: string,
): Promise<{ lines: number; seconds: number; errors: number; firstError?: string }> {
  const t0 = performance.now()
  const res = await fetch(url)
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status}`)
  let lines = 0
  let errors = 0
  let firstError: string | undefined
  let line = ''
  for await (const text of res.body.pipeThrough(new TextDecoderStream())) {
    const parts = (line + text).split('\n')
    line = parts.pop()!
    lines += parts.length
    for (const l of parts) {
      if (!l.includes('"cluster_error"')) continue
      errors++
      firstError ??= l.slice(0, 600)
    }
  }
  return { lines, seconds: (performance.now() - t0) / 1000, errors, firstError }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      pins: { type: 'string', default: '100000' },
      prof: { type: 'boolean', default: false },
      keep: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      'no-local': { type: 'boolean', default: false },
    },
  })
  const pins = Number(values.pins)
  const log = (m: string) => console.error(`[status] ${m}`)
  const pinsFile = await inputFile('pins', pins, log)
  const cidFile = await inputFile('cids', pins, log)
  const cluster = await TestCluster.create({
    impl: 'ours',
    peers: 3,
    doublePinned: cidFile,
    roleLog: false,
    log,
  })
  log(`work folder ${cluster.workDir}`)
  const profDir = values.keep ?? join(cluster.workDir, 'prof')
  await Deno.mkdir(profDir, { recursive: true })
  try {
    for (const p of cluster.peers) {
      log(`state import of ${pins} pins into ${p.name}`)
      await cluster.importState(p, pinsFile)
    }
    for (const p of cluster.peers) {
      if (!values.prof) {
        cluster.start(p)
        continue
      }
      // The harness's command with the profiler's flags after `run`.
      p.proc = cluster.procs.start(p.name, [
        Deno.execPath(),
        'run',
        '--cpu-prof',
        `--cpu-prof-dir=${join(profDir, p.name)}`,
        ...taskFlags('service'),
        join(REPO, 'cli/main.ts'),
        'service',
        '--config',
        p.dir,
        'daemon',
      ], { cwd: REPO })
    }
    for (const p of cluster.peers) await cluster.waitReady(p, 120_000)
    await cluster.waitFormed(60_000)
    const leader = await cluster.waitLeader(60_000)
    const reader = cluster.peers.find((p) => p !== leader)!
    log(`formed, leader ${leader.name}, reading through ${reader.name}`)
    // Let the start-up passes finish (each walks the state once).
    for (const p of cluster.peers) {
      await waitIdle(p.proc!.pid, { share: 0.2, windowMs: 1000, timeoutMs: 300_000 })
    }
    const load = async () => (await Deno.readTextFile('/proc/loadavg')).split(' ')[0]
    for (let k = 0; k < Number(values.repeat); k++) {
      for (const path of values['no-local'] ? ['/pins'] : ['/pins?local=true', '/pins']) {
        const before = await Promise.all(
          cluster.peers.map(async (p) => (await memoryOf(p.proc!.pid))?.rss ?? 0),
        )
        const samplers = cluster.peers.map((p) => sampleRss(p.proc!.pid, 50))
        const l0 = await load()
        const cpu0 = await Promise.all(cluster.peers.map((p) => cpuSecondsOf(p.proc!.pid)))
        const r = await readAll(`${reader.restUrl}${path}`)
        const cpu = await Promise.all(cluster.peers.map((p) => cpuSecondsOf(p.proc!.pid)))
        const peaks = await Promise.all(samplers.map((s) => s.stop()))
        const us = cluster.peers.map((p, i) =>
          `${p.name}${p === reader ? '*' : ''} ${((cpu[i] - cpu0[i]) * 1e6 / r.lines).toFixed(1)}`
        )
        console.log(
          `GET ${path}: ${r.lines} lines in ${r.seconds.toFixed(2)} s = ${
            Math.round(r.lines / r.seconds)
          }/s (load ${l0}); CPU µs a status: ${us.join(', ')}; RSS before → peak (MiB): ${
            cluster.peers.map((p, i) =>
              `${p.name}${p === reader ? '*' : ''} ${(before[i] / MiB).toFixed(0)} → ${
                (peaks[i] / MiB).toFixed(0)
              }`
            ).join(', ')
          }`,
        )
        if (r.errors) {
          console.log(`  ${r.errors} lines with cluster_error, the first: ${r.firstError}`)
        }
      }
    }
    if (values.prof) {
      for (const p of cluster.peers) await cluster.stop(p)
      for (const p of cluster.peers) {
        const path = latestProfile(join(profDir, p.name))
        console.log(`\n== ${p.name}${p === reader ? ' (streams)' : ''}: ${path}`)
        console.log(summarize(JSON.parse(await Deno.readTextFile(path))))
      }
    }
    return 0
  } finally {
    await cluster.close({ keep: values.keep !== undefined })
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args))
