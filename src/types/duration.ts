/**
 * Go `time.Duration` strings, as service.json and the CLI carry them ("2m0s", "500ms", "24h0m0s").
 * Values are kept as milliseconds (fractions allowed); formatting matches Go's Duration.String()
 * so that a saved config reads the same as one written by the Go implementation.
 *
 * @example
 * ```ts
 * parseDuration('1h30m') // 5_400_000
 * formatDuration(120_000) // '2m0s'
 * ```
 */
import { ValidationError } from '../errors.ts'

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

/** The longest Go duration (2^63-1 ns, about 292 years), in milliseconds. */
export const MAX_DURATION_MS = 9_223_372_036_854.775807
/** How Go prints the longest duration. */
export const MAX_DURATION_TEXT = '2562047h47m16.854775807s'

/**
 * Parses a Go duration string into milliseconds; throws ValidationError if malformed or outside
 * what Go's time.Duration holds (±2562047h47m16.854775807s), as time.ParseDuration does.
 */
export function parseDuration(s: string): number {
  if (typeof s !== 'string') throw new ValidationError(`invalid duration ${JSON.stringify(s)}`)
  const str = s.trim()
  if (str === '0') return 0
  let rest = str
  let sign = 1
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1
    rest = rest.slice(1)
  }
  if (rest === '') throw new ValidationError(`invalid duration ${JSON.stringify(s)}`)
  let total = 0
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/
  while (rest.length > 0) {
    const m = re.exec(rest)
    if (!m) throw new ValidationError(`invalid duration ${JSON.stringify(s)}`)
    total += parseFloat(m[1]) * UNITS[m[2]]
    rest = rest.slice(m[0].length)
  }
  if (total > MAX_DURATION_MS) {
    throw new ValidationError(
      `invalid duration ${JSON.stringify(s)}: out of range (at most ${MAX_DURATION_TEXT})`,
    )
  }
  return sign * total
}

/** Formats milliseconds the way Go's Duration.String() does. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  const neg = ms < 0
  let ns = Math.round(Math.abs(ms) * 1e6)
  let out: string
  if (ns < 1e9) {
    // Sub-second values use the largest unit that keeps an integer part (ms, µs, ns).
    if (ns < 1e3) out = `${ns}ns`
    else if (ns < 1e6) out = `${trimFrac(ns / 1e3)}µs`
    else out = `${trimFrac(ns / 1e6)}ms`
  } else {
    const h = Math.floor(ns / 3.6e12)
    ns -= h * 3.6e12
    const m = Math.floor(ns / 6e10)
    ns -= m * 6e10
    const s = trimFrac(ns / 1e9)
    out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`
  }
  return neg ? `-${out}` : out
}

function trimFrac(v: number): string {
  return String(Number(v.toFixed(9)))
}
