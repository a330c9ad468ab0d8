/**
 * The connection rules of an HTTP API as a pure core with an injected clock: how many
 * connections are served at once, and when a connection is closed because a timeout of the
 * API's config ran out. http_server.ts feeds it events (accepted, request started, body read,
 * response sent, closed) and closes the connections it names.
 *
 * The timeouts mean what they mean in the reference (Go net/http's `http.Server`):
 * - `read_header_timeout` (0: `read_timeout`): from accepting a connection until its first
 *   request's headers are complete;
 * - `idle_timeout` (0: `read_timeout`): from the end of a response until the next request's
 *   headers are complete, when no other request is running;
 * - `read_timeout`: until the request's body is read, from the accept for a connection's first
 *   request and from its headers for the next ones (a body the handler left unread counts as
 *   unread until the next request's headers arrive, which the engine parses only after it);
 * - `write_timeout`: from a request's headers until its response is sent.
 * A connection past one of these is closed, as Go closes a connection whose read or write
 * deadline passed. The engine (hyper) parses the bytes, so the moments observable here are
 * "headers complete" and "response sent": a keep-alive connection's next request must be
 * complete within `idle_timeout` (Go starts `read_header_timeout` at its first byte).
 *
 * @example
 * ```ts
 * const guard = connGuard({ timeouts, maxConnections: 256, maxRefusals: 64 })
 * const a = guard.admit((why) => abortConnection(why))
 * if (a.kind === 'serve') {
 *   const r = a.conn.request(false) // headers complete
 *   r.done() // response sent
 *   a.conn.close()
 * }
 * ```
 */
import { type Clock, systemClock } from '../../util/clock.ts'

/** Timeouts in ms, 0 = none (service.json's `read_header_timeout`, `read_timeout`, …). */
export interface ConnTimeouts {
  readHeader: number
  read: number
  write: number
  idle: number
}

/** Which timeout closed a connection. */
export type Expiry = 'header' | 'idle' | 'read' | 'write'

/** The config key each expiry comes from, for log lines. */
export const EXPIRY_KEY: Record<Expiry, string> = {
  header: 'read_header_timeout',
  idle: 'idle_timeout',
  read: 'read_timeout',
  write: 'write_timeout',
}

/** What the guard needs of the program's clock. */
export type GuardClock = Pick<Clock, 'now' | 'timeout'>

/** A request in flight on a connection. */
export interface RequestState {
  /** When its headers were complete. */
  startedAt: number
  /** Where `read_timeout` counts from. */
  readFrom: number
  bodyDone: boolean
}

/** What a connection's deadline depends on. */
export interface ConnState {
  acceptedAt: number
  /** End of the last response; undefined until one was sent. */
  lastDoneAt?: number
  /** Requests seen on this connection so far. */
  seen: number
  /** Requests in flight (HTTP/1.1: at most one; h2: any number). */
  requests: RequestState[]
  /** `read_timeout` deadline of an answered request whose body was not seen to its end. */
  unreadBodyUntil?: number
}

/** When a connection must be closed, and why; undefined = never (for now). */
export function connDeadline(
  t: ConnTimeouts,
  s: ConnState,
): { at: number; why: Expiry } | undefined {
  if (s.requests.length === 0) {
    if (s.seen === 0) {
      const h = t.readHeader || t.read
      return h > 0 ? { at: s.acceptedAt + h, why: 'header' } : undefined
    }
    const i = t.idle || t.read
    const idle = i > 0 && s.lastDoneAt !== undefined
      ? { at: s.lastDoneAt + i, why: 'idle' as const }
      : undefined
    if (s.unreadBodyUntil !== undefined && (!idle || s.unreadBodyUntil < idle.at)) {
      return { at: s.unreadBodyUntil, why: 'read' }
    }
    return idle
  }
  let best: { at: number; why: Expiry } | undefined
  for (const r of s.requests) {
    if (t.read > 0 && !r.bodyDone && (!best || r.readFrom + t.read < best.at)) {
      best = { at: r.readFrom + t.read, why: 'read' }
    }
    if (t.write > 0 && (!best || r.startedAt + t.write < best.at)) {
      best = { at: r.startedAt + t.write, why: 'write' }
    }
  }
  return best
}

/** A request being tracked. Both calls are idempotent. */
export interface TrackedRequest {
  /** The request body was read to its end. */
  bodyDone(): void
  /** The response was sent (or failed). */
  done(): void
}

/** A connection being served. */
export interface TrackedConn {
  /** A request's headers are complete; `hasBody` false when it has no body to read. */
  request(hasBody: boolean): TrackedRequest
  /** The connection is closed: it stops counting and its timer goes. Idempotent. */
  close(): void
}

/** What to do with a new connection. */
export type Admission =
  | { kind: 'serve'; conn: TrackedConn }
  /** Over `max_connections`: answer 503, let the client read it, close; then `release`. */
  | { kind: 'refuse'; release: () => void }
  /** Over the cap and the refusals in progress: close at once. */
  | { kind: 'drop' }

/** Limits and timeouts of one API's connections. */
export interface GuardOptions {
  timeouts: ConnTimeouts
  /** Connections served at once. */
  maxConnections: number
  /**
   * Over-cap connections given time to read their 503; beyond, they are closed at once. Default:
   * a quarter of the cap, at least 1.
   */
  maxRefusals?: number
  /**
   * When given, called once, the first time the connections reach `maxConnections`, and its
   * answer becomes the cap: a default that costs something to work out is worked out only when
   * it matters (see `defaultMaxConnections`).
   */
  settleMax?: () => number
  clock?: GuardClock
}

/** The connection table of one API. */
export interface ConnGuard {
  /** Decides about a new connection; `onExpire` is called once if a timeout closes it. */
  admit(onExpire: (why: Expiry) => void): Admission
  /** Connections being served. */
  readonly open: number
  /** Refusals in progress. */
  readonly refusing: number
  /** The cap in force. */
  readonly maxConnections: number
}

/** Builds the connection table of one API. */
export function connGuard(opts: GuardOptions): ConnGuard {
  const clock = opts.clock ?? systemClock
  const t = opts.timeouts
  let open = 0
  let refusing = 0
  let max = opts.maxConnections
  let settle = opts.settleMax
  const maxRefusals = () => opts.maxRefusals ?? Math.max(1, Math.floor(max / 4))

  function track(onExpire: (why: Expiry) => void): TrackedConn {
    const state: ConnState = { acceptedAt: clock.now(), seen: 0, requests: [] }
    let closed = false
    let cancel: (() => void) | undefined
    // The armed timer may fire before the deadline (which only moved later since): it then
    // re-arms. Moving a deadline later costs nothing, so a busy keep-alive connection touches
    // timers about once per timeout, not once per request.
    let armedAt = Infinity

    const arm = () => {
      if (closed) return
      const d = connDeadline(t, state)
      if (!d || d.at >= armedAt) return
      cancel?.()
      armedAt = d.at
      cancel = clock.timeout(d.at - clock.now(), fire)
    }
    const fire = () => {
      cancel = undefined
      armedAt = Infinity
      if (closed) return
      const d = connDeadline(t, state)
      if (d && d.at <= clock.now()) {
        closed = true
        onExpire(d.why)
      } else arm()
    }
    arm()

    let counted = true
    return {
      request(hasBody) {
        const r: RequestState = {
          startedAt: clock.now(),
          readFrom: state.seen === 0 ? state.acceptedAt : clock.now(),
          bodyDone: !hasBody,
        }
        state.seen++
        state.requests.push(r)
        state.unreadBodyUntil = undefined // the engine read the previous body to get here
        arm()
        let finished = false
        return {
          bodyDone() {
            r.bodyDone = true
          },
          done() {
            if (finished) return
            finished = true
            const i = state.requests.indexOf(r)
            if (i >= 0) state.requests.splice(i, 1)
            state.lastDoneAt = clock.now()
            if (!r.bodyDone && t.read > 0) {
              const until = r.readFrom + t.read
              if (state.unreadBodyUntil === undefined || until < state.unreadBodyUntil) {
                state.unreadBodyUntil = until
              }
            }
            arm()
          },
        }
      },
      close() {
        closed = true
        cancel?.()
        cancel = undefined
        if (counted) {
          counted = false
          open--
        }
      },
    }
  }

  return {
    admit(onExpire) {
      if (open >= max && settle) {
        max = settle()
        settle = undefined
      }
      if (open < max) {
        open++
        return { kind: 'serve', conn: track(onExpire) }
      }
      if (refusing < maxRefusals()) {
        refusing++
        let released = false
        return {
          kind: 'refuse',
          release() {
            if (!released) {
              released = true
              refusing--
            }
          },
        }
      }
      return { kind: 'drop' }
    },
    get open() {
      return open
    },
    get refusing() {
      return refusing
    },
    get maxConnections() {
      return max
    },
  }
}

/**
 * The default `max_connections` (0 in service.json): a quarter of the process's open-files limit
 * (the rest is for the state, libp2p, IPFS and the other APIs), at least 16 and at most 4096.
 */
export function defaultMaxConnections(openFilesLimit: number): number {
  return Math.min(4096, Math.max(16, Math.floor(openFilesLimit / 4)))
}

/**
 * The same default when the limit cannot be read (the tasks' permissions do not reach /proc):
 * worked out from the descriptors still free when `open` connections are being served — the limit
 * is at least their sum — and capped at 1024, since `headroom` is counted only up to 4096.
 * Without a count (no read access to /dev/null), 1024 descriptors are assumed.
 */
export function estimatedMaxConnections(headroom: number | undefined, open: number): number {
  if (headroom === undefined) return defaultMaxConnections(1024)
  return Math.min(1024, defaultMaxConnections(headroom + open))
}

/** How many free descriptors `estimatedMaxConnections` counts at most. */
export const HEADROOM_PROBE = 4096

/**
 * A log line at most once per `intervalMs`: the first occurrence is logged at once, later ones in
 * the interval are counted and the count goes with the next line logged. A flood of refused
 * connections writes a line every few seconds, not one per connection.
 */
export function rateLimited(
  intervalMs: number,
  emit: (line: string) => void,
  clock: GuardClock = systemClock,
): (line: string) => void {
  let last = -Infinity
  let suppressed = 0
  return (line) => {
    const now = clock.now()
    if (now - last < intervalMs) {
      suppressed++
      return
    }
    emit(suppressed ? `${line} (${suppressed} more since the last report)` : line)
    last = now
    suppressed = 0
  }
}
