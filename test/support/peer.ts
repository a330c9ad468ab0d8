/**
 * Runs our peer as users do: a real `cli/main.ts service` process with its own config folder on
 * 127.0.0.1 random ports, driven by real `cli/main.ts ctl` processes (or the Go ipfs-cluster-ctl).
 *
 * @example
 * ```ts
 * const peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr })
 * const r = await peer.ctl(['pin', 'add', cid])
 * await peer.stop()
 * ```
 */
import { join } from 'node:path'
import { errorMessage } from '../../src/errors.ts'
import { spawnLogged } from './spawn.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const MAIN = join(ROOT, 'cli', 'main.ts')
/** Where the Go tools are built (test/tools/build-go-tools.sh). */
export const TOOLS_BIN = join(ROOT, '.tools', 'bin')

/** A free TCP port for a listener a test starts later (below the ephemeral range). */
export { freePort } from '../../src/util/free_port.ts'

/** Result of a CLI run. */
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * The `deno run` flags of a deno.json task (`service`, `ctl`, `follow`, `start`): everything
 * between `run` and the script, in the task's last command (the ones before it install the
 * dependencies).
 * Tests start the program with exactly these, as users do, so a permission the tasks lack fails
 * a test before it fails a user.
 */
export function taskFlags(task: 'service' | 'ctl' | 'follow' | 'start'): string[] {
  const cfg = JSON.parse(Deno.readTextFileSync(join(ROOT, 'deno.json')))
  const words = String(cfg.tasks?.[task] ?? '').split(/\s+/)
  const script = words.indexOf('cli/main.ts')
  const run = words.lastIndexOf('run', script)
  if (script < 0 || run < 1 || words[run - 1] !== 'deno') {
    throw new Error(`deno.json task ${task} does not end in "deno run <flags> cli/main.ts …"`)
  }
  return words.slice(run + 1, script)
}

/** The `deno run` arguments that start cli/main.ts in a mode with that mode's task flags. */
export function mainArgs(args: string[]): string[] {
  const task = args[0] === 'ctl' || args[0] === 'follow' ? args[0] : 'service'
  const flags = taskFlags(task)
  return ['run', ...flags, MAIN, ...args]
}

/**
 * Runs `cli/main.ts <args>` with the permissions of the deno.json task of its mode (`ctl …` with
 * the ctl task's, `follow …` with the follow task's, anything else with the service task's) and
 * collects its output.
 */
export async function runMain(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return await runCmd(Deno.execPath(), mainArgs(args), opts)
}

/** Runs any program and collects its output (killed after timeoutMs). */
export async function runCmd(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: opts.env,
    stdin: opts.stdin !== undefined ? 'piped' : 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn()
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter()
    await w.write(new TextEncoder().encode(opts.stdin))
    await w.close()
  }
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL')
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 60_000)
  const out = await child.output()
  clearTimeout(timer)
  const dec = new TextDecoder()
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) }
}

/** Options of a peer process. */
export interface PeerProcessOptions {
  /** Kubo API multiaddr, or 'embedded' for the Helia connector. */
  ipfs: string
  /** Edits service.json (parsed) before the daemon starts. */
  // deno-lint-ignore no-explicit-any
  edit?: (cfg: any) => void
  /** Reuse an existing config folder (restart) instead of a new one. */
  configDir?: string
  env?: Record<string, string>
  /** Runs the daemon under `ulimit -n <n>` (a soft open-files limit), through bash. */
  ulimitNofile?: number
  /** More `service init` flags (e.g. `['--consensus', 'crdt']`). */
  initArgs?: string[]
}

/** A running peer process. */
export interface PeerProcess {
  configDir: string
  /** REST API multiaddr (for --host). */
  restMaddr: string
  restUrl: string
  pid: number
  logs(): string
  /** Runs our ctl against this peer. */
  ctl(args: string[], opts?: { env?: Record<string, string> }): Promise<RunResult>
  /** Graceful stop (SIGTERM, wait for exit). */
  stop(): Promise<number>
  /** SIGKILL, no cleanup. */
  kill9(): Promise<void>
}

/** Creates a config folder for a peer (service init + edits) and returns it. */
export async function initPeerConfig(opts: PeerProcessOptions): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: 'cluster-peer-' })
  const connector = opts.ipfs === 'embedded' ? 'embedded' : 'ipfshttp'
  const r = await runMain([
    'service',
    '--config',
    dir,
    'init',
    '--randomports',
    '--ipfs',
    connector,
    ...(opts.initArgs ?? []),
  ])
  if (r.code !== 0) throw new Error(`service init failed: ${r.stderr}`)
  const file = join(dir, 'service.json')
  const cfg = JSON.parse(await Deno.readTextFile(file))
  cfg.cluster.listen_multiaddress = cfg.cluster.listen_multiaddress.map((a: string) =>
    a.replace('/ip4/0.0.0.0/', '/ip4/127.0.0.1/')
  )
  cfg.cluster.mdns_interval = '0s'
  if (connector === 'ipfshttp') cfg.ipfs_connector.ipfshttp.node_multiaddress = opts.ipfs
  else {
    // The embedded node listens on all interfaces by default; tests stay on loopback.
    const e = cfg.ipfs_connector.embedded
    e.listen_multiaddress = e.listen_multiaddress.map((a: string) =>
      a.replace('/ip4/0.0.0.0/', '/ip4/127.0.0.1/')
    )
  }
  opts.edit?.(cfg)
  await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2))
  return dir
}

/** Starts `service daemon` on a (new or given) config folder and waits until it serves. */
export async function startPeerProcess(opts: PeerProcessOptions): Promise<PeerProcess> {
  const dir = opts.configDir ?? await initPeerConfig(opts)
  const cfg = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
  const restMaddr: string = [cfg.api.restapi.http_listen_multiaddress].flat()[0]
  const m = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(restMaddr)!
  const tls = !!cfg.api.restapi.ssl_cert_file
  const restUrl = `${tls ? 'https' : 'http'}://${m[1]}:${m[2]}`
  const daemonArgs = mainArgs(['service', '--config', dir, 'daemon'])
  const child = opts.ulimitNofile
    ? spawnLogged(
      'bash',
      ['-c', `ulimit -n ${opts.ulimitNofile} && exec "$0" "$@"`, Deno.execPath(), ...daemonArgs],
      { env: opts.env, stopGraceMs: 20_000 },
    )
    : spawnLogged(Deno.execPath(), daemonArgs, { env: opts.env, stopGraceMs: 20_000 })
  try {
    await child.waitLog('IPFS Cluster is READY', 60_000)
  } catch (err) {
    await child.kill9()
    throw new Error(`daemon not ready: ${errorMessage(err)}`)
  }
  const host = ['--host', restMaddr, ...(tls ? ['--https', '--no-check-certificate'] : [])]
  return {
    configDir: dir,
    restMaddr,
    restUrl,
    pid: child.pid,
    logs: child.logs,
    ctl: (args, o) => runMain(['ctl', ...host, ...args], o),
    stop: child.stop,
    kill9: child.kill9,
  }
}

/** A running `deno task start` (the README's command, as typed), its output collected. */
export interface StartTask {
  logs(): string
  /** Resolves when the peer logs READY; throws with the logs when it does not within `ms`. */
  ready(ms: number): Promise<void>
  /** SIGTERM (the task passes it on to the peer); resolves with the exit code. */
  stop(): Promise<number>
}

/** Runs `deno task start` from the repository with `env` (IPFS_CLUSTER_PATH, ports…). */
export function startTask(env: Record<string, string>): StartTask {
  const p = spawnLogged(Deno.execPath(), ['task', 'start'], { env })
  return {
    logs: p.logs,
    ready: (ms) => p.waitLog('IPFS Cluster is READY', ms),
    stop: p.stop,
  }
}
