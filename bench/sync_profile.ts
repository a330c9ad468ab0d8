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
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { inputFile, writeCidFile } from './cids.ts'
import { startDouble, startPeer } from './harness.ts'
import { latestProfile, profilingRun, summarize, threadCpu } from './ingest_profile.ts'
import { splitRss } from './catchup.ts'
import { runLoad } from './load.ts'
import { cpuSecondsOf, pollUntil, waitIdle } from './process.ts'

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
  const { workDir, profDir, procs, impls, plainDaemon, ctx } = await profilingRun(
    'sync',
    values.keep,
    !values['no-prof'],
  )
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
      const p = await startPeer(
        ctx,
        { ...impls.ours, daemon: plainDaemon },
        dir,
        ipfs.api,
        'ours-post',
      )
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
    const rss = splitRss(peer.proc.pid)
    await pollUntil(`${peer.rest}/id`, { since: t0, timeoutMs: 120_000 })
    const idle = await waitIdle(peer.proc.pid, { timeoutMs: 600_000 })
    const peak = (await rss.stop()).alone
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0)
    console.log(
      `peak RSS ${mib(peak.rss)} MiB at ${peak.at.toFixed(1)} s (anon ${mib(peak.anon)}, file ${
        mib(peak.file)
      })`,
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
    const path = latestProfile(profDir)
    console.log(`profile: ${path}\n`)
    console.log(summarize(JSON.parse(await Deno.readTextFile(path))))
    return 0
  } finally {
    await procs.stopAll()
    if (!values.keep) await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args))
