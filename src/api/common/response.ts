/**
 * JSON responses in the shape the reference's `SendResponse` writes: configured headers plus
 * `Content-Type: application/json` on every response, each JSON value followed by `\n` (Go's
 * json.Encoder), errors as an API-specific body with the status the typed error carries.
 *
 * @example
 * ```ts
 * const r = responder({ 'X-Custom': ['1'] }, (code, message) => ({ code, message }))
 * r.json(200, { version: '1.1.6' }) // body '{"version":"1.1.6"}\n'
 * r.error(new NotFoundError(PIN_NOT_FOUND)) // 404 {"code":404,"message":"pin is not part of the pinset"}
 * ```
 */
import { ClusterError, errorMessage, PIN_NOT_FOUND } from '../../errors.ts'

/** Builds the JSON error body of an API (REST: `{code,message}`; pinsvc: `{error:{reason}}`). */
export type ErrorBodyFn = (status: number, message: string) => unknown

/** Configured response headers: name → values (the reference's `map[string][]string`). */
export type HeaderMap = Record<string, string[]>

/** Raised when a request body exceeds `max_body_bytes`. */
export class PayloadTooLargeError extends ClusterError {
  override name = 'PayloadTooLargeError'
  override status = 413
}

/** The HTTP status for an error: its own status when typed, 404 for the pin-not-found text, else 500. */
export function statusOf(err: unknown): number {
  if (err instanceof ClusterError) return err.status
  const s = (err as { status?: unknown } | null)?.status
  if (typeof s === 'number' && s >= 400 && s < 600) return s
  // Errors that crossed an RPC boundary lose their class; the reference matches the text too.
  return errorMessage(err) === PIN_NOT_FOUND ? 404 : 500
}

/** Encodes a value as one JSON line (Go's json.Encoder output). */
export function jsonLine(v: unknown): string {
  return JSON.stringify(v) + '\n'
}

/** Makes responses carrying an API's configured headers. */
export interface Responder {
  /** Fresh headers: configured ones plus Content-Type (and any extra pairs). */
  headers(extra?: [string, string][]): Headers
  json(status: number, value: unknown, extra?: [string, string][]): Response
  /** An error response; `status` overrides the error's own (e.g. 400 for parse errors). */
  error(err: unknown, status?: number, extra?: [string, string][]): Response
  /** A response without a body (204 by default). */
  empty(status?: number, extra?: [string, string][]): Response
  /** The error body for a status and message (as JSON text with the trailing newline). */
  errorText(status: number, message: string): string
}

// Body sizes of the responses a Responder made, for the access log: reading `res.body` to count
// would turn a body Deno.serve sends in one write into a stream pumped from JS (~15–25 µs a
// request, measured for docs/performance.md).
const bodySizes = new WeakMap<Response, number>()

/** The byte size of a response's body when a Responder made it; undefined for any other. */
export function knownBodySize(res: Response): number | undefined {
  return bodySizes.get(res)
}

const NOT_PLAIN_ASCII = /[^ -~\t\n\r]/ // outside printable ASCII and the usual whitespace

/** Bytes of `s` in UTF-8 (a lone surrogate counts 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  if (!NOT_PLAIN_ASCII.test(s)) return s.length // JSON answers mostly are: a native scan is faster
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) {
      n += 1
      continue
    }
    n += 2 // 3 bytes; a surrogate pair is 4 bytes for its 2 units
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
  }
  return n
}

// The body stays a string: Deno.serve encodes it natively (encoding here cost ~4 µs more).
function sized(body: string | null, init: ResponseInit): Response {
  const res = new Response(body, init)
  bodySizes.set(res, body === null ? 0 : utf8Length(body))
  return res
}

/** Builds a Responder for the configured headers and the API's error body shape. */
export function responder(configured: HeaderMap, errorBody: ErrorBodyFn): Responder {
  // Precomputed once: building Headers from a flat list is the cheapest per-request path.
  const base: [string, string][] = []
  for (const [name, values] of Object.entries(configured)) {
    for (const v of values) base.push([name, v])
  }
  base.push(['Content-Type', 'application/json'])
  const headers = (extra?: [string, string][]) => {
    const h = new Headers(base)
    if (extra) { for (const [k, v] of extra) h.append(k, v) }
    return h
  }
  const errorText = (status: number, message: string) => jsonLine(errorBody(status, message))
  return {
    headers,
    errorText,
    json: (status, value, extra) => sized(jsonLine(value), { status, headers: headers(extra) }),
    error(err, status, extra) {
      const st = status ?? statusOf(err)
      return sized(errorText(st, errorMessage(err)), { status: st, headers: headers(extra) })
    },
    empty: (status = 204, extra) => sized(null, { status, headers: headers(extra) }),
  }
}
