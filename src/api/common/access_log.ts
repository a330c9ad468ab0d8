/**
 * Access log lines in the Apache Common Log Format, as gorilla/handlers' LoggingHandler writes
 * them for the reference (`http_log_file`, or the `restapilog` logger):
 * `127.0.0.1 - - [02/Jan/2006:15:04:05 -0700] "GET /id HTTP/1.1" 200 331`.
 *
 * @example
 * ```ts
 * commonLogLine({ host: '127.0.0.1', method: 'GET', uri: '/id', status: 200, size: 331, time: new Date() })
 * ```
 */

import { errorMessage } from '../../errors.ts'
import type { Logger } from '../../util/log.ts'
import { knownBodySize } from './response.ts'

/** What one access log line records. */
export interface AccessRecord {
  host: string
  user?: string
  time: Date
  method: string
  /** Path and query as the client sent them. */
  uri: string
  proto?: string
  status: number
  size: number
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number) => String(n).padStart(2, '0')

/** Formats a time as `02/Jan/2006:15:04:05 -0700` in the local zone. */
export function clfTime(t: Date): string {
  const off = -t.getTimezoneOffset()
  const sign = off < 0 ? '-' : '+'
  const a = Math.abs(off)
  return `${p2(t.getDate())}/${MONTHS[t.getMonth()]}/${t.getFullYear()}:` +
    `${p2(t.getHours())}:${p2(t.getMinutes())}:${p2(t.getSeconds())} ` +
    `${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`
}

/** One log line, with its trailing newline. */
export function commonLogLine(r: AccessRecord): string {
  // The URI comes from a parsed URL: quotes and control characters are already percent-encoded.
  return `${r.host || '-'} - ${r.user || '-'} [${clfTime(r.time)}] ` +
    `"${r.method} ${r.uri} ${r.proto ?? 'HTTP/1.1'}" ${r.status} ${r.size}\n`
}

/** Counts the bytes of a response body as it streams, then reports the total once. */
export function countBody(
  body: ReadableStream<Uint8Array>,
  done: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  let n = 0
  let reported = false
  const report = () => {
    if (!reported) {
      reported = true
      done(n)
    }
  }
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read()
        if (r.done) {
          report()
          c.close()
        } else {
          n += r.value.byteLength
          c.enqueue(r.value)
        }
      } catch (err) {
        report()
        c.error(err)
      }
    },
    cancel(reason) {
      report()
      return reader.cancel(reason)
    },
  })
}

/**
 * Calls `done` with the body's size once `res` is sent: at once for a body of known size (reading
 * `res.body` would turn it into a stream), as the last byte goes for a streamed one.
 */
export function whenSent(res: Response, done: (size: number) => void): Response {
  const known = knownBodySize(res)
  if (known !== undefined || !res.body) {
    done(known ?? 0)
    return res
  }
  return new Response(countBody(res.body, done), { status: res.status, headers: res.headers })
}

/** Where an API's access lines go: its log file when configured, else its logger, else nowhere. */
export interface AccessLog {
  /** Whether lines go anywhere (to skip building them). */
  readonly on: boolean
  write(line: string): void
  close(): void
}

/** Access lines to a logger (none: nowhere), what an API writes before or without a log file. */
export function loggerAccessLog(logger: Logger | undefined): AccessLog {
  return { on: logger !== undefined, write: (line) => logger?.info(line.trimEnd()), close() {} }
}

/**
 * Opens an API's access log file (appended to, created). `key` names the config key in the error
 * line a failed write logs.
 */
export async function fileAccessLog(
  path: string,
  o: { key: string; log: Logger },
): Promise<AccessLog> {
  const file = await Deno.open(path, { append: true, create: true, write: true })
  const encoder = new TextEncoder()
  let closed = false
  return {
    on: true,
    write(line) {
      if (closed) return
      try {
        file.writeSync(encoder.encode(line))
      } catch (err) {
        o.log.error(`cannot write ${o.key}: ${errorMessage(err)}`)
      }
    },
    close() {
      if (closed) return
      closed = true
      try {
        file.close()
      } catch {
        // already closed
      }
    },
  }
}
