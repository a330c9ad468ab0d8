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
import { type Clock, systemClock, yieldToLoop } from '../util/clock.ts'

/** Milliseconds between two background steps while the foreground is busy. */
export const BUSY_GAP_MS = 10

/** What a Pacer needs; everything but `busy` has a default (tests inject a clock). */
export interface PacerOptions {
  busy: () => boolean
  clock?: Pick<Clock, 'now' | 'sleep'>
  gapMs?: number
}

/** See the module comment. */
export class Pacer {
  readonly #busy: () => boolean
  readonly #clock: Pick<Clock, 'now' | 'sleep'>
  readonly #gap: number
  /** When the next background step may run while busy. */
  #next = 0

  constructor(opts: PacerOptions) {
    this.#busy = opts.busy
    this.#clock = opts.clock ?? systemClock
    this.#gap = opts.gapMs ?? BUSY_GAP_MS
  }

  /** Waits for this caller's turn to do one step of background work. */
  async turn(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (!this.#busy()) return yieldToLoop()
    const now = this.#clock.now()
    // Turns are handed out a gap apart, to a few callers: a lead longer than a thousand gaps
    // means the wall clock went back, and the schedule starts again from now.
    if (this.#next - now > 1000 * this.#gap) this.#next = now
    const at = Math.max(now, this.#next)
    this.#next = at + this.#gap
    if (at > now) await this.#clock.sleep(at - now, signal)
    else await yieldToLoop()
  }
}
