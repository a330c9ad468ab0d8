/**
 * Starting the pieces of one measure: the instant IPFS double, a configured peer (either
 * implementation) and its readiness, and reading `GET /allocations` to the end.
 *
 * @example
 * ```ts
 * const ipfs = await startDouble(ctx, 'double', cidFile)
 * const peer = await startPeer(ctx, ctx.impls.ours, dir, ipfs.api)
 * await waitServing(peer, someCid, 60_000)
 * const { lines, seconds } = await readAllocations(peer.rest)
 * ```
 */
import { join } from 'node:path'
import { cleanEnv, configurePeer, type Implementation, type ImplKey } from './peers.ts'
import { pollUntil, type Proc, type Processes } from './process.ts'

/** What every measure gets. */
export interface BenchContext {
  repo: string
  workDir: string
  procs: Processes
  impls: Record<ImplKey, Implementation>
  /** Progress lines (stderr). */
  log(msg: string): void
}

/** A running instant IPFS double. */
export interface RunningDouble {
  proc: Proc
  /** Multiaddr of its RPC API, for `node_multiaddress`. */
  api: string
}

/**
 * Starts the instant IPFS double (bench/ipfs_double.ts: the project's Kubo double in `instant`
 * mode) in its own process, its pinset filled from `pinnedFile` when given.
 */
export async function startDouble(
  ctx: BenchContext,
  name: string,
  pinnedFile?: string,
): Promise<RunningDouble> {
  const args = [Deno.execPath(), 'run', '-A', join(ctx.repo, 'bench/ipfs_double.ts')]
  if (pinnedFile) args.push('--pinned', pinnedFile)
  const proc = ctx.procs.start(name, args, { cwd: ctx.repo })
  const m = await proc.waitForLog(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/m, 120_000)
  return { proc, api: m[0] }
}

/** A running peer. */
export interface RunningPeer {
  impl: Implementation
  dir: string
  rest: string
  proc: Proc
}

/** Configures `dir` (already initialised) against `ipfsApi` and starts its daemon. */
export async function startPeer(
  ctx: BenchContext,
  impl: Implementation,
  dir: string,
  ipfsApi: string,
  name = `${impl.key}-daemon`,
): Promise<RunningPeer> {
  const ports = await configurePeer(dir, { ipfsApi })
  return { impl, dir, rest: ports.rest, proc: spawnDaemon(ctx, impl, dir, name) }
}

/** Starts the daemon of an already configured `dir`. */
export function spawnDaemon(
  ctx: BenchContext,
  impl: Implementation,
  dir: string,
  name = `${impl.key}-daemon`,
): Proc {
  return ctx.procs.start(name, impl.daemon(dir), { cwd: ctx.repo, env: cleanEnv() })
}

/** Restarts a stopped peer on the same config (same ports). */
export function restartPeer(ctx: BenchContext, peer: RunningPeer): RunningPeer {
  return { ...peer, proc: spawnDaemon(ctx, peer.impl, peer.dir, `${peer.impl.key}-restart`) }
}

/**
 * Seconds from `since` until the peer serves: `GET /id` answers 200, and `GET /allocations/<cid>`
 * (a CID of its state) answers 200. Both are polled side by side.
 */
export async function waitServing(
  peer: RunningPeer,
  cid: string,
  opts: { since: number; timeoutMs: number },
): Promise<{ id: number; allocation: number }> {
  const poll = (path: string) =>
    pollUntil(`${peer.rest}${path}`, { ...opts, alive: () => peer.proc.running() })
  try {
    const [id, allocation] = await Promise.all([poll('/id'), poll(`/allocations/${cid}`)])
    return { id, allocation }
  } catch (err) {
    throw new Error(`${peer.impl.label}: ${(err as Error).message}\n${await peer.proc.tail()}`)
  }
}

/**
 * Waits until `POST /pins/<cid>` succeeds (consensus has a leader and the peer takes writes).
 * Returns the seconds from `since`.
 */
export async function waitWritable(
  peer: RunningPeer,
  cid: string,
  opts: { since: number; timeoutMs: number },
): Promise<number> {
  try {
    return await pollUntil(`${peer.rest}/pins/${cid}`, {
      ...opts,
      everyMs: 50,
      init: { method: 'POST' },
      alive: () => peer.proc.running(),
    })
  } catch (err) {
    throw new Error(`${peer.impl.label}: ${(err as Error).message}\n${await peer.proc.tail()}`)
  }
}

/** What reading a whole listing gave. */
export interface Listing {
  lines: number
  seconds: number
}

/**
 * Reads `GET <rest>/allocations` to the end and counts its lines, with curl piped into `wc -l`
 * (a reader that costs the server's cores as little as possible); a fetch loop when curl is absent.
 */
export async function readAllocations(rest: string): Promise<Listing> {
  const url = `${rest}/allocations`
  const t0 = performance.now()
  let lines: number
  try {
    const out = await new Deno.Command('bash', {
      args: ['-c', 'set -o pipefail; curl -sS --fail --no-buffer "$1" | wc -l', 'bash', url],
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    if (out.code !== 0) {
      throw new Error(`GET ${url} failed: ${new TextDecoder().decode(out.stderr).trim()}`)
    }
    lines = Number(new TextDecoder().decode(out.stdout).trim())
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err
    lines = await countLinesWithFetch(url)
  }
  return { lines, seconds: (performance.now() - t0) / 1000 }
}

async function countLinesWithFetch(url: string): Promise<number> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`)
  let n = 0
  for await (const chunk of res.body!) {
    let i = -1
    while ((i = chunk.indexOf(10, i + 1)) !== -1) n++
  }
  return n
}
