/**
 * The tracker's failure lines, rate-limited: the first failure of a kind (operation type and
 * error message, with the CID taken out of the message) is logged at once; the same failure
 * again within `intervalMs` is only counted, and the count goes out with the next line of that
 * kind after the interval, or at `flush()`. A peer restarted with 11,000 pins that cannot be
 * pinned writes a handful of lines, not two per pin per attempt.
 *
 * @example
 * ```ts
 * const failures = new FailureLog((level, msg) => logger[level](msg), Date.now)
 * failures.failed('pin', cid, 'no block arrived for 1m0s (pin_timeout)')
 * failures.flush() // "… (and 41 more pin failures like it since 12:00:03Z)"
 * ```
 */
import { formatTime } from '../types/time.ts'
import type { LogLevel } from './stateless.ts'

/** How often one kind of failure is logged (the rest are counted). */
export const FAILURE_LOG_INTERVAL_MS = 60_000

// Kinds remembered at once; beyond this, the oldest expired kinds are flushed and forgotten,
// and if none has expired the new kind is counted under a catch-all.
const MAX_KINDS = 64

interface Kind {
  /** When this kind was last logged. */
  at: number
  /** Failures counted (not logged) since then. */
  held: number
  type: string
  /** The message with the CID taken out; undefined for the catch-all kind. */
  message: string | undefined
}

/** Rate-limited failure logging; see the module comment. */
export class FailureLog {
  #kinds = new Map<string, Kind>()

  constructor(
    private readonly log: (level: LogLevel, msg: string) => void,
    private readonly now: () => number,
    private readonly intervalMs = FAILURE_LOG_INTERVAL_MS,
  ) {}

  /** Reports that an operation of `type` on `cid` failed with `message`. */
  failed(type: string, cid: string, message: string): void {
    const now = this.now()
    const generic = message.replaceAll(cid, '<cid>')
    let key = `${type}\0${generic}`
    let kind = this.#kinds.get(key)
    if (!kind && this.#kinds.size >= MAX_KINDS) {
      this.#evict(now)
      if (this.#kinds.size >= MAX_KINDS) {
        key = `${type}\0`
        kind = this.#kinds.get(key)
      }
    }
    if (kind && now - kind.at < this.intervalMs) {
      kind.held++
      return
    }
    const held = kind?.held ?? 0
    const catchAll = key === `${type}\0`
    this.#kinds.set(key, { at: now, held: 0, type, message: catchAll ? undefined : generic })
    this.log('error', `${type} ${cid}: ${message}${held ? this.#more(held, type, kind!.at) : ''}`)
  }

  /**
   * Logs the counts held back so far (a sync pass ended; the tracker stops). Each kind's
   * interval still runs: a failure of that kind within it is counted, not logged.
   */
  flush(): void {
    for (const kind of this.#kinds.values()) this.#report(kind)
  }

  #evict(now: number): void {
    for (const [key, kind] of this.#kinds) {
      if (now - kind.at >= this.intervalMs) {
        this.#report(kind)
        this.#kinds.delete(key)
      }
    }
  }

  #report(kind: Kind): void {
    const n = kind.held
    if (!n) return
    kind.held = 0
    if (kind.message === undefined) {
      const failures = `failure${n === 1 ? '' : 's'}`
      this.log(
        'error',
        `${kind.type}: ${n} more ${kind.type} ${failures} with other errors since ${
          formatTime(kind.at)
        }`,
      )
    } else {
      this.log('error', `${kind.type}: ${kind.message}${this.#more(n, kind.type, kind.at)}`)
    }
  }

  #more(n: number, type: string, since: number): string {
    return ` (and ${n} more ${type} failure${n === 1 ? '' : 's'} like it since ${
      formatTime(since)
    })`
  }
}
