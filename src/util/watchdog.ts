/**
 * The pin progress watchdog. A pin of a large DAG may take hours, so `pin/add` has no total time
 * limit; instead it is cancelled when the number of fetched blocks Kubo reports (`Progress`) has
 * not grown for `pin_timeout`. Kubo repeats the same count every 500 ms while stuck, so only
 * growth counts, not lines.
 *
 * The reference checks on a ticker of `pin_timeout`, so it fires between 1× and 2× the timeout;
 * this fires at exactly `pin_timeout` after the last growth (or the start).
 *
 * @example
 * ```ts
 * const dog = progressWatchdog(120_000, () => call.cancel(new IPFSError('stalled')), clock)
 * dog.progress(12) // restarts the countdown: 12 > 0
 * dog.stop()
 * ```
 */
import { type CancelTimer, type Clock, systemClock } from './clock.ts'

/** A running watchdog. */
export interface ProgressWatchdog {
  /** Reports the latest count; restarts the countdown only when it grew. */
  progress(count: number): void
  /** Disarms the watchdog. Idempotent. */
  stop(): void
}

/** Arms a watchdog that calls `onStall` once after `timeoutMs` without growth. */
export function progressWatchdog(
  timeoutMs: number,
  onStall: () => void,
  clock: Clock = systemClock,
): ProgressWatchdog {
  let last = 0
  let stopped = false
  let cancel: CancelTimer | undefined
  const arm = () => {
    cancel?.()
    cancel = clock.timeout(timeoutMs, () => {
      cancel = undefined
      if (stopped) return
      stopped = true
      onStall()
    })
  }
  arm()
  return {
    progress(count: number) {
      if (stopped || !(count > last)) return
      last = count
      arm()
    },
    stop() {
      stopped = true
      cancel?.()
      cancel = undefined
    },
  }
}
