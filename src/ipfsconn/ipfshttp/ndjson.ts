/**
 * Reads the JSON values Kubo streams (`X-Chunked-Output`): one value per line, as they come.
 *
 * @example
 * ```ts
 * for await (const v of readJsonLines(res.body!)) console.log(v) // {"Progress":3} … {"Pins":[…]}
 * ```
 */

/** Raised for a line that is not JSON; the caller wraps it with the request path. */
export class JsonLineError extends Error {
  override name = 'JsonLineError'
}

/**
 * Bytes asked for per read of a byte stream (an HTTP body). Deno's default reader allocates a
 * 64 KiB chunk for every read, which made reading Kubo's one-line answers cost more than the
 * request itself (~55 µs a call, measured for docs/performance.md); one reused 16 KiB buffer
 * reads them at the price of `text()` and a long listing in few reads.
 */
const READ_BYTES = 16 * 1024

/** A reader over a body: one reused buffer when it is a byte stream (fetch bodies are). */
function chunkReader(body: ReadableStream<Uint8Array>) {
  let byob: ReadableStreamBYOBReader | undefined
  try {
    byob = body.getReader({ mode: 'byob' })
  } catch {
    // not a byte stream (a stream built in JS): chunks as they were enqueued
  }
  if (!byob) {
    const reader = body.getReader()
    return { read: () => reader.read(), reader }
  }
  const r = byob
  let buf = new Uint8Array(READ_BYTES)
  return {
    async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
      const res = await r.read(buf)
      // The buffer came back (transferred): read into it again once its bytes are decoded.
      if (res.value) buf = new Uint8Array(res.value.buffer)
      return res
    },
    reader: r,
  }
}

/**
 * Yields each JSON value of a newline-delimited stream without gathering the body. Blank lines
 * are skipped; a trailing value without a final newline is still read. Breaking out of the loop
 * cancels the body, which closes the connection (and so cancels the daemon-side operation).
 */
export async function* readJsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  const { read, reader } = chunkReader(body)
  const decoder = new TextDecoder()
  let buf = ''
  let done = false
  try {
    while (!done) {
      const r = await read()
      if (r.done) {
        done = true
        buf += decoder.decode()
      } else {
        buf += decoder.decode(r.value, { stream: true })
      }
      // Walk the lines by index and keep only the tail: slicing the buffer per line would copy
      // a large chunk once per line.
      let start = 0
      let nl: number
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        const line = buf.slice(start, nl)
        start = nl + 1
        if (line.trim() !== '') yield parseLine(line)
      }
      buf = buf.slice(start)
    }
    if (buf.trim() !== '') yield parseLine(buf)
  } finally {
    // The lock is not released: nothing reads the body after us, and releasing it makes a
    // TypeError (with its stack) for the reader's closed promise, ~10 µs a call.
    if (!done) await reader.cancel().catch(() => {})
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch (err) {
    const shown = line.length > 200 ? line.slice(0, 200) + '…' : line
    throw new JsonLineError(`invalid JSON ${JSON.stringify(shown)}: ${(err as Error).message}`)
  }
}
