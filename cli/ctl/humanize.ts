/**
 * The few go-humanize (v1.0.1) and Go fmt behaviours ctl output depends on: SI byte sizes
 * ("12 GB"), relative times ("29 seconds from now"), and `%.Nf` rounding (Go rounds exact halves
 * to even where JavaScript's toFixed rounds them up).
 *
 * @example
 * ```ts
 * humanBytes(12_345_678_901) // '12 GB'
 * relTime(now + 90_000, now) // '1 minute from now'
 * ```
 */

const SI = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB']

/** `fmt.Sprintf("%.<digits>f", x)` with Go's round-half-to-even on exact ties. */
export function goFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : x < 0 ? '-Inf' : 'NaN'
  const scale = 10 ** digits
  const scaled = x * scale
  const floor = Math.floor(scaled)
  // An exact tie (x exactly halfway) is rounded away from zero by toFixed, to even by Go.
  // (2·floor+1)/(2·10^d) is a binary fraction only when 5^d divides its numerator.
  if (scaled - floor === 0.5 && (2 * floor + 1) % 5 ** digits === 0) {
    const even = floor % 2 === 0 ? floor : floor + 1
    return (even / scale).toFixed(digits)
  }
  return x.toFixed(digits)
}

/** go-humanize `Bytes`: SI units, one decimal below 10. */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`
  const e = Math.floor(Math.log(n) / Math.log(1000))
  const suffix = SI[e]
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10
  return val < 10 ? `${goFixed(val, 1)} ${suffix}` : `${goFixed(val, 0)} ${suffix}`
}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const WEEK = 7 * DAY
const MONTH = 30 * DAY
const YEAR = 12 * MONTH
const LONG_TIME = 37 * YEAR
/** Go's time.Duration saturates at about 292 years. */
const MAX_DURATION = 9223372036854.775

/** go-humanize's magnitudes, in milliseconds: [upper bound, format, divisor]. */
const MAGNITUDES: [number, string, number][] = [
  [SECOND, 'now', SECOND],
  [2 * SECOND, '1 second %s', 1],
  [MINUTE, '%d seconds %s', SECOND],
  [2 * MINUTE, '1 minute %s', 1],
  [HOUR, '%d minutes %s', MINUTE],
  [2 * HOUR, '1 hour %s', 1],
  [DAY, '%d hours %s', HOUR],
  [2 * DAY, '1 day %s', 1],
  [WEEK, '%d days %s', DAY],
  [2 * WEEK, '1 week %s', 1],
  [MONTH, '%d weeks %s', WEEK],
  [2 * MONTH, '1 month %s', 1],
  [YEAR, '%d months %s', MONTH],
  [18 * MONTH, '1 year %s', 1],
  [2 * YEAR, '2 years %s', 1],
  [LONG_TIME, '%d years %s', YEAR],
  [Infinity, 'a long while %s', 1],
]

/** go-humanize `Time(then)` with `now` given: "3 hours ago", "29 seconds from now". */
export function relTime(thenMs: number, nowMs: number): string {
  let label = 'ago'
  let diff = nowMs - thenMs
  if (thenMs > nowMs) {
    label = 'from now'
    diff = thenMs - nowMs
  }
  diff = Math.min(diff, MAX_DURATION)
  const [, format, divBy] = MAGNITUDES.find(([d]) => d > diff) ?? MAGNITUDES[MAGNITUDES.length - 1]
  return format.replace('%d', String(Math.floor(diff / divBy))).replace('%s', label)
}
