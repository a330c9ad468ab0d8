/**
 * Time to ready of `task start` (the README's first command): from launching the command until
 * the REST API answers `GET /id`, on a fresh config folder, cold (an empty DENO_DIR and no
 * node_modules: everything is downloaded from npm, as on a new machine) and warm (a restart with
 * the caches filled), through `npx -y deno@2.9.6` and through `deno` directly; beside the start of
 * IPFS Cluster 1.1.6's `ipfs-cluster-service daemon` (a binary: its cold start is its warm start).
 * Each cold start also counts the lines printed before the API answered.
 *
 * Cold runs need the npm registry, so this bench does not run in a network namespace; the peers
 * listen on 127.0.0.1 only, and the Go peer runs inside a loopback-only namespace of its own.
 *
 * @example
 * ```sh
 * deno run -A bench/startup.ts                 # cold + warm, deno and npx, and Go
 * deno run -A bench/startup.ts --runs 5 --no-cold
 * deno task bench --startup                    # the same from bench/main.ts
 * ```
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cleanEnv, freePort } from './peers.ts'
import { pollUntil, type Proc, Processes } from './process.ts'
import { below, renderTable, type Row, summaryLine } from './report.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const DENO_VERSION = '2.9.6'

/** One start. */
export interface Start {
  /** Seconds from the launch until `GET /id` answered 200. */
  seconds: number
  /** Lines the command printed until then (stdout and stderr). */
  lines: number
  /** The first of those lines. */
  head: string[]
  /** Of those, Deno's `Download …`/`Initialize …` lines. */
  downloads: number
}

/** What the bench measured; a measure that was not run is absent. */
export interface StartupFigures {
  coldDeno?: Start
  warmDeno: Start[]
  coldNpx?: Start
  warmNpx: Start[]
  /** `deno task service daemon` with the ipfshttp connector (no IPFS daemon needed for /id). */
  warmIpfshttp: Start[]
  /** IPFS Cluster 1.1.6 `daemon` (raft), seconds to `GET /id` 200. */
  go: number[]
  errors: string[]
  /** The first lines a cold start printed (what a new user sees first). */
  coldFirstLines?: string
  /** Which kinds of start were measured (the rows of the others are left out). */
  ran: { cold: boolean; npx: boolean; go: boolean }
}

/** Options of a run. */
export interface StartupOptions {
  /** Warm starts of each kind (the median is reported). */
  runs: number
  cold: boolean
  npx: boolean
  /** ipfs-cluster-service 1.1.6, or undefined to skip the Go row. */
  goBin?: string
  /** The project to measure (its tracked and untracked-but-not-ignored files are copied). */
  repo?: string
  /** A filled DENO_DIR for the warm starts (without cold starts nothing is then downloaded). */
  denoDir?: string
  log: (msg: string) => void
}

/** Copies the project's files (what git would commit, not node_modules or .tools) to `dest`. */
async function copyProject(repo: string, dest: string): Promise<void> {
  const out = await new Deno.Command('git', {
    args: ['-C', repo, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    stdout: 'piped',
  }).output()
  if (!out.success) throw new Error(`git ls-files failed in ${repo}`)
  for (const file of new TextDecoder().decode(out.stdout).split('\0').filter(Boolean)) {
    const from = join(repo, file)
    const info = await Deno.lstat(from).catch(() => undefined)
    if (!info?.isFile) continue
    const to = join(dest, file)
    await Deno.mkdir(join(to, '..'), { recursive: true })
    await Deno.copyFile(from, to)
  }
}

/** PIDs of every descendant of `pid` (from /proc), deepest last. */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = []
  const tasks = await Array.fromAsync(Deno.readDir(`/proc/${pid}/task`)).catch(() => [])
  for (const t of tasks) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/children`).catch(() => '')
    for (const child of text.split(/\s+/).filter(Boolean).map(Number)) {
      out.push(child, ...await descendants(child))
    }
  }
  return out
}

/** Stops a launcher (npx, deno task) and whatever it started, by PID. */
async function stopTree(proc: Proc): Promise<void> {
  const tree = await descendants(proc.pid)
  // The launchers pass SIGTERM on to the peer, which shuts down in order.
  await proc.stop(20_000)
  for (const pid of tree) {
    try {
      Deno.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** Deno's progress lines (after a colour escape, when there is one). */
const DOWNLOAD_LINE = /(?:^|\[[0-9;]*m)(?:Download|Initialize)\b/

/** Launches `cmd` in `cwd` and measures until `GET /id` answers on the REST port of `env`. */
async function measureStart(
  procs: Processes,
  name: string,
  cmd: string[],
  cwd: string,
  env: Record<string, string>,
  restPort: number,
): Promise<Start> {
  const since = performance.now()
  const proc = procs.start(name, cmd, { cwd, env })
  try {
    const seconds = await pollUntil(`http://127.0.0.1:${restPort}/id`, {
      since,
      timeoutMs: 600_000,
      everyMs: 20,
      alive: () => proc.running(),
    })
    const lines = (await Deno.readTextFile(proc.logPath)).split('\n').slice(0, -1)
    return {
      seconds,
      lines: lines.length,
      downloads: lines.filter((l) => DOWNLOAD_LINE.test(l)).length,
      head: lines.slice(0, 4),
    }
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}\n${await proc.tail()}`)
  } finally {
    await stopTree(proc)
  }
}

/** The environment of a start: a fresh DENO_DIR or a given one, the peer on 127.0.0.1 ports. */
function startEnv(denoDir: string, clusterDir: string, restPort: number): Record<string, string> {
  return {
    ...cleanEnv(),
    DENO_DIR: denoDir,
    DENO_NO_UPDATE_CHECK: '1',
    IPFS_CLUSTER_PATH: clusterDir,
    CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS: `/ip4/127.0.0.1/tcp/${restPort}`,
    CLUSTER_LISTENMULTIADDRESS: '/ip4/127.0.0.1/tcp/0',
  }
}

/**
 * Go's start to `GET /id` 200, `runs` times, inside one loopback-only network namespace (its
 * libp2p host probes the LAN for NAT gateways at start). The timing is taken inside it.
 */
async function measureGo(goBin: string, runs: number, workDir: string): Promise<number[]> {
  const unshare = Deno.uid?.() === 0 ? ['unshare', '-n'] : ['unshare', '-rn']
  const script = `
set -e
ip link set lo up
for i in $(seq 1 "$RUNS"); do
  dir="$WORK/go-$i"
  "$GO" --config "$dir" init --consensus raft --force >/dev/null 2>&1
  start=$EPOCHREALTIME
  "$GO" --config "$dir" daemon >"$dir/daemon.log" 2>&1 &
  pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:9094/id; do
    kill -0 "$pid" 2>/dev/null || { echo "exited"; exit 1; }
    sleep 0.01
  done
  end=$EPOCHREALTIME
  echo "$start $end"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" || true
done`
  const out = await new Deno.Command(unshare[0], {
    args: [...unshare.slice(1), 'bash', '-c', script],
    env: { ...cleanEnv(), GO: goBin, RUNS: String(runs), WORK: workDir },
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const text = new TextDecoder().decode(out.stdout)
  if (!out.success) {
    throw new Error(`go: ${text}${new TextDecoder().decode(out.stderr)}`.trim())
  }
  return text.trim().split('\n').map((l) => {
    const [a, b] = l.split(' ').map(Number)
    return b - a
  })
}

/** Runs the startup measures. */
export async function runStartupBench(o: StartupOptions): Promise<StartupFigures> {
  const repo = o.repo ?? REPO
  const work = await Deno.makeTempDir({ prefix: 'ipfs-cluster-startup-' })
  await Deno.mkdir(join(work, 'logs'))
  const procs = new Processes(join(work, 'logs'))
  const f: StartupFigures = {
    warmDeno: [],
    warmNpx: [],
    warmIpfshttp: [],
    go: [],
    errors: [],
    ran: { cold: o.cold, npx: o.npx, go: !!o.goBin },
  }
  const deno = Deno.execPath()
  const npx = ['npx', '-y', `deno@${DENO_VERSION}`]
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn()
    } catch (err) {
      f.errors.push(`${what}: ${(err as Error).message}`)
      o.log(`${what} failed: ${(err as Error).message}`)
    }
  }
  try {
    // One copy per launcher, so that each cold start finds no node_modules and an empty DENO_DIR.
    for (const [key, launcher] of [['deno', [deno]], ['npx', npx]] as const) {
      if (key === 'npx' && !o.npx) continue
      const copy = join(work, `project-${key}`)
      const denoDir = o.denoDir ?? join(work, `deno-dir-${key}`)
      const cluster = join(work, `cluster-${key}`)
      await copyProject(repo, copy)
      const start = (name: string) => {
        const port = freePort()
        return measureStart(
          procs,
          name,
          [...launcher, 'task', 'start'],
          copy,
          startEnv(denoDir, cluster, port),
          port,
        )
      }
      if (o.cold) {
        o.log(`${key}: cold task start (empty DENO_DIR, no node_modules)`)
        await attempt(`${key} cold start`, async () => {
          const s = await start(`${key}-cold`)
          if (key === 'deno') {
            f.coldDeno = s
            f.coldFirstLines = s.head.map((l) => `  ${l}`).join('\n')
          } else f.coldNpx = s
        })
      } else {
        // Warm the caches (and write the config folder) without measuring.
        await attempt(`${key} warm-up`, async () => void await start(`${key}-warmup`))
      }
      for (let i = 0; i < o.runs; i++) {
        o.log(`${key}: warm task start ${i + 1}/${o.runs}`)
        await attempt(`${key} warm start`, async () => {
          const s = await start(`${key}-warm-${i}`)
          ;(key === 'deno' ? f.warmDeno : f.warmNpx).push(s)
        })
      }
      if (key === 'deno') {
        // The same peer beside an IPFS daemon: the ipfshttp connector must not load Helia.
        const ipfshttp = join(work, 'cluster-ipfshttp')
        await attempt('ipfshttp init', async () => {
          const init = await new Deno.Command(deno, {
            args: ['task', 'service', 'init', '--ipfs', 'ipfshttp'],
            cwd: copy,
            env: startEnv(denoDir, ipfshttp, 0),
            stdout: 'null',
            stderr: 'piped',
          }).output()
          if (!init.success) throw new Error(new TextDecoder().decode(init.stderr))
        })
        for (let i = 0; i < o.runs; i++) {
          o.log(`deno: warm service daemon, ipfshttp connector ${i + 1}/${o.runs}`)
          await attempt('ipfshttp warm start', async () => {
            const port = freePort()
            f.warmIpfshttp.push(
              await measureStart(
                procs,
                `ipfshttp-warm-${i}`,
                [deno, 'task', 'service', 'daemon'],
                copy,
                startEnv(denoDir, ipfshttp, port),
                port,
              ),
            )
          })
        }
      }
    }
    if (o.goBin) {
      o.log(`go: ${o.runs} daemon starts in a loopback-only network namespace`)
      await attempt('go start', async () => {
        f.go = await measureGo(o.goBin!, o.runs, work)
      })
    }
  } finally {
    await procs.stopAll()
    await Deno.remove(work, { recursive: true }).catch(() => {})
  }
  return f
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/**
 * The rows. Targets are the figures issue 6 reported before this work (cold ≈ 80 s with about a
 * thousand lines, warm 6 s through npx and 2.2 s with deno directly): each must be cut.
 */
export function startupRows(f: StartupFigures): Row[] {
  const go = median(f.go)
  const rows: Row[] = [
    {
      measure: 'cold task start to API, npx (s)',
      ours: f.coldNpx?.seconds,
      go,
      digits: 1,
      target: below(80, ' s'),
    },
    {
      measure: 'cold task start to API, deno (s)',
      ours: f.coldDeno?.seconds,
      go,
      digits: 1,
      target: below(80, ' s'),
    },
    {
      measure: 'download lines printed, cold npx',
      ours: f.coldNpx?.downloads,
      digits: 0,
      target: below(1),
    },
    {
      measure: 'download lines printed, cold deno',
      ours: f.coldDeno?.downloads,
      digits: 0,
      target: below(1),
    },
    { measure: 'lines printed before ready, cold npx', ours: f.coldNpx?.lines, digits: 0 },
    { measure: 'lines printed before ready, cold deno', ours: f.coldDeno?.lines, digits: 0 },
    {
      measure: 'warm task start to API, npx (s, median)',
      ours: median(f.warmNpx.map((s) => s.seconds)),
      go,
      digits: 2,
      target: below(6, ' s'),
    },
    {
      measure: 'warm task start to API, deno (s, median)',
      ours: median(f.warmDeno.map((s) => s.seconds)),
      go,
      digits: 2,
      target: below(2.2, ' s'),
    },
    {
      measure: 'warm service daemon (ipfshttp) to API, deno (s, median)',
      ours: median(f.warmIpfshttp.map((s) => s.seconds)),
      go,
      digits: 2,
    },
  ]
  return rows.filter((r) =>
    (f.ran.cold || !r.measure.startsWith('cold') && !r.measure.includes(', cold')) &&
    (f.ran.npx || !r.measure.includes('npx'))
  )
}

/** The report: the table, the RESULT line, and what failed. */
export function startupReport(f: StartupFigures, withGo: boolean): string {
  const rows = startupRows(f)
  const lines = [renderTable(rows, { withGo: withGo && f.ran.go }), '']
  const all = (name: string, xs: Start[]) =>
    xs.length ? `note: ${name}: ${xs.map((s) => s.seconds.toFixed(2)).join(', ')} s` : undefined
  for (
    const n of [
      all('warm deno runs', f.warmDeno),
      all('warm npx runs', f.warmNpx),
      all('warm ipfshttp runs', f.warmIpfshttp),
      f.go.length ? `note: Go runs: ${f.go.map((s) => s.toFixed(3)).join(', ')} s` : undefined,
      f.coldFirstLines ? `note: cold deno start, first lines:\n${f.coldFirstLines}` : undefined,
    ]
  ) if (n) lines.push(n)
  for (const e of f.errors) lines.push(`error: ${e}`)
  lines.push(summaryLine(rows))
  return lines.join('\n')
}

/** Usage of the command line. */
export const STARTUP_USAGE = `usage: deno run -A bench/startup.ts [options]

  --runs N        warm starts of each kind (default 3; the median is reported)
  --no-cold       skip the cold starts (they download every dependency from npm)
  --no-npx        skip the starts through npx
  --no-go         skip IPFS Cluster 1.1.6
  --go-bin PATH   ipfs-cluster-service 1.1.6 (default .tools/bin/ipfs-cluster-service)
  --repo DIR      the project to measure (default: this one)
  --deno-dir DIR  a filled DENO_DIR for the warm starts (with --no-cold: no download at all)
`

/** Parses the command line, runs, prints; resolves to the exit code. */
export async function startupMain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      runs: { type: 'string', default: '3' },
      'no-cold': { type: 'boolean', default: false },
      'no-npx': { type: 'boolean', default: false },
      'no-go': { type: 'boolean', default: false },
      'go-bin': { type: 'string' },
      repo: { type: 'string' },
      'deno-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(STARTUP_USAGE)
    return 0
  }
  const runs = Number(values.runs)
  const bad = !Number.isInteger(runs) || runs < 1
    ? '--runs must be an integer >= 1'
    : values['deno-dir'] && !values['no-cold']
    ? '--deno-dir needs --no-cold (a cold start begins with an empty DENO_DIR)'
    : undefined
  if (bad) {
    console.error(`bench: ${bad}\n\n${STARTUP_USAGE}`)
    return 2
  }
  const goBin = values['no-go']
    ? undefined
    : values['go-bin'] ?? join(REPO, '.tools/bin/ipfs-cluster-service')
  const t0 = performance.now()
  const log = (msg: string) =>
    console.error(`[startup ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`)
  const load = (await Deno.readTextFile('/proc/loadavg').catch(() => '')).split(' ')[0]
  const f = await runStartupBench({
    runs,
    cold: !values['no-cold'],
    npx: !values['no-npx'],
    goBin,
    repo: values.repo,
    denoDir: values['deno-dir'],
    log,
  })
  console.log(
    `ipfs-cluster startup bench: ${navigator.hardwareConcurrency} cores, load ${load} at start; ` +
      `Deno ${Deno.version.deno}; npx's own cache of deno@${DENO_VERSION} as found`,
  )
  console.log(startupReport(f, !!goBin))
  return f.errors.length ? 1 : 0
}

if (import.meta.main) Deno.exit(await startupMain(Deno.args))
