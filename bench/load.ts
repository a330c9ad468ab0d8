/**
 * The ingest load: `POST <base>/pins/<cid>` over `connections` keep-alive connections for a fixed
 * time, each request with the next distinct CID of a file. It uses `wrk` with a Lua script that
 * walks the file (≈125k req/s on these 2 cores, platform.md §6), so the client is not what limits
 * the figure; without wrk it falls back to a Deno fetch loop, which tops out near 8k req/s and
 * says so in `warning`.
 *
 * @example
 * ```ts
 * const r = await runLoad({ base: 'http://127.0.0.1:9094', cidFile, cids: 500_000, seconds: 10 })
 * console.log(r.ok / r.seconds, 'pins/s')
 * ```
 */
import { join } from 'node:path'
import { cpuSecondsOf } from './process.ts'

/** Options of runLoad. */
export interface LoadOptions {
  /** `http://host:port`; requests go to `<base>/pins/<cid>`. */
  base: string
  /** A file of CIDs, one a line. */
  cidFile: string
  /** Lines in cidFile (to tell whether the run had to reuse CIDs). */
  cids: number
  seconds: number
  connections?: number
  /** wrk threads; 1 leaves the other core to the server, as platform.md measured. */
  threads?: number
  /** Where the Lua script goes. */
  workDir: string
}

/** What a load run did. */
export interface LoadResult {
  tool: 'wrk' | 'deno-fetch'
  /** Responses received. */
  requests: number
  /** Responses with a 2xx status and no socket error. */
  ok: number
  /** Non-2xx responses plus socket errors (connect, read, write, timeout). */
  errors: number
  seconds: number
  p50ms: number
  p99ms: number
  /** True when more requests were sent than the file has CIDs (some CIDs were sent twice). */
  reused: boolean
  warning?: string
}

/** True when `wrk` is on PATH. */
export async function haveWrk(): Promise<boolean> {
  try {
    const out = await new Deno.Command('wrk', {
      args: ['--version'],
      stdout: 'null',
      stderr: 'null',
    })
      .output()
    // wrk --version prints its banner and exits 1.
    return out.code === 0 || out.code === 1
  } catch {
    return false
  }
}

/**
 * Installs wrk through apt-get when it is missing and we are root; returns whether wrk is there.
 * Runs before the bench enters its loopback-only network namespace (apt needs the network).
 */
export async function ensureWrk(log: (msg: string) => void): Promise<boolean> {
  if (await haveWrk()) return true
  if (Deno.uid?.() !== 0) return false
  log('wrk is missing: apt-get install -y wrk …')
  try {
    const out = await new Deno.Command('apt-get', {
      args: ['install', '-y', '-q', 'wrk'],
      stdout: 'null',
      stderr: 'piped',
      env: { DEBIAN_FRONTEND: 'noninteractive' },
    }).output()
    if (out.code !== 0) {
      log(`apt-get install wrk failed: ${new TextDecoder().decode(out.stderr).trim()}`)
    }
  } catch (err) {
    log(`apt-get not usable: ${(err as Error).message}`)
  }
  return await haveWrk()
}

// Each wrk thread takes every `threads`-th line, so no two threads send the same CID; `done`
// prints one JSON line the bench parses (wrk's own text output is for humans).
const LUA = `
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  cids = {}
  local nthreads = tonumber(args[2])
  local k = 0
  for line in io.lines(args[1]) do
    if k % nthreads == id then cids[#cids + 1] = line end
    k = k + 1
  end
  n = #cids
  i = 0
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("POST", "/pins/" .. cids[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

/** Runs the load; see LoadOptions. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (await haveWrk()) return await runWrk(opts)
  return await runFetchLoop(opts)
}

/**
 * Runs the load against the server process `pid` and reads its CPU time around it: the load, and
 * µs of the server's CPU per successful request (NaN when none succeeded).
 */
export async function runLoadOn(
  pid: number,
  opts: LoadOptions,
): Promise<{ load: LoadResult; cpuPerRequestUs: number }> {
  const cpu0 = await cpuSecondsOf(pid)
  const load = await runLoad(opts)
  const cpu = await cpuSecondsOf(pid) - cpu0
  return { load, cpuPerRequestUs: load.ok > 0 ? cpu * 1e6 / load.ok : NaN }
}

async function runWrk(opts: LoadOptions): Promise<LoadResult> {
  const script = join(opts.workDir, 'pins.lua')
  await Deno.writeTextFile(script, LUA)
  const threads = opts.threads ?? 1
  const out = await new Deno.Command('wrk', {
    args: [
      `-t${threads}`,
      `-c${opts.connections ?? 64}`,
      `-d${opts.seconds}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      `${opts.base}/`,
      '--',
      opts.cidFile,
      String(threads),
    ],
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const text = new TextDecoder().decode(out.stdout)
  const m = /BENCH_RESULT (\{.*\})/.exec(text)
  if (out.code !== 0 || !m) {
    throw new Error(`wrk failed (exit ${out.code}): ${text}${new TextDecoder().decode(out.stderr)}`)
  }
  const r = JSON.parse(m[1])
  const errors = r.status + r.connect + r.read + r.write + r.timeout
  return {
    tool: 'wrk',
    requests: r.requests,
    ok: Math.max(0, r.requests - r.status),
    errors,
    seconds: r.duration_us / 1e6,
    p50ms: r.p50_us / 1000,
    p99ms: r.p99_us / 1000,
    reused: r.requests > opts.cids,
  }
}

/** The fallback client: `connections` concurrent fetch loops. Slow; only used without wrk. */
async function runFetchLoop(opts: LoadOptions): Promise<LoadResult> {
  const cids = (await Deno.readTextFile(opts.cidFile)).split('\n').filter(Boolean)
  const latencies: number[] = []
  let next = 0
  let requests = 0
  let ok = 0
  const t0 = performance.now()
  const end = t0 + opts.seconds * 1000
  const worker = async () => {
    while (performance.now() < end) {
      const cid = cids[next++ % cids.length]
      const t = performance.now()
      try {
        const res = await fetch(`${opts.base}/pins/${cid}`, { method: 'POST' })
        await res.body?.cancel()
        requests++
        if (res.ok) ok++
      } catch {
        requests++
      }
      latencies.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: opts.connections ?? 64 }, worker))
  const seconds = (performance.now() - t0) / 1000
  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0
  return {
    tool: 'deno-fetch',
    requests,
    ok,
    errors: requests - ok,
    seconds,
    p50ms: pct(0.5),
    p99ms: pct(0.99),
    reused: requests > cids.length,
    warning: 'wrk not found: a Deno fetch loop drove the load and caps near 8k req/s on 2 cores; ' +
      'install wrk (apt-get install -y wrk) for figures that measure the server',
  }
}
