/**
 * `deno run -A bench/pinsvc.ts`: the Pinning Service API over a large pinset (issue 9's target:
 * `GET /pins?limit=1000` pages over 1,000,000 pins at a constant time per page). One of our peers,
 * its state imported offline with N pins each holding one Pinning Service request (a record with
 * its own `created`, 1 ms apart), beside the instant IPFS double holding every pin. Printed:
 *
 * - the first start after the import: serving, the first page (which waits for the index of
 *   requests to be built from the pinset), and when the peer is idle (the tracker's sync of the
 *   pinset and the index's checkpoints done; the pages below are measured from then on);
 * - a page of 1,000 at the start, the middle and the end of the listing (`before` = the created
 *   of request N/2, of request 1,000), median of 5, each with its `count`;
 * - two walks of 20 pages as Kubo's client pages (`before` = the oldest of the last page), from
 *   the start and from the middle: per-page median and max;
 * - the first page after a clean restart (the index is trusted) and after `kill -9` (rebuilt);
 * - the index's part of a page alone (its 1,000 entries and the count), in this process over the
 *   stopped peer's database, at the start, middle and end;
 * - with `--ingest S`: `POST /pins/{cid}` ingest for S seconds on a fresh peer with and without
 *   the API (what following the apply hooks costs).
 *
 * Every page is a real HTTP request to the daemon, statuses included (1,000 `Cluster.Status`, 32
 * at a time, against the double).
 *
 * @example
 * ```sh
 * deno run -A bench/pinsvc.ts                      # 1,000,000 pins (~3 min on 2 cores)
 * deno run -A bench/pinsvc.ts --pins 100000 --ingest 10
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { benchCid, writeCidFile } from './cids.ts'
import {
  type BenchContext,
  spawnDaemon,
  startDouble,
  waitServing,
  waitWritable,
} from './harness.ts'
import { configurePeer, freePort, implementations } from './peers.ts'
import { type Proc, Processes, waitIdle } from './process.ts'
import { ensureWrk, runLoadOn } from './load.ts'
import { encodePin, newPin, storedPin } from '../src/types/pin.ts'
import { formatMicros } from '../src/api/pinsvc/records.ts'
import { requestIndex } from '../src/api/pinsvc/index.ts'
import { kvState } from '../src/state/kv_state.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')
const READY_TIMEOUT_MS = 600_000
/** Created of request 0 (µs); request i is i ms later. */
const T0_US = Date.UTC(2025, 0, 1) * 1000
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/** The created (µs) of bench request i. */
const createdOf = (i: number) => T0_US + i * 1000

/** A request id of the API's shape (26 base32 characters), from i. */
function requestId(i: number): string {
  let s = ''
  for (let n = i; n > 0; n = Math.floor(n / 32)) s = ALPHABET[n % 32] + s
  return ('r' + s).padStart(26, 'a')
}

/** `state import` NDJSON: pin i holds request i (a record in its metadata). */
async function writePins(path: string, n: number): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true })
  const enc = new TextEncoder()
  try {
    let chunk = ''
    for (let i = 0; i < n; i++) {
      const record = JSON.stringify({ created: formatMicros(createdOf(i)), name: `request-${i}` })
      const pin = newPin(benchCid(i), {
        replication_factor_min: -1,
        replication_factor_max: -1,
        name: `request-${i}`,
        metadata: { [`pinsvc/${requestId(i)}`]: record },
      })
      pin.timestamp = '2025-01-01T00:00:00Z'
      chunk += encodePin(storedPin(pin)) + '\n'
      if (chunk.length > 1 << 20) {
        await f.write(enc.encode(chunk))
        chunk = ''
      }
    }
    await f.write(enc.encode(chunk))
  } finally {
    f.close()
  }
}

/** Adds `api.pinsvcapi` on a free port to a configured peer (configurePeer keeps REST only). */
async function enablePinSvc(dir: string): Promise<string> {
  const path = join(dir, 'service.json')
  const cfg = JSON.parse(await Deno.readTextFile(path))
  const port = freePort()
  cfg.api.pinsvcapi = { http_listen_multiaddress: `/ip4/127.0.0.1/tcp/${port}` }
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2) + '\n')
  return `http://127.0.0.1:${port}`
}

interface Page {
  ms: number
  count: number
  results: number
  oldest?: string
}

/** One `GET /pins?limit=1000`, timed to its last byte. */
async function page(svc: string, before?: string, timeoutMs = 60_000): Promise<Page> {
  const q = new URLSearchParams({ limit: '1000' })
  if (before) q.set('before', before)
  const t0 = performance.now()
  const res = await fetch(`${svc}/pins?${q}`, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  const ms = performance.now() - t0
  if (res.status !== 200) throw new Error(`GET /pins: ${res.status} ${text}`)
  const body = JSON.parse(text) as { count: number; results: { created: string }[] }
  return {
    ms,
    count: body.count,
    results: body.results.length,
    oldest: body.results.at(-1)?.created,
  }
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms: number) => `${ms.toFixed(0)} ms`

/** Five pages with the same `before`: the median, the count and the page's length. */
async function repeated(svc: string, before?: string) {
  const runs: Page[] = []
  for (let i = 0; i < 5; i++) runs.push(await page(svc, before))
  return { ms: median(runs.map((r) => r.ms)), count: runs[0].count, results: runs[0].results }
}

/** `pages` pages as Kubo's client walks them, from `before`. */
async function walk(svc: string, pages: number, before?: string) {
  const times: number[] = []
  let cursor = before
  for (let i = 0; i < pages; i++) {
    const p = await page(svc, cursor)
    times.push(p.ms)
    if (p.results < 1000) break
    cursor = p.oldest
  }
  return { median: median(times), max: Math.max(...times), pages: times.length }
}

/** Seconds from `since` until the first page answers (waiting for the index, if it builds). */
async function firstPage(svc: string, proc: Proc, since: number): Promise<number> {
  for (;;) {
    if (!proc.running()) throw new Error(`daemon exited:\n${await proc.tail()}`)
    try {
      await page(svc, undefined, READY_TIMEOUT_MS)
      return (performance.now() - since) / 1000
    } catch (err) {
      if (performance.now() - since > READY_TIMEOUT_MS) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/**
 * REST ingest pins/s on a fresh peer, with the Pinning Service API (and its index) or not; with
 * it, also the seconds after the load until the index holds every pin (it steps aside while the
 * peer serves, and catches up after).
 */
async function ingest(
  ctx: BenchContext,
  seconds: number,
  withApi: boolean,
): Promise<{ pinsPerSec: number; cpuPerPinUs: number; catchUp?: number }> {
  const impl = ctx.impls.ours
  const dir = join(ctx.workDir, `ingest-${withApi ? 'with' : 'without'}`)
  await impl.init(dir)
  const ipfs = await startDouble(ctx, `ingest-ipfs-${withApi}`)
  const ports = await configurePeer(dir, { ipfsApi: ipfs.api })
  const svc = withApi ? await enablePinSvc(dir) : undefined
  const proc = spawnDaemon(ctx, impl, dir, `ingest-${withApi}`)
  try {
    const peer = { impl, dir, rest: ports.rest, proc }
    await waitWritable(peer, benchCid(-1), { since: performance.now(), timeoutMs: 120_000 })
    const cidFile = join(ctx.workDir, 'ingest-cids.txt')
    const cids = 2_000_000
    if (!(await Deno.stat(cidFile).then(() => true, () => false))) {
      await writeCidFile(cidFile, 10_000_000, cids)
    }
    const { load, cpuPerRequestUs: cpuPerPinUs } = await runLoadOn(proc.pid, {
      base: ports.rest,
      cidFile,
      cids,
      seconds,
      connections: 64,
      workDir: ctx.workDir,
    })
    const pinsPerSec = load.ok / load.seconds
    if (!svc) return { pinsPerSec, cpuPerPinUs }
    // Every pin committed (the load's and the one that found the peer writable), in the index.
    const since = performance.now()
    const committed = load.ok + 1
    for (;;) {
      // One small request every half second: a busier poll would keep the index stepping aside.
      const res = await fetch(`${svc}/pins?limit=1`)
      const { count } = await res.json() as { count: number }
      if (count >= committed) break
      if (performance.now() - since > READY_TIMEOUT_MS) throw new Error('the index never caught up')
      await new Promise((r) => setTimeout(r, 500))
    }
    return { pinsPerSec, cpuPerPinUs, catchUp: (performance.now() - since) / 1000 }
  } finally {
    await proc.stop()
    await ipfs.proc.stop()
  }
}

/** The listing measures over `n` pins (see the module comment). */
async function listingMeasures(ctx: BenchContext, n: number, say: (line: string) => void) {
  const { workDir, impls, log } = ctx
  log(`writing ${n} pins, each holding one request`)
  const pinsFile = join(workDir, 'pins.ndjson')
  const cidFile = join(workDir, 'cids.txt')
  await writePins(pinsFile, n)
  await writeCidFile(cidFile, 0, n)
  const dir = join(workDir, 'peer')
  await impls.ours.init(dir)
  say(`state import, ${n} pins: ${(await impls.ours.importState(dir, pinsFile)).toFixed(1)} s`)
  const ipfs = await startDouble(ctx, 'pinsvc-ipfs', cidFile)
  const ports = await configurePeer(dir, { ipfsApi: ipfs.api })
  const svc = await enablePinSvc(dir)

  let since = performance.now()
  let proc = spawnDaemon(ctx, impls.ours, dir, 'pinsvc-daemon')
  const peer = () => ({ impl: impls.ours, dir, rest: ports.rest, proc })
  const ready = await waitServing(peer(), benchCid(n - 1), { since, timeoutMs: READY_TIMEOUT_MS })
  say(`first start: serving after ${Math.max(ready.id, ready.allocation).toFixed(1)} s`)
  say(
    `first start: first page after ${
      (await firstPage(svc, proc, since)).toFixed(1)
    } s (index built)`,
  )

  // The start-up work (the tracker's sync of the pinset, the index's checkpoints) done first.
  const idle = await waitIdle(proc.pid, { timeoutMs: 300_000 })
  say(
    `first start: idle ${idle.seconds.toFixed(1)} s later${idle.settled ? '' : ' (not settled)'}`,
  )
  const at = (i: number) => formatMicros(createdOf(i))
  const start = await repeated(svc)
  const middle = await repeated(svc, at(n / 2))
  const end = await repeated(svc, at(1000))
  say(
    `page of 1000 at the start:  ${fmt(start.ms)} (count ${start.count}, ${start.results} results)`,
  )
  say(
    `page of 1000 at the middle: ${
      fmt(middle.ms)
    } (count ${middle.count}, ${middle.results} results)`,
  )
  say(`page of 1000 at the end:    ${fmt(end.ms)} (count ${end.count}, ${end.results} results)`)
  if (start.count !== n || middle.count !== n / 2 || end.count !== 1000) {
    throw new Error('wrong counts')
  }
  const w1 = await walk(svc, 20)
  const w2 = await walk(svc, 20, at(n / 2))
  say(`20 pages walked from the start:  median ${fmt(w1.median)}, max ${fmt(w1.max)}`)
  say(`20 pages walked from the middle: median ${fmt(w2.median)}, max ${fmt(w2.max)}`)

  await proc.stop()
  since = performance.now()
  proc = spawnDaemon(ctx, impls.ours, dir, 'pinsvc-restart')
  say(`clean restart: first page after ${(await firstPage(svc, proc, since)).toFixed(1)} s`)
  Deno.kill(proc.pid, 'SIGKILL')
  await proc.exited
  since = performance.now()
  proc = spawnDaemon(ctx, impls.ours, dir, 'pinsvc-kill9')
  say(
    `restart after kill -9: first page after ${
      (await firstPage(svc, proc, since)).toFixed(1)
    } s (index checked against the pinset)`,
  )
  await proc.stop()
  await ipfs.proc.stop()
  await indexAlone(join(dir, 'raft', 'state.kv'), n, say)
}

/**
 * The index's part of a page, in this process over the stopped peer's database (its clean stop
 * left the index trusted and its checkpoints saved): the 1,000 entries of a page and its count,
 * without the pins, statuses and HTTP of a real page.
 */
async function indexAlone(path: string, n: number, say: (line: string) => void) {
  const kv = await Deno.openKv(path)
  const state = kvState(kv)
  const index = requestIndex({ kv, state, appliedIndex: () => state.appliedIndex() })
  try {
    const t0 = performance.now()
    await index.open()
    await index.ready()
    if (!index.ranksReady()) throw new Error('the checkpoints were not saved at the clean stop')
    const opened = performance.now() - t0
    const time = async (before?: number) => {
      const runs: number[] = []
      let count = 0
      for (let r = 0; r < 5; r++) {
        const t = performance.now()
        let k = 0
        for await (const _ of index.list({ before })) if (++k >= 1000) break
        count = await index.countRange({ before })
        runs.push(performance.now() - t)
      }
      return `${median(runs).toFixed(1)} ms (count ${count})`
    }
    say(`index alone: opened in ${fmt(opened)}; 1000 entries and the count of a page`)
    say(
      `  at the start ${await time()}, the middle ${await time(createdOf(n / 2))}, ` +
        `the end ${await time(createdOf(1000))}`,
    )
  } finally {
    await index.stop()
    kv.close()
  }
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      pins: { type: 'string', default: '1000000' },
      ingest: { type: 'string' },
      'ingest-only': { type: 'boolean' },
      keep: { type: 'boolean' },
    },
  })
  const n = Number(values.pins)
  if (!Number.isInteger(n) || n < 3000) throw new Error('--pins: at least 3000')
  const log = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`)
  const workDir = await Deno.makeTempDir({ prefix: 'ipfs-cluster-bench-pinsvc-' })
  await Deno.mkdir(join(workDir, 'logs'))
  const procs = new Processes(join(workDir, 'logs'))
  const impls = implementations({ repo: REPO, goBin: '' })
  const ctx: BenchContext = { repo: REPO, workDir, procs, impls, log }
  const out: string[] = []
  const say = (line: string) => {
    out.push(line)
    log(line)
  }
  try {
    if (!values['ingest-only']) await listingMeasures(ctx, n, say)
    if (values.ingest) {
      const seconds = Number(values.ingest)
      await ensureWrk(log)
      const without = await ingest(ctx, seconds, false)
      const withApi = await ingest(ctx, seconds, true)
      say(
        `REST ingest, ${seconds} s, 64 connections: ${without.pinsPerSec.toFixed(0)} pins/s ` +
          `(${without.cpuPerPinUs.toFixed(0)} µs of CPU a pin) without the API, ` +
          `${withApi.pinsPerSec.toFixed(0)} (${withApi.cpuPerPinUs.toFixed(0)} µs) with it; ` +
          `its index holds every pin ${withApi.catchUp!.toFixed(1)} s after the load`,
      )
    }
    console.log(out.join('\n'))
  } finally {
    await procs.stopAll()
    if (values.keep) log(`work folder kept: ${workDir}`)
    else await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) await main()
