/**
 * The measures of issue 2, each run the same way against either implementation:
 *
 * - ingest: `POST /pins/{cid}` with distinct CIDs over 64 connections for a fixed time, on a fresh
 *   peer; the bare-server baseline is driven by the same client in the same run;
 * - listing: `GET /allocations` read to the end over an imported state, with the server's RSS
 *   sampled while it streams (a small and a large state, to see whether RSS follows the pinset);
 * - restart: stop the peer holding the large state, start it again, time until it serves.
 *
 * Every process a measure starts is stopped before it returns, and its folder removed.
 *
 * @example
 * ```ts
 * const r = await measureIngest(ctx, ctx.impls.ours, { cidFile, cids, seconds: 10, connections: 64 })
 * ```
 */
import { join } from 'node:path'
import { benchCid } from './cids.ts'
import {
  type BenchContext,
  readAllocations,
  restartPeer,
  type RunningPeer,
  startDouble,
  startPeer,
  waitServing,
  waitWritable,
} from './harness.ts'
import { type LoadResult, runLoad, runLoadOn } from './load.ts'
import type { Implementation } from './peers.ts'
import { memoryOf, sampleRss, waitIdle } from './process.ts'

/** The ingest load's shape. */
export interface IngestOptions {
  /** CIDs to send, one a line, and how many there are. */
  cidFile: string
  cids: number
  seconds: number
  connections: number
}

/** Result of the ingest measure. */
export interface IngestResult {
  load: LoadResult
  /** Successful pins per second. */
  pinsPerSec: number
  /** Pins in the state afterwards (GET /allocations), to check the 2xx answers were commits. */
  committed: number
  /**
   * CPU time the peer's process (all its threads) spent per successful pin during the load, in
   * µs: what a pin costs, which a busy shared machine does not change the way it changes pins/s.
   */
  cpuPerPinUs: number
}

/** Result of the baseline: the bare Deno.serve under the same load. */
export interface BaselineResult {
  load: LoadResult
  reqPerSec: number
}

/** Result of a listing measure. */
export interface ListingResult {
  pins: number
  /** Lines streamed (must equal pins). */
  lines: number
  seconds: number
  pinsPerSec: number
  importSeconds: number
  /** Seconds the daemon stayed busy after it started serving (start-up work, e.g. a sync). */
  settleSeconds: number
  settled: boolean
  rssBefore: number
  rssPeak: number
}

/** Result of the restart measure. */
export interface RestartResult {
  pins: number
  /** Seconds from spawning the daemon to `GET /id` answering 200. */
  id: number
  /** Seconds from spawning the daemon to `GET /allocations/<cid>` answering 200. */
  allocation: number
}

const READY_TIMEOUT_MS = 120_000

/** Runs the ingest load against the bare server (bench/bare_server.ts). */
export async function measureBaseline(
  ctx: BenchContext,
  opts: IngestOptions,
): Promise<BaselineResult> {
  const proc = ctx.procs.start('bare-server', [
    Deno.execPath(),
    'run',
    '-A',
    join(ctx.repo, 'bench/bare_server.ts'),
  ], { cwd: ctx.repo })
  try {
    const m = await proc.waitForLog(/listening on (http:\/\/\S+)/, 30_000)
    const load = await runLoad({ ...opts, base: m[1], workDir: ctx.workDir })
    return { load, reqPerSec: load.ok / load.seconds }
  } finally {
    await proc.stop()
  }
}

/** A fresh peer folder, initialised by the implementation's own `init`. */
async function freshDir(ctx: BenchContext, impl: Implementation, name: string): Promise<string> {
  const dir = join(ctx.workDir, `${impl.key}-${name}`)
  await Deno.remove(dir, { recursive: true }).catch(() => {})
  await impl.init(dir)
  return dir
}

/** Ingest on a fresh peer with an empty IPFS double. */
export async function measureIngest(
  ctx: BenchContext,
  impl: Implementation,
  opts: IngestOptions,
): Promise<IngestResult> {
  const dir = await freshDir(ctx, impl, 'ingest')
  const ipfs = await startDouble(ctx, `${impl.key}-ingest-ipfs`)
  let peer: RunningPeer | undefined
  try {
    peer = await startPeer(ctx, impl, dir, ipfs.api, `${impl.key}-ingest`)
    // A CID outside the load's file, so every request of the load is a new pin.
    await waitWritable(peer, benchCid(-1), {
      since: performance.now(),
      timeoutMs: READY_TIMEOUT_MS,
    })
    ctx.log(`${impl.label}: ingest for ${opts.seconds} s over ${opts.connections} connections`)
    const { load, cpuPerRequestUs } = await runLoadOn(peer.proc.pid, {
      ...opts,
      base: peer.rest,
      workDir: ctx.workDir,
    })
    const { lines } = await readAllocations(peer.rest)
    return {
      load,
      pinsPerSec: load.ok / load.seconds,
      committed: lines,
      cpuPerPinUs: cpuPerRequestUs,
    }
  } finally {
    await peer?.proc.stop()
    await ipfs.proc.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
}

/** Listing (and optionally restart) over a state of `pins` pins imported offline. */
export async function measureListing(
  ctx: BenchContext,
  impl: Implementation,
  opts: {
    pins: number
    /** `state import` NDJSON with `pins` pins and the CIDs of the same pins, one a line. */
    pinsFile: string
    cidFile: string
    restart: boolean
  },
): Promise<{ listing: ListingResult; restart?: RestartResult }> {
  const dir = await freshDir(ctx, impl, `list-${opts.pins}`)
  let peer: RunningPeer | undefined
  let ipfs: Awaited<ReturnType<typeof startDouble>> | undefined
  try {
    ctx.log(`${impl.label}: state import of ${opts.pins} pins`)
    const importSeconds = await impl.importState(dir, opts.pinsFile)
    // The IPFS side already holds every pin, as it does for a peer that restarts.
    ipfs = await startDouble(ctx, `${impl.key}-list-ipfs`, opts.cidFile)
    const someCid = benchCid(opts.pins - 1)
    const since = performance.now()
    peer = await startPeer(ctx, impl, dir, ipfs.api, `${impl.key}-list-${opts.pins}`)
    await waitServing(peer, someCid, { since, timeoutMs: READY_TIMEOUT_MS })
    const idle = await waitIdle(peer.proc.pid, { timeoutMs: 120_000 })
    const rssBefore = (await memoryOf(peer.proc.pid))?.rss ?? 0
    ctx.log(`${impl.label}: listing ${opts.pins} pins`)
    const sampler = sampleRss(peer.proc.pid)
    const read = await readAllocations(peer.rest)
    const rssPeak = await sampler.stop()
    const listing: ListingResult = {
      pins: opts.pins,
      lines: read.lines,
      seconds: read.seconds,
      pinsPerSec: read.lines / read.seconds,
      importSeconds,
      settleSeconds: idle.seconds,
      settled: idle.settled,
      rssBefore,
      rssPeak,
    }
    if (!opts.restart) return { listing }

    ctx.log(`${impl.label}: restart with ${opts.pins} pins`)
    const code = await peer.proc.stop(60_000)
    if (code !== 0) ctx.log(`${impl.label}: daemon exited with ${code} on SIGTERM`)
    const again = restartPeer(ctx, peer)
    peer = again
    const t0 = performance.now()
    const ready = await waitServing(again, someCid, { since: t0, timeoutMs: READY_TIMEOUT_MS })
    return { listing, restart: { pins: opts.pins, ...ready } }
  } finally {
    await peer?.proc.stop()
    await ipfs?.proc.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
}
