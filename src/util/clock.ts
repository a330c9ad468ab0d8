/**
 * The one clock of the program: the current time, one-shot and repeating timers, and `sleep`.
 * Components take a `Clock` from their deps (default `systemClock`) instead of calling
 * `Date.now`, `setTimeout` or `setInterval`, so that tests drive time with a manual clock
 * (test/support/manual_clock.ts) and no test waits for the wall clock. `yieldToLoop`, a turn of
 * the event loop that no clock needs to drive, lives here too: the one way long walks let other
 * work in.
 *
 * `sleep` rejects with the signal's reason when the signal aborts (at once if it already had),
 * like `fetch` and every other Web API that takes an `AbortSignal`: a loop that sleeps between
 * rounds ends by that rejection, and a caller never mistakes an abort for the time having passed.
 *
 * Delays beyond what a platform timer holds (2^31 − 1 ms, about 24.8 days; a longer `setTimeout`
 * fires at once) are waited for in several steps, so a `state_sync_interval` of 1000h means it.
 *
 * @example
 * ```ts
 * const clock: Clock = deps.clock ?? systemClock
 * const cancel = clock.timeout(pinTimeout, () => call.abort())
 * await clock.sleep(interval, signal) // rejects with signal.reason on abort
 * cancel()
 * ```
 *
 * @module
 */
import { setImmediate } from 'node:timers'

/** Cancels a timer; calling it again, or after the timer fired, does nothing. */
export type CancelTimer = () => void

/** Time and timers, injected. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Calls `fn` once, `ms` from now (`ms` ≤ 0: on the next turn). */
  timeout(ms: number, fn: () => void): CancelTimer
  /** Calls `fn` every `ms` (> 0) until cancelled. */
  interval(ms: number, fn: () => void): CancelTimer
  /** Resolves `ms` from now; rejects with `signal.reason` once the signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
  /**
   * A signal that aborts `ms` from now with a `TimeoutError` DOMException, as
   * `AbortSignal.timeout` does (and like it, never keeps the process alive): for deadlines of
   * work that does not end by itself when done (a request and its body).
   */
  timeoutSignal(ms: number): AbortSignal
}

/** The longest delay one platform timer holds. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The reason a `timeoutSignal` aborts with (what `AbortSignal.timeout` uses). */
export function timeoutReason(): DOMException {
  return new DOMException('Signal timed out.', 'TimeoutError')
}

/**
 * `sleep` for any clock, from its `timeout`: the one implementation of the abort behaviour
 * above, shared by `systemClock` and the tests' manual clock.
 */
export function sleepOn(
  timeout: Clock['timeout'],
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      cancel()
      reject(signal!.reason)
    }
    const cancel = timeout(ms, () => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The real clock: `Date.now` and the platform's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  timeout(ms, fn) {
    let t: ReturnType<typeof setTimeout>
    let cancelled = false
    const arm = (left: number) => {
      t = setTimeout(() => {
        if (left > MAX_TIMER_MS) arm(left - MAX_TIMER_MS)
        else if (!cancelled) fn()
      }, Math.min(Math.max(0, left), MAX_TIMER_MS))
    }
    arm(ms)
    return () => {
      cancelled = true
      clearTimeout(t)
    }
  },
  interval(ms, fn) {
    if (ms > MAX_TIMER_MS) {
      let cancel = () => {}
      const again = () => {
        cancel = systemClock.timeout(ms, () => {
          again()
          fn()
        })
      }
      again()
      return () => cancel()
    }
    const t = setInterval(fn, Math.max(1, ms))
    return () => clearInterval(t)
  },
  sleep: (ms, signal) => sleepOn(systemClock.timeout, ms, signal),
  // Capped at ~24.8 days: longer deadlines for a request are "never" in practice.
  timeoutSignal: (ms) => AbortSignal.timeout(Math.min(Math.max(0, ms), MAX_TIMER_MS)),
}

/**
 * Lets the timers and I/O callbacks already due run before the caller goes on. setImmediate,
 * not setTimeout(0): chained zero timers are clamped to ~4 ms each (HTML timer nesting), which
 * made a walk that yields every 256 pins sleep 16 s over a million pins.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}
