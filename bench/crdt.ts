/**
 * The CRDT measures of issue 10: IPFS Cluster 1.1.6 in CRDT mode beside ours in CRDT mode, on the
 * same machine, each peer with its own instant IPFS double, started by the multi-peer harness
 * (test/support/cluster.ts with `consensus: 'crdt'`) in the caller's loopback-only namespace:
 *
 * - batched ingest: 3 peers, `POST /pins/{cid}` to one of them over 64 connections (wrk,
 *   bench/load.ts) for a few seconds, with `consensus.crdt.batching` at the same size and age for
 *   both (500 pins, 1 s by default), then the same unbatched: pins/s acknowledged, and pins/s
 *   committed on all peers = acknowledged pins ÷ the seconds from the load's start until the last
 *   peer's state (`GET /allocations?filter=all`, counted) holds every one of them;
 * - a new peer syncing an N-pin state: N pins `state import`ed into one founder (one chain of
 *   batch deltas of ~1 MiB, each implementation's own import), the two other founders given a copy
 *   of that store (the same import on them builds the same chain: same heads, checked with `state
 *   crdt info`), the founders started; then a fresh fourth peer (`daemon --bootstrap`, its double
 *   holding the N CIDs, as the founders' do) is timed from its spawn until its state holds all N
 *   pins (its log's `new pin added` lines, which both implementations write once per key their
 *   merges put, then a count of `GET /allocations`); the DAG's blocks are the chain's height
 *   (`state crdt info` after the run; Go's debug log names every merged node too); RSS of that peer
 *   sampled from spawn to synced;
 * - RSS of that peer while it streams all N pins (`GET /allocations`): peak minus before.
 *
 * Every peer runs with `rebroadcast_interval: 5s` in the sync cluster (the default minute would
 * time the wait for the founders' next announcement of their heads, not the sync).
 *
 * @example
 * ```sh
 * deno run -A bench/main.ts --crdt-only --pins 100000 --seconds 5
 * ```
 */
import { join } from 'node:path'
import { benchCid, writeCidFile } from './cids.ts'
import type { BenchContext } from './harness.ts'
import { type LoadResult, runLoad } from './load.ts'
import type { ImplKey } from './peers.ts'
import { memoryOf, sampleRss, sleep, waitIdle } from './process.ts'
import { atMost, type Row } from './report.ts'
import { type ClusterPeer, TestCluster } from '../test/support/cluster.ts'

const MiB = 1024 * 1024
const READY_TIMEOUT_MS = 300_000
const FORM_TIMEOUT_MS = 90_000
/** The IPFS Cluster figure the sync is compared with: about 24 h for 50 million pins. */
export const GO_REPORTED_US_PER_PIN = (24 * 3600 * 1e6) / 50e6

/** Sizes of the CRDT measures. */
export interface CrdtBenchOptions {
  /** Pins of the state the new peer syncs. */
  pins: number
  /** `state import` NDJSON of `pins` pins and the file of their CIDs (the doubles hold them). */
  pinsFile: string
  cidFile: string
  /** Seconds of each ingest load. */
  seconds: number
  connections: number
  /** `consensus.crdt.batching` of the batched ingest (both implementations). */
  batchSize: number
  batchAge: string
  goBin: string
}

/** One ingest load and when every peer held its pins. */
export interface CrdtIngest {
  load: LoadResult
  /** Pins the state held before the load (the warm-up pin). */
  before: number
  /** Seconds from the load's start until each peer held before + acknowledged pins. */
  peers: { name: string; seconds: number; count: number }[]
  /** The largest of those. */
  allSeconds: number
}

/** What one implementation measured; a failed step leaves its fields empty and an error. */
export interface CrdtResult {
  batched?: CrdtIngest
  unbatched?: CrdtIngest
  /** Offline import of `pins` into one founder (s). */
  importSeconds?: number
  /** Height of the imported chain (`state crdt info`): its blocks. */
  importHeight?: number
  sync?: {
    /** From spawn: READY, and its state holding all N pins (s). */
    ready: number
    synced: number
    /** Its `GET /allocations` count once synced. */
    count: number
    /** `state crdt info` of the new peer afterwards: heads' max height (blocks of the chain). */
    height?: number
    /** Go only: the nodes its debug log says it merged. */
    mergedLogged?: number
    /** RSS at READY and the peak from spawn to synced (bytes). */
    rssReady: number
    rssPeak: number
  }
  listing?: { lines: number; seconds: number; rssBefore: number; rssPeak: number }
  errors: string[]
}

/** Runs the CRDT measures for each selected implementation, one after the other. */
export async function runCrdtBench(
  ctx: BenchContext,
  opts: CrdtBenchOptions,
  selected: ImplKey[],
): Promise<Partial<Record<ImplKey, CrdtResult>>> {
  const count = Math.min(3_000_000, opts.seconds * 30_000)
  const cids = async (name: string, start: number) => {
    const path = join(ctx.workDir, `crdt-${name}.txt`)
    await writeCidFile(path, start, count)
    return { path, count }
  }
  const files = {
    batched: await cids('batched', 40_000_000),
    unbatched: await cids('unbatched', 50_000_000),
  }
  const out: Partial<Record<ImplKey, CrdtResult>> = {}
  for (const key of selected) {
    const r: CrdtResult = { errors: [] }
    out[key] = r
    const step = async (what: string, f: () => Promise<void>) => {
      try {
        await f()
      } catch (err) {
        const msg = `${what}: ${(err as Error).message.split('\n')[0]}`
        r.errors.push(msg)
        ctx.log(`crdt ${key}: ${msg}`)
      }
    }
    await step(`batched ingest (${opts.batchSize} / ${opts.batchAge})`, async () => {
      r.batched = await measureIngest(ctx, key, opts, files.batched, true)
    })
    await step('unbatched ingest', async () => {
      r.unbatched = await measureIngest(ctx, key, opts, files.unbatched, false)
    })
    await step(`a new peer syncing ${opts.pins} pins`, () => measureSync(ctx, key, opts, r))
  }
  return out
}

function crdtCluster(
  ctx: BenchContext,
  key: ImplKey,
  opts: CrdtBenchOptions,
  name: string,
  extra: { doublePinned?: string; logLevel?: string; edit?: (cfg: Json) => void } = {},
): Promise<TestCluster> {
  return TestCluster.create({
    impl: key,
    peers: 3,
    consensus: 'crdt',
    clusterName: 'bench-crdt',
    workDir: join(ctx.workDir, `crdt-${key}-${name}`),
    netns: 'inherit',
    goBin: opts.goBin,
    doublePinned: extra.doublePinned,
    logLevel: extra.logLevel,
    roleLog: false,
    log: ctx.log,
    edit: extra.edit,
  })
}

// deno-lint-ignore no-explicit-any
type Json = any

async function form(ctx: BenchContext, key: ImplKey, cluster: TestCluster): Promise<void> {
  cluster.startAll()
  for (const p of cluster.peers) await cluster.waitReady(p, READY_TIMEOUT_MS)
  await cluster.waitFormed(FORM_TIMEOUT_MS)
  ctx.log(`crdt ${key}: ${cluster.peers.length} peers formed`)
}

/** Polls until `check` holds (every `everyMs`); resolves with performance.now() then. */
async function until(check: () => Promise<boolean>, timeoutMs: number, everyMs = 250) {
  const t0 = performance.now()
  let last = ''
  while (performance.now() - t0 < timeoutMs) {
    try {
      if (await check()) return performance.now()
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(everyMs)
  }
  throw new Error(`not true within ${timeoutMs} ms${last ? ` (last: ${last})` : ''}`)
}

async function measureIngest(
  ctx: BenchContext,
  key: ImplKey,
  opts: CrdtBenchOptions,
  cids: { path: string; count: number },
  batched: boolean,
): Promise<CrdtIngest> {
  const name = batched ? 'batched' : 'unbatched'
  const cluster = await crdtCluster(ctx, key, opts, name, {
    edit: (cfg) => {
      cfg.consensus.crdt.batching = batched
        ? { max_batch_size: opts.batchSize, max_batch_age: opts.batchAge }
        : { max_batch_size: 0, max_batch_age: '0s' }
    },
  })
  try {
    await form(ctx, key, cluster)
    const [target] = cluster.peers
    // One pin first, seen by every peer: the loads do not time the first broadcasts and fetches.
    const warm = await cluster.request(target, 'POST', `/pins/${benchCid(-2)}`, {
      timeoutMs: 30_000,
    })
    if (warm.status !== 200) throw new Error(`warm-up pin: HTTP ${warm.status} ${warm.body}`)
    for (const p of cluster.peers) {
      await until(async () => (await cluster.countAllocations(p)) >= 1, 60_000)
    }
    for (const p of cluster.peers) await waitIdle(p.proc!.pid, { share: 0.2, timeoutMs: 15_000 })
    const before = 1
    ctx.log(`crdt ${key}: ${name} ingest into ${target.name}, ${opts.seconds} s`)
    const t0 = performance.now()
    const load = await runLoad({
      base: target.restUrl,
      cidFile: cids.path,
      cids: cids.count,
      seconds: opts.seconds,
      connections: opts.connections,
      workDir: ctx.workDir,
    })
    const want = before + load.ok
    // Counted only after the load (a count is a listing: it would take CPU from the ingest), one
    // peer after the other, until each holds every acknowledged pin.
    const peers: CrdtIngest['peers'] = []
    const pending = new Set(cluster.peers)
    const deadline = performance.now() + Math.max(300_000, load.ok * 20)
    while (pending.size) {
      for (const p of [...pending]) {
        const count = await cluster.countAllocations(p).catch(() => -1)
        if (count >= want) {
          peers.push({ name: p.name, seconds: (performance.now() - t0) / 1000, count })
          pending.delete(p)
        }
      }
      if (!pending.size) break
      if (performance.now() > deadline) {
        const counts = await Promise.all(
          [...pending].map((p) => cluster.countAllocations(p).catch(() => -1)),
        )
        throw new Error(
          `after ${load.ok} acknowledged pins, ${
            [...pending].map((p, i) => `${p.name} holds ${counts[i]}`).join(', ')
          } of ${want}`,
        )
      }
      await sleep(250)
    }
    const allSeconds = Math.max(...peers.map((p) => p.seconds))
    ctx.log(
      `crdt ${key}: ${name}: ${load.ok} pins acknowledged in ${
        load.seconds.toFixed(1)
      } s, on every peer after ${allSeconds.toFixed(1)} s`,
    )
    return { load, before, peers, allSeconds }
  } finally {
    await cluster.close()
  }
}

/** `state crdt info` of a stopped peer: the heads' max height. */
async function crdtHeight(cluster: TestCluster, peer: ClusterPeer): Promise<number> {
  const info = await cluster.run(peer, ['state', 'crdt', 'info'])
  const m = /Current max-height: (\d+)/.exec(info)
  if (!m) throw new Error(`${peer.name}: state crdt info said: ${info.slice(0, 300)}`)
  return Number(m[1])
}

/** The heads `state crdt info` lists for a stopped peer. */
async function crdtHeads(cluster: TestCluster, peer: ClusterPeer): Promise<string> {
  const info = await cluster.run(peer, ['state', 'crdt', 'info'])
  return /Heads: \[([^\]]*)\]/.exec(info)?.[1] ?? ''
}

/**
 * Counts the lines of a growing log file that contain `needle`, reading only what was appended
 * since the last call.
 */
function logCounter(path: string, needle: string): () => Promise<number> {
  const enc = new TextEncoder()
  const pat = enc.encode(needle)
  let offset = 0
  let carry = new Uint8Array(0)
  let n = 0
  return async () => {
    const f = await Deno.open(path, { read: true })
    try {
      await f.seek(offset, Deno.SeekMode.Start)
      const buf = new Uint8Array(1 << 20)
      while (true) {
        const got = await f.read(buf)
        if (got === null || got === 0) break
        offset += got
        const chunk = new Uint8Array(carry.length + got)
        chunk.set(carry)
        chunk.set(buf.subarray(0, got), carry.length)
        let i = chunk.indexOf(pat[0])
        let lastEnd = 0
        while (i >= 0 && i + pat.length <= chunk.length) {
          let k = 1
          while (k < pat.length && chunk[i + k] === pat[k]) k++
          if (k === pat.length) {
            n++
            lastEnd = i + pat.length
            i = chunk.indexOf(pat[0], lastEnd)
          } else i = chunk.indexOf(pat[0], i + 1)
        }
        // Keep the tail that could start a match cut by this read.
        carry = chunk.slice(Math.max(lastEnd, chunk.length - (pat.length - 1)))
      }
    } finally {
      f.close()
    }
    return n
  }
}

async function measureSync(
  ctx: BenchContext,
  key: ImplKey,
  opts: CrdtBenchOptions,
  r: CrdtResult,
): Promise<void> {
  const cluster = await crdtCluster(ctx, key, opts, 'sync', {
    doublePinned: opts.cidFile,
    // Go names every merged delta node at debug (every 50th at info).
    logLevel: key === 'go' ? 'info,crdt:debug' : undefined,
    edit: (cfg) => {
      cfg.consensus.crdt.rebroadcast_interval = '5s'
    },
  })
  try {
    const [p0, p1, p2] = cluster.peers
    ctx.log(`crdt ${key}: state import of ${opts.pins} pins into ${p0.name}`)
    const t0 = performance.now()
    await cluster.importState(p0, opts.pinsFile)
    r.importSeconds = (performance.now() - t0) / 1000
    r.importHeight = await crdtHeight(cluster, p0)
    ctx.log(
      `crdt ${key}: imported in ${
        r.importSeconds.toFixed(1)
      } s, a chain of ${r.importHeight} deltas; copied to ${p1.name} and ${p2.name}`,
    )
    await cluster.copyCrdtState(p0, p1)
    await cluster.copyCrdtState(p0, p2)
    const heads = await crdtHeads(cluster, p0)
    for (const p of [p1, p2]) {
      if ((await crdtHeads(cluster, p)) !== heads) {
        throw new Error(`${p.name}: not p0's heads after the copy`)
      }
    }
    await form(ctx, key, cluster)
    // The founders' start-up work (the tracker checking N pins against IPFS) done first.
    for (const p of cluster.peers) {
      const w = await waitIdle(p.proc!.pid, { share: 0.2, windowMs: 1000, timeoutMs: 600_000 })
      if (!w.settled) ctx.log(`crdt ${key}: ${p.name} still busy after ${w.seconds.toFixed(0)} s`)
    }

    const joiner = await cluster.addJoiner()
    ctx.log(`crdt ${key}: ${joiner.name} starts and syncs ${opts.pins} pins`)
    const s0 = performance.now()
    cluster.startJoiner(joiner, p0)
    const pid = joiner.proc!.pid
    const rss = sampleRss(pid, 100)
    await cluster.waitReady(joiner, READY_TIMEOUT_MS)
    const ready = (performance.now() - s0) / 1000
    const rssReady = (await memoryOf(pid))?.rss ?? 0
    const added = logCounter(joiner.proc!.logPath, 'new pin added')
    let last = 0
    let lastLog = performance.now()
    const tSynced = await until(
      async () => {
        if (!joiner.proc!.running()) throw new Error(`${joiner.name} exited`)
        last = await added()
        if (performance.now() - lastLog > 30_000) {
          lastLog = performance.now()
          ctx.log(`crdt ${key}: ${joiner.name} has ${last} of ${opts.pins} pins`)
        }
        return last >= opts.pins
      },
      Math.max(1_200_000, opts.pins * 3),
      500,
    ).catch((err) => {
      throw new Error(
        `${joiner.name} logged ${last} of ${opts.pins} pins added: ${(err as Error).message}`,
      )
    })
    const rssPeak = await rss.stop()
    const synced = (tSynced - s0) / 1000
    ctx.log(`crdt ${key}: ${joiner.name} synced in ${synced.toFixed(1)} s`)
    const count = await cluster.countAllocations(joiner)
    r.sync = { ready, synced, count, rssReady, rssPeak }
    if (key === 'go') {
      r.sync.mergedLogged = await logCounter(joiner.proc!.logPath, 'merged delta from node')()
    }

    // The new peer lists all N pins.
    await waitIdle(pid, { share: 0.2, windowMs: 1000, timeoutMs: 300_000 })
    const before = (await memoryOf(pid))?.rss ?? 0
    const sampler = sampleRss(pid, 50)
    const l0 = performance.now()
    const lines = await cluster.countAllocations(joiner)
    const seconds = (performance.now() - l0) / 1000
    r.listing = { lines, seconds, rssBefore: before, rssPeak: await sampler.stop() }

    await cluster.stop(joiner, 60_000)
    r.sync.height = await crdtHeight(cluster, joiner)
  } finally {
    await cluster.close()
  }
}

const perSec = (n: number | undefined, s: number | undefined) =>
  n !== undefined && s ? n / s : undefined

/** The table rows of the CRDT measures. */
export function crdtRows(
  o: { pins: number; connections: number; batchSize: number; batchAge: string },
  r: Partial<Record<ImplKey, CrdtResult>>,
): Row[] {
  const both = (f: (x: CrdtResult) => number | undefined) => ({
    ours: r.ours ? f(r.ours) : undefined,
    go: r.go ? f(r.go) : undefined,
  })
  const batch = `batching ${o.batchSize}/${o.batchAge}`
  return [
    {
      measure: `CRDT 3 peers, ${batch}: ingest acknowledged, ${o.connections} clients (pins/s)`,
      ...both((x) => perSec(x.batched?.load.ok, x.batched?.load.seconds)),
    },
    {
      measure: `CRDT 3 peers, ${batch}: committed on all peers (pins/s)`,
      ...both((x) => perSec(x.batched?.load.ok, x.batched?.allSeconds)),
    },
    {
      measure: `CRDT 3 peers, unbatched: ingest acknowledged, ${o.connections} clients (pins/s)`,
      ...both((x) => perSec(x.unbatched?.load.ok, x.unbatched?.load.seconds)),
    },
    {
      measure: `CRDT 3 peers, unbatched: committed on all peers (pins/s)`,
      ...both((x) => perSec(x.unbatched?.load.ok, x.unbatched?.allSeconds)),
    },
    {
      measure: `CRDT state import, ${o.pins} pins, one founder (s)`,
      ...both((x) => x.importSeconds),
      digits: 1,
    },
    {
      measure: `CRDT ${o.pins}-pin state: DAG blocks (imported chain's height)`,
      ...both((x) => x.importHeight),
      digits: 0,
    },
    {
      measure: `CRDT new peer syncs ${o.pins} pins from 3 peers: READY (s)`,
      ...both((x) => x.sync?.ready),
      digits: 1,
    },
    {
      measure: `CRDT new peer syncs ${o.pins} pins from 3 peers: all pins in its state (s)`,
      ...both((x) => x.sync?.synced),
      digits: 1,
    },
    {
      measure: `CRDT new peer sync: cost per pin (µs; Go reported ${
        Math.round(GO_REPORTED_US_PER_PIN)
      } for 50M pins in 24 h)`,
      ...both((x) => x.sync && (x.sync.synced * 1e6) / o.pins),
      digits: 1,
    },
    {
      measure: `CRDT new peer sync: DAG blocks it holds (height)`,
      ...both((x) => x.sync?.height),
      digits: 0,
    },
    {
      measure: `CRDT new peer sync: RSS growth, READY → peak (MiB)`,
      ...both((x) => x.sync && (x.sync.rssPeak - x.sync.rssReady) / MiB),
      digits: 1,
    },
    {
      measure: `CRDT GET /allocations, ${o.pins} pins on the new peer (pins/s)`,
      ...both((x) =>
        x.listing && x.listing.lines === o.pins ? x.listing.lines / x.listing.seconds : undefined
      ),
    },
    {
      measure: `CRDT RSS added by that listing (MiB)`,
      ...both((x) => x.listing && (x.listing.rssPeak - x.listing.rssBefore) / MiB),
      digits: 1,
      // Flat: the single-peer listing's allowance (32 bytes a pin, 16 MiB floor).
      target: atMost(Math.max(16 * MiB, 32 * o.pins) / MiB, ' MiB'),
    },
  ]
}

/** Notes under the table: loads, per-peer commit times, counts, errors. */
export function crdtNotes(
  labels: Record<ImplKey, string>,
  pins: number,
  r: Partial<Record<ImplKey, CrdtResult>>,
): string[] {
  const out: string[] = []
  for (const [key, x] of Object.entries(r) as [ImplKey, CrdtResult][]) {
    const label = labels[key]
    for (const [what, i] of [['batched', x.batched], ['unbatched', x.unbatched]] as const) {
      if (!i) continue
      const l = i.load
      out.push(
        `note: ${label}: CRDT ${what} ingest: ${l.requests} requests, ${l.ok} ok, ${l.errors} errors, p50 ${
          l.p50ms.toFixed(2)
        } ms, p99 ${l.p99ms.toFixed(2)} ms; every pin on ${
          i.peers.map((p) => `${p.name} after ${p.seconds.toFixed(1)} s (${p.count})`).join(', ')
        }`,
      )
    }
    if (x.sync) {
      out.push(
        `note: ${label}: CRDT new peer: ${x.sync.count} of ${pins} pins listed once synced; RSS ${
          (x.sync.rssReady / MiB).toFixed(0)
        } MiB at READY, peak ${(x.sync.rssPeak / MiB).toFixed(0)} MiB${
          x.sync.mergedLogged !== undefined
            ? `; its log names ${x.sync.mergedLogged} merged delta nodes`
            : ''
        }`,
      )
    }
    if (x.listing) {
      out.push(
        `note: ${label}: CRDT listing on the new peer: ${x.listing.lines} lines in ${
          x.listing.seconds.toFixed(1)
        } s, RSS ${(x.listing.rssBefore / MiB).toFixed(0)} → ${
          (x.listing.rssPeak / MiB).toFixed(0)
        } MiB`,
      )
    }
    for (const e of x.errors) out.push(`error: ${label}: crdt ${e}`)
  }
  return out
}
