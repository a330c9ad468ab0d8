/**
 * Serves HTTP/1.1 and HTTP/2 on ONE accepted connection with Deno's own HTTP engine (hyper), the
 * engine behind `Deno.serve`.
 *
 * Why an internal API: `Deno.serve` (Deno 2.9) runs its own accept loop, which has no timeouts and
 * stops for good on the first accept error (`Too many open files`), and it cannot close one idle
 * or slow connection. Our server (http_server.ts) therefore accepts connections itself and hands
 * each to `Deno[Deno.internal].serveHttpOnConnection` — the function `Deno.serve` is built on
 * (denoland/deno ext/http/00_serve.ts): hyper on that connection, HTTP/1.1 and h2, the same
 * request and response objects and the same speed; aborting `signal` drops the connection at
 * once. It is not a public API, so it is reached only here, and
 * test/api/common/serve_conn.test.ts fails loudly if a Deno upgrade removes or changes it.
 *
 * @example
 * ```ts
 * const conn = await listener.accept()
 * const ac = new AbortController()
 * const srv = serveConnection(conn, (req) => new Response('hi'), { signal: ac.signal, onError })
 * ac.abort() // closes this connection now
 * await srv.finished
 * ```
 */

/** A request handler; `info.completed` settles once the response is sent (or failed). */
export type ConnHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>

/** One connection being served. */
export interface ConnServer {
  /** Settles when the connection is closed (rejects on some transport errors). */
  finished: Promise<void>
  /** Stops taking requests, lets the running ones finish, then closes. */
  shutdown(): Promise<void>
}

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: ConnHandler,
  onError: (err: unknown) => Response | Promise<Response>,
  onListen: (scheme: string) => void,
) => ConnServer

const internal = (Deno as unknown as Record<symbol, Record<string, unknown> | undefined>)[
  (Deno as unknown as { internal: symbol }).internal
]
const serveOn = internal?.serveHttpOnConnection as ServeOnConnection | undefined

/** True when this Deno has the internal per-connection server (Deno 2.9.x does). */
export function serveConnectionAvailable(): boolean {
  return typeof serveOn === 'function' && serveOn.length === 5
}

/** Throws, with the reason, when this Deno lacks the per-connection server (before listening). */
export function requireServeConnection(): void {
  if (!serveConnectionAvailable()) {
    throw new Error(
      `Deno ${Deno.version.deno} has no Deno[Deno.internal].serveHttpOnConnection, which the ` +
        'HTTP APIs need (Deno 2.9.x has it)',
    )
  }
}

/**
 * Serves `conn` until the client closes it, `signal` aborts (the connection is dropped without
 * waiting), or `shutdown()` is called. The connection belongs to the server from here on.
 */
export function serveConnection(
  conn: Deno.Conn,
  handler: ConnHandler,
  opts: { signal: AbortSignal; onError: (err: unknown) => Response | Promise<Response> },
): ConnServer {
  requireServeConnection()
  return serveOn!(conn, opts.signal, handler, opts.onError, () => {})
}
