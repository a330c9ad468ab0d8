/**
 * The processes a bench run starts: each one spawned with its output going straight to a log file
 * (`sh -c 'exec … >log 2>&1'`, so the PID is the program's own and no pipe has to be drained by
 * the bench), tracked in one registry, and stopped by its PID — SIGTERM, then SIGKILL after a
 * grace period — whether the run ends, fails or is interrupted.
 *
 * Also the probes the measures need: RSS and CPU time from /proc, and polling an HTTP URL.
 *
 * @example
 * ```ts
 * const procs = new Processes('/tmp/bench-logs')
 * try {
 *   const p = procs.start('bare', ['deno', 'run', '-A', 'bench/bare_server.ts'])
 *   const [, url] = await p.waitForLog(/listening on (\S+)/, 10_000)
 * } finally {
 *   await procs.stopAll()
 * }
 * ```
 */
import { join } from 'node:path'
import { systemClock } from '../src/util/clock.ts'

/** A started process. */
export interface Proc {
  readonly name: string
  readonly pid: number
  readonly logPath: string
  /** Resolves with the exit code (or 128+signal) when the process ends. */
  readonly exited: Promise<number>
  /** True until the process has exited. */
  running(): boolean
  /** Waits until the log matches `re`; throws with the log's tail on timeout or early exit. */
  waitForLog(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<number>
  /** The last `lines` lines of the log. */
  tail(lines?: number): Promise<string>
}

/** Shell-quotes one argument. */
function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/** The registry of every process of a run. */
export class Processes {
  #procs = new Set<Proc>()
  #logDir: string
  #count = 0

  constructor(logDir: string) {
    this.#logDir = logDir
  }

  /** Starts `cmd` (argv) with its output in `<logDir>/<n>-<name>.log`; `env` replaces ours. */
  start(
    name: string,
    cmd: string[],
    opts: { cwd?: string; env?: Record<string, string> } = {},
  ): Proc {
    const logPath = join(this.#logDir, `${String(++this.#count).padStart(2, '0')}-${name}.log`)
    // A log left by an earlier run would be matched by waitForLog before the shell truncates it.
    try {
      Deno.removeSync(logPath)
    } catch {
      // not there
    }
    const child = new Deno.Command('sh', {
      args: ['-c', `exec ${cmd.map(quote).join(' ')} >${quote(logPath)} 2>&1 </dev/null`],
      cwd: opts.cwd,
      env: opts.env,
      clearEnv: opts.env !== undefined,
      stdin: 'null',
      stdout: 'null',
      stderr: 'null',
    }).spawn()
    let alive = true
    const exited = child.status.then((s) => {
      alive = false
      this.#procs.delete(proc)
      return s.signal ? 128 + signalNumber(s.signal) : s.code
    })
    const tail = async (lines = 20) => {
      try {
        const text = await Deno.readTextFile(logPath)
        return text.split('\n').slice(-lines - 1).join('\n')
      } catch {
        return ''
      }
    }
    const proc: Proc = {
      name,
      pid: child.pid,
      logPath,
      exited,
      running: () => alive,
      tail,
      async waitForLog(re, timeoutMs) {
        const deadline = Date.now() + timeoutMs
        while (true) {
          const text = await Deno.readTextFile(logPath).catch(() => '')
          const m = text.match(re)
          if (m) return m
          if (!alive) {
            throw new Error(`${name} exited (code ${await exited}) before ${re}:\n${await tail()}`)
          }
          if (Date.now() > deadline) {
            throw new Error(`${name}: no ${re} in its log after ${timeoutMs} ms:\n${await tail()}`)
          }
          await sleep(20)
        }
      },
      async stop(graceMs = 20_000) {
        if (!alive) return exited
        kill(child.pid, 'SIGTERM')
        const timer = setTimeout(() => kill(child.pid, 'SIGKILL'), graceMs)
        try {
          return await exited
        } finally {
          clearTimeout(timer)
        }
      },
    }
    this.#procs.add(proc)
    return proc
  }

  /** Stops every process still running (in reverse start order). */
  async stopAll(graceMs = 10_000): Promise<void> {
    const all = [...this.#procs].reverse()
    for (const p of all) await p.stop(graceMs).catch(() => {})
  }
}

function kill(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig)
  } catch {
    // already gone
  }
}

function signalNumber(sig: Deno.Signal): number {
  const n: Partial<Record<Deno.Signal, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }
  return n[sig] ?? 0
}

/** Resolves after `ms` of real time (benches measure real time). */
export function sleep(ms: number): Promise<void> {
  return systemClock.sleep(ms)
}

/** Resident set size now and at its peak (VmHWM), in bytes; undefined once the process is gone. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`)
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0)
    return { rss: kib('VmRSS') * 1024, hwm: kib('VmHWM') * 1024 }
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) the process has used so far. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/stat`)
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // USER_HZ is 100 on Linux
  } catch {
    return 0
  }
}

/**
 * Samples the RSS of `pid` every `everyMs` until `stop()`; returns the largest value seen.
 *
 * @example
 * ```ts
 * const s = sampleRss(pid)
 * await work()
 * const peak = await s.stop()
 * ```
 */
export function sampleRss(pid: number, everyMs = 20): { stop(): Promise<number> } {
  let peak = 0
  let done = false
  const loop = (async () => {
    while (!done) {
      const m = await memoryOf(pid)
      if (m && m.rss > peak) peak = m.rss
      await sleep(everyMs)
    }
  })()
  return {
    async stop() {
      done = true
      await loop
      const m = await memoryOf(pid)
      if (m && m.rss > peak) peak = m.rss
      return peak
    },
  }
}

/**
 * Waits until the process's CPU use falls below `share` of one core over `windowMs` (start-up
 * work finished), or `timeoutMs` passes. Returns the seconds waited and whether it settled.
 */
export async function waitIdle(
  pid: number,
  opts: { share?: number; windowMs?: number; timeoutMs?: number } = {},
): Promise<{ seconds: number; settled: boolean }> {
  const share = opts.share ?? 0.1
  const windowMs = opts.windowMs ?? 500
  const t0 = performance.now()
  const deadline = t0 + (opts.timeoutMs ?? 60_000)
  let before = await cpuSecondsOf(pid)
  while (performance.now() < deadline) {
    await sleep(windowMs)
    const now = await cpuSecondsOf(pid)
    if ((now - before) / (windowMs / 1000) < share) {
      return { seconds: (performance.now() - t0) / 1000, settled: true }
    }
    before = now
  }
  return { seconds: (performance.now() - t0) / 1000, settled: false }
}

/**
 * Polls `url` every `everyMs` until it answers with a status in `ok`; returns the seconds from
 * `since` (a performance.now() value) to that answer. Throws after `timeoutMs`.
 */
export async function pollUntil(
  url: string,
  opts: {
    since: number
    timeoutMs: number
    everyMs?: number
    ok?: (status: number) => boolean
    init?: RequestInit
    alive?: () => boolean
  },
): Promise<number> {
  const ok = opts.ok ?? ((s: number) => s === 200)
  const deadline = opts.since + opts.timeoutMs
  let last = 'no answer'
  while (performance.now() < deadline) {
    if (opts.alive && !opts.alive()) throw new Error(`process exited while polling ${url}`)
    try {
      const res = await fetch(url, { ...opts.init, signal: AbortSignal.timeout(2_000) })
      await res.body?.cancel()
      if (ok(res.status)) return (performance.now() - opts.since) / 1000
      last = `HTTP ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(opts.everyMs ?? 10)
  }
  throw new Error(`${url} not ready after ${opts.timeoutMs} ms (${last})`)
}
