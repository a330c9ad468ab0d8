/**
 * The HTTP server every cluster API runs on (the reference's `api/common`): listeners from
 * multiaddrs (TCP, unix sockets, TLS), then per request auth → CORS → 307 for a trailing slash →
 * the router, with configured headers on every answer, bounded bodies, and an access log.
 * APIs (REST, Pinning Service) supply only their routes and their error body shape.
 *
 * `handler(req)` runs the whole pipeline in-process, so routes are testable without a socket.
 *
 * @example
 * ```ts
 * const api = httpApi(cfg, routes, { name: 'restapi', configDir, errorBody: (code, message) => ({ code, message }) })
 * await api.start()
 * api.addresses() // ['/ip4/127.0.0.1/tcp/9094']
 * await api.stop()
 * ```
 */
import { isAbsolute, join } from 'node:path'
import type { API } from '../../components.ts'
import { ConfigError, errorMessage } from '../../errors.ts'
import type { Foreground } from '../../util/foreground.ts'
import type { Logger } from '../../util/log.ts'
import type { HttpApiConfig } from '../rest/config.ts'
import { commonLogLine, fileAccessLog, loggerAccessLog, whenSent } from './access_log.ts'
import { type Authenticator, authenticator, parseBasicAuth } from './auth.ts'
import { declaredTooLarge, tooLargeMessage } from './body.ts'
import { corsPolicy } from './cors.ts'
import { type HttpServer, rawHttpResponse, serveHttp } from './http_server.ts'
import { boundMultiaddr } from './listen.ts'
import { ndjsonResponse, type StreamOptions } from './ndjson.ts'
import { type DocumentedRoute, object, ref, type RouteDoc, string } from './openapi.ts'
import { type ErrorBodyFn, type Responder, responder } from './response.ts'
import { router, type RouteSpec } from './router.ts'
import { clusterMetrics } from '../../observations/metrics.ts'
import { tracedRoot, tracingEnabled } from '../../observations/tracing.ts'
import type { SpanContext } from '../../observations/otlp.ts'
import { normalizeCid } from '../../types/cid.ts'

/** What a route handler gets. */
export interface RequestContext {
  req: Request
  /** Decoded path. */
  path: string
  query: URLSearchParams
  /** Path parameters of the route pattern. */
  params: Record<string, string>
  /** The authenticated user (basic user or token issuer), when auth is on. */
  user?: string
  /** Aborted when the server stops. */
  signal: AbortSignal
  /**
   * The request's span while tracing records one (observations/tracing.ts): a handler whose CID
   * comes in the body files its pin's steps under it with `tracedUnder`.
   */
  span?: SpanContext
  r: Responder
  /** The API's authenticator, when auth is configured. */
  auth?: Authenticator
  /** `max_body_bytes`. */
  maxBodyBytes: number
  /**
   * Streams a source as NDJSON. The source gets a signal aborted when the client goes away or
   * the server stops.
   */
  stream(source: (signal: AbortSignal) => AsyncIterable<unknown>): Promise<Response>
  /** Options for a custom stream response (abort wiring and error logging). */
  streamOptions(ac: AbortController): StreamOptions
}

/** A route of an API. */
export interface ApiRoute extends RouteSpec {
  handler: (ctx: RequestContext) => Promise<Response> | Response
  /** The body is streamed by the handler (e.g. /add): `max_body_bytes` does not apply. */
  unboundedBody?: boolean
  /**
   * Answered without credentials even when auth is on (`GET /health`). The pattern must be a
   * literal path: the check runs before routing, so that unknown paths still ask for auth.
   */
  public?: boolean
  /** What the route's OpenAPI document says of it (src/api/common/openapi.ts). */
  doc?: RouteDoc
  /**
   * What the request's span is filed under for the steps it leads to (observations/tracing.ts):
   * by default the canonical CID of a `hash` or `cid` parameter; a route that names its pin
   * another way (an IPFS path) says how.
   */
  traceKey?: (ctx: RequestContext) => string | undefined
}

/** What an HTTP API needs besides its config. */
export interface HttpApiDeps {
  /** Config section name (`restapi`, `pinsvcapi`): the start-up line and listen errors. */
  name: string
  /** Folder that relative paths in the config (TLS files, log file) are relative to. */
  configDir: string
  errorBody: ErrorBodyFn
  /** The API's logger; its facility names the API, so lines carry no prefix of their own. */
  log?: Logger
  /** Receives access log lines when `http_log_file` is not set (the reference's `restapilog`). */
  accessLog?: Logger
  /** Told when each request starts and when its response is sent (background work yields). */
  foreground?: Foreground
}

/** An API server with an in-process entry point. */
export interface HttpApi extends API {
  /** Runs a request through the full pipeline (auth, CORS, routing) without a socket. */
  handler(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>
}

/** Methods counted by name in the metrics; any other is `other` (a client picks the name). */
const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])

const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/**
 * The routes every HTTP API of the reference ends with (REST and Pinning Service API alike):
 * `POST /token` (a JWT for the caller's basic-auth user or token issuer; 401 without auth
 * configured) and `GET /health` (204).
 */
export const TOKEN_AND_HEALTH: readonly DocumentedRoute[] = [
  {
    method: 'POST',
    pattern: '/token',
    handler: async (ctx) => {
      const t = ctx.auth && ctx.user !== undefined ? await ctx.auth.issueToken(ctx.user) : undefined
      if (t === undefined) return ctx.r.error(new Error('unauthorized'), 401)
      return ctx.r.json(200, { token: t })
    },
    doc: {
      operationId: 'token',
      summary: 'A JWT for the caller',
      description: "Signed with the password of the basic-auth user (or of the bearer token's " +
        'issuer); it never expires. 401 when auth is not configured.',
      tags: ['auth'],
      responses: {
        200: {
          description: 'The token, for `Authorization: Bearer <token>`',
          json: object<{ token: string }>({ token: string({ description: 'HS256 JWT' }) }),
        },
        401: {
          description: '`unauthorized`: auth is not configured, or the credentials are wrong',
          json: ref('Error'),
        },
      },
    },
  },
  {
    method: 'GET',
    pattern: '/health',
    public: true,
    handler: (c) => c.r.empty(204),
    doc: {
      operationId: 'health',
      summary: 'Liveness: 204 while the API serves',
      tags: ['health'],
      responses: { 204: { description: 'The API is up' } },
    },
  },
]

/** Go's server timeouts as every API's section names them (milliseconds). */
export interface ApiTimeouts {
  read_header_timeout: number
  read_timeout: number
  write_timeout: number
  idle_timeout: number
}

/**
 * The listener every API runs on: `serveHttp` with the section's Go timeouts, a fault that
 * escapes a handler answered with the API's 500 body, connections past the cap refused with its
 * 503 body (`maxConnectionsKey` names the key that sets the cap, when one does).
 */
export function listenApi(o: {
  listen: string[]
  listenKey: string
  tls?: { cert: string; key: string }
  timeouts: ApiTimeouts
  maxConnections: number
  maxConnectionsKey?: string
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>
  r: Responder
  log: Logger
}): HttpServer {
  const { r, log } = o
  const key = o.maxConnectionsKey ? ` (${o.maxConnectionsKey})` : ''
  return serveHttp({
    listen: o.listen,
    listenKey: o.listenKey,
    tls: o.tls,
    timeouts: {
      readHeader: o.timeouts.read_header_timeout,
      read: o.timeouts.read_timeout,
      write: o.timeouts.write_timeout,
      idle: o.timeouts.idle_timeout,
    },
    maxConnections: o.maxConnections,
    handler: o.handler,
    onError(err) {
      log.debug(errorMessage(err))
      return r.error(err, 500)
    },
    refusal: (max) =>
      rawHttpResponse(
        503,
        'Service Unavailable',
        r.headers([['Retry-After', '1'], ['Connection', 'close']]),
        r.errorText(503, `too many connections: ${max} are open${key}; retry later`),
      ),
    log,
  })
}

/** Builds an API server over the given routes. Nothing listens until `start()`. */
export function httpApi(config: HttpApiConfig, routes: ApiRoute[], deps: HttpApiDeps): HttpApi {
  const log = deps.log ?? noopLogger
  const r = responder(config.headers, deps.errorBody)
  const auth = config.basic_auth_credentials
    ? authenticator(config.basic_auth_credentials)
    : undefined
  const cors = corsPolicy({
    allowedOrigins: config.cors_allowed_origins ?? [],
    allowedMethods: config.cors_allowed_methods ?? [],
    allowedHeaders: config.cors_allowed_headers ?? [],
    exposedHeaders: config.cors_exposed_headers ?? [],
    allowCredentials: config.cors_allow_credentials,
    maxAgeSeconds: Math.floor(config.cors_max_age / 1000),
  })
  const match = router(routes)
  const open = publicPaths(routes)
  const maxHeaderBytes = config.max_header_bytes + 4096 // Go allows this much slack too
  const maxBody = config.max_body_bytes
  const stopping = new AbortController()
  let server: HttpServer | undefined
  let access = loggerAccessLog(deps.accessLog)
  let started = false
  let stopped: Promise<void> | undefined

  const resolvePath = (p: string) => (isAbsolute(p) ? p : join(deps.configDir, p))

  const streamOptions = (ac: AbortController): StreamOptions => ({
    onCancel: () => ac.abort(),
    onError: (err) => log.error(`stream aborted: ${errorMessage(err)}`),
  })

  const headerBytes = (req: Request) => {
    let n = req.url.length + req.method.length + 12
    for (const [k, v] of req.headers) n += k.length + v.length + 4
    return n
  }

  const spanNames = new Map<ApiRoute, string>()
  /**
   * A request's CID as the steps below it name it (canonical: tracing.ts files a step under its
   * CID's open span); a value that is no CID is kept, and the handler refuses it.
   */
  const spanCid = (s: string | undefined) => {
    if (s === undefined) return undefined
    try {
      return normalizeCid(s)
    } catch {
      return s
    }
  }

  async function dispatch(
    req: Request,
    corsDone: { preflight: boolean; route?: string },
  ): Promise<Response> {
    const url = new URL(req.url)
    let path = url.pathname
    if (path.includes('%')) {
      try {
        path = decodeURIComponent(path)
      } catch {
        return r.error(new Error('invalid URL escape in path'), 400)
      }
    }
    if (headerBytes(req) > maxHeaderBytes) {
      return r.error(new Error('request header fields too large'), 431)
    }

    let user: string | undefined
    if (auth && req.method !== 'OPTIONS' && !open.has(`${req.method} ${path}`)) {
      const res = await auth.check(req.headers.get('authorization'))
      if (!res.ok) {
        if (res.reason) log.debug(`invalid token: ${res.reason}`)
        return r.error(
          new Error(res.message),
          401,
          res.challenges.map((c) => ['WWW-Authenticate', c] as [string, string]),
        )
      }
      user = res.issuer
    }

    const pre = cors.preflight(req)
    if (pre) {
      corsDone.preflight = true
      return r.empty(204, pre)
    }

    if (path.endsWith('/')) {
      // The reference answers 307 (not 301) so that clients keep the method and body.
      if (path === '/') return r.error(new Error('not found'), 404)
      const location = url.pathname.slice(0, -1) + url.search
      return r.empty(307, [['Location', location]])
    }

    const m = match(req.method, path)
    if (m.kind === 'none') return r.error(new Error('not found'), 404)
    if (m.kind === 'method') {
      return r.error(new Error('method not allowed'), 405, [['Allow', m.allow.join(', ')]])
    }
    corsDone.route = m.route.pattern
    if (!m.route.unboundedBody && declaredTooLarge(req, maxBody)) {
      return r.error(new Error(tooLargeMessage(maxBody)), 413)
    }
    const ctx: RequestContext = {
      req,
      path,
      query: url.searchParams,
      params: m.params,
      user,
      signal: stopping.signal,
      r,
      auth,
      maxBodyBytes: maxBody,
      streamOptions,
      stream(source) {
        const ac = new AbortController()
        const signal = AbortSignal.any([ac.signal, stopping.signal])
        return ndjsonResponse(r, source(signal), streamOptions(ac))
      },
    }
    if (!tracingEnabled()) return await m.route.handler(ctx)
    // One span per request, named by the route's pattern: the root of a pin's trace (or a child
    // of the caller's, named in a W3C traceparent header). The name is made once per route.
    const route = m.route
    let name = spanNames.get(route)
    if (name === undefined) {
      spanNames.set(route, name = `${deps.name} ${route.method} ${route.pattern}`)
    }
    return await tracedRoot(
      name,
      route.traceKey ? route.traceKey(ctx) : spanCid(m.params.hash ?? m.params.cid),
      req.headers.get('traceparent'),
      async (span) => {
        ctx.span = span
        return await route.handler(ctx)
      },
    )
  }

  /**
   * Calls `end` once the response is sent: a streamed listing is foreground until its last
   * byte (or until the client goes). `log` also writes the access line then.
   */
  function sent(res: Response, end?: () => void, log?: (size: number) => void): Response {
    if (!end && !log) return res
    return whenSent(res, (size) => {
      log?.(size)
      end?.()
    })
  }

  async function handler(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const end = deps.foreground?.begin()
    const corsDone: { preflight: boolean; route?: string } = { preflight: false }
    const metrics = clusterMetrics
    const t0 = metrics ? performance.now() : 0
    let res: Response
    try {
      res = await dispatch(req, corsDone)
    } catch (err) {
      // Anything a handler did not turn into a response: answer with the error's own status.
      res = r.error(err)
      if (res.status >= 500) {
        log.error(`${req.method} ${req.url}: ${errorMessage(err)}`)
      }
    }
    if (!corsDone.preflight) cors.actual(req, res.headers)
    if (metrics) {
      // The route's pattern, never the raw path: one series per route, whatever CIDs come.
      const route = corsDone.route ?? 'unmatched'
      const method = STANDARD_METHODS.has(req.method) ? req.method : 'other'
      metrics.httpRequests.inc(1, deps.name, route, method, String(res.status))
      metrics.httpDuration.observe((performance.now() - t0) / 1000, deps.name, route)
    }
    if (!access.on) return sent(res, end)
    const remote = remoteAddrOf(info)
    const url = new URL(req.url)
    const record = {
      host: remote && 'hostname' in remote ? remote.hostname : '',
      user: parseBasicAuth(req.headers.get('authorization'))?.user,
      time: new Date(),
      method: req.method,
      uri: url.pathname + url.search,
      status: res.status,
      size: 0,
    }
    return sent(res, end, (size) => access.write(commonLogLine({ ...record, size })))
  }

  async function readTls(): Promise<{ cert: string; key: string } | undefined> {
    if (!config.ssl_cert_file && !config.ssl_key_file) return
    try {
      const [cert, key] = await Promise.all([
        Deno.readTextFile(resolvePath(config.ssl_cert_file)),
        Deno.readTextFile(resolvePath(config.ssl_key_file)),
      ])
      return { cert, key }
    } catch (err) {
      throw new ConfigError(`error loading TLS certificate/key: ${errorMessage(err)}`)
    }
  }

  return {
    handler,
    async start() {
      if (started) return
      started = true
      const tls = await readTls()
      if (config.http_log_file) {
        access = await fileAccessLog(resolvePath(config.http_log_file), {
          key: 'http_log_file',
          log,
        })
      }
      try {
        server = listenApi({
          listen: config.http_listen_multiaddress,
          listenKey: `api.${deps.name}.http_listen_multiaddress`,
          tls,
          timeouts: config,
          maxConnections: config.max_connections,
          maxConnectionsKey: 'max_connections',
          handler,
          r,
          log,
        })
      } catch (err) {
        access.close()
        throw err
      }
      for (const a of server.addrs) {
        log.info(
          `${deps.name.toUpperCase()} (HTTP${auth ? ' - authenticated' : ''}${
            tls ? ', TLS' : ''
          }): ${boundMultiaddr(a)}`,
        )
      }
    },
    addresses: () => server?.addrs.map(boundMultiaddr) ?? [],
    stop() {
      stopped ??= (async () => {
        stopping.abort(new DOMException('API stopped', 'AbortError'))
        await server?.stop()
        server = undefined
        access.close()
      })()
      return stopped
    },
  }
}

/** `METHOD path` of the routes answered without credentials. */
function publicPaths(routes: readonly ApiRoute[]): Set<string> {
  const open = new Set<string>()
  for (const r of routes.filter((r) => r.public)) {
    if (r.pattern.includes('{')) throw new Error(`public route ${r.pattern} must be a literal path`)
    open.add(`${r.method} ${r.pattern}`)
  }
  return open
}

/**
 * The client's address for the access log. Deno 2.9's `remoteAddr` getter throws a TypeError
 * ("Cannot read properties of null (reading 'addr')") for a connection on a unix socket, which
 * turned every answer of an API listening on one into a 500.
 */
function remoteAddrOf(info?: Deno.ServeHandlerInfo): Deno.Addr | undefined {
  try {
    return info?.remoteAddr
  } catch {
    return undefined
  }
}
