/**
 * Reads the JSON values Kubo streams (`X-Chunked-Output`): one value per line, as they come.
 *
 * @example
 * ```ts
 * for await (const v of readJsonLines(res)) console.log(v) // {"Progress":3} … {"Pins":[…]}
 * ```
 */

/** Raised for a line that is not JSON; the caller wraps it with the request path. */
export class JsonLineError extends Error {
  override name = 'JsonLineError'
}

/** Where lines come from: a body stream, or an answer of http1.ts read chunk by chunk. */
export type LineSource = ReadableStream<Uint8Array> | {
  /** The next bytes (valid until the next call), or null at the end. */
  read(): Promise<Uint8Array | null>
  cancel(): void | Promise<void>
}

/** A stream body's chunks through the same two calls. */
function streamSource(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader()
  return {
    read: async () => (await reader.read()).value ?? null,
    cancel: () => reader.cancel().catch(() => {}),
  }
}

/**
 * Yields each JSON value of a newline-delimited stream without gathering the body. Blank lines
 * are skipped; a trailing value without a final newline is still read. Breaking out of the loop
 * cancels the body, which closes the connection (and so cancels the daemon-side operation).
 */
export async function* readJsonLines(
  body: LineSource,
): AsyncGenerator<unknown, void, undefined> {
  for await (const lines of readLineBatches(body)) {
    for (const line of lines) yield parseJsonLine(line)
  }
}

/**
 * The non-blank lines of a newline-delimited stream, a chunk's worth at a time: for readers of
 * a million lines (`pin/ls`), one await a chunk instead of one a line. Same ending and
 * cancelling as readJsonLines.
 */
export async function* readLineBatches(
  body: LineSource,
): AsyncGenerator<string[], void, undefined> {
  const source = body instanceof ReadableStream ? streamSource(body) : body
  const decoder = new TextDecoder()
  let buf = ''
  let done = false
  try {
    while (!done) {
      const chunk = await source.read()
      if (chunk === null) {
        done = true
        buf += decoder.decode()
      } else {
        buf += decoder.decode(chunk, { stream: true })
      }
      // Walk the lines by index and keep only the tail: slicing the buffer per line would copy
      // a large chunk once per line.
      const lines: string[] = []
      let start = 0
      let nl: number
      while ((nl = buf.indexOf('\n', start)) >= 0) {
        const line = buf.slice(start, nl)
        start = nl + 1
        if (line.trim() !== '') lines.push(line)
      }
      buf = buf.slice(start)
      if (done && buf.trim() !== '') lines.push(buf)
      if (lines.length) yield lines
    }
  } finally {
    if (!done) await source.cancel()
  }
}

/** One line's JSON value; JsonLineError (with the line, cut at 200 characters) when it is not JSON. */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch (err) {
    const shown = line.length > 200 ? line.slice(0, 200) + '…' : line
    throw new JsonLineError(`invalid JSON ${JSON.stringify(shown)}: ${(err as Error).message}`)
  }
}
