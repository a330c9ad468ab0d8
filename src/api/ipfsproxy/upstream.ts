/**
 * The IPFS proxy's side towards Kubo: requests to the RPC API at `node_multiaddress` (TCP, a
 * unix socket, or HTTPS with `node_https`) over the connector's HTTP/1.1 client, and the reverse
 * proxy that forwards a client's request unchanged and streams the answer back.
 *
 * Why not `fetch`: a `fetch` body arrives in JS in 4 KiB pieces (~100 MiB/s for a `cat` on the
 * test machine, a third of Kubo's speed), and `fetch` drops HTTP trailers, where Kubo reports an
 * error in the middle of a stream (`X-Stream-Error`): a `cat` that failed half way would reach
 * the client as a shorter file and a success. The HTTP/1.1 client reads 16 KiB at a time and
 * keeps trailers; an answer whose trailer carries an error is cut short (the client sees a
 * truncated body, never a complete one), since Deno's server cannot send trailers.
 *
 * Both directions stream, one piece at a time: memory stays flat whatever the size.
 *
 * @example
 * ```ts
 * const kubo = kuboUpstream(cfg)
 * const res = await kubo.forward(req, { signal }) // a Response streaming Kubo's answer
 * kubo.close()
 * ```
 */
import { errorMessage, IPFSError } from '../../errors.ts'
import { parseNodeAddress } from '../../ipfsconn/ipfshttp/address.ts'
import {
  Http1Client,
  type Http1Request,
  type Http1Response,
  type Http1Target,
} from '../../ipfsconn/ipfshttp/http1.ts'
import type { Logger } from '../../util/log.ts'

/** Where Kubo is and how to reach it (the proxy's config keys). */
export interface UpstreamConfig {
  node_multiaddress: string
  node_https: boolean
}

/** What a forwarded answer reports once it is sent. */
export interface ForwardOptions {
  /** Aborted when the server stops: Kubo's connection is closed. */
  signal: AbortSignal
  /** The client's address, appended to `X-Forwarded-For` (as Go's ReverseProxy does). */
  remote?: string
  /** Called once with the body bytes sent and the status, when the body ended (or was cut). */
  onDone?: (bytes: number, status: number) => void
}

/** Kubo's RPC API as the proxy uses it. */
export interface KuboUpstream {
  /** The daemon's address as a URL base (`http://127.0.0.1:5001`), for messages. */
  readonly address: string
  /** One request; its answer's body must be read or cancelled. */
  request(req: Http1Request): Promise<Http1Response>
  /** Sends `req` to Kubo as it came (method, path, query, headers, body); streams the answer. */
  forward(req: Request, opts: ForwardOptions): Promise<Response>
  /** Closes the idle and busy connections to Kubo. */
  close(): void
}

/**
 * Bytes read from Kubo at a time (the connector reads 16 KiB): fewer reads for a `cat` of
 * gigabytes; Kubo writes 32 KiB chunks, so a read still returns at most one.
 */
const READ_BYTES = 256 * 1024

/** Headers that concern one connection only (RFC 9110 §7.6.1), never forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** The request headers to send on: the client's, less hop-by-hop ones and what the client sets. */
export function forwardHeaders(req: Request, remote?: string): [string, string][] {
  const out: [string, string][] = []
  const listed = new Set(
    (req.headers.get('connection') ?? '').split(',').map((s) => s.trim().toLowerCase()),
  )
  let forwardedFor: string | undefined
  for (const [k, v] of req.headers) {
    if (HOP_BY_HOP.has(k) || listed.has(k) || k === 'host' || k === 'content-length') continue
    if (k === 'x-forwarded-for') {
      forwardedFor = v
      continue
    }
    out.push([k, v])
  }
  if (remote) out.push(['x-forwarded-for', forwardedFor ? `${forwardedFor}, ${remote}` : remote])
  else if (forwardedFor) out.push(['x-forwarded-for', forwardedFor])
  return out
}

/** The answer headers to send back: Kubo's, less hop-by-hop ones. */
function answerHeaders(res: Http1Response): Headers {
  const h = new Headers()
  const listed = new Set(
    (res.headers.get('connection') ?? '').split(',').map((s) => s.trim().toLowerCase()),
  )
  for (const [k, v] of res.headers) {
    // `Trailer` stays: it only announces what may follow, and clients read trailers if any.
    if ((HOP_BY_HOP.has(k) && k !== 'trailer') || listed.has(k)) continue
    h.set(k, v)
  }
  return h
}

/**
 * A Response streaming a Kubo answer's body: each piece is copied out of the connection's buffer
 * as it is asked for (a slow client holds Kubo back). A trailer error (`X-Stream-Error`) or a
 * broken connection errors the stream, which cuts the client's answer short.
 */
export function streamAnswer(
  res: Http1Response,
  opts: { onDone?: (bytes: number, status: number) => void; log?: Logger; what?: string } = {},
): Response {
  let sent = 0
  let reported = false
  const report = () => {
    if (reported) return
    reported = true
    opts.onDone?.(sent, res.status)
  }
  const headers = answerHeaders(res)
  if (res.done) {
    report()
    return new Response(null, { status: res.status, headers })
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const b = await res.read()
        if (b !== null) {
          sent += b.byteLength
          c.enqueue(b.slice())
          return
        }
        report()
        const trailerError = res.trailers.get('x-stream-error')
        if (trailerError) {
          opts.log?.warn(`${opts.what ?? 'IPFS answer'} ended with an error: ${trailerError}`)
          return c.error(new IPFSError(trailerError))
        }
        c.close()
      } catch (err) {
        report()
        opts.log?.debug(`${opts.what ?? 'IPFS answer'} broken: ${errorMessage(err)}`)
        c.error(err)
      }
    },
    cancel() {
      report()
      res.cancel()
    },
  }, { highWaterMark: 0 })
  return new Response(body, { status: res.status, headers })
}

/** Builds the Kubo side of the proxy. Nothing is dialled until the first request. */
export function kuboUpstream(cfg: UpstreamConfig, deps: { log?: Logger } = {}): KuboUpstream {
  const addr = parseNodeAddress(cfg.node_multiaddress)
  const target: Http1Target = addr.unixPath !== undefined
    ? { unixPath: addr.unixPath }
    : { hostname: addr.hostname!, port: addr.port! }
  const scheme = cfg.node_https ? 'https' : 'http'
  const address = addr.unixPath !== undefined
    ? `http+unix://${addr.unixPath}`
    : `${scheme}://${addr.baseUrl.slice('http://'.length, -addr.path.length)}`
  const client = new Http1Client(target, {
    readBytes: READ_BYTES,
    dial: cfg.node_https && 'hostname' in target
      ? (t) =>
        Deno.connectTls({ hostname: (t as { hostname: string }).hostname, port: target.port })
      : undefined,
  })

  async function request(req: Http1Request): Promise<Http1Response> {
    try {
      return await client.request(req)
    } catch (err) {
      if (req.signal?.aborted) throw err
      throw new IPFSError(`cannot reach the IPFS daemon at ${address}: ${errorMessage(err)}`)
    }
  }

  return {
    address,
    request,
    async forward(req, opts) {
      const url = new URL(req.url)
      // An empty body is sent with its length, not as a stream (which could not be retried).
      const hasBody = req.body !== null && req.headers.get('content-length') !== '0'
      const res = await request({
        method: req.method,
        path: url.pathname + url.search,
        headers: forwardHeaders(req, opts.remote),
        body: hasBody ? req.body! : undefined,
        signal: opts.signal,
      })
      return streamAnswer(res, { onDone: opts.onDone, log: deps.log, what: url.pathname })
    },
    close: () => client.close(),
  }
}
