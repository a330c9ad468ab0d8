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
