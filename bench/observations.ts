/**
 * `deno run -A bench/observations.ts` (or `deno task bench --observations`): what metrics and
 * tracing cost the ingest of one peer (issue 11's target: under 5 % when on, nothing when off).
 * `POST /pins/{cid}` with 64 connections for S seconds on a fresh peer beside the instant IPFS
 * double, in these modes, alternated over R rounds (the machine is noisy; the median is printed):
 *
 * - `off`: stats and tracing off (the default service.json);
 * - `stats`: `enable_stats` on, the endpoint scraped every second during the load, as
 *   Prometheus would;
 * - `stats+tracing`: stats on as above, and tracing on at service.json's default sampling
 *   (`sampling_prob` 0.3; `--sampling P` for another), exported over OTLP/HTTP to a sink in this
 *   process;
 * - `stats+tracing-all`: the same with every trace sampled (the worst case);
 * - `otel-only`: Deno's built-in OpenTelemetry on (`OTEL_DENO=true`, sampling as
 *   `stats+tracing`), the peer's spans and stats off: what Deno's own instrumentation of every
 *   request would cost (the reason the peer exports its spans itself, tracing.ts);
 *
 * - `dashboard`: stats and tracing off, a browser with the dashboard open (what its pins and
 *   metrics views fetch every 3 s, `dashboardPoller`); closed, it costs nothing (its page and
 *   assets are served only on request, and it holds no state in the peer);
 * - with `--baseline DIR`, `baseline`: the peer of another checkout (the tree before the
 *   instrumentation), to show that `off` costs nothing.
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of each peer there (`<mode>-<round>.cpuprofile`).
 *
 * @example
 * ```sh
 * deno run -A bench/observations.ts --seconds 10 --rounds 3
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { benchCid, writeCidFile } from './cids.ts'
import { type BenchContext, startDouble, waitWritable } from './harness.ts'
import { cleanEnv, configurePeer, freePort, implementations } from './peers.ts'
import { Processes } from './process.ts'
import { ensureWrk, runLoadOn } from './load.ts'
import { newClusterMetrics } from '../src/observations/metrics.ts'
import {
  disableTracing,
  enableTracing,
  rememberTrace,
  takeTrace,
  traced as tracedChild,
  tracedLeaf,
  tracedRoot,
  traceOperation,
} from '../src/observations/tracing.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A mode of the peer under load. */
export type ObservationsMode =
  | 'baseline'
  | 'off'
  | 'stats'
  | 'stats+tracing'
  | 'stats+tracing-all'
  | 'otel-only'
  | 'dashboard'

/** Every mode, in the order a run takes them (`baseline` only with `--baseline`). */
const MODES: readonly ObservationsMode[] = [
  'baseline',
  'off',
  'stats',
  'stats+tracing',
  'stats+tracing-all',
  'otel-only',
  'dashboard',
]

/** One ingest run. */
export interface ObservationsRun {
  mode: ObservationsMode
  pinsPerSec: number
  cpuPerPinUs: number
  scrapes: number
  spans: number
}

/** An OTLP/HTTP sink: accepts and counts what Deno exports (JSON or protobuf bodies). */
function otlpSink() {
  let requests = 0
  let bytes = 0
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: freePort(), onListen() {} },
    async (req) => {
      const b = await req.arrayBuffer()
      if (new URL(req.url).pathname === '/v1/traces') {
        requests++
        bytes += b.byteLength
      }
      return new Response(null, { status: 200 })
    },
  )
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stats: () => ({ requests, bytes }),
    stop: () => server.shutdown(),
  }
}

/**
 * What a browser with the dashboard open asks of the peer (src/api/rest/ui/assets.ts): the page,
 * its modules and a first page of pins, then every 3 s (the page's REFRESH_MS) the alert count and
 * the shown pins' statuses (the pins view) plus the metric names and the ping metrics (the metrics
 * view: both views' work, to err high). `done` counts each round of requests.
 */
async function dashboardPoller(base: string, signal: AbortSignal, done: () => void): Promise<void> {
  const get = async (path: string) => {
    const res = await fetch(base + path, { signal }).catch(() => undefined)
    return res?.ok ? await res.text().catch(() => '') : (await res?.body?.cancel(), '')
  }
  for (const p of ['/ui', '/ui/app.js', '/ui/graph.js', '/ui/style.css', '/id']) await get(p)
  while (!signal.aborted) {
    const page = await get('/ui/api/pins?limit=50')
    const cids = page ? (JSON.parse(page).pins as { cid: string }[]).map((p) => p.cid) : []
    await get('/health/alerts')
    if (cids.length) await get(`/pins?cids=${cids.join(',')}`)
    await get('/monitor/metrics')
    await get('/monitor/metrics/ping')
    done()
    await new Promise((r) => setTimeout(r, 3000))
  }
}

/** One run of `mode`: a fresh peer (new folder, new double), loaded for `seconds`. */
async function ingestRun(
  ctx: BenchContext,
  mode: ObservationsMode,
  seconds: number,
  round: number,
  cidFile: string,
  cids: number,
  sink: ReturnType<typeof otlpSink>,
  baseline?: string,
  sampling = 0.3,
  cpuProf?: string,
): Promise<ObservationsRun> {
  const base = mode === 'baseline' && baseline
  const impl = base ? implementations({ repo: base, goBin: '' }).ours : ctx.impls.ours
  const tracing = mode.startsWith('stats+tracing')
  const denoOtel = mode === 'otel-only'
  const tag = `${mode.replace('+', '-')}-${round}`
  const dir = join(ctx.workDir, `peer-${tag}`)
  await impl.init(dir)
  const ipfs = await startDouble(ctx, `ipfs-${tag}`)
  const ports = await configurePeer(dir, { ipfsApi: ipfs.api })
  const metricsPort = freePort()
  const cfgPath = join(dir, 'service.json')
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath))
  cfg.observations ??= {}
  cfg.observations.metrics = {
    ...cfg.observations.metrics,
    enable_stats: mode.startsWith('stats'),
    prometheus_endpoint: `/ip4/127.0.0.1/tcp/${metricsPort}`,
  }
  cfg.observations.tracing = {
    ...cfg.observations.tracing,
    enable_tracing: tracing,
    // Exported over OTLP/HTTP to the sink in this process; service.json's sampling, or every trace.
    sampling_prob: mode === 'stats+tracing-all' ? 1 : sampling,
    otlp_endpoint: sink.url,
  }
  await Deno.writeTextFile(cfgPath, JSON.stringify(cfg, null, 2) + '\n')
  const env = cleanEnv()
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k]
  if (denoOtel) {
    // Deno's built-in OpenTelemetry, which the peer does not use: what it would cost.
    Object.assign(env, {
      OTEL_DENO: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: String(sampling),
      OTEL_DENO_CONSOLE: 'ignore',
    })
  }
  const argv = impl.daemon(dir)
  // A V8 CPU profile of the peer, written when it exits (SIGTERM stops it cleanly).
  if (cpuProf) {
    argv.splice(
      2,
      0,
      '--cpu-prof',
      `--cpu-prof-dir=${cpuProf}`,
      `--cpu-prof-name=${tag}.cpuprofile`,
    )
  }
  const proc = ctx.procs.start(`peer-${tag}`, argv, { cwd: base || ctx.repo, env })
  const scraping = new AbortController()
  let scrapes = 0
  try {
    const peer = { impl, dir, rest: ports.rest, proc }
    await waitWritable(peer, benchCid(-1 - round), {
      since: performance.now(),
      timeoutMs: 120_000,
    })
    // A scraper as Prometheus runs it: one GET /metrics a second for the whole load; in the
    // dashboard mode, a browser with the dashboard open instead (dashboardPoller).
    const scraper = mode === 'dashboard'
      ? dashboardPoller(ports.rest, scraping.signal, () => scrapes++)
      : mode === 'off'
      ? Promise.resolve()
      : (async () => {
        while (!scraping.signal.aborted) {
          const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => undefined)
          if (res?.ok) scrapes++
          await res?.body?.cancel()
          await new Promise((r) => setTimeout(r, 1000))
        }
      })()
    const spans0 = sink.stats().requests
    const { load, cpuPerRequestUs: cpuPerPinUs } = await runLoadOn(proc.pid, {
      base: ports.rest,
      cidFile,
      cids,
      seconds,
      connections: 64,
      workDir: ctx.workDir,
    })
    scraping.abort()
    await scraper
    return {
      mode,
      pinsPerSec: load.ok / load.seconds,
      cpuPerPinUs,
      scrapes,
      spans: sink.stats().requests - spans0,
    }
  } finally {
    scraping.abort()
    await proc.stop()
    await ipfs.proc.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
}

/**
 * The samples one REST pin records with stats on, in this process: the HTTP request's counter and
 * histogram, the Raft proposal, the tracker operation's histogram, the IPFS pin counters, the
 * `pin/add` request's histogram, and the clock reads around them. Returns µs a pin, and ms a
 * scrape of the registry they filled (as /metrics renders it). The end-to-end runs cannot resolve
 * a few percent on a shared machine; this can.
 */
export function instrumentationCost(pins = 1_000_000): { usPerPin: number; msPerScrape: number } {
  const m = newClusterMetrics()
  let sink = 0
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      m.httpRequests.inc(1, 'restapi', '/pins/{hash}', 'POST', '200')
      m.httpDuration.observe((performance.now() - t0) / 1000, 'restapi', '/pins/{hash}')
      m.raftProposals.inc(1, 'ok')
      const t1 = performance.now()
      m.opDuration.observe((performance.now() - t1) / 1000, 'pin', 'ok')
      m.ipfsPinAdd.inc()
      m.ipfsPins.inc()
      const t2 = performance.now()
      m.ipfsRequestDuration.observe((performance.now() - t2) / 1000, 'pin/add')
      sink += t2
    }
  }
  run(50_000) // warm-up
  const t = performance.now()
  run(pins)
  const usPerPin = (performance.now() - t) * 1000 / pins
  const s = performance.now()
  for (let i = 0; i < 20; i++) sink += m.registry.render().length
  if (sink === 0) throw new Error('unreachable')
  return { usPerPin, msPerScrape: (performance.now() - s) / 20 }
}

/**
 * What tracing adds to one pin in this process: the spans of a REST pin (REST → cluster/Pin →
 * consensus/LogPin, the context left for the tracker, pintracker/Pin → ipfsconn/Pin) around empty
 * steps, against the same steps untraced, at `sampling`; spans are encoded and handed to a fetch
 * that answers at once. Returns µs a pin.
 */
export async function tracingCost(sampling: number, pins = 200_000): Promise<number> {
  const fakeFetch = (() => Promise.resolve(new Response('{}'))) as typeof fetch
  const cids = Array.from({ length: 4096 }, (_, i) => benchCid(i))
  const step = () => Promise.resolve()
  const traced = async (cid: string) => {
    await tracedRoot(
      'restapi POST /pins/{hash}',
      cid,
      null,
      () =>
        tracedChild('cluster/Pin', cid, async () => {
          rememberTrace(cid)
          await tracedLeaf('consensus/LogPin', cid, step)
        }),
    )
    await traceOperation(
      takeTrace(cid),
      'pintracker/Pin',
      cid,
      () => tracedLeaf('ipfsconn/Pin', cid, step),
    )
  }
  const plain = async () => {
    await (async () => await (async () => await step())())()
    await (async () => await step())()
  }
  const time = async (fn: (cid: string) => Promise<void>, n: number) => {
    const t = performance.now()
    for (let i = 0; i < n; i++) await fn(cids[i & 4095])
    return (performance.now() - t) * 1000 / n
  }
  enableTracing({
    url: 'http://127.0.0.1:9/v1/traces',
    serviceName: 'bench',
    sampling,
    fetch: fakeFetch,
  })
  try {
    await time(traced, 20_000) // warm-up
    await time(plain, 20_000)
    const a = await time(plain, pins)
    const b = await time(traced, pins)
    const c = await time(plain, pins)
    return b - (a + c) / 2
  } finally {
    await disableTracing()
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Runs every mode `rounds` times (alternated) and returns the lines to print. */
export async function runObservationsBench(
  ctx: BenchContext,
  opts: {
    seconds: number
    rounds: number
    baseline?: string
    modes?: ObservationsMode[]
    /** sampling_prob of the stats+tracing mode (default 0.3, service.json's). */
    sampling?: number
    /** A folder for a V8 CPU profile of each peer (`<mode>-<round>.cpuprofile`). */
    cpuProf?: string
  },
): Promise<{ lines: string[]; runs: ObservationsRun[] }> {
  await ensureWrk(ctx.log)
  const cidFile = join(ctx.workDir, 'observations-cids.txt')
  const cids = 2_000_000
  await writeCidFile(cidFile, 20_000_000, cids)
  const sink = otlpSink()
  const runs: ObservationsRun[] = []
  const modes: ObservationsMode[] = opts.modes ??
    MODES.filter((m) => m !== 'baseline' || opts.baseline)
  if (!modes.includes('off')) modes.unshift('off') // the reference of every other figure
  try {
    for (let r = 0; r < opts.rounds; r++) {
      for (const mode of r % 2 ? [...modes].reverse() : modes) {
        const run = await ingestRun(
          ctx,
          mode,
          opts.seconds,
          r,
          cidFile,
          cids,
          sink,
          opts.baseline,
          opts.sampling,
          opts.cpuProf,
        )
        ctx.log(
          `${mode}: ${run.pinsPerSec.toFixed(0)} pins/s, ${
            run.cpuPerPinUs.toFixed(0)
          } µs CPU a pin` +
            ` (${run.scrapes} scrapes, ${run.spans} OTLP exports)`,
        )
        runs.push(run)
      }
    }
  } finally {
    await sink.stop()
  }
  const of = (m: ObservationsMode) => runs.filter((x) => x.mode === m)
  const off = median(of('off').map((x) => x.pinsPerSec))
  const offCpu = median(of('off').map((x) => x.cpuPerPinUs))
  const pct = (v: number, ref: number) =>
    `${v >= ref ? '+' : ''}${((v / ref - 1) * 100).toFixed(1)} %`
  const lines = [
    `observations: REST ingest, ${opts.seconds} s, 64 connections, median of ${opts.rounds} ` +
    "(pins/s; the peer's CPU a pin, steadier than pins/s on a shared machine)",
  ]
  const micro = instrumentationCost()
  lines.push(
    `  in-process: stats on add ${micro.usPerPin.toFixed(2)} µs a pin ` +
      `(${(micro.usPerPin / offCpu * 100).toFixed(2)} % of off's ${
        offCpu.toFixed(0)
      } µs CPU a pin); ` +
      `a scrape renders in ${micro.msPerScrape.toFixed(2)} ms`,
  )
  const sampled = opts.sampling ?? 0.3
  const t1 = await tracingCost(sampled)
  const tAll = await tracingCost(1)
  lines.push(
    `  in-process: tracing adds ${t1.toFixed(2)} µs a pin at sampling ${sampled} ` +
      `(${(t1 / offCpu * 100).toFixed(2)} %), ${tAll.toFixed(2)} µs at 1 ` +
      `(${(tAll / offCpu * 100).toFixed(2)} %)`,
  )
  for (const m of modes) {
    const rs = of(m)
    const pps = median(rs.map((x) => x.pinsPerSec))
    const cpu = median(rs.map((x) => x.cpuPerPinUs))
    const vs = m === 'off' ? '' : ` (${pct(pps, off)})`
    const cpuVs = m === 'off' ? '' : ` (${pct(cpu, offCpu)})`
    lines.push(
      `  ${m.padEnd(18)} ${pps.toFixed(0).padStart(6)} pins/s${vs}, ${
        cpu.toFixed(0)
      } µs CPU a pin` +
        `${cpuVs} [runs: ${rs.map((x) => x.pinsPerSec.toFixed(0)).join(', ')}]`,
    )
  }
  return { lines, runs }
}

/** `--seconds S --rounds R [--modes a,b] [--baseline DIR] [--sampling P] [--cpu-prof DIR] --keep`; prints the figures; returns the exit code. */
export async function observationsMain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      baseline: { type: 'string' },
      modes: { type: 'string' },
      sampling: { type: 'string', default: '0.3' },
      keep: { type: 'boolean' },
      'cpu-prof': { type: 'string' },
    },
  })
  const seconds = Number(values.seconds)
  const rounds = Number(values.rounds)
  if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error('--seconds must be > 0 and --rounds an integer >= 1')
  }
  const log = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`)
  const workDir = await Deno.makeTempDir({ prefix: 'ipfs-cluster-bench-observations-' })
  await Deno.mkdir(join(workDir, 'logs'))
  const procs = new Processes(join(workDir, 'logs'))
  const impls = implementations({ repo: REPO, goBin: '' })
  const ctx: BenchContext = { repo: REPO, workDir, procs, impls, log }
  try {
    const sampling = Number(values.sampling)
    if (!(sampling >= 0 && sampling <= 1)) throw new Error('--sampling must be between 0 and 1')
    const modes = values.modes?.split(',') as ObservationsMode[] | undefined
    const bad = modes?.find((m) => !MODES.includes(m))
    if (bad) throw new Error(`--modes: unknown mode ${bad} (known: ${MODES.join(', ')})`)
    if (modes?.includes('baseline') && !values.baseline) {
      throw new Error('baseline needs --baseline DIR')
    }
    const { lines } = await runObservationsBench(ctx, {
      seconds,
      rounds,
      baseline: values.baseline,
      modes,
      sampling,
      cpuProf: values['cpu-prof'],
    })
    console.log(lines.join('\n'))
    return 0
  } finally {
    await procs.stopAll()
    if (values.keep) log(`work folder kept: ${workDir}`)
    else await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) Deno.exit(await observationsMain(Deno.args))
