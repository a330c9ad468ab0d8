/**
 * Where the start-up sync's CPU goes: a peer with N pins imported, started against the instant
 * IPFS double already holding every one of them (the "start-up sync" row of the catch-up
 * measures), with the daemon under V8's sampling profiler. Prints the daemon's CPU from spawn
 * until idle, then the profile by component and the top functions (bench/ingest_profile.ts's
 * summary).
 *
 * `--second` measures the second start instead (after one clean start and stop: the tracker's
 * mark applies), `--post-seconds S` posts new pins for S seconds through the API before that stop,
 * `--catchup` starts against a double holding none (the catch-up, with its peak RSS), `--no-prof`
 * runs without the profiler (whose own cost is ~15%).
 *
 * @example
 * ```sh
 * deno run -A bench/sync_profile.ts                    # 1,000,000 pins (inputs cached as the bench's)
 * deno run -A bench/sync_profile.ts --pins 100000 --keep /tmp/prof
 * deno run -A bench/sync_profile.ts --second --no-prof
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { inputFile, writeCidFile } from './cids.ts'
import { type BenchContext, startDouble, startPeer } from './harness.ts'
import { summarize, threadCpu } from './ingest_profile.ts'
import { implementations } from './peers.ts'
import { runLoad } from './load.ts'
import { cpuSecondsOf, pollUntil, Processes, waitIdle } from './process.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      pins: { type: 'string', default: '1000000' },
      keep: { type: 'string' },
      catchup: { type: 'boolean', default: false },
      'no-prof': { type: 'boolean', default: false },
      'post-seconds': { type: 'string', default: '0' },
      second: { type: 'boolean', default: false },
    },
  })
  const pins = Number(values.pins)
  const log = (m: string) => console.error(`[profile] ${m}`)
  const pinsFile = await inputFile('pins', pins, log)
  const cidFile = await inputFile('cids', pins, log)
  const workDir = await Deno.makeTempDir({ prefix: 'ipfs-cluster-sync-profile-' })
  const profDir = values.keep ?? join(workDir, 'prof')
  await Deno.mkdir(profDir, { recursive: true })
  await Deno.mkdir(join(workDir, 'logs'))
  const procs = new Processes(join(workDir, 'logs'))
  const impls = implementations({ repo: REPO, goBin: 'ipfs-cluster-service' })
  const plain = impls.ours.daemon
  impls.ours.daemon = (dir) => {
    const argv = plain(dir)
    if (!values['no-prof']) argv.splice(2, 0, '--cpu-prof', `--cpu-prof-dir=${profDir}`)
    return argv
  }
  const ctx: BenchContext = {
    repo: REPO,
    workDir,
    procs,
    impls,
    log,
  }
  try {
    const dir = join(workDir, 'peer')
    await impls.ours.init(dir)
    ctx.log(`state import of ${pins} pins`)
    await impls.ours.importState(dir, pinsFile)
    const ipfs = await startDouble(ctx, 'ipfs', values.catchup ? undefined : cidFile)
    const postSeconds = Number(values['post-seconds'])
    if (postSeconds > 0 || values.second) {
      // The bench's catch-up scenario: pins added through the API (Raft log entries, KV
      // writes) before the restart that is measured.
      const first = startPeer(ctx, { ...impls.ours, daemon: plain }, dir, ipfs.api, 'ours-post')
      const p = await first
      await pollUntil(`${p.rest}/id`, { since: performance.now(), timeoutMs: 120_000 })
      const newCids = join(workDir, 'new-cids.txt')
      const cids = postSeconds * 10_000
      await writeCidFile(newCids, pins + 1_000_000, cids)
      const load = postSeconds === 0 ? { ok: 0 } : await runLoad({
        base: p.rest,
        cidFile: newCids,
        cids,
        seconds: postSeconds,
        connections: 64,
        workDir,
      })
      ctx.log(`posted ${load.ok} pins`)
      await waitIdle(p.proc.pid, { timeoutMs: 300_000 })
      await p.proc.stop(60_000)
    }
    const t0 = performance.now()
    const peer = await startPeer(ctx, impls.ours, dir, ipfs.api, 'ours-sync')
    const peak = { rss: 0, anon: 0, file: 0, at: 0 }
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const st = await Deno.readTextFile(`/proc/${peer.proc.pid}/status`).catch(() => '')
        const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? 0)
        const rss = kib('VmRSS')
        if (rss > peak.rss) {
          Object.assign(peak, {
            rss,
            anon: kib('RssAnon'),
            file: kib('RssFile'),
            at: (performance.now() - t0) / 1000,
          })
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    await pollUntil(`${peer.rest}/id`, { since: t0, timeoutMs: 120_000 })
    const idle = await waitIdle(peer.proc.pid, { timeoutMs: 600_000 })
    sampling = false
    await sampler
    console.log(
      `peak RSS ${(peak.rss / 1024).toFixed(0)} MiB at ${peak.at.toFixed(1)} s (anon ${
        (peak.anon / 1024).toFixed(0)
      }, file ${(peak.file / 1024).toFixed(0)})`,
    )
    const cpu = await cpuSecondsOf(peer.proc.pid)
    const threads = [...await threadCpu(peer.proc.pid)].filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)} s`)
    console.log(
      `${values.catchup ? 'catch-up' : 'start-up sync'} of ${pins} pins IPFS holds: ${
        cpu.toFixed(2)
      } s CPU, idle after ${((performance.now() - t0) / 1000).toFixed(1)} s${
        idle.settled ? '' : ' (not idle within 300 s)'
      }; threads: ${threads.join(', ')}`,
    )
    await peer.proc.stop()
    await ipfs.proc.stop()
    if (values['no-prof']) return 0
    const files = [...Deno.readDirSync(profDir)].filter((e) => e.name.endsWith('.cpuprofile'))
    if (files.length === 0) throw new Error(`no .cpuprofile in ${profDir}`)
    const path = join(profDir, files.map((e) => e.name).sort().at(-1)!)
    console.log(`profile: ${path}\n`)
    console.log(summarize(JSON.parse(await Deno.readTextFile(path))))
    return 0
  } finally {
    await procs.stopAll()
    if (!values.keep) await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args))
