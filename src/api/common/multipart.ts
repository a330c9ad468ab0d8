/**
 * A streaming multipart/form-data reader: parts come one at a time and each part's body is read
 * in pieces straight from the request stream, so an upload of any size uses bounded memory
 * (Request.formData() would buffer the whole body). Parts are read in order: asking for the next
 * part skips whatever is left of the current one.
 *
 * @example
 * ```ts
 * const mp = new MultipartReader(req.body!, multipartBoundary(req.headers.get('content-type')))
 * for (let part = await mp.nextPart(); part; part = await mp.nextPart()) {
 *   for await (const chunk of part.body()) …
 * }
 * ```
 */
import { ValidationError } from '../../errors.ts'

/** One part: its headers (lower-cased names) and its body. */
export interface MultipartPart {
  headers: Map<string, string>
  /** The next piece of the body, or null at its end. */
  read(): Promise<Uint8Array | null>
  /** The rest of the body as an async iterable. */
  body(): AsyncIterable<Uint8Array>
}

/** Malformed multipart input. */
export class MultipartError extends ValidationError {
  override name = 'MultipartError'
}

/**
 * The boundary of a multipart Content-Type, with Go's error messages for requests that are not
 * multipart (`request Content-Type isn't multipart/form-data`).
 */
export function multipartBoundary(contentType: string | null): string {
  const { type, params } = parseHeaderParams(contentType ?? '')
  if (type !== 'multipart/form-data' && type !== 'multipart/mixed') {
    throw new ValidationError("request Content-Type isn't multipart/form-data")
  }
  const b = params.get('boundary')
  if (!b) throw new ValidationError('no multipart boundary param in Content-Type')
  if (b.length > 70) throw new ValidationError('multipart boundary is too long')
  return b
}

/**
 * Parses `type; key=value; key="quoted value"` (Content-Type, Content-Disposition). Keys are
 * lower-cased; the type is lower-cased and trimmed.
 */
export function parseHeaderParams(v: string): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>()
  const semi = v.indexOf(';')
  const type = (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase()
  let i = semi < 0 ? v.length : semi + 1
  while (i < v.length) {
    while (i < v.length && (v[i] === ' ' || v[i] === '\t' || v[i] === ';')) i++
    const eq = v.indexOf('=', i)
    if (eq < 0) break
    const key = v.slice(i, eq).trim().toLowerCase()
    i = eq + 1
    let value = ''
    if (v[i] === '"') {
      i++
      while (i < v.length && v[i] !== '"') {
        if (v[i] === '\\' && i + 1 < v.length) i++
        value += v[i++]
      }
      i++ // closing quote
    } else {
      const end = v.indexOf(';', i)
      value = v.slice(i, end < 0 ? v.length : end).trim()
      i = end < 0 ? v.length : end
    }
    if (key && !params.has(key)) params.set(key, value)
  }
  return { type, params }
}

const CR = 13
const LF = 10
const DASH = 45
const MAX_PART_HEADER_BYTES = 16 * 1024

function indexOfSeq(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]
  const last = hay.length - needle.length
  let i = from
  while (i <= last) {
    i = hay.indexOf(first, i)
    if (i < 0 || i > last) return -1
    let j = 1
    while (j < needle.length && hay[i + j] === needle[j]) j++
    if (j === needle.length) return i
    i++
  }
  return -1
}

/** Reads the parts of a multipart body in order. */
export class MultipartReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #dash: Uint8Array // "--boundary"
  readonly #delim: Uint8Array // "\r\n--boundary"
  #buf: Uint8Array = new Uint8Array(0)
  #pos = 0
  #eof = false
  #started = false
  #finished = false
  #current: { done: boolean } | undefined

  constructor(body: ReadableStream<Uint8Array>, boundary: string) {
    this.#reader = body.getReader()
    const enc = new TextEncoder()
    this.#dash = enc.encode(`--${boundary}`)
    this.#delim = enc.encode(`\r\n--${boundary}`)
  }

  /** Reads more input; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false
    const { done, value } = await this.#reader.read()
    if (done) {
      this.#eof = true
      return false
    }
    const rest = this.#buf.length - this.#pos
    if (rest === 0) {
      this.#buf = value
    } else {
      const next = new Uint8Array(rest + value.length)
      next.set(this.#buf.subarray(this.#pos))
      next.set(value, rest)
      this.#buf = next
    }
    this.#pos = 0
    return true
  }

  async #need(n: number): Promise<boolean> {
    while (this.#buf.length - this.#pos < n) if (!(await this.#fill())) return false
    return true
  }

  /** Consumes the line ending after a boundary; returns false for the closing `--boundary--`. */
  async #afterBoundary(): Promise<boolean> {
    if (!(await this.#need(2))) {
      throw new MultipartError('multipart: unexpected end of input after boundary')
    }
    if (this.#buf[this.#pos] === DASH && this.#buf[this.#pos + 1] === DASH) return false
    // Optional transport padding, then CRLF (or a bare LF).
    while (true) {
      if (!(await this.#need(1))) {
        throw new MultipartError('multipart: unexpected end of input after boundary')
      }
      const c = this.#buf[this.#pos]
      if (c === 32 || c === 9 || c === CR) {
        this.#pos++
        continue
      }
      if (c === LF) {
        this.#pos++
        return true
      }
      throw new MultipartError('multipart: expected a line break after the boundary')
    }
  }

  async #readHeaders(): Promise<Map<string, string>> {
    const headers = new Map<string, string>()
    while (true) {
      let nl = this.#buf.indexOf(LF, this.#pos)
      while (nl < 0) {
        if (this.#buf.length - this.#pos > MAX_PART_HEADER_BYTES) {
          throw new MultipartError('multipart: part headers too large')
        }
        if (!(await this.#fill())) {
          throw new MultipartError('multipart: unexpected end of input in part headers')
        }
        nl = this.#buf.indexOf(LF, this.#pos)
      }
      const end = nl > this.#pos && this.#buf[nl - 1] === CR ? nl - 1 : nl
      const line = new TextDecoder().decode(this.#buf.subarray(this.#pos, end))
      this.#pos = nl + 1
      if (line === '') return headers
      const colon = line.indexOf(':')
      if (colon <= 0) {
        throw new MultipartError(`multipart: malformed part header ${JSON.stringify(line)}`)
      }
      if (headers.size > 64) throw new MultipartError('multipart: too many part headers')
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
    }
  }

  /** The next part, or null after the last one. Skips the rest of the previous part. */
  async nextPart(): Promise<MultipartPart | null> {
    if (this.#finished) return null
    if (this.#current && !this.#current.done) {
      // Skip the unread rest of the current part.
      while ((await this.#readBody(this.#current)) !== null) { /* discard */ }
    }
    if (!this.#started) {
      this.#started = true
      // Skip any preamble up to the first boundary.
      let i = indexOfSeq(this.#buf, this.#dash, this.#pos)
      while (i < 0) {
        const keep = Math.max(this.#pos, this.#buf.length - this.#dash.length)
        this.#pos = keep
        if (!(await this.#fill())) {
          throw new MultipartError('multipart: no boundary found in the body')
        }
        i = indexOfSeq(this.#buf, this.#dash, this.#pos)
      }
      this.#pos = i + this.#dash.length
    }
    if (!(await this.#afterBoundary())) {
      this.#finished = true
      await this.#reader.cancel().catch(() => {})
      return null
    }
    const headers = await this.#readHeaders()
    const state = { done: false }
    this.#current = state
    const read = () => this.#readBody(state)
    return {
      headers,
      read,
      async *body() {
        for (let c = await read(); c !== null; c = await read()) yield c
      },
    }
  }

  async #readBody(state: { done: boolean }): Promise<Uint8Array | null> {
    if (state.done || state !== this.#current) return null
    // Bytes from #pos known not to start a delimiter (#fill() moves #pos, so keep an offset).
    let skip = 0
    while (true) {
      const i = indexOfSeq(this.#buf, this.#delim, this.#pos + skip)
      if (i >= 0) {
        // As Go's reader: it is a delimiter only when followed by "--", whitespace or a line end.
        const after = i + this.#delim.length
        if (after >= this.#buf.length) {
          skip = i - this.#pos
          if (!(await this.#fill())) {
            throw new MultipartError('multipart: unexpected end of input in part body')
          }
          continue
        }
        const c = this.#buf[after]
        if (c !== DASH && c !== 32 && c !== 9 && c !== CR && c !== LF) {
          skip = i + 1 - this.#pos
          continue
        }
        const out = this.#buf.subarray(this.#pos, i)
        this.#pos = i + this.#delim.length
        state.done = true
        if (out.length > 0) return out
        return null
      }
      // Hand out what cannot be the start of a delimiter; keep the possible prefix.
      const safe = this.#buf.length - (this.#delim.length - 1)
      if (safe > this.#pos) {
        const out = this.#buf.subarray(this.#pos, safe)
        this.#pos = safe
        return out
      }
      skip = 0
      if (!(await this.#fill())) {
        throw new MultipartError('multipart: unexpected end of input in part body')
      }
    }
  }

  /** Stops reading the request body. */
  async cancel(): Promise<void> {
    this.#finished = true
    await this.#reader.cancel().catch(() => {})
  }
}
