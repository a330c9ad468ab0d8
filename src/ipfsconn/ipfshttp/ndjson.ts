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
 * Yields each JSON value of a newline-delimited stream without gathering the body. Blank lines
 * are skipped; a trailing value without a final newline is still read. Breaking out of the loop
 * cancels the body, which closes the connection (and so cancels the daemon-side operation).
 */
export async function* readJsonLines(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  let done = false
  try {
    while (!done) {
      const r = await reader.read()
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
    if (!done) await reader.cancel().catch(() => {})
    reader.releaseLock()
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
