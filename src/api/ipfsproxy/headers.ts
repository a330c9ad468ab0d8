/**
 * The headers a hijacked answer takes from Kubo, so that a browser sees the proxy as it would see
 * Kubo (the reference's `headers.go`):
 * - CORS: an `OPTIONS` preflight to Kubo for the same path, `Origin` and method; its
 *   `Access-Control-Allow-Origin`, `Vary` and `Access-Control-Allow-Credentials` are copied.
 *   Only for requests that carry an `Origin` (without one Kubo sends no CORS headers either).
 * - `Access-Control-Expose-Headers` and the `extract_headers_extra` names, from one
 *   `POST <extract_headers_path>` to Kubo, kept for `extract_headers_ttl` (0 = for good).
 *
 * A Kubo that does not answer costs the headers, never the request: the failure is logged and
 * the answer goes out with what is known.
 *
 * @example
 * ```ts
 * const h = kuboHeaders({ upstream, extra: [], path: '/api/v0/version', ttlMs: 300_000, clock })
 * for (const [k, v] of await h.headersFor(req, '/api/v0/pin/add')) res.headers.set(k, v)
 * ```
 */
import { errorMessage } from '../../errors.ts'
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../util/log.ts'
import type { KuboUpstream } from './upstream.ts'

/** Copied from Kubo's preflight answer for the request's origin. */
export const CORS_HEADERS = [
  'Access-Control-Allow-Origin',
  'Vary',
  'Access-Control-Allow-Credentials',
] as const

/** Always extracted (Kubo sets it on every answer, not on preflights). */
const EXTRACT_DEFAULT = ['Access-Control-Expose-Headers']

/** What the header source needs. */
export interface KuboHeadersOptions {
  upstream: Pick<KuboUpstream, 'request'>
  /** `extract_headers_extra`. */
  extra: string[]
  /** `extract_headers_path`. */
  path: string
  /** `extract_headers_ttl`, ms; 0 = extracted once. */
  ttlMs: number
  clock: Pick<Clock, 'now'>
  /** Aborted when the proxy stops (the shared extraction request is not any one client's). */
  signal?: AbortSignal
  log?: Logger
}

/** The headers of hijacked answers. */
export interface KuboHeaders {
  /** The headers to set on the answer to `req` (hijacked at `path`). */
  headersFor(req: Request, path: string, signal?: AbortSignal): Promise<[string, string][]>
}

/** Builds the header source. */
export function kuboHeaders(opts: KuboHeadersOptions): KuboHeaders {
  const names = [...EXTRACT_DEFAULT, ...opts.extra]
  let extracted: { at: number; values: [string, string][] } | undefined
  let extracting: Promise<void> | undefined

  const fresh = () =>
    extracted !== undefined && (opts.ttlMs === 0 || opts.clock.now() - extracted.at < opts.ttlMs)

  /** Asks Kubo for the headers once; concurrent requests share the one in flight. */
  function extract(): Promise<void> {
    extracting ??= (async () => {
      try {
        const res = await opts.upstream.request({ path: opts.path, signal: opts.signal })
        await res.bytes()
        const values: [string, string][] = []
        for (const n of names) {
          const v = res.headers.get(n.toLowerCase())
          if (v !== undefined) values.push([n, v])
        }
        extracted = { at: opts.clock.now(), values }
      } catch (err) {
        // As the reference: the previous values (if any) stay in use, and are asked for again
        // with the next request.
        opts.log?.error(`error extracting headers from IPFS: ${errorMessage(err)}`)
      } finally {
        extracting = undefined
      }
    })()
    return extracting
  }

  async function cors(req: Request, path: string, signal?: AbortSignal) {
    const origin = req.headers.get('origin')
    if (origin === null) return []
    try {
      const res = await opts.upstream.request({
        method: 'OPTIONS',
        path,
        headers: [['Origin', origin], ['Access-Control-Request-Method', req.method]],
        signal,
      })
      await res.bytes()
      const out: [string, string][] = []
      for (const n of CORS_HEADERS) {
        const v = res.headers.get(n.toLowerCase())
        if (v !== undefined) out.push([n, v])
      }
      return out
    } catch (err) {
      opts.log?.error(`error making request for header extraction to ipfs: ${errorMessage(err)}`)
      return []
    }
  }

  return {
    async headersFor(req, path, signal) {
      const [corsHeaders] = await Promise.all([
        cors(req, path, signal),
        fresh() ? undefined : extract(),
      ])
      return [...corsHeaders, ...(extracted?.values ?? [])]
    },
  }
}
