/**
 * Bounded request bodies: a body larger than the API's `max_body_bytes` is refused with 413
 * instead of being buffered (the reference reads bodies without a limit).
 *
 * @example
 * ```ts
 * const text = await readBody(req, 1 << 20) // throws PayloadTooLargeError past 1 MiB
 * ```
 */
import { PayloadTooLargeError } from './response.ts'

/** The 413 message for a limit. */
export function tooLargeMessage(limit: number): string {
  return `request body too large: the limit is ${limit} bytes (max_body_bytes)`
}

/** True when the request declares a body longer than `limit`. */
export function declaredTooLarge(req: Request, limit: number): boolean {
  const cl = req.headers.get('content-length')
  return cl !== null && Number(cl) > limit
}

/** Reads the whole body as text, refusing more than `limit` bytes. */
export async function readBody(req: Request, limit: number): Promise<string> {
  if (declaredTooLarge(req, limit)) throw new PayloadTooLargeError(tooLargeMessage(limit))
  if (!req.body) return ''
  return await readText(req.body, limit, () => new PayloadTooLargeError(tooLargeMessage(limit)))
}

/**
 * Reads a byte stream as UTF-8 text, throwing `tooLarge()` as soon as it passes `limit` bytes
 * (leaving the loop cancels the stream, so the rest is never buffered).
 */
export async function readText(
  source: AsyncIterable<Uint8Array>,
  limit: number,
  tooLarge: () => Error,
): Promise<string> {
  const chunks: Uint8Array[] = []
  let n = 0
  for await (const c of source) {
    n += c.byteLength
    if (n > limit) throw tooLarge()
    chunks.push(c)
  }
  const all = new Uint8Array(n)
  let off = 0
  for (const c of chunks) {
    all.set(c, off)
    off += c.byteLength
  }
  return new TextDecoder().decode(all)
}
