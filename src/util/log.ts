/**
 * Namespaced, levelled logging to stderr, in the reference's shape
 * (`<time>\t<LEVEL>\t<facility>\t<message>`), with per-facility levels as `--loglevel` takes them
 * (`info` or `cluster:debug,restapi:warn`). Components receive a Logger; they never print.
 *
 * @example
 * ```ts
 * const logs = logging('info')
 * const log = logs.get('cluster')
 * log.info('ready')
 * ```
 */
import { escapeControl } from './escape.ts'

/** Levels, most verbose first. */
export const LEVELS = ['debug', 'info', 'warn', 'error'] as const
/** A level name. */
export type Level = typeof LEVELS[number]

/** A facility's logger. */
export interface Logger {
  debug(msg: string): void
  info(msg: string): void
  warn(msg: string): void
  error(msg: string): void
}

/** Discards everything (the default in tests and libraries). */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}

/** A set of loggers sharing a level spec and a sink. */
export interface Logging {
  get(facility: string): Logger
}

const encoder = new TextEncoder()

// Lines for stderr are gathered and written every few milliseconds: a peer logs every request
// (the reference's access log), and one synchronous write per line cost a fifth of its ingest
// rate. Warnings and errors flush at once, and so does flushLogs() before the process exits.
let pending = ''
let timer: ReturnType<typeof setTimeout> | undefined
const FLUSH_MS = 20
const FLUSH_BYTES = 32 * 1024

/** Writes out every buffered log line now (call before Deno.exit). */
export function flushLogs(): void {
  if (timer !== undefined) {
    clearTimeout(timer)
    timer = undefined
  }
  if (!pending) return
  const b = encoder.encode(pending)
  pending = ''
  let off = 0
  try {
    while (off < b.length) off += Deno.stderr.writeSync(b.subarray(off))
  } catch {
    // stderr closed: nothing to do with the lines.
  }
}

function bufferedStderr(line: string, urgent: boolean) {
  pending += line + '\n'
  if (urgent || pending.length >= FLUSH_BYTES) return flushLogs()
  if (timer === undefined) {
    const t = setTimeout(flushLogs, FLUSH_MS)
    Deno.unrefTimer(t as unknown as number)
    timer = t
  }
}

/**
 * Parses a level spec (`info`, or `facility:level,…` with an optional bare default) and returns
 * loggers writing to `sink` (stderr by default). Throws on an unknown level.
 */
export function logging(spec = 'info', sink?: (line: string, level?: Level) => void): Logging {
  let def: Level = 'info'
  const per = new Map<string, Level>()
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const pieces = part.split(':')
    if (pieces.length > 2) {
      throw new Error(
        `log level ${
          JSON.stringify(part)
        } not in expected format "identifier:loglevel" or "loglevel"`,
      )
    }
    const [a, b] = pieces.length === 2 ? pieces : [undefined, part]
    const lvl = b.toLowerCase() === 'warning' ? 'warn' : b.toLowerCase()
    if (!LEVELS.includes(lvl as Level)) {
      throw new Error(`invalid log level ${JSON.stringify(b)} (allowed: ${LEVELS.join(', ')})`)
    }
    if (a === undefined) def = lvl as Level
    else per.set(a, lvl as Level)
  }
  const write = sink ??
    ((line: string, lvl?: Level) => bufferedStderr(line, lvl === 'warn' || lvl === 'error'))
  return {
    get(facility) {
      const min = LEVELS.indexOf(per.get(facility) ?? def)
      const at = (lvl: Level) => (msg: string) => {
        if (LEVELS.indexOf(lvl) < min) return
        // One event, one line: a pin name or an error text holding CR/LF must not forge log lines.
        const line = escapeControl(msg)
        write(`${new Date().toISOString()}\t${lvl.toUpperCase()}\t${facility}\t${line}`, lvl)
      }
      return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
    },
  }
}
