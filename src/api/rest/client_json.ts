/**
 * JSON reading for the REST client: values are parsed one by one as bytes arrive (a stream of
 * millions of pins is never gathered), and integers beyond 2^53 (metric expiries are Unix
 * nanoseconds) keep their exact digits so that they can be printed back unchanged.
 *
 * @example
 * ```ts
 * for await (const v of jsonValues(res.body)) console.log(v)
 * exactInt(metric, 'expire') // '1700000000123456789'
 * ```
 */

/** Where parseJson keeps the exact digits of integers that a JS number cannot hold. */
export const EXACT_INTS: unique symbol = Symbol('exactInts')

type Holder = Record<string | symbol, unknown>
type ReviverContext = { source?: string }

/** JSON.parse that records the source digits of unsafe integers on their holder object. */
export function parseJson(text: string): unknown {
  const reviver = function (this: Holder, key: string, value: unknown, ctx?: ReviverContext) {
    if (
      typeof value === 'number' && !Number.isSafeInteger(value) && ctx?.source &&
      /^-?\d+$/.test(ctx.source) && this !== null && typeof this === 'object' &&
      !Array.isArray(this)
    ) {
      let exact = this[EXACT_INTS] as Record<string, string> | undefined
      if (!exact) {
        exact = {}
        Object.defineProperty(this, EXACT_INTS, { value: exact, enumerable: false })
      }
      exact[key] = ctx.source
    }
    return value
  }
  // The three-argument reviver (JSON.parse source text access) is not in TypeScript's lib yet.
  return JSON.parse(text, reviver as unknown as (k: string, v: unknown) => unknown)
}

/** The exact decimal digits of an integer field, when parseJson had to round it. */
export function exactInt(obj: unknown, key: string): string | undefined {
  if (obj === null || typeof obj !== 'object') return undefined
  return ((obj as Holder)[EXACT_INTS] as Record<string, string> | undefined)?.[key]
}

/** Copies the exact digits of `keys` from one object to another (for normalised copies). */
export function carryExactInts(from: unknown, to: object, keys: readonly string[]): void {
  for (const k of keys) {
    const digits = exactInt(from, k)
    if (digits === undefined) continue
    let exact = (to as Holder)[EXACT_INTS] as Record<string, string> | undefined
    if (!exact) {
      exact = {}
      Object.defineProperty(to, EXACT_INTS, { value: exact, enumerable: false })
    }
    exact[k] = digits
  }
}

/** Raised when the body holds something that is not a sequence of JSON values. */
export class JsonStreamError extends Error {
  override name = 'JsonStreamError'
}

/**
 * Yields each top-level JSON value of a byte stream as soon as it is complete. Values may be
 * separated by newlines (NDJSON) or by nothing at all, as Go's json.Decoder accepts.
 */
export async function* jsonValues(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  const decoder = new TextDecoder()
  const scanner = new ValueScanner()
  for await (const chunk of body) {
    scanner.push(decoder.decode(chunk, { stream: true }))
    for (let v = scanner.next(false); v !== undefined; v = scanner.next(false)) yield v.value
  }
  scanner.push(decoder.decode())
  for (let v = scanner.next(true); v !== undefined; v = scanner.next(true)) yield v.value
}

/** Finds value boundaries incrementally: the scan resumes where the last chunk ended. */
class ValueScanner {
  #buf = ''
  #pos = 0 // scan position inside #buf for the value being read
  #start = -1 // start of the current value, -1 when between values
  #depth = 0
  #inString = false
  #escape = false

  push(text: string): void {
    this.#buf += text
  }

  next(eof: boolean): { value: unknown } | undefined {
    const buf = this.#buf
    if (this.#start < 0) {
      let i = this.#pos
      while (i < buf.length && isSpace(buf.charCodeAt(i))) i++
      if (i >= buf.length) {
        this.#buf = ''
        this.#pos = 0
        return undefined
      }
      this.#start = i
      this.#pos = i
      this.#depth = 0
      this.#inString = false
      this.#escape = false
    }
    const first = buf[this.#start]
    if (first !== '{' && first !== '[' && first !== '"') return this.#scalar(eof)
    let i = this.#pos
    for (; i < buf.length; i++) {
      const c = buf[i]
      if (this.#inString) {
        if (this.#escape) this.#escape = false
        else if (c === '\\') this.#escape = true
        else if (c === '"') {
          this.#inString = false
          if (this.#depth === 0) return this.#emit(i + 1)
        }
      } else if (c === '"') this.#inString = true
      else if (c === '{' || c === '[') this.#depth++
      else if (c === '}' || c === ']') {
        this.#depth--
        if (this.#depth === 0) return this.#emit(i + 1)
      }
    }
    this.#pos = i
    if (eof) throw new JsonStreamError('unexpected EOF')
    return undefined
  }

  #scalar(eof: boolean): { value: unknown } | undefined {
    const buf = this.#buf
    let i = this.#start
    while (i < buf.length && !isSpace(buf.charCodeAt(i)) && !'{["'.includes(buf[i])) i++
    if (i >= buf.length && !eof) return undefined // the literal may continue in the next chunk
    return this.#emit(i)
  }

  #emit(end: number): { value: unknown } {
    const text = this.#buf.slice(this.#start, end)
    // Drop what was consumed so the buffer only ever holds one partial value.
    this.#buf = this.#buf.slice(end)
    this.#pos = 0
    this.#start = -1
    try {
      return { value: parseJson(text) }
    } catch (err) {
      throw new JsonStreamError((err as Error).message)
    }
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}
