/**
 * Waiting for a pin to reach a status, as the reference's `client.WaitFor` does: poll the CID's
 * cluster-wide status every second (the first poll one period after the start), fail at once when
 * any peer reports an error status, and finish when enough peers reached the target.
 *
 * @example
 * ```ts
 * const st = await client.waitFor(cid, 'pinned', { limit: 2, timeoutMs: 60_000 })
 * ```
 */
import type { GlobalPinInfo, TrackerStatus } from '../../types/mod.ts'
import { ERROR_STATUSES } from '../../types/mod.ts'
import { type Clock, systemClock } from '../../util/clock.ts'

/** Options of waitFor. */
export interface WaitForOptions {
  /** Done when this many peers are at the target; 0 = all peers (capped at the peer count). */
  limit?: number
  /** Ask only the contacted peer. */
  local?: boolean
  /** Give up after this long (DeadlineExceededError); 0 = never. */
  timeoutMs?: number
  /** Poll period; default 1000 ms as in the reference. */
  checkFreqMs?: number
  signal?: AbortSignal
  /** Called with every status polled (progress display). */
  onStatus?: (st: GlobalPinInfo) => void
  /** The poll period's and the timeout's clock (default: the system clock). */
  clock?: Clock
}

/** The wait ran out of time (Go's `context deadline exceeded`). */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError'
  constructor() {
    super('context deadline exceeded')
  }
}

/** What waitFor needs from a client. */
export interface StatusSource {
  status(cid: string, o?: { local?: boolean; signal?: AbortSignal }): Promise<GlobalPinInfo>
}

/**
 * True when the target is reached; throws when a peer is in an error state. With a limit, counts
 * peers at the target; without, every peer must be at it (`remote` counts for `pinned`).
 */
export function statusReached(target: TrackerStatus, gpi: GlobalPinInfo, limit: number): boolean {
  const infos = Object.values(gpi.peer_map ?? {})
  if (infos.some((pi) => ERROR_STATUSES.has(pi.status))) {
    throw new Error(`error has occurred while attempting to reach status: ${target}`)
  }
  const lim = Math.min(limit, infos.length)
  if (lim > 0) return infos.filter((pi) => pi.status === target).length >= lim
  return infos.every((pi) =>
    pi.status === target || (pi.status === 'remote' && target === 'pinned')
  )
}

/** Polls until the target status is reached; resolves with the last status seen. */
export async function waitFor(
  client: StatusSource,
  cid: string,
  target: TrackerStatus,
  o: WaitForOptions = {},
): Promise<GlobalPinInfo> {
  const freq = o.checkFreqMs ?? 1000
  const clock = o.clock ?? systemClock
  const timeout = o.timeoutMs && o.timeoutMs > 0 ? clock.timeoutSignal(o.timeoutMs) : undefined
  const signals = [o.signal, timeout].filter((s): s is AbortSignal => s !== undefined)
  const signal = signals.length ? AbortSignal.any(signals) : new AbortController().signal
  const stopped = () => {
    if (o.signal?.aborted) throw o.signal.reason
    if (timeout?.aborted) throw new DeadlineExceededError()
  }
  for (;;) {
    try {
      await clock.sleep(freq, signal)
    } catch (err) {
      stopped()
      throw err
    }
    let st: GlobalPinInfo
    try {
      st = await client.status(cid, { local: o.local, signal })
    } catch (err) {
      stopped()
      throw err
    }
    o.onStatus?.(st)
    if (statusReached(target, st, o.limit ?? 0)) return st
  }
}
