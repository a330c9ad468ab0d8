/**
 * Conditions callers wait on, re-checked when their owner says its state moved: the Raft host's
 * (a leader known, an index applied, a membership change applied, a leadership transfer done —
 * it calls `notify()` after each Ready) and the Pinning Service index's (a rebuild reaching a
 * request). Nothing polls on a timer; only a wait's bound uses the (injected) clock.
 *
 * @example
 * ```ts
 * const waiters = new Waiters(clock, () => stopped)
 * await waiters.waitFor(() => node.basicStatus().leader !== null, 3000, signal, () => new NoLeaderError())
 * waiters.notify() // in the loop, after each Ready
 * ```
 *
 * @module
 */
import { ShutdownError } from '../errors.ts'
import type { Clock } from './clock.ts'

interface Waiter {
  check: () => boolean
  resolve: () => void
}

/** The host's waiting callers; see the module comment. */
export class Waiters {
  readonly #clock: Pick<Clock, 'timeout'>
  readonly #stopped: () => boolean
  readonly #waiters = new Set<Waiter>()

  /** `stopped` true: a waiter released by `releaseAll` rejects with a ShutdownError. */
  constructor(clock: Pick<Clock, 'timeout'>, stopped: () => boolean) {
    this.#clock = clock
    this.#stopped = stopped
  }

  /** Resolves when `check()` holds (re-checked at each `notify`), or rejects at `timeoutMs`. */
  waitFor(
    check: () => boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onTimeout: () => Error,
  ): Promise<void> {
    if (check()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: unknown) => {
        cancelTimer()
        signal?.removeEventListener('abort', onAbort)
        this.#waiters.delete(w)
        if (err) reject(err)
        else resolve()
      }
      const w: Waiter = {
        check,
        resolve: () =>
          finish(this.#stopped() ? new ShutdownError('consensus is shut down') : undefined),
      }
      const onAbort = () => finish(signal!.reason)
      // No timer for a wait without a bound.
      const cancelTimer = timeoutMs === Infinity
        ? () => {}
        : this.#clock.timeout(timeoutMs, () => finish(onTimeout()))
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.add(w)
    })
  }

  /** Waits `ms` (less once stopped); rejects only when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.waitFor(this.#stopped, ms, signal, () => new Error('timeout')).catch((err) => {
      if (signal?.aborted) throw err
    })
  }

  /** Resolves every waiter whose condition now holds. */
  notify(): void {
    for (const w of [...this.#waiters]) if (w.check()) w.resolve()
  }

  /** Releases every waiter (at stop: they reject with a ShutdownError). */
  releaseAll(): void {
    for (const w of [...this.#waiters]) w.resolve()
    this.#waiters.clear()
  }
}
