/**
 * The Prometheus endpoint (`observations.metrics.prometheus_endpoint`, path `/metrics`): the
 * registry's text exposition, on the house HTTP server (api/common/http_server.ts), whose accept
 * loop survives accept errors that would end `Deno.serve`'s. Anything else answers 404 or 405
 * with a one-line message; a failing reading leaves its family out (Registry.render).
 *
 * @example
 * ```ts
 * const ep = serveMetrics({ listen: '/ip4/127.0.0.1/tcp/8888', registry, log })
 * ep.address() // '/ip4/127.0.0.1/tcp/8888'
 * await ep.stop()
 * ```
 */
import { errorMessage } from '../errors.ts'
import { rawHttpResponse, serveHttp } from '../api/common/http_server.ts'
import { boundMultiaddr } from '../api/common/listen.ts'
import type { Logger } from '../util/log.ts'
import { EXPOSITION_CONTENT_TYPE, type Registry } from './registry.ts'

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  /** The bound multiaddr (the real port when 0 was asked for). */
  address(): string
  /** Stops listening; idempotent. */
  stop(): Promise<void>
}

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  new Response(body + '\n', {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', ...headers },
  })

/** The endpoint's request handler: pure, testable without a socket. */
export function metricsHandler(registry: Registry): (req: Request) => Response {
  return (req) => {
    const path = new URL(req.url).pathname
    if (path !== '/metrics') return text(404, `not found: ${path} (metrics are at /metrics)`)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return text(405, `method not allowed: ${req.method}`, { allow: 'GET, HEAD' })
    }
    const body = registry.render()
    return new Response(req.method === 'HEAD' ? null : body, {
      headers: { 'content-type': EXPOSITION_CONTENT_TYPE },
    })
  }
}

/** Serves `registry` on `listen` (a multiaddr). Throws ConfigError naming the key when it cannot. */
export function serveMetrics(o: {
  listen: string
  registry: Registry
  log: Logger
}): MetricsEndpoint {
  const handler = metricsHandler(o.registry)
  const server = serveHttp({
    listen: [o.listen],
    listenKey: 'observations.metrics.prometheus_endpoint',
    // Scrapers send one small GET and read a few hundred KiB: generous fixed bounds.
    timeouts: { readHeader: 10_000, read: 30_000, write: 60_000, idle: 120_000 },
    maxConnections: 64,
    handler,
    onError(err) {
      o.log.error(`metrics endpoint: ${errorMessage(err)}`)
      return text(500, `internal error: ${errorMessage(err)}`)
    },
    refusal: (max) =>
      rawHttpResponse(
        503,
        'Service Unavailable',
        new Headers({ 'content-type': 'text/plain', connection: 'close' }),
        `too many connections: ${max} are open; retry later\n`,
      ),
    log: o.log,
  })
  const address = boundMultiaddr(server.addrs[0])
  o.log.info(`stats collection enabled on ${address}/http/metrics`)
  return { address: () => address, stop: () => server.stop() }
}
