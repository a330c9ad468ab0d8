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
  const chunks: Uint8Array[] = []
  let n = 0
  const reader = req.body.getReader()
  while (true) {
    const { done, value } = await reader.read()
    if (done) break
    n += value.byteLength
    if (n > limit) {
      await reader.cancel().catch(() => {})
      throw new PayloadTooLargeError(tooLargeMessage(limit))
    }
    chunks.push(value)
  }
  const all = new Uint8Array(n)
  let off = 0
  for (const c of chunks) {
    all.set(c, off)
    off += c.byteLength
  }
  return new TextDecoder().decode(all)
}
