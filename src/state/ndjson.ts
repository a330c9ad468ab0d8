/**
 * State export/import as NDJSON of pins (one pin JSON per line), the format of
 * `ipfs-cluster-service state export/import`.
 *
 * @example
 * ```ts
 * for await (const pin of readPinsNDJSON(file.readable)) …
 * ```
 */
import { type Pin, pinFromJSON } from '../types/pin.ts'
import { ValidationError } from '../errors.ts'

/** Parses a stream of NDJSON (or concatenated JSON objects, one per line) into pins. */
export async function* readPinsNDJSON(stream: ReadableStream<Uint8Array>): AsyncIterable<Pin> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  let lineNo = 0
  const parse = (line: string) => {
    lineNo++
    const t = line.trim()
    if (!t) return undefined
    let v: unknown
    try {
      v = JSON.parse(t)
    } catch (err) {
      throw new ValidationError(`line ${lineNo}: invalid JSON: ${(err as Error).message}`)
    }
    try {
      return pinFromJSON(v)
    } catch (err) {
      throw new ValidationError(`line ${lineNo}: ${(err as Error).message}`)
    }
  }
  while (true) {
    const { value, done } = await reader.read()
    if (done) break
    buf += value
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const pin = parse(buf.slice(0, i))
      buf = buf.slice(i + 1)
      if (pin) yield pin
    }
  }
  const last = parse(buf)
  if (last) yield last
}
