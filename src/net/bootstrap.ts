/**
 * Getting connected to the cluster, as the reference's `pstoremgr.Bootstrap` and
 * `Cluster.reBootstrap` do: at start, up to 3 peers by priority (a peer that fails drops to the
 * last priority); then, every 30 s, towards `connection_manager.low_water` connections with
 * peers picked at random (nothing to do while there are that many), and every 5 min to one
 * `peer_addresses` peer (the first reachable by priority), so that a peer isolated by the
 * others still finds a stable one. Dials are one after the other, as in the reference: the order
 * is the priority.
 *
 * @example
 * ```ts
 * const loop = rebootstrapLoop(dialer, { lowWater: 100, priorityPeers: true, clock, log })
 * await loop.stop()
 * ```
 */
import type { Clock } from '../util/clock.ts'
import type { Logger } from '../util/log.ts'
import { errorMessage, isAbortError } from '../errors.ts'
import { FAILED_PRIORITY, type PeerBook } from './peer_book.ts'

/** Peers connected at start (the reference's `bootstrapCount`). */
export const BOOTSTRAP_COUNT = 3
/** How often the loop tops connections up to low_water. */
export const REBOOTSTRAP_INTERVAL_MS = 30_000
/** How often the loop reconnects to one `peer_addresses` peer. */
export const PRIORITY_RECONNECT_INTERVAL_MS = 5 * 60_000

/** What a bootstrap round needs from the host. */
export interface Dialer {
  book: PeerBook
  /** Every known peer with addresses (book and libp2p's peer store), self and forgotten out. */
  knownPeers(): Promise<string[]>
  connections(): number
  isConnected(peerId: string): boolean
  /** Dials a peer at every address known for it; rejects when none answers. */
  dial(peerId: string, signal: AbortSignal): Promise<void>
  random: () => number
  log: Logger
}

/**
 * Tries to reach `count` connections; returns the peers it connected to. `force` counts only
 * the peers of this round (the existing connections are not enough), `byPriority` orders peers
 * by priority instead of at random.
 */
export async function bootstrap(
  d: Dialer,
  count: number,
  byPriority: boolean,
  force: boolean,
  signal: AbortSignal,
): Promise<string[]> {
  let total = force ? 0 : d.connections()
  if (total >= count) return []
  const peers = d.book.ordered(await d.knownPeers(), byPriority, d.random)
  const connected: string[] = []
  for (const id of peers) {
    if (total >= count || signal.aborted) break
    if (d.isConnected(id)) {
      total++
      continue
    }
    try {
      d.log.debug(`connecting to ${id}`)
      await d.dial(id, signal)
    } catch (err) {
      if (signal.aborted) break
      d.log.debug(`cannot connect to ${id}: ${errorMessage(err)}`)
      d.book.setPriority(id, FAILED_PRIORITY)
      continue
    }
    total++
    connected.push(id)
  }
  return connected
}

/** Options of the re-bootstrap loop. */
export interface LoopOptions {
  lowWater: number
  /** Whether `cluster.peer_addresses` names any peer (the 5-minute round is skipped if not). */
  priorityPeers: boolean
  clock: Clock
  log: Logger
}

/** The running loop. */
export interface RebootstrapLoop {
  /** Resolves once no round is running. */
  idle(): Promise<void>
  /** Cancels the timers and aborts the running round; idempotent. */
  stop(): Promise<void>
}

/** Starts the re-bootstrap loop on the injected clock. A round never overlaps another. */
export function rebootstrapLoop(d: Dialer, opts: LoopOptions): RebootstrapLoop {
  const ac = new AbortController()
  let running: Promise<void> | undefined
  const round = (what: string, count: number, byPriority: boolean, force: boolean) => {
    if (running || ac.signal.aborted) return
    running = bootstrap(d, count, byPriority, force, ac.signal)
      .then((ids) => ids.forEach((id) => opts.log.info(`${what} ${id}`)))
      .catch((err) => {
        if (!isAbortError(err)) opts.log.warn(`bootstrap: ${errorMessage(err)}`)
      })
      .finally(() => running = undefined)
  }
  const timers = [
    opts.clock.interval(
      REBOOTSTRAP_INTERVAL_MS,
      () => round('reconnected to', opts.lowWater, false, false),
    ),
    opts.clock.interval(PRIORITY_RECONNECT_INTERVAL_MS, () => {
      if (opts.priorityPeers) round('reconnected to priority peer', 1, true, true)
    }),
  ]
  return {
    idle: () => running ?? Promise.resolve(),
    async stop() {
      timers.forEach((cancel) => cancel())
      ac.abort()
      await running
    },
  }
}
