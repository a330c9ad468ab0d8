/**
 * The HTTP server under every API: our own accept loop on each listener (TCP, TLS with h2 and
 * HTTP/1.1, unix sockets), each connection served by Deno's HTTP engine (serve_conn.ts), and the
 * connection rules of conn_guard.ts applied to it.
 *
 * What it adds to `Deno.serve`, whose accept loop ends for good on the first accept error:
 * - running out of descriptors (or kernel memory) for a connection refuses that connection and
 *   logs a rate-limited line; the listener keeps going. One descriptor is held in reserve: on
 *   `EMFILE` it is released, the waiting connection accepted and closed at once (the client sees
 *   a closed connection rather than waiting in the backlog), and the reserve re-taken;
 * - at most `max_connections` connections are served at once; the next ones get a short 503
 *   with the API's JSON error body and `Connection: close`, written without the engine, while
 *   at most a quarter of `max_connections` are being refused; beyond that (and on TLS
 *   listeners) they are closed unanswered;
 * - `read_header_timeout`, `read_timeout`, `write_timeout` and `idle_timeout` close the
 *   connections that run past them (slow-header clients, idle keep-alive connections).
 *
 * @example
 * ```ts
 * const srv = serveHttp({ listen: ['/ip4/127.0.0.1/tcp/0'], listenKey, handler, timeouts, … })
 * srv.addrs // bound addresses
 * await srv.stop()
 * ```
 */
import { systemClock } from '../../util/clock.ts'
import { errorMessage } from '../../errors.ts'
import { listenError } from '../../net/listen_error.ts'
import type { Logger } from '../../util/log.ts'
import { openFilesHeadroom, softOpenFilesLimit } from '../../util/rlimit.ts'
import {
  connGuard,
  type ConnTimeouts,
  defaultMaxConnections,
  estimatedMaxConnections,
  EXPIRY_KEY,
  type GuardClock,
  HEADROOM_PROBE,
  rateLimited,
} from './conn_guard.ts'
import { listenTarget } from './listen.ts'
import {
  type ConnHandler,
  type ConnServer,
  requireServeConnection,
  serveConnection,
} from './serve_conn.ts'

/** How often a repeated refusal or accept error is logged. */
const LOG_EVERY_MS = 10_000
/** How long a refused connection may take to read its 503 and close, at most. */
const REFUSAL_LINGER_MS = 1_000
/** How long `stop()` lets running responses finish before dropping their connections. */
const SHUTDOWN_GRACE_MS = 5_000

/** What a server needs. */
export interface HttpServerOptions {
  /** Listen multiaddrs. */
  listen: string[]
  /** The config key holding them (`api.restapi.http_listen_multiaddress`), for errors. */
  listenKey: string
  /** PEM certificate and key: TLS on every TCP listener. */
  tls?: { cert: string; key: string }
  timeouts: ConnTimeouts
  /** Connections served at once; 0 = `defaultMaxConnections` of the open-files limit. */
  maxConnections: number
  handler: ConnHandler
  /** The answer when the handler throws. */
  onError(err: unknown): Response
  /** The bytes of the 503 answer given to a connection over the limit. */
  refusal(maxConnections: number): Uint8Array
  /** The API's logger (its facility names the API). */
  log: Logger
  clock?: GuardClock
  /** The soft open-files limit; asked of the system (util/rlimit.ts) when not given. */
  softNofile?: number
}

/** A running server. */
export interface HttpServer {
  /** Bound addresses, in the order of `listen`. */
  addrs: Deno.Addr[]
  /** The connection limit in force (the default one is settled when 16 connections are open). */
  readonly maxConnections: number
  /** Stops accepting, lets running responses finish (bounded), closes everything. Idempotent. */
  stop(): Promise<void>
}

/** Errors that mean "no descriptor or buffer for one more connection", not a broken listener. */
const EXHAUSTION = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])

function closeQuietly(c: { close(): void } | undefined) {
  try {
    c?.close()
  } catch {
    // already closed
  }
}

/** Formats a complete HTTP/1.1 response (for answers written without the engine). */
export function rawHttpResponse(
  status: number,
  reason: string,
  headers: Headers,
  body: string,
): Uint8Array {
  const bytes = new TextEncoder().encode(body)
  let head = `HTTP/1.1 ${status} ${reason}\r\n`
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`
  head += `Content-Length: ${bytes.byteLength}\r\n\r\n`
  const h = new TextEncoder().encode(head)
  const out = new Uint8Array(h.byteLength + bytes.byteLength)
  out.set(h)
  out.set(bytes, h.byteLength)
  return out
}

/**
 * The request with its body watched: `onEnd` runs when the handler has read it to its end.
 * A new Request rather than `new Request(req, …)`, which reads `req.signal` and makes Deno 2.9
 * print a warning about its legacy abort behaviour (no route uses `req.signal`). Once the
 * response is sent, an unread rest is cancelled: left pending, Deno ends the HTTP connection but
 * keeps its socket open until the client closes it.
 */
function watchBody(req: Request, onEnd: () => void, completed: Promise<void>): Request {
  const source = req.body!.getReader()
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      const { done, value } = await source.read()
      if (done) {
        onEnd()
        c.close()
      } else c.enqueue(value)
    },
    cancel: (reason) => source.cancel(reason),
  }, { highWaterMark: 0 })
  const release = () => void source.cancel().catch(() => {})
  completed.then(release, release)
  return new Request(req.url, {
    method: req.method,
    headers: req.headers,
    body,
    duplex: 'half',
  } as RequestInit)
}

/**
 * Binds every listen address (all or none: a failure closes those already bound and throws a
 * `ListenError` naming `listenKey`), then serves until `stop()`.
 */
export function serveHttp(opts: HttpServerOptions): HttpServer {
  const { log } = opts
  requireServeConnection()
  const clock = opts.clock ?? systemClock
  const targets = opts.listen.map(listenTarget)
  // The cap: configured, or a quarter of the open-files limit when it can be read; else the
  // descriptors still free are counted the first time 16 connections are open at once (most
  // peers never get there, and then nothing is counted).
  const limit = opts.maxConnections ? undefined : opts.softNofile ?? softOpenFilesLimit()
  const estimated = !opts.maxConnections && limit === undefined
  const guard = connGuard({
    timeouts: opts.timeouts,
    maxConnections: opts.maxConnections || defaultMaxConnections(limit ?? 64),
    settleMax: estimated
      ? () => {
        const max = estimatedMaxConnections(openFilesHeadroom(HEADROOM_PROBE), guard.open)
        log.debug(`at most ${max} connections at once (max_connections, from free descriptors)`)
        return max
      }
      : undefined,
    clock,
  })
  if (!estimated) log.debug(`at most ${guard.maxConnections} connections at once (max_connections)`)
  let refusal: { max: number; bytes: Uint8Array } | undefined
  const refusalBytes = () => {
    if (refusal?.max !== guard.maxConnections) {
      refusal = { max: guard.maxConnections, bytes: opts.refusal(guard.maxConnections) }
    }
    return refusal.bytes
  }
  const logRefused = rateLimited(LOG_EVERY_MS, (l) => log.warn(l), clock)
  const logAcceptError = rateLimited(LOG_EVERY_MS, (l) => log.error(l), clock)
  const watchBodies = opts.timeouts.read > 0

  const listeners: Deno.Listener[] = []
  try {
    for (const [i, t] of targets.entries()) {
      try {
        listeners.push(
          t.transport === 'unix'
            ? Deno.listen({ transport: 'unix', path: t.path })
            : opts.tls
            ? Deno.listenTls({
              hostname: t.hostname,
              port: t.port,
              ...opts.tls,
              alpnProtocols: ['h2', 'http/1.1'],
            })
            : Deno.listen({ hostname: t.hostname, port: t.port }),
        )
      } catch (err) {
        throw listenError(opts.listenKey, opts.listen[i], err)
      }
    }
  } catch (err) {
    for (const l of listeners) closeQuietly(l)
    throw err
  }

  const stopping = new AbortController()
  const live = new Set<{ srv: ConnServer; ac: AbortController; close(): void }>()
  const refusing = new Set<Deno.Conn>()
  // The descriptor in reserve for EMFILE (see the module comment). Without read access to
  // /dev/null there is none, and EMFILE only backs off. (Queried first: never a prompt.)
  let spare: Deno.FsFile | undefined
  const spareAllowed = Deno.build.os !== 'windows' &&
    Deno.permissions.querySync({ name: 'read', path: '/dev/null' }).state === 'granted'
  const takeSpare = () => {
    if (!spareAllowed) return
    try {
      spare ??= Deno.openSync('/dev/null')
    } catch {
      // no descriptor free yet
    }
  }
  takeSpare()

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping.signal.aborted) return resolve()
      const done = () => {
        cancel()
        stopping.signal.removeEventListener('abort', done)
        resolve()
      }
      const cancel = clock.timeout(ms, done)
      stopping.signal.addEventListener('abort', done, { once: true })
    })

  /** Answers 503 and closes, reading what the client sent so that closing does not reset. */
  async function refuse(conn: Deno.Conn, release: () => void) {
    refusing.add(conn)
    const cancel = clock.timeout(REFUSAL_LINGER_MS, () => closeQuietly(conn))
    try {
      const bytes = refusalBytes()
      for (let off = 0; off < bytes.byteLength;) off += await conn.write(bytes.subarray(off))
      await conn.closeWrite()
      const buf = new Uint8Array(4096)
      while ((await conn.read(buf)) !== null) { /* drain */ }
    } catch {
      // the client or the linger timer closed it
    } finally {
      cancel()
      closeQuietly(conn)
      refusing.delete(conn)
      release()
    }
  }

  function serve(conn: Deno.Conn, tls: boolean) {
    const ac = new AbortController()
    const adm = guard.admit((why) => {
      log.debug(`closing a connection: ${EXPIRY_KEY[why]} passed`)
      ac.abort()
    })
    if (adm.kind !== 'serve') {
      logRefused(
        `${guard.maxConnections} connections open (max_connections): ` +
          'refusing new ones until some close',
      )
      if (adm.kind === 'refuse' && !tls) return void refuse(conn, adm.release)
      // Closed at once, not answered: an answer would hold the descriptor for a while, and a
      // flood would then run the process out of them.
      closeQuietly(conn)
      if (adm.kind === 'refuse') adm.release()
      return
    }
    const tracked = adm.conn
    const onRequest: ConnHandler = (req, info) => {
      const hasBody = watchBodies && req.method !== 'GET' && req.method !== 'HEAD' &&
        req.headers.get('content-length') !== '0' && req.body !== null
      const r = tracked.request(hasBody)
      info.completed.then(r.done, r.done)
      if (hasBody) req = watchBody(req, r.bodyDone, info.completed)
      return opts.handler(req, info)
    }
    let srv: ConnServer
    try {
      srv = serveConnection(conn, onRequest, { signal: ac.signal, onError: opts.onError })
    } catch (err) {
      tracked.close()
      closeQuietly(conn)
      logAcceptError(`cannot serve a connection: ${errorMessage(err)}`)
      return
    }
    const entry = { srv, ac, close: () => tracked.close() }
    live.add(entry)
    srv.finished
      .catch((err) => log.debug(`connection ended: ${errorMessage(err)}`))
      .finally(() => {
        tracked.close()
        live.delete(entry)
      })
  }

  async function acceptLoop(l: Deno.Listener, tls: boolean) {
    let backoff = 0
    while (!stopping.signal.aborted) {
      let conn: Deno.Conn
      try {
        conn = await l.accept()
        backoff = 0
      } catch (err) {
        if (stopping.signal.aborted || err instanceof Deno.errors.BadResource) return
        const code = (err as { code?: string }).code ?? ''
        const exhausted = EXHAUSTION.has(code)
        logAcceptError(
          `cannot accept a connection: ${errorMessage(err)}` +
            (exhausted
              ? '; closing new connections until descriptors are free (lower max_connections ' +
                'or raise the open-files limit)'
              : ''),
        )
        if (exhausted && spare) {
          closeQuietly(spare)
          spare = undefined
          try {
            closeQuietly(await l.accept())
          } catch {
            // still none free, or stopping
          }
          takeSpare()
          continue
        }
        // As Go's http.Server: 5 ms, doubling up to 1 s, until an accept succeeds.
        backoff = Math.min(backoff ? backoff * 2 : 5, 1000)
        await pause(backoff)
        continue
      }
      serve(conn, tls)
    }
  }

  const loops = listeners.map((l, i) => acceptLoop(l, !!opts.tls && targets[i].transport === 'tcp'))

  let stopped: Promise<void> | undefined
  return {
    addrs: listeners.map((l) => l.addr),
    get maxConnections() {
      return guard.maxConnections
    },
    stop() {
      stopped ??= (async () => {
        stopping.abort()
        for (const l of listeners) closeQuietly(l)
        // A unix socket's file outlives its listener: left behind, the next start would find
        // its path in use.
        for (const t of targets) {
          if (t.transport === 'unix') await Deno.remove(t.path).catch(() => {})
        }
        await Promise.allSettled(loops)
        for (const c of refusing) closeQuietly(c)
        const conns = [...live]
        const cancel = clock.timeout(SHUTDOWN_GRACE_MS, () => {
          // Only those still open: aborting a finished connection's signal throws in Deno.
          for (const e of conns) if (live.has(e)) e.ac.abort()
        })
        await Promise.allSettled(conns.map((e) => e.srv.shutdown()))
        await Promise.allSettled(conns.map((e) => e.srv.finished))
        cancel()
        for (const e of conns) e.close()
        closeQuietly(spare)
        spare = undefined
      })()
      return stopped
    },
  }
}
