/**
 * The catch-up measures (issue 6): a peer with N pins imported offline, restarted against the
 * instant IPFS double holding none of them — a peer that joins a big cluster or restores a
 * backup. Through the whole catch-up the daemon's RSS is sampled, the peak while API loads run
 * apart from the peak of the catch-up alone; while it runs (after two bursts of warm-up pins,
 * which let the state's Bloom filter load and grow), `GET /allocations` is read to the end and
 * `POST /pins` is driven by wrk (as bench/load.ts does); once the double holds every pin, the
 * same listing and load run on the idle peer, its RSS sampled too. Then the peer is restarted against the same
 * double, which now holds every pin, and only `GET /id` is polled: the CPU seconds the daemon
 * spends from spawn until it is idle are the cost of the start-up sync (plus its own start).
 *
 * Both implementations run the same steps; the rows go into bench/main.ts's table.
 *
 * @example
 * ```ts
 * const rows = await runCatchupBench(ctx, { pins: 1_000_000, pinsFile, seconds: 10, connections: 64 }, ['go', 'ours'])
 * ```
 */
import { join } from 'node:path'
import { benchCid, writeCidFile } from './cids.ts'
import {
  type BenchContext,
  readAllocations,
  restartPeer,
  type RunningPeer,
  startDouble,
  startPeer,
  waitServing,
} from './harness.ts'
import { runLoad } from './load.ts'
import type { Implementation, ImplKey } from './peers.ts'
import { cpuSecondsOf, memoryOf, pollUntil, sampleRss, sleep, waitIdle } from './process.ts'
import { atLeast, below, type Row } from './report.ts'

/** What the catch-up measures need. */
export interface CatchupOptions {
  pins: number
  /** `state import` NDJSON of `pins` pins (counters 0…pins-1). */
  pinsFile: string
  /** Seconds of POST load, during the catch-up and idle. */
  seconds: number
  connections: number
}

/** One implementation's catch-up figures; undefined where a step failed or did not apply. */
export interface CatchupResult {
  /** Peak RSS from spawn to the end of the catch-up, outside the API loads, bytes. */
  rssPeak?: number
  /** Peak RSS while the API loads (warm-up pins, listing, POST) ran during the catch-up. */
  rssPeakLoaded?: number
  /** Peak RSS of the same peer, caught up, under the same POST load (for comparison). */
  rssIdleLoad?: number
  /** Seconds from spawn until the double held every pin (undefined: not within the limit). */
  catchupSeconds?: number
  /** `GET /allocations` during the catch-up; `during` false when the catch-up ended first. */
  listing?: { pinsPerSec: number; lines: number; during: boolean }
  postDuring?: { pinsPerSec: number; during: boolean }
  postIdle?: number
  /** `GET /allocations` on the idle peer after the catch-up, pins/s. */
  listingIdle?: number
  /** CPU seconds from spawn until idle, restarted against a double holding every pin. */
  syncCpu?: number
  syncSeconds?: number
  errors: string[]
}

const MB = 1e6
const READY_TIMEOUT_MS = 120_000
// Two bursts of warm-up pins, each followed by a pause while the state's filter loads: 1 s per
// 50,000 pins (a load takes ~3 s a million on 2 cores), at least 1 s, at most 15 s.
const WARM_UP_PINS = 50
const warmUpMs = (pins: number) => Math.min(15_000, Math.max(1_000, pins / 50))
// A catch-up that takes longer than this is reported as not finished (a million pins take
// minutes against the instant double).
const CATCHUP_LIMIT_MS = 45 * 60_000

/** How many pins the double holds (bench/ipfs_double.ts answers GET /bench/pins). */
async function doublePins(api: string): Promise<number> {
  const port = /\/tcp\/(\d+)/.exec(api)![1]
  const res = await fetch(`http://127.0.0.1:${port}/bench/pins`)
  return Number(await res.text())
}

/** Runs the catch-up measures for one implementation. */
export async function measureCatchup(
  ctx: BenchContext,
  impl: Implementation,
  opts: CatchupOptions,
): Promise<CatchupResult> {
  const r: CatchupResult = { errors: [] }
  const dir = join(ctx.workDir, `${impl.key}-catchup`)
  await Deno.remove(dir, { recursive: true }).catch(() => {})
  await impl.init(dir)
  // New CIDs for the POST loads (counters past the imported ones): every request is a new pin.
  const during = join(ctx.workDir, `catchup-post-during.txt`)
  const idle = join(ctx.workDir, `catchup-post-idle.txt`)
  const perLoad = Math.max(opts.seconds * 100_000, 100_000)
  await writeCidFile(during, opts.pins, perLoad)
  await writeCidFile(idle, opts.pins + perLoad, perLoad)
  // (The warm-up pins come after both files' CIDs.)
  const load = (base: string, cidFile: string) =>
    runLoad({
      base,
      cidFile,
      cids: perLoad,
      seconds: opts.seconds,
      connections: opts.connections,
      workDir: ctx.workDir,
    })
  let peer: RunningPeer | undefined
  const ipfs = await startDouble(ctx, `${impl.key}-catchup-ipfs`)
  try {
    ctx.log(`${impl.label}: state import of ${opts.pins} pins (catch-up)`)
    await impl.importState(dir, opts.pinsFile)
    const t0 = performance.now()
    peer = await startPeer(ctx, impl, dir, ipfs.api, `${impl.key}-catchup`)
    const rss = splitRss(peer.proc.pid)
    try {
      await waitServing(peer, benchCid(opts.pins - 1), { since: t0, timeoutMs: READY_TIMEOUT_MS })
      const caughtUp = async () => (await doublePins(ipfs.api)) >= opts.pins
      // The first pins after a restart load the state's Bloom filter, and once it holds more
      // pins than it was sized for (1,000,000) it loads again, 4× bigger: one walk of the
      // pinset each, whatever the tracker does. Two small bursts let both happen before the
      // loads below, which then measure the catch-up.
      // (The filter loads count with the API loads: the API's pins cause them.)
      rss.api = true
      for (const burst of [0, 1]) {
        for (let i = 0; i < WARM_UP_PINS; i++) {
          const cid = benchCid(opts.pins + 2 * perLoad + burst * WARM_UP_PINS + i)
          await pollUntil(`${peer.rest}/pins/${cid}`, {
            since: performance.now(),
            timeoutMs: READY_TIMEOUT_MS,
            init: { method: 'POST' },
          })
        }
        await sleep(warmUpMs(opts.pins))
      }
      ctx.log(`${impl.label}: catching up ${opts.pins} pins; listing meanwhile`)
      const list = await readAllocations(peer.rest)
      r.listing = {
        pinsPerSec: list.lines / list.seconds,
        lines: list.lines,
        during: !(await caughtUp()),
      }
      ctx.log(`${impl.label}: POST /pins for ${opts.seconds} s during the catch-up`)
      const busy = await load(peer.rest, during)
      r.postDuring = { pinsPerSec: busy.ok / busy.seconds, during: !(await caughtUp()) }
      rss.api = false
      while (!(await caughtUp())) {
        if (performance.now() - t0 > CATCHUP_LIMIT_MS) break
        if (!peer.proc.running()) throw new Error(`daemon exited:\n${await peer.proc.tail()}`)
        await sleep(500)
      }
      if (await caughtUp()) r.catchupSeconds = (performance.now() - t0) / 1000
      else r.errors.push(`catch-up not finished after ${CATCHUP_LIMIT_MS / 60_000} min`)
    } finally {
      const peaks = await rss.stop()
      r.rssPeak = peaks.alone.rss
      r.rssPeakLoaded = peaks.loaded.rss
      for (const [k, p] of Object.entries(peaks)) {
        ctx.log(
          `${impl.label}: peak RSS (${k}) ${(p.rss / MB).toFixed(0)} MB at ${p.at.toFixed(1)} s ` +
            `(anon ${(p.anon / MB).toFixed(0)} MB, file ${(p.file / MB).toFixed(0)} MB)`,
        )
      }
    }
    await waitIdle(peer.proc.pid, { timeoutMs: 120_000 })
    const quietList = await readAllocations(peer.rest)
    r.listingIdle = quietList.lines / quietList.seconds
    ctx.log(`${impl.label}: POST /pins for ${opts.seconds} s on the idle peer`)
    const loaded = sampleRss(peer.proc.pid, 100)
    const quiet = await load(peer.rest, idle)
    r.rssIdleLoad = await loaded.stop()
    r.postIdle = quiet.ok / quiet.seconds
    // Let the tracker pin what the loads added, so that the double holds the whole state.
    await waitIdle(peer.proc.pid, { timeoutMs: 300_000 })

    ctx.log(`${impl.label}: restart against a double holding every pin (start-up sync CPU)`)
    await peer.proc.stop(60_000)
    const again = restartPeer(ctx, peer)
    peer = again
    const t1 = performance.now()
    // Only GET /id: a pin read would load the state's Bloom filter, which is not the sync.
    await pollUntil(`${again.rest}/id`, { since: t1, timeoutMs: READY_TIMEOUT_MS })
    const settled = await waitIdle(again.proc.pid, { timeoutMs: 300_000 })
    r.syncCpu = await cpuSecondsOf(again.proc.pid)
    r.syncSeconds = (performance.now() - t1) / 1000
    if (!settled.settled) r.errors.push('still busy 300 s after the restart')
    const m = await memoryOf(again.proc.pid)
    if (m) ctx.log(`${impl.label}: after the start-up sync: RSS ${(m.rss / MB).toFixed(0)} MB`)
  } catch (err) {
    r.errors.push((err as Error).message.split('\n')[0])
    ctx.log(`${impl.label}: catch-up failed: ${(err as Error).message}`)
  } finally {
    await peer?.proc.stop()
    await ipfs.proc.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
  return r
}

/** A peak RSS sample: bytes, and when (seconds since sampling began) and of what it was made. */
export interface RssPeak {
  rss: number
  at: number
  anon: number
  file: number
}

/**
 * Samples the RSS of `pid` every 100 ms into two peaks: while `api` is true (the API loads) and
 * while it is false (the catch-up alone).
 */
export function splitRss(
  pid: number,
): { api: boolean; stop(): Promise<Record<'alone' | 'loaded', RssPeak>> } {
  const zero = () => ({ rss: 0, at: 0, anon: 0, file: 0 })
  const peaks = { alone: zero(), loaded: zero() }
  const t0 = performance.now()
  let done = false
  const state = { api: false }
  const loop = (async () => {
    while (!done) {
      const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => '')
      const kib = (key: string) =>
        Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
      const rss = kib('VmRSS')
      const peak = peaks[state.api ? 'loaded' : 'alone']
      if (rss > peak.rss) {
        Object.assign(peak, {
          rss,
          at: (performance.now() - t0) / 1000,
          anon: kib('RssAnon'),
          file: kib('RssFile'),
        })
      }
      await sleep(100)
    }
  })()
  return {
    get api() {
      return state.api
    },
    set api(v: boolean) {
      state.api = v
    },
    async stop() {
      done = true
      await loop
      return peaks
    },
  }
}

/** The table rows of both implementations' catch-up figures. */
export function catchupRows(pins: number, r: Partial<Record<ImplKey, CatchupResult>>): Row[] {
  const both = (f: (x: CatchupResult) => number | undefined) => ({
    ours: r.ours && f(r.ours),
    go: r.go && f(r.go),
  })
  const ratio = (x: CatchupResult) =>
    x.postDuring && x.postIdle ? x.postDuring.pinsPerSec / x.postIdle : undefined
  return [
    {
      measure: `catch-up of ${pins} pins: peak RSS, API idle (MB)`,
      ...both((x) => x.rssPeak && x.rssPeak / MB),
      digits: 0,
      target: below(300, ' MB'),
    },
    {
      measure: 'peak RSS during the API loads of the catch-up (MB)',
      ...both((x) => x.rssPeakLoaded && x.rssPeakLoaded / MB),
      digits: 0,
    },
    {
      measure: 'peak RSS under the POST load, caught up (MB)',
      ...both((x) => x.rssIdleLoad && x.rssIdleLoad / MB),
      digits: 0,
    },
    { measure: `catch-up of ${pins} pins: time (s)`, ...both((x) => x.catchupSeconds), digits: 1 },
    {
      measure: `GET /allocations during catch-up, ${pins} pins (pins/s)`,
      ...both((x) => x.listing && x.listing.lines >= pins ? x.listing.pinsPerSec : undefined),
      target: atLeast(100_000),
    },
    { measure: `GET /allocations idle, same peer (pins/s)`, ...both((x) => x.listingIdle) },
    {
      measure: 'POST /pins during catch-up (pins/s)',
      ...both((x) => x.postDuring?.pinsPerSec),
    },
    { measure: 'POST /pins idle, same peer (pins/s)', ...both((x) => x.postIdle) },
    {
      measure: 'POST /pins during catch-up / idle',
      ...both(ratio),
      digits: 2,
      target: atLeast(0.5),
    },
    {
      measure: `start-up sync, IPFS holds all ${pins} pins: CPU (s)`,
      ...both((x) => x.syncCpu),
      digits: 1,
      target: below(5, ' s'),
    },
    {
      measure: `start-up sync, IPFS holds all ${pins} pins: until idle (s)`,
      ...both((x) => x.syncSeconds),
      digits: 1,
    },
  ]
}

/** Notes for figures taken after the catch-up had already ended. */
export function catchupNotes(label: string, x: CatchupResult): string[] {
  const out: string[] = []
  if (x.listing && !x.listing.during) {
    out.push(`note: ${label}: the catch-up ended before the listing did`)
  }
  if (x.postDuring && !x.postDuring.during) {
    out.push(`note: ${label}: the catch-up ended before the POST load did`)
  }
  for (const e of x.errors) out.push(`error: ${label}: catch-up: ${e}`)
  return out
}

/** Both implementations' catch-up measures, one after the other; rows and notes for the report. */
export async function runCatchupBench(
  ctx: BenchContext,
  opts: CatchupOptions,
  selected: ImplKey[],
): Promise<{ rows: Row[]; notes: string[]; results: Partial<Record<ImplKey, CatchupResult>> }> {
  const results: Partial<Record<ImplKey, CatchupResult>> = {}
  for (const key of selected) results[key] = await measureCatchup(ctx, ctx.impls[key], opts)
  const notes = selected.flatMap((k) => catchupNotes(ctx.impls[k].label, results[k]!))
  return { rows: catchupRows(opts.pins, results), notes, results }
}
