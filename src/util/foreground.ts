/**
 * Foreground activity: what the peer does for someone waiting on it (API requests, until their
 * response body is sent). Background work (the tracker's catch-up of a backlog) asks `busy()`
 * and steps aside while it is true: one JS thread serves both, and requests come first.
 *
 * A request counts from `begin()` until the function it returns is called, and for `graceMs`
 * after that, so that a client sending requests back to back (wrk, `ctl pin add` in a loop)
 * reads as one stretch of activity.
 *
 * @example
 * ```ts
 * const fg = new Foreground()
 * const end = fg.begin()
 * fg.busy() // true
 * end()
 * ```
 */

/** Milliseconds after the last request during which the peer still counts as busy. */
export const FOREGROUND_GRACE_MS = 100

/** Counts requests in flight and remembers when the last one ended. */
export class Foreground {
  #inFlight = 0
  #lastEnd = -Infinity

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly graceMs = FOREGROUND_GRACE_MS,
  ) {}

  /** A request started; call the returned function once when it is done (extra calls are no-ops). */
  begin(): () => void {
    this.#inFlight++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      this.#inFlight--
      this.#lastEnd = this.now()
    }
  }

  /** True while a request is in flight or one ended less than `graceMs` ago. */
  busy(): boolean {
    return this.#inFlight > 0 || this.now() - this.#lastEnd < this.graceMs
  }
}
