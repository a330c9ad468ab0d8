/**
 * Paces the tracker's background work (sync passes and the operations they queue) behind the
 * foreground: while `busy()` says the peer serves requests, background steps go one at a time,
 * `gapMs` apart, across every caller — a few percent of the one JS thread and of Deno KV, and
 * still progress under a sustained load. Otherwise a step only lets the callbacks already due
 * run first (setImmediate), so an idle peer catches up at full speed.
 *
 * @example
 * ```ts
 * const pacer = new Pacer({ busy: () => foreground.busy() })
 * for (const batch of work) {
 *   await pacer.turn(signal)
 *   doSome(batch)
 * }
 * ```
 */
import { setImmediate } from 'node:timers'

/** Milliseconds between two background steps while the foreground is busy. */
export const BUSY_GAP_MS = 10

/** What a Pacer needs; everything but `busy` has a default (tests inject a clock). */
export interface PacerOptions {
  busy: () => boolean
  now?: () => number
  /** Resolves after `ms`, or rejects when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  gapMs?: number
}

/** See the module comment. */
export class Pacer {
  readonly #busy: () => boolean
  readonly #now: () => number
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  readonly #gap: number
  /** When the next background step may run while busy. */
  #next = 0

  constructor(opts: PacerOptions) {
    this.#busy = opts.busy
    this.#now = opts.now ?? (() => performance.now())
    this.#sleep = opts.sleep ?? abortableSleep
    this.#gap = opts.gapMs ?? BUSY_GAP_MS
  }

  /** Waits for this caller's turn to do one step of background work. */
  async turn(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (!this.#busy()) return yieldToLoop()
    const now = this.#now()
    const at = Math.max(now, this.#next)
    this.#next = at + this.#gap
    if (at > now) await this.#sleep(at - now, signal)
    else await yieldToLoop()
  }
}

/**
 * Lets the timers and I/O callbacks already due run before the caller goes on. setImmediate,
 * not setTimeout(0): chained zero timers are clamped to ~4 ms each (HTML timer nesting), which
 * made a walk that yields every 256 pins sleep 16 s over a million pins.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener('abort', abort)
      resolve()
    }
    const t = setTimeout(done, ms)
    const abort = () => {
      clearTimeout(t)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', abort, { once: true })
  })
}
