/**
 * A `Clock` whose time moves only when a test says so. `advance(ms)` fires the timers that fall
 * due, one at a time in the order of their deadlines (ties in the order they were set), with
 * `now()` reading each timer's own deadline while it runs, and lets the work each one started
 * settle (microtasks and one turn of the event loop) before the next: a test reads as a timeline
 * ("59 ms later nothing happened; at 60 ms it fired") and no load on the machine changes it.
 *
 * @example
 * ```ts
 * const clock = manualClock()
 * const dog = progressWatchdog(60, onStall, clock)
 * await clock.advance(59) // onStall not called
 * await clock.advance(1)  // called, at now() = 60
 * ```
 */
import { setImmediate } from 'node:timers'
import { type Clock, sleepOn, timeoutReason } from '../../src/util/clock.ts'

/** A manual clock plus the controls tests use. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer due on the way (see the module comment). */
  advance(ms: number): Promise<void>
  /** Moves time to the next timer's deadline and fires it (and any due at that same time). */
  next(): Promise<boolean>
  /** Timers set and not yet fired or cancelled (an interval counts once). */
  pending(): number
  /** The deadline of the earliest pending timer, if any. */
  nextAt(): number | undefined
}

interface Timer {
  at: number
  seq: number
  every: number
  fn: () => void
}

/** Lets microtasks run and the event loop turn once (I/O completions get delivered). */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}

/** A manual clock starting at `start` (ms since the epoch). */
export function manualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start
  let seq = 0
  const timers = new Set<Timer>()

  const add = (ms: number, every: number, fn: () => void) => {
    const t: Timer = { at: now + Math.max(0, ms), seq: seq++, every, fn }
    timers.add(t)
    return () => void timers.delete(t)
  }
  const earliest = (): Timer | undefined => {
    let best: Timer | undefined
    for (const t of timers) {
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t
    }
    return best
  }
  const fire = (t: Timer) => {
    now = Math.max(now, t.at)
    if (t.every > 0) {
      t.at += t.every
      t.seq = seq++
    } else {
      timers.delete(t)
    }
    t.fn()
  }

  const clock: ManualClock = {
    now: () => now,
    timeout: (ms, fn) => add(ms, 0, fn),
    interval: (ms, fn) => add(Math.max(1, ms), Math.max(1, ms), fn),
    sleep: (ms, signal) => sleepOn(clock.timeout, ms, signal),
    timeoutSignal(ms) {
      const ac = new AbortController()
      clock.timeout(ms, () => ac.abort(timeoutReason()))
      return ac.signal
    },
    async advance(ms) {
      const target = now + ms
      await turn()
      for (;;) {
        const t = earliest()
        if (!t || t.at > target) break
        fire(t)
        await turn()
      }
      now = Math.max(now, target)
      await turn()
    },
    async next() {
      const t = earliest()
      if (!t) return false
      await clock.advance(t.at - now)
      return true
    },
    pending: () => timers.size,
    nextAt: () => earliest()?.at,
  }
  return clock
}

/**
 * A manual clock whose `sleep` returns at once, moving time by the sleep's length (and firing
 * what falls due on the way), and records each length: for code that sleeps between polls or
 * retries, when a test checks the pauses rather than steps through them.
 */
export function recordingClock(start?: number): ManualClock & { sleeps: number[] } {
  const manual = manualClock(start)
  const sleeps: number[] = []
  return {
    ...manual,
    sleeps,
    async sleep(ms, signal) {
      sleeps.push(ms)
      const done = manual.sleep(ms, signal)
      done.catch(() => {}) // an abort while time moves is seen by our caller, below
      await manual.advance(ms)
      return done
    },
  }
}
