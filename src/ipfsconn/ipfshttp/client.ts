/**
 * The HTTP layer under the connector: `POST <api>/api/v0/<path>` through the HTTP/1.1 client of
 * http1.ts (keep-alive connections over TCP or a unix socket), with the reference's error texts,
 * its rate limit after repeated transport failures, per-call timeouts and cancellation, and one
 * switch (`stop`) that aborts everything.
 *
 * A call is a scope: open it, post, read the body under `call.signal`, and pass anything thrown
 * through `call.error()` so that aborts, timeouts and transport failures come out as the right
 * error whatever the step that noticed them.
 *
 * @example
 * ```ts
 * const client = new KuboClient(parseNodeAddress('/ip4/127.0.0.1/tcp/5001'), {})
 * const call = client.call('id', { timeoutMs: 5_000 })
 * try {
 *   const res = await call.post()
 *   console.log(await res.json())
 * } catch (err) {
 *   throw call.error(err)
 * } finally {
 *   call.end()
 * }
 * ```
 */
import { ClusterError, errorMessage, IPFSError, ShutdownError } from '../../errors.ts'
import { formatDuration } from '../../types/duration.ts'
import type { NodeAddress } from './address.ts'
import { type Dialer, Http1Client, type Http1Response } from './http1.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'
import { clusterMetrics } from '../../observations/metrics.ts'
import { JsonLineError } from './ndjson.ts'

/** After this many consecutive transport failures requests are let through at 1 per second. */
export const FAILURES_BEFORE_RATE_LIMIT = 10
/** Spacing of requests while rate-limited. */
export const RATE_LIMIT_INTERVAL_MS = 1000

/** An error the daemon answered with (non-200), or a body we could not use. */
export class IPFSRequestError extends IPFSError {
  override name = 'IPFSRequestError'
  constructor(
    message: string,
    /** The request path with its query, as in the message. */
    readonly path: string,
    /** HTTP status of the answer. */
    readonly code: number,
    /** Kubo's `Message` when the body was a JSON error object. */
    readonly ipfsMessage?: string,
  ) {
    super(message)
  }
}

/** What the client needs from the outside; everything has a default. */
export interface KuboClientDeps {
  /** Opens a connection to the daemon (tests inject transport failures here). */
  dial?: Dialer
  /** Time, timers and sleeps (default: the system clock). */
  clock?: Clock
  log?: Logger
}

/** Options of one call. */
export interface CallOptions {
  /** The caller's signal; its reason is what the call rejects with when it aborts. */
  signal?: AbortSignal
  /** Total time for the call, body included; 0 or absent = no limit. */
  timeoutMs?: number
}

/** Talks HTTP to one Kubo RPC API. */
export class KuboClient {
  readonly #addr: NodeAddress
  readonly #http: Http1Client
  readonly clock: Clock
  readonly #log: Logger
  readonly #stop = new AbortController()
  #failures = 0
  #nextSlot = 0
  #rateLimited = false

  constructor(addr: NodeAddress, deps: KuboClientDeps) {
    this.#addr = addr
    this.clock = deps.clock ?? systemClock
    this.#log = deps.log ?? nullLogger
    // A unix socket needs read and write permission on its path, checked when it is dialled.
    this.#http = new Http1Client(
      addr.unixPath ? { unixPath: addr.unixPath } : { hostname: addr.hostname!, port: addr.port! },
      { dial: deps.dial },
    )
  }

  /** True once stop() was called. */
  get stopped(): boolean {
    return this.#stop.signal.aborted
  }

  /** Consecutive transport failures (reset by any answer from the daemon). */
  get failures(): number {
    return this.#failures
  }

  /** Opens a call scope for `path` (e.g. `pin/ls?stream=true&type=recursive`). */
  call(path: string, opts: CallOptions = {}): KuboCall {
    return new KuboCall(this, path, opts)
  }

  /** Aborts every call in flight and refuses new ones. Idempotent. */
  stop(): void {
    if (this.stopped) return
    this.#stop.abort(new ShutdownError('IPFS connector is shut down'))
    this.#http.close()
  }

  /** @internal */
  get stopSignal(): AbortSignal {
    return this.#stop.signal
  }

  /** @internal The full URL of a path. */
  url(path: string): string {
    return `${this.#addr.baseUrl}/${path}`
  }

  /** @internal Sends the request; counts transport failures; returns the raw response. */
  async send(
    path: string,
    signal: AbortSignal,
    body?: Uint8Array | ReadableStream<Uint8Array>,
    contentType?: string,
  ): Promise<Http1Response> {
    await this.#waitForSlot(signal)
    let res: Http1Response
    try {
      res = await this.#http.request({
        path: `${this.#addr.path}/${path}`,
        body,
        contentType,
        signal,
      })
    } catch (err) {
      if (!signal.aborted) {
        this.#failures++
        this.#log.error(`error posting to IPFS: ${errorMessage(err)}`)
      }
      throw err
    }
    if (this.#rateLimited) this.#log.warn('Lifting up rate limit')
    this.#failures = 0
    this.#rateLimited = false
    return res
  }

  /** The reference's rate limit: past 10 straight transport failures, one request a second. */
  async #waitForSlot(signal: AbortSignal): Promise<void> {
    if (this.#failures <= FAILURES_BEFORE_RATE_LIMIT) return
    if (!this.#rateLimited) {
      this.#rateLimited = true
      this.#log.warn('Rate-limiting requests to 1req/s')
    }
    const now = this.clock.now()
    const slot = Math.max(now, this.#nextSlot)
    this.#nextSlot = slot + RATE_LIMIT_INTERVAL_MS
    if (slot > now) await this.clock.sleep(slot - now, signal)
  }
}

/** One request's scope: its combined signal, its timeout, and error mapping. */
export class KuboCall {
  /** Aborts on the caller's signal, the timeout, cancel() or the client's stop(). */
  readonly signal: AbortSignal
  readonly path: string
  readonly #client: KuboClient
  readonly #opts: CallOptions
  readonly #ctl = new AbortController()
  #cancelTimer?: CancelTimer
  #cause?: Error
  #follow?: () => void
  #res?: Http1Response
  /** performance.now() at the start, when stats are on (the request duration histogram). */
  readonly #t0: number
  #failed = false

  constructor(client: KuboClient, path: string, opts: CallOptions) {
    this.#client = client
    this.path = path
    this.#t0 = clusterMetrics ? performance.now() : 0
    this.#opts = opts
    this.signal = this.#ctl.signal
    // The call's signal follows the caller's and the client's through listeners that end()
    // removes, not AbortSignal.any: that one cost ~10–25 µs a call, as much as the request.
    const stop = client.stopSignal
    const caller = opts.signal
    if (caller?.aborted) this.#ctl.abort(caller.reason)
    else if (stop.aborted) this.#ctl.abort(stop.reason)
    else {
      const follow = () => {
        this.#unfollow()
        this.#ctl.abort(caller?.aborted ? caller.reason : stop.reason)
      }
      this.#follow = follow
      stop.addEventListener('abort', follow)
      caller?.addEventListener('abort', follow)
    }
    if (opts.timeoutMs && opts.timeoutMs > 0) {
      this.#cancelTimer = client.clock.timeout(opts.timeoutMs, () => {
        this.cancel(
          new IPFSError(
            `IPFS request timed out after ${formatDuration(opts.timeoutMs!)} (${path})`,
          ),
        )
      })
    }
  }

  #unfollow(): void {
    const follow = this.#follow
    if (!follow) return
    this.#follow = undefined
    this.#client.stopSignal.removeEventListener('abort', follow)
    this.#opts.signal?.removeEventListener('abort', follow)
  }

  /** Aborts the call; `error()` will then return `reason`. */
  cancel(reason: Error): void {
    if (this.signal.aborted) return
    this.#cause = reason
    this.#ctl.abort(reason)
  }

  /** Posts and checks the status: anything but 200 becomes an IPFSRequestError. */
  async post(
    body?: Uint8Array | ReadableStream<Uint8Array>,
    contentType?: string,
  ): Promise<Http1Response> {
    const res = await this.send(body, contentType)
    if (res.status === 200) return res
    const text = await res.text()
    throw responseError(this.path, res.status, text)
  }

  /** Posts; any status is returned (for answers where an error status is an expected result). */
  async send(
    body?: Uint8Array | ReadableStream<Uint8Array>,
    contentType?: string,
  ): Promise<Http1Response> {
    if (this.#client.stopped) throw new ShutdownError('IPFS connector is shut down')
    this.signal.throwIfAborted()
    this.#res = await this.#client.send(this.path, this.signal, body, contentType)
    return this.#res
  }

  /** Maps anything thrown inside the scope to the error the caller should see. */
  error(err: unknown): Error {
    this.#failed = true
    if (this.#opts.signal?.aborted) return asError(this.#opts.signal.reason)
    if (this.#cause) return this.#cause
    if (this.#client.stopped) return new ShutdownError('IPFS connector is shut down')
    if (err instanceof ClusterError) return err
    if (err instanceof JsonLineError) {
      return new IPFSError(`error decoding IPFS response (${this.path}): ${err.message}`)
    }
    // Transport failure: the shape of Go's url.Error, which is what the reference reports.
    const cause = (err as { cause?: unknown })?.cause
    const msg = cause ? errorMessage(cause) : errorMessage(err)
    return new IPFSError(`Post "${this.#client.url(this.path)}": ${msg}`)
  }

  /** Releases the timer and the listeners on the caller's and client's signals. Call in `finally`. */
  end(): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    this.#unfollow()
    // An answer not read to its end holds its connection: close it.
    this.#res?.cancel()
    const m = clusterMetrics
    if (m && this.#t0) {
      const q = this.path.indexOf('?')
      const endpoint = q < 0 ? this.path : this.path.slice(0, q)
      m.ipfsRequestDuration.observe((performance.now() - this.#t0) / 1000, endpoint)
      if (this.#failed) m.ipfsRequestErrors.inc(1, endpoint)
    }
  }
}

/**
 * The reference's two error texts: a JSON body (Kubo's `{"Message","Code","Type"}`) gives
 * `IPFS error (<path>). Code: <status>. Message: <Message>`, anything else gives
 * `IPFS request failed (is it running?) (<path>). Code <status>: <body>`.
 */
export function responseError(path: string, status: number, body: string): IPFSRequestError {
  const message = kuboErrorMessage(body)
  if (message !== undefined) {
    return new IPFSRequestError(
      `IPFS error (${path}). Code: ${status}. Message: ${message}`,
      path,
      status,
      message,
    )
  }
  return new IPFSRequestError(
    `IPFS request failed (is it running?) (${path}). Code ${status}: ${body}`,
    path,
    status,
  )
}

/**
 * Kubo's `Message` when `body` is its JSON error object (`{"Message","Code","Type"}`; '' when the
 * object has none), undefined when the body is anything else.
 */
export function kuboErrorMessage(body: string): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  // Go decodes into a struct: any object (or null) works, as long as Message is a string if present.
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) return undefined
  const message = (parsed as { Message?: unknown } | null)?.Message
  if (message === undefined) return ''
  return typeof message === 'string' ? message : undefined
}

function asError(v: unknown): Error {
  return v instanceof Error ? v : new DOMException(String(v), 'AbortError')
}
