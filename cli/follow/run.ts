/**
 * `ipfs-cluster-follow <name> run [--init <url>]`: runs the follower peer of one cluster until a
 * signal, as IPFS Cluster 1.1.6 does: waits up to 2 minutes for IPFS (at the default or env
 * ipfshttp address: the configuration may itself come through that IPFS's gateway), fetches the
 * cluster's configuration from its source (every start), and runs the peer with the follower's
 * overrides (follower mode, the REST API on `<folder>/api-socket`, `Cluster.RepoGCLocal` closed
 * to other peers).
 *
 * @example
 * ```ts
 * const code = await run(ctx, { init: 'https://example.org/service.json' })
 * ```
 */
import { join } from 'node:path'
import { errorMessage } from '../../src/errors.ts'
import { API_SOCKET } from '../../src/cluster/follow.ts'
import { ipfsHttpSection } from '../../src/ipfsconn/ipfshttp/config.ts'
import { logging } from '../../src/util/log.ts'
import { type Clock, systemClock } from '../../src/util/clock.ts'
import {
  answersId,
  type FollowCtx,
  FollowError,
  initCluster,
  loadFollowedConfig,
  requireInitialized,
} from './commands.ts'

/** How long `run` waits for IPFS (the reference's). */
export const IPFS_WAIT_MS = 2 * 60_000

/** Options of `run`. */
export interface RunOptions {
  /** `--init <url>`: initialize first (skipped when the folder exists). */
  init?: string
  /** How long to wait for IPFS (default IPFS_WAIT_MS). */
  ipfsWaitMs?: number
  clock?: Clock
}

/** Runs the follower peer until a signal; resolves to the exit code. */
export async function run(ctx: FollowCtx, opts: RunOptions = {}): Promise<number> {
  if (opts.init) await initCluster(ctx, opts.init, true)
  await requireInitialized(ctx)
  const { io } = ctx
  await io.stdout(
    `Starting the IPFS Cluster follower peer for "${ctx.name}".\nCTRL-C to stop it.\n` +
      'Checking if IPFS is online (will wait for 2 minutes)...\n',
  )
  await waitForIpfs(ctx, opts.ipfsWaitMs ?? IPFS_WAIT_MS, opts.clock ?? systemClock)

  // As the reference: info by default, the API's access log only when something fails.
  const logs = logging('info,restapilog:error')
  const configLog = logs.get('config')
  let config
  try {
    ;({ config } = await loadFollowedConfig(ctx, (m) => configLog.warn(m)))
  } catch (err) {
    throw new FollowError(`reading the configurations in ${ctx.dir}: ${errorMessage(err)}`)
  }
  const socket = join(ctx.dir, API_SOCKET)
  await clearStaleSocket(socket)
  const { runDaemon } = await import('../../src/daemon.ts')
  try {
    return await runDaemon({
      configDir: ctx.dir,
      env: io.env,
      logging: logs,
      config,
      // Trusted peers may not garbage-collect a follower's IPFS (the reference closes it too).
      rpcPolicy: { 'Cluster.RepoGCLocal': 'closed' },
      signals: io.signals,
    })
  } finally {
    // Deno leaves a unix socket's file behind when its listener closes.
    await Deno.remove(socket).catch(() => {})
  }
}

/**
 * Waits until the IPFS daemon at the default ipfshttp address (or CLUSTER_IPFSHTTP_* from the
 * environment) answers `id`, trying every second and saying so every ten tries; fails with the
 * reference's words after `ms`.
 */
async function waitForIpfs(ctx: FollowCtx, ms: number, clock: Clock): Promise<void> {
  const { ipfsHttpConnector } = await import('../../src/ipfsconn/ipfshttp/connector.ts')
  const cfg = ipfsHttpSection.load(undefined, ctx.io.env)
  const ipfs = ipfsHttpConnector(cfg)
  const until = clock.now() + ms
  try {
    for (let i = 0;; i++) {
      if (i % 10 === 0) {
        await ctx.io.stdout(
          `waiting for IPFS to become available on ${cfg.node_multiaddress}...\n`,
        )
      }
      if (await answersId(ipfs)) return
      if (clock.now() >= until) break
      await clock.sleep(1000)
    }
  } finally {
    await ipfs.stop()
  }
  throw new FollowError('timed out waiting for IPFS to be available')
}

/**
 * Removes the socket file a previous run left, unless a peer answers on it (then this cluster's
 * follower runs already, and starting a second one is refused).
 */
async function clearStaleSocket(path: string): Promise<void> {
  let conn: Deno.Conn | undefined
  try {
    conn = await Deno.connect({ transport: 'unix', path })
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return
    await Deno.remove(path).catch(() => {})
    return
  }
  conn.close()
  throw new FollowError(
    `a follower peer for this cluster is running already: its API answers on ${path}`,
  )
}
