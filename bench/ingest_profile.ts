/**
 * Where our daemon's CPU per pin goes under the bench's ingest load: the ingest measure of
 * bench/measures.ts (a fresh peer, the instant IPFS double, `wrk` posting distinct CIDs over 64
 * connections) with the daemon under V8's sampling profiler (`deno run --cpu-prof`).
 *
 * Prints the CPU per pin of the daemon's threads (from /proc: the JS thread, Deno KV's SQLite
 * writer, V8's helpers) and of the IPFS double, then the JS thread's samples of the load window
 * by component — each sample is charged to the innermost frame of our own code on its stack
 * (helpers in src/types, src/util and src/errors.ts charge their caller), so time spent inside
 * Deno (fetch, KV, the HTTP server) counts for the component that asked for it — scaled to the
 * thread's measured CPU, and the top functions by self time.
 *
 * The profiler costs CPU itself (its own thread, and signals to the JS thread), so pins/s here is
 * below the bench's; compare shares, and µs/pin between runs of this tool.
 *
 * @example
 * ```sh
 * deno run -A bench/ingest_profile.ts                              # 10 s, 64 connections
 * deno run -A bench/ingest_profile.ts --seconds 5 --keep /tmp/prof # keep the .cpuprofile
 * deno run -A bench/ingest_profile.ts --read /tmp/prof/CPU.….cpuprofile   # summarize a saved one
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { benchCid, writeCidFile } from './cids.ts'
import { type BenchContext, startDouble, startPeer, waitWritable } from './harness.ts'
import { runLoad } from './load.ts'
import { implementations } from './peers.ts'
import { cpuSecondsOf, Processes } from './process.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')

/** One node of a V8 .cpuprofile. */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/** A V8 .cpuprofile (what `--cpu-prof` writes). */
export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** The repository path of a frame's script, or undefined for Deno's own and npm modules. */
function ownPath(url: string): string | undefined {
  if (!url.startsWith('file://') || url.includes('/node_modules/')) return undefined
  return fileURLToPath(url).slice(REPO.length + 1)
}

/** Helpers whose time belongs to whoever called them. */
const HELPERS = /^src\/(types\/|util\/|errors\.ts)/

/** The component of a file of ours. */
function componentOf(path: string): string {
  const rules: [RegExp, string][] = [
    [/^src\/api\/common\/(http_api|access_log|cors|auth|router|listen)\.ts/, 'HTTP pipeline'],
    [/^src\/api\//, 'REST routes and answers'],
    [/^src\/cluster\.ts/, 'cluster.pin'],
    [/^src\/state\//, 'cluster.pin'],
    [/^src\/consensus\/raft\/core\//, 'Raft core'],
    [/^src\/consensus\/raft\/(kv_|fsm)/, 'Raft storage and apply (KV commit)'],
    [/^src\/consensus\//, 'Raft host'],
    [/^src\/pintracker\//, 'tracker'],
    [/^src\/ipfsconn\//, 'IPFS calls'],
    [/^src\/daemon/, 'apply hooks (daemon)'],
    [/^src\/util\/log\.ts/, 'logging'],
  ]
  for (const [re, name] of rules) if (re.test(path)) return name
  return `other (${path})`
}

/** What a sample with no frame of ours on its stack is, by its own frame. */
function nativeOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC'
  if (fn === '(idle)') return 'idle'
  if (fn === '(program)') return 'runtime (V8/Deno, no JS frame)'
  if (url.startsWith('ext:deno_http') || fn.startsWith('op_http')) {
    return 'HTTP server (Deno, no JS caller)'
  }
  if (
    url.startsWith('ext:deno_fetch') || url.startsWith('ext:deno_web') ||
    fn.startsWith('op_fetch') || fn.startsWith('op_readable_stream')
  ) return 'fetch and streams (Deno, no JS caller)'
  return 'runtime (other)'
}

/** Self time (µs) per node id, over the samples whose time falls in [from, to] (µs). */
function selfTimes(p: CpuProfile, from: number, to: number): Map<number, number> {
  const self = new Map<number, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    if (t < from || t > to) continue
    // The time until the next sample is what this one stands for.
    const d = Math.max(0, p.timeDeltas[i + 1] ?? 0)
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + d)
  }
  return self
}

/**
 * The load window of a profile: the longest run of 100 ms bins in which the thread is busy at
 * least a third of the time, with up to three quieter bins inside it (main() leaves a second of
 * quiet between start-up and the load).
 */
function loadWindow(p: CpuProfile): [number, number] {
  const idle = new Set(
    p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id),
  )
  const BIN = 100_000
  const busy: number[] = []
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    const b = Math.floor((t - p.startTime) / BIN)
    while (busy.length <= b) busy.push(0)
    if (!idle.has(p.samples[i])) busy[b] += Math.max(0, p.timeDeltas[i + 1] ?? 0)
  }
  let best: [number, number] = [0, busy.length]
  let bestLen = 0
  let start = -1
  let last = -1
  for (let b = 0; b <= busy.length; b++) {
    if (b < busy.length && busy[b] >= BIN / 3) {
      if (start < 0) start = b
      last = b
    } else if (start >= 0 && b - last > 3) {
      if (last + 1 - start > bestLen) {
        best = [start, last + 1]
        bestLen = last + 1 - start
      }
      start = -1
    }
  }
  if (start >= 0 && last + 1 - start > bestLen) best = [start, last + 1]
  return [p.startTime + best[0] * BIN, p.startTime + best[1] * BIN]
}

/**
 * The profile's tables. With `pins` and `cpuUsPerPin` (the JS thread's measured CPU per pin),
 * shares are also shown as µs of that CPU per pin.
 */
export function summarize(p: CpuProfile, pins?: number, cpuUsPerPin?: number): string {
  const [from, to] = loadWindow(p)
  const self = selfTimes(p, from, to)
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const componentOfNode = (id: number): string => {
    let helper: string | undefined
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const path = ownPath(byId.get(cur)!.callFrame.url)
      if (path === undefined) continue
      if (!HELPERS.test(path)) return componentOf(path)
      helper ??= path
    }
    if (helper) return componentOf(helper)
    const f = byId.get(id)!.callFrame
    return nativeOf(f.url, f.functionName)
  }
  let total = 0
  let busy = 0
  const components = new Map<string, number>()
  const fns = new Map<string, number>()
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame
    const c = componentOfNode(id)
    total += us
    if (c === 'idle') continue
    busy += us
    components.set(c, (components.get(c) ?? 0) + us)
    const where = ownPath(f.url) ?? f.url.replace(/^.*\/node_modules\/\.deno\//, 'npm:')
    const key = `${f.functionName || '(anonymous)'}${where ? ` ${where}:${f.lineNumber + 1}` : ''}`
    fns.set(key, (fns.get(key) ?? 0) + us)
  }
  const perPin = (us: number) => {
    if (!pins) return ''
    if (cpuUsPerPin) return (cpuUsPerPin * us / busy).toFixed(1).padStart(7)
    return (us / pins).toFixed(1).padStart(7)
  }
  const out: string[] = []
  out.push(
    `JS thread, load window ${((to - from) / 1e6).toFixed(1)} s: busy in ${
      (100 * busy / total).toFixed(0)
    }% of the samples`,
  )
  out.push('')
  const unit = cpuUsPerPin ? 'µs CPU/pin' : pins ? 'µs sampled/pin' : ''
  out.push(`${'component'.padEnd(40)}  share  ${unit}`)
  for (const [c, us] of [...components].sort((x, y) => y[1] - x[1])) {
    out.push(`${c.padEnd(40)} ${(100 * us / busy).toFixed(1).padStart(5)}%  ${perPin(us)}`)
  }
  out.push('')
  out.push('top functions by self time (share of busy samples)')
  for (const [f, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, 30)) {
    out.push(`${(100 * us / busy).toFixed(1).padStart(5)}%  ${f}`)
  }
  return out.join('\n')
}

/** CPU seconds of each thread of `pid` by name (threads of one name summed; the JS thread is `main`). */
export async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const s = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/stat`)
      const name = Number(e.name) === pid ? 'main' : s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100)
    } catch {
      // the thread ended
    }
  }
  return out
}

/** A profiling run's folders, processes and bench context; our daemon runs under the profiler. */
export interface ProfilingRun {
  workDir: string
  /** Where the daemon writes its .cpuprofile (`keep`, or inside workDir). */
  profDir: string
  procs: Processes
  impls: ReturnType<typeof implementations>
  /** Our daemon's command without the profiler. */
  plainDaemon: (dir: string) => string[]
  ctx: BenchContext
}

/**
 * Sets up a profiling run named `name`: a work folder (removed by the caller unless `keep`), logs,
 * and our daemon started with `--cpu-prof` (unless `profile` is false).
 */
export async function profilingRun(
  name: string,
  keep: string | undefined,
  profile = true,
): Promise<ProfilingRun> {
  const workDir = await Deno.makeTempDir({ prefix: `ipfs-cluster-${name}-profile-` })
  const profDir = keep ?? join(workDir, 'prof')
  await Deno.mkdir(profDir, { recursive: true })
  await Deno.mkdir(join(workDir, 'logs'))
  const procs = new Processes(join(workDir, 'logs'))
  const impls = implementations({ repo: REPO, goBin: 'ipfs-cluster-service' })
  const plainDaemon = impls.ours.daemon
  impls.ours.daemon = (dir) => {
    const argv = plainDaemon(dir) // [deno, 'run', …]: the profiler's flags go after `run`
    if (profile) argv.splice(2, 0, '--cpu-prof', `--cpu-prof-dir=${profDir}`)
    return argv
  }
  const log = (m: string) => console.error(`[profile] ${m}`)
  const ctx: BenchContext = { repo: REPO, workDir, procs, impls, log }
  return { workDir, profDir, procs, impls, plainDaemon, ctx }
}

/** The newest .cpuprofile in `dir` (the daemon writes it at exit). */
export function latestProfile(dir: string): string {
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith('.cpuprofile'))
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`)
  return join(dir, files.map((e) => e.name).sort().at(-1)!)
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '64' },
      keep: { type: 'string' },
      read: { type: 'string' },
    },
  })
  if (values.read) {
    console.log(summarize(JSON.parse(await Deno.readTextFile(values.read))))
    return 0
  }
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const { workDir, profDir, procs, impls, ctx } = await profilingRun('ingest', values.keep)
  const cids = seconds * 20_000
  const cidFile = join(workDir, 'cids.txt')
  await writeCidFile(cidFile, 0, cids)
  try {
    // measureIngest's steps, with the CPU of every thread read around the load.
    const dir = join(workDir, 'peer')
    await impls.ours.init(dir)
    const ipfs = await startDouble(ctx, 'ipfs')
    const peer = await startPeer(ctx, impls.ours, dir, ipfs.api, 'ours-ingest')
    await waitWritable(peer, benchCid(-1), { since: performance.now(), timeoutMs: 120_000 })
    // A second of quiet, so that the load stands apart from start-up in the profile.
    await new Promise((r) => setTimeout(r, 1000))
    const threads0 = await threadCpu(peer.proc.pid)
    const ipfs0 = await cpuSecondsOf(ipfs.proc.pid)
    const load = await runLoad({ cidFile, cids, seconds, connections, base: peer.rest, workDir })
    const threads = await threadCpu(peer.proc.pid)
    const ipfsCpu = await cpuSecondsOf(ipfs.proc.pid) - ipfs0
    await peer.proc.stop() // the profile is written at exit
    await ipfs.proc.stop()
    const pins = load.ok
    const us = (s: number) => `${(s * 1e6 / pins).toFixed(0)} µs`
    const perThread = [...threads].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])
    const all = perThread.reduce((n, [, v]) => n + v, 0)
    console.log(
      `${Math.round(pins / load.seconds)} pins/s under the profiler (${pins} pins in ${
        load.seconds.toFixed(1)
      } s), p50 ${load.p50ms.toFixed(2)} ms; load average ${
        (await Deno.readTextFile('/proc/loadavg')).split(' ')[0]
      }`,
    )
    console.log(
      `CPU per pin: daemon ${us(all)} (${
        perThread.map(([k, v]) => `${k} ${us(v)}`).join(', ')
      }); ` +
        `IPFS double ${us(ipfsCpu)}`,
    )
    const path = latestProfile(profDir)
    console.log(`profile: ${path}\n`)
    const main = perThread.find(([k]) => k === 'main')?.[1] ?? 0
    console.log(summarize(JSON.parse(await Deno.readTextFile(path)), pins, main * 1e6 / pins))
    return 0
  } finally {
    await procs.stopAll()
    if (!values.keep) await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args))
