/**
 * How the REST client reaches a server: API addresses (multiaddrs or URLs) become endpoints, and a
 * transport sends one request. The default transport is node:http(s), because it is the one that
 * in Deno both exposes HTTP trailers (`X-Stream-Error`) and can skip certificate checks for a
 * single client (`rejectUnauthorized: false`); a fetch transport exists for injected fetches.
 * Failures are reported with the reference client's (Go net/http) wording, because scripts and
 * users read them in `ipfs-cluster-ctl` output.
 *
 * @example
 * ```ts
 * const ep = parseEndpoint('/ip4/127.0.0.1/tcp/9094', false) // { baseUrl: 'http://127.0.0.1:9094' }
 * const res = await nodeTransport({ rejectUnauthorized: true })({ method: 'GET', url: ep.baseUrl + '/id', … })
 * ```
 */
import http from 'node:http'
import https from 'node:https'
import { Buffer } from 'node:buffer'

/** Where requests go: a base URL, and a unix socket path when the API listens on one. */
export interface Endpoint {
  baseUrl: string
  socketPath?: string
}

/** Raised for an API address this client cannot use. */
export class EndpointError extends Error {
  override name = 'EndpointError'
}

/** True for addresses that need libp2p-http (`/p2p/…` or `/dnsaddr/…`), which is not supported. */
export function isPeerAddress(addr: string): boolean {
  return /\/(p2p|ipfs|dnsaddr)\//.test(addr + '/')
}

/**
 * Turns an API address into an endpoint: `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`,
 * `/unix/<path>` or an http(s) URL. `https` picks the scheme for multiaddrs.
 */
export function parseEndpoint(addr: string, useHttps: boolean): Endpoint {
  const a = addr.trim()
  if (/^https?:\/\//i.test(a)) {
    const u = new URL(a)
    return { baseUrl: `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}` }
  }
  if (!a.startsWith('/')) {
    throw new EndpointError(`failed to parse multiaddr ${JSON.stringify(a)}: must begin with /`)
  }
  if (isPeerAddress(a)) {
    throw new EndpointError(
      `libp2p-http API endpoints (/p2p/, /dnsaddr/) are not supported by this client: ${a}`,
    )
  }
  const parts = a.split('/').slice(1)
  if (parts[0] === 'unix') {
    const path = '/' + parts.slice(1).join('/')
    if (path === '/') throw new EndpointError(`failed to parse multiaddr ${JSON.stringify(a)}`)
    return { baseUrl: 'http://restapi', socketPath: path }
  }
  const [proto, host, tcp, port] = parts
  if (
    !['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(proto) || !host || tcp !== 'tcp' ||
    !/^\d+$/.test(port ?? '') || Number(port) > 65535 || parts.length > 4
  ) {
    throw new EndpointError(
      `failed to parse multiaddr ${JSON.stringify(a)}: unsupported API address`,
    )
  }
  const h = proto === 'ip6' ? `[${host}]` : host
  return { baseUrl: `${useHttps ? 'https' : 'http'}://${h}:${port}` }
}

/** One request, as the client hands it to a transport. */
export interface TransportRequest {
  method: string
  url: string
  headers: Record<string, string>
  body?: AsyncIterable<Uint8Array>
  signal: AbortSignal
  socketPath?: string
}

/** The answer: status and headers at once, the body as a byte stream, trailers after the body. */
export interface TransportResponse {
  status: number
  headers: Headers
  body: AsyncIterable<Uint8Array>
  /** All values of a trailer once the body was read; undefined when the transport cannot tell. */
  trailerValues(name: string): string[] | undefined
}

/** Sends one request; rejects with a TransportError when no answer came. */
export type Transport = (req: TransportRequest) => Promise<TransportResponse>

/** A request that got no answer; the message follows Go's `<Method> "<url>": <cause>` form. */
export class TransportError extends Error {
  override name = 'TransportError'
}

/** Options of the node:http(s) transport. */
export interface NodeTransportOptions {
  /** False skips TLS certificate verification (`--no-check-certificate`). */
  rejectUnauthorized: boolean
  /** Extra trusted CA certificates (PEM). */
  caCerts?: string[]
}

/** The default transport, on node:http and node:https. */
export function nodeTransport(opts: NodeTransportOptions): Transport {
  return (req) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const u = new URL(req.url)
      const isHttps = u.protocol === 'https:'
      const mod = isHttps ? https : http
      const options: https.RequestOptions = {
        method: req.method,
        headers: req.headers,
        // A fresh connection per request: a one-shot CLI must not keep idle sockets alive.
        agent: false,
      }
      if (req.socketPath) options.socketPath = req.socketPath
      if (isHttps) {
        options.rejectUnauthorized = opts.rejectUnauthorized
        if (opts.caCerts?.length) options.ca = opts.caCerts
      }
      let settled = false
      const fail = (err: unknown) => {
        if (settled) return
        settled = true
        reject(transportError(req, err))
      }
      const r = mod.request(u, options, (res) => {
        settled = true
        const headers = new Headers()
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) { for (const x of v) headers.append(k, x) }
          else if (v !== undefined) headers.set(k, String(v))
        }
        const onAbort = () => res.destroy(abortReason(req.signal))
        req.signal.addEventListener('abort', onAbort, { once: true })
        res.on('close', () => req.signal.removeEventListener('abort', onAbort))
        resolve({
          status: res.statusCode ?? 0,
          headers,
          body: readBody(res, req),
          trailerValues(name: string) {
            const out: string[] = []
            const raw = res.rawTrailers ?? []
            for (let i = 0; i + 1 < raw.length; i += 2) {
              if (raw[i].toLowerCase() === name.toLowerCase()) out.push(raw[i + 1])
            }
            return out
          },
        })
      })
      r.on('error', fail)
      if (req.signal.aborted) {
        r.destroy(abortReason(req.signal))
        return
      }
      const onAbort = () => r.destroy(abortReason(req.signal))
      req.signal.addEventListener('abort', onAbort, { once: true })
      r.on('close', () => req.signal.removeEventListener('abort', onAbort))
      if (!req.body) {
        r.end()
        return
      }
      writeBody(r, req.body).catch((err) => {
        r.destroy(err)
        fail(err)
      })
    })
}

async function writeBody(r: http.ClientRequest, body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of body) {
    if (!r.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
      await new Promise<void>((res, rej) => {
        const onDrain = () => {
          r.off('error', onErr)
          res()
        }
        const onErr = (e: Error) => {
          r.off('drain', onDrain)
          rej(e)
        }
        r.once('drain', onDrain)
        r.once('error', onErr)
      })
    }
  }
  r.end()
}

async function* readBody(
  res: http.IncomingMessage,
  req: TransportRequest,
): AsyncGenerator<Uint8Array, void, undefined> {
  try {
    for await (const chunk of res) {
      yield chunk instanceof Uint8Array ? chunk : new TextEncoder().encode(String(chunk))
    }
  } catch (err) {
    throw transportError(req, err, true)
  } finally {
    // The caller stopped early: close the connection so the server stops streaming.
    if (!res.complete) res.destroy()
  }
}

/** The fetch transport (for an injected fetch); it cannot see trailers. */
export function fetchTransport(
  fetchFn: typeof fetch,
  client?: Deno.HttpClient,
): Transport {
  return async (req) => {
    let res: Response
    try {
      const init: RequestInit & { client?: Deno.HttpClient; duplex?: string } = {
        method: req.method,
        headers: req.headers,
        signal: req.signal,
        redirect: 'manual',
      }
      if (client) init.client = client
      if (req.body) {
        init.body = ReadableStream.from(req.body)
        init.duplex = 'half'
      }
      res = await fetchFn(req.url, init)
    } catch (err) {
      throw transportError(req, err)
    }
    const stream = res.body
    return {
      status: res.status,
      headers: res.headers,
      body: (async function* () {
        if (!stream) return
        try {
          for await (const chunk of stream) yield chunk
        } catch (err) {
          throw transportError(req, err, true)
        }
      })(),
      trailerValues: () => undefined,
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  const r = signal.reason
  return r instanceof Error ? r : new DOMException('The operation was aborted', 'AbortError')
}

function goMethod(m: string): string {
  return m.charAt(0).toUpperCase() + m.slice(1).toLowerCase()
}

/** Wraps a low-level failure in Go's url.Error wording; abort reasons are kept as the cause. */
export function transportError(req: TransportRequest, err: unknown, reading = false): Error {
  if (err instanceof TransportError) return err
  const shown = req.socketPath
    ? req.url.replace(/^http:\/\/restapi/, 'http+unix://restapi')
    : req.url
  const cause = goCause(req, err, reading)
  return new TransportError(`${goMethod(req.method)} "${shown}": ${cause}`, { cause: err })
}

function goCause(req: TransportRequest, err: unknown, reading: boolean): string {
  if (err instanceof DOMException && err.name === 'TimeoutError') {
    return reading
      ? 'context deadline exceeded (Client.Timeout or context cancellation while reading body)'
      : 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
  }
  if (err instanceof DOMException && err.name === 'AbortError') return 'context canceled'
  const e = err as { code?: string; message?: string; cause?: unknown }
  const msg = String(e?.message ?? err)
  const u = new URL(req.url)
  const hostPort = `${u.hostname.replace(/^\[|\]$/g, '')}:${
    u.port || (u.protocol === 'https:' ? '443' : '80')
  }`
  const dial = req.socketPath ? `dial unix ${req.socketPath}` : `dial tcp ${hostPort}`
  const code = e?.code ?? ''
  if (code === 'ECONNREFUSED' || /connection refused/i.test(msg)) {
    return `${dial}: connect: connection refused`
  }
  if (code === 'ENOENT' && req.socketPath) return `${dial}: connect: no such file or directory`
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /dns error|failed to lookup/i.test(msg)) {
    return `dial tcp: lookup ${u.hostname}: no such host`
  }
  if (/self[- ]signed|unknown ?issuer|UnknownIssuer|unable to verify|certificate/i.test(msg)) {
    return 'tls: failed to verify certificate: x509: certificate signed by unknown authority'
  }
  if (
    /wrong version number|packet length too long|EPROTO|InvalidContentType|corrupt message/i.test(
      msg,
    )
  ) {
    return 'http: server gave HTTP response to HTTPS client'
  }
  if (code === 'ECONNRESET') {
    return reading ? 'unexpected EOF' : `read tcp ${hostPort}: read: connection reset by peer`
  }
  return msg
}
