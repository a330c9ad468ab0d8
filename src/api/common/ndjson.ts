/**
 * NDJSON streaming responses with the reference's `StreamResponse` semantics:
 * an error before the first item → its status (400 for bad input, 500 for anything untyped) + error
 * JSON; no items → 204; else 200 and one JSON value per line, with the header
 * `Trailer: X-Stream-Error`.
 *
 * Deno.serve cannot send HTTP/1.1 trailers, so an error after the first item cannot travel in
 * `X-Stream-Error`. The stream is then aborted: the connection closes without the final chunk,
 * which every HTTP client reports as a truncated body (Go's client: "unexpected EOF"). A final
 * error line would instead be decoded by clients as one more item.
 *
 * Lines are coalesced into ~64 KiB chunks (one write per chunk instead of one per item) through a
 * pull-based ReadableStream, so a slow client holds back the source (flat memory). A chunk is
 * also flushed when the source pauses, so slow streams (peers, status) still arrive line by line.
 *
 * @example
 * ```ts
 * return await ndjsonResponse(r, cluster.peers(signal), { onCancel: () => ac.abort() })
 * ```
 */
import type { Responder } from './response.ts'

/** Options of a streaming response. */
export interface StreamOptions {
  /** Called when the client goes away (the body was cancelled): abort the source here. */
  onCancel?: (reason: unknown) => void
  /** Called with an error that broke the stream after the first item (for logging). */
  onError?: (err: unknown) => void
  /** Target size of a written chunk, in bytes. */
  chunkBytes?: number
  /** Extra headers of the 200 answer. */
  headers?: [string, string][]
}

/** Headers every stream response carries. */
export const STREAM_HEADERS: [string, string][] = [['Trailer', 'X-Stream-Error']]

const DEFAULT_CHUNK = 64 * 1024
const NEWLINE = 10
const TICK = Symbol('tick')
const noop = () => {}

/** A growable byte buffer that hands out filled chunks without copying. */
class ChunkBuffer {
  #buf: Uint8Array
  #n = 0
  readonly #target: number
  static readonly #encoder = new TextEncoder()

  constructor(target: number) {
    this.#target = target
    this.#buf = new Uint8Array(target + 1024)
  }

  get length(): number {
    return this.#n
  }

  get full(): boolean {
    return this.#n >= this.#target
  }

  #ensure(extra: number) {
    if (this.#n + extra <= this.#buf.length) return
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#n + extra))
    next.set(this.#buf.subarray(0, this.#n))
    this.#buf = next
  }

  /** Appends bytes that already hold whole NDJSON lines. */
  putRaw(b: Uint8Array) {
    this.#ensure(b.length)
    this.#buf.set(b, this.#n)
    this.#n += b.length
  }

  /** Appends a string (already JSON) and a newline, encoding straight into the buffer. */
  putString(s: string) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; most strings fit the free space at once.
    let r = ChunkBuffer.#encoder.encodeInto(s, this.#buf.subarray(this.#n))
    if (r.read < s.length) {
      this.#ensure(s.length * 3 + 1)
      r = ChunkBuffer.#encoder.encodeInto(s, this.#buf.subarray(this.#n))
    }
    this.#n += r.written
    this.#ensure(1)
    this.#buf[this.#n++] = NEWLINE
  }

  /** Returns the filled bytes and starts a fresh buffer (the old one now belongs to the stream). */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#n)
    this.#buf = new Uint8Array(this.#target + 1024)
    this.#n = 0
    return out
  }
}

async function streamResponse<T>(
  r: Responder,
  source: AsyncIterable<T>,
  put: (buf: ChunkBuffer, item: T) => void,
  opts: StreamOptions,
): Promise<Response> {
  const it = source[Symbol.asyncIterator]()
  let first: IteratorResult<T>
  try {
    first = await it.next()
  } catch (err) {
    // The reference answers 500 whatever failed; a typed error keeps its status here, so that bad
    // input found while reading a streamed request (a broken /add upload) is a 400.
    return r.error(err, undefined, STREAM_HEADERS)
  }
  if (first.done) return r.empty(204, STREAM_HEADERS)

  const buf = new ChunkBuffer(opts.chunkBytes ?? DEFAULT_CHUNK)
  try {
    put(buf, first.value)
  } catch (err) {
    await it.return?.()
    return r.error(err, 500, STREAM_HEADERS)
  }
  let pending: Promise<IteratorResult<T>> | undefined
  let done = false

  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined
      let tick: Promise<typeof TICK> | undefined
      try {
        while (true) {
          const next = pending ?? it.next()
          pending = undefined
          let res: IteratorResult<T> | typeof TICK
          if (buf.length > 0) {
            // Flush what we hold if the source does not answer within this macrotask turn.
            tick ??= new Promise((resolve) => {
              timer = setTimeout(resolve, 0, TICK)
            })
            res = await Promise.race([next, tick])
            if (res === TICK) {
              next.catch(noop) // awaited on the next pull; keep it from counting as unhandled
              pending = next
              controller.enqueue(buf.take())
              return
            }
          } else {
            res = await next
          }
          if (res.done) {
            done = true
            if (buf.length > 0) controller.enqueue(buf.take())
            controller.close()
            return
          }
          put(buf, res.value)
          if (buf.full) {
            controller.enqueue(buf.take())
            return
          }
        }
      } catch (err) {
        done = true
        opts.onError?.(err)
        controller.error(err)
      } finally {
        if (timer !== undefined) clearTimeout(timer)
      }
    },
    cancel(reason) {
      if (done) return
      done = true
      opts.onCancel?.(reason)
      it.return?.()?.catch(noop)
    },
  })
  const headers = opts.headers ? [...STREAM_HEADERS, ...opts.headers] : STREAM_HEADERS
  return new Response(body, { status: 200, headers: r.headers(headers) })
}

/** Streams JSON values, one per line. */
export function ndjsonResponse(
  r: Responder,
  source: AsyncIterable<unknown>,
  opts: StreamOptions = {},
): Promise<Response> {
  return streamResponse(r, source, (buf, item) => buf.putString(JSON.stringify(item)), opts)
}

/**
 * Streams NDJSON that arrives already in chunks of whole lines (`StateReader.listNDJSON`): the
 * chunks go out as they are, with the same 500/204/200 rules as the other streams.
 */
export function chunkedNdjsonResponse(
  r: Responder,
  source: AsyncIterable<Uint8Array>,
  opts: StreamOptions = {},
): Promise<Response> {
  return streamResponse(r, source, (buf, item) => buf.putRaw(item), opts)
}
