/**
 * Reading a state export (`ipfs-cluster-service state import`): a stream of pin JSON objects, as
 * Go's json.Decoder reads it in the reference. The export writes one object per line (NDJSON), but
 * any stream of JSON values is accepted: one pretty-printed object, objects separated by any
 * whitespace, or objects with nothing between them (`{…}{…}`).
 *
 * The input is read chunk by chunk and each value is parsed as soon as it is complete, so memory
 * stays bounded by the largest value (at most MAX_VALUE_CHARS), whatever the size of the file.
 * Errors say where the bad value starts (`line 3, column 1: …`).
 *
 * @example
 * ```ts
 * for await (const pin of readPinsNDJSON(file.readable)) …
 * ```
 */
import { type Pin, pinFromJSON } from '../types/pin.ts'
import { ValidationError } from '../errors.ts'
import { escapeControl } from '../util/escape.ts'

/**
 * The longest JSON value accepted, in UTF-16 units: 16 times the largest pin the state holds
 * (64 KiB of compact JSON), room for any indentation. A longer value is refused instead of
 * being gathered (an unclosed bracket would otherwise swallow the rest of the file).
 */
export const MAX_VALUE_CHARS = 1 << 20

const LF = 0x0a
const CR = 0x0d
const TAB = 0x09
const SPACE = 0x20
const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/** JSON whitespace (what Go's decoder skips between values). */
function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB
}

/** Where a value starts: 1-based line and column (UTF-16 units, as an editor counts them). */
interface Position {
  line: number
  column: number
}

/** A top-level value: its text, where it starts, and its parsed form when already parsed. */
interface Value {
  text: string
  at: Position
  parsed?: boolean
  value?: unknown
}

/**
 * Splits text fed in pieces into top-level JSON values. Only the value boundaries are found here
 * (strings, nesting, scalars); JSON.parse checks each value in full.
 */
class ValueSplitter {
  #buf = ''
  /** Index in #buf where the value being scanned starts, or -1 between values. */
  #start = -1
  /** Index in #buf up to which the current value is scanned. */
  #pos = 0
  /** Closing brackets expected by the open ones of the current value, innermost last. */
  #closers: number[] = []
  #inString = false
  /** Line number at #lineIndex; lines are counted lazily, only up to where a value starts. */
  #line = 1
  #lineIndex = 0
  /** Index in #buf just after the last line feed before #lineIndex (0: none in #buf). */
  #lineStart = 0
  /** The first line feed at or after #lineIndex (#buf.length: none); -1 when not looked for. */
  #lineEnd = -1
  /** Columns already on the current line before #buf begins (text dropped by #compact). */
  #carry = 0
  /** The first line feed at or after the current value's start; #buf.length when there is none. */
  #nextLF = -1

  /** Appends text. */
  push(text: string): void {
    this.#compact()
    this.#buf += text
    // "No line feed up to the end" no longer holds.
    if (this.#nextLF >= 0 && this.#nextLF === this.#buf.length - text.length) this.#nextLF = -1
    if (this.#lineEnd >= 0 && this.#lineEnd === this.#buf.length - text.length) this.#lineEnd = -1
  }

  /**
   * The next complete value and where it starts, or undefined when more text is needed. At the
   * end of the input (`end`), a pending scalar is complete and an open value is an error.
   */
  next(end: boolean): Value | undefined {
    const buf = this.#buf
    if (this.#start < 0) {
      let i = this.#pos
      while (i < buf.length && isSpace(buf.charCodeAt(i))) i++
      this.#pos = i
      if (i === buf.length) return undefined
      this.#start = i
    }
    const start = this.#start
    const c0 = buf.charCodeAt(start)
    if ((c0 === OPEN_BRACE || c0 === OPEN_BRACKET) && this.#pos === start) {
      const line = this.#wholeLine(start)
      if (line) return line
    }
    let endIndex: number // index just after the value, or -1 when not complete yet
    if (c0 === OPEN_BRACE || c0 === OPEN_BRACKET || c0 === QUOTE) {
      endIndex = this.#scanNested(buf, start)
    } else {
      // A scalar (or garbage) runs to the next whitespace or bracket; JSON.parse judges it.
      let i = Math.max(this.#pos, start + 1)
      while (i < buf.length) {
        const c = buf.charCodeAt(i)
        if (isSpace(c) || c === OPEN_BRACE || c === OPEN_BRACKET || c === QUOTE) break
        i++
      }
      this.#pos = i
      endIndex = i < buf.length || end ? i : -1
    }
    if (endIndex < 0) {
      if (end) {
        // An unclosed value at the end of the input: JSON.parse reports it.
        const at = this.#position(start)
        this.#start = -1
        this.#pos = buf.length
        return { text: buf.slice(start).trimEnd(), at }
      }
      if (buf.length - start > MAX_VALUE_CHARS) {
        throw new ValidationError(
          `${where(this.#position(start))}: a JSON value longer than ${MAX_VALUE_CHARS} ` +
            'characters (an unclosed bracket or quote?)',
        )
      }
      return undefined
    }
    const at = this.#position(start)
    this.#start = -1
    this.#pos = endIndex
    return { text: buf.slice(start, endIndex), at }
  }

  /**
   * The fast path for NDJSON (what `state export` writes): when the rest of the line from `start`
   * is one JSON value, it is that value. A JSON string cannot hold a raw line feed, so no value
   * can go on past it unseen. Otherwise (a pretty-printed or concatenated value), undefined.
   */
  #wholeLine(start: number): Value | undefined {
    const buf = this.#buf
    let nl = this.#nextLF
    if (nl < start) nl = this.#nextLF = firstLF(buf, start)
    if (nl === buf.length) return undefined
    // Only a line that ends like a value is worth parsing (a failed parse costs an exception).
    let last = nl - 1
    while (last > start && isSpace(buf.charCodeAt(last))) last--
    const c = buf.charCodeAt(last)
    if (c !== CLOSE_BRACE && c !== CLOSE_BRACKET) return undefined
    const text = buf.slice(start, nl)
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return undefined
    }
    const at = this.#position(start)
    this.#start = -1
    this.#pos = nl
    return { text, at, parsed: true, value }
  }

  /** Scans an object, array or string from where it stopped; its end index, or -1. */
  #scanNested(buf: string, start: number): number {
    let i = this.#pos
    if (i === start) {
      const c = buf.charCodeAt(start)
      if (c === QUOTE) this.#inString = true
      else this.#closers.push(c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET)
      i++
    }
    const closers = this.#closers
    while (i < buf.length) {
      if (this.#inString) {
        // Jump to the next quote; it ends the string unless an odd run of backslashes escapes it.
        const q = buf.indexOf('"', i)
        if (q < 0) {
          // Resume at the last backslashes, which may escape a quote in the next piece.
          let b = buf.length
          while (b > i && buf.charCodeAt(b - 1) === BACKSLASH) b--
          this.#pos = b
          return -1
        }
        let b = q
        while (b > i && buf.charCodeAt(b - 1) === BACKSLASH) b--
        i = q + 1
        if ((q - b) % 2 === 1) continue
        this.#inString = false
        if (closers.length === 0) return i // a top-level string
        continue
      }
      const c = buf.charCodeAt(i++)
      if (c === QUOTE) {
        this.#inString = true
      } else if (c === OPEN_BRACE) {
        closers.push(CLOSE_BRACE)
      } else if (c === OPEN_BRACKET) {
        closers.push(CLOSE_BRACKET)
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        // A mismatched bracket also ends the value: JSON.parse then says what is wrong.
        if (closers.pop() !== c || closers.length === 0) {
          closers.length = 0
          return i
        }
      }
    }
    this.#pos = i
    return -1
  }

  /** Line and column of an index of #buf (counts the line feeds not counted yet). */
  #position(index: number): Position {
    const buf = this.#buf
    let nl = this.#lineEnd
    if (nl < this.#lineIndex) nl = firstLF(buf, this.#lineIndex)
    while (nl < index) {
      this.#line++
      this.#lineStart = nl + 1
      this.#carry = 0
      nl = firstLF(buf, nl + 1)
    }
    this.#lineEnd = nl
    this.#lineIndex = index
    return { line: this.#line, column: this.#carry + index - this.#lineStart + 1 }
  }

  /** Drops the text before the current value (or all of it between values). */
  #compact(): void {
    const keep = this.#start >= 0 ? this.#start : this.#pos
    if (keep === 0) return
    this.#position(keep)
    this.#carry += keep - this.#lineStart
    this.#lineStart = 0
    this.#lineIndex = 0
    this.#buf = this.#buf.slice(keep)
    if (this.#start >= 0) this.#start -= keep
    this.#pos -= keep
    this.#nextLF -= keep // a stale or negative value is looked up again
    this.#lineEnd -= keep
  }
}

/** The index of the first line feed of `s` at or after `from`, or `s.length` when there is none. */
function firstLF(s: string, from: number): number {
  const i = s.indexOf('\n', from)
  return i < 0 ? s.length : i
}

function where(at: Position): string {
  return `line ${at.line}, column ${at.column}`
}

/**
 * V8 places JSON.parse errors "in JSON at position N (line a column b)" of the value; this turns
 * that into a place in the file.
 */
function parseErrorMessage(err: unknown, text: string, at: Position): string {
  // V8 quotes short values whole, line breaks included: keep the message on one line.
  const message = escapeControl((err as Error).message)
  const m = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(message)
  if (!m) return message
  const offset = Number(m[1])
  let line = at.line
  let lineStart = -1
  for (let nl = text.indexOf('\n'); nl >= 0 && nl < offset; nl = text.indexOf('\n', nl + 1)) {
    line++
    lineStart = nl
  }
  const column = lineStart < 0 ? at.column + offset : offset - lineStart
  return `${message.slice(0, m.index)} at line ${line}, column ${column}`
}

/**
 * Reads pins from a stream of JSON values (a state export: NDJSON, or any JSON values separated by
 * whitespace or nothing). Yields each pin as soon as its value is read; throws ValidationError at
 * the first bad value, naming the line and column where it starts.
 */
export async function* readPinsNDJSON(stream: ReadableStream<Uint8Array>): AsyncIterable<Pin> {
  const splitter = new ValueSplitter()
  const decoder = new TextDecoder()
  const chunks = readChunks(stream)
  const parse = (v: Value): Pin => {
    let json = v.value
    if (!v.parsed) {
      try {
        json = JSON.parse(v.text)
      } catch (err) {
        throw new ValidationError(
          `${where(v.at)}: invalid JSON: ${parseErrorMessage(err, v.text, v.at)}`,
        )
      }
    }
    try {
      return pinFromJSON(json)
    } catch (err) {
      throw new ValidationError(`${where(v.at)}: ${escapeControl((err as Error).message)}`)
    }
  }
  for await (const chunk of chunks) {
    splitter.push(decoder.decode(chunk, { stream: true }))
    for (let v = splitter.next(false); v; v = splitter.next(false)) yield parse(v)
  }
  splitter.push(decoder.decode())
  for (let v = splitter.next(true); v; v = splitter.next(true)) yield parse(v)
}

/** Bytes asked of a byte stream at a time (a file's stream gives 64 KiB otherwise). */
const READ_BYTES = 1 << 18

/**
 * The chunks of a stream. A byte stream (a file's) is read in large pieces into one reused
 * buffer, four times fewer reads than its default 64 KiB chunks; each chunk is only valid until
 * the next one is asked for.
 */
async function* readChunks(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  let byob: ReadableStreamBYOBReader | undefined
  try {
    byob = stream.getReader({ mode: 'byob' })
  } catch {
    // not a byte stream
  }
  if (!byob) {
    const reader = stream.getReader()
    try {
      while (true) {
        const { value, done } = await reader.read()
        if (done) return
        yield value
      }
    } finally {
      reader.releaseLock()
    }
  }
  try {
    let buf = new Uint8Array(READ_BYTES)
    while (true) {
      const { value, done } = await byob.read(buf)
      if (done || !value) return
      yield value
      buf = new Uint8Array(value.buffer) // the read took the buffer over and gives it back
    }
  } finally {
    byob.releaseLock()
  }
}
