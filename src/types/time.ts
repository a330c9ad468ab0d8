/**
 * Timestamps as Go's encoding/json writes time.Time: RFC3339 with trailing fractional zeros
 * dropped, and the zero time as "0001-01-01T00:00:00Z" (clients test for it).
 *
 * @example
 * ```ts
 * formatTime(new Date(0)) // '1970-01-01T00:00:00Z'
 * ```
 */
import { ValidationError } from '../errors.ts'

/** Go's zero time.Time, which the API prints where a time is unset. */
export const ZERO_TIME = '0001-01-01T00:00:00Z'

/** Formats epoch milliseconds (or a Date) as RFC3339Nano in UTC; 0 / undefined is the zero time. */
export function formatTime(t: number | Date | undefined): string {
  const ms = t instanceof Date ? t.getTime() : t
  if (ms === undefined || ms === 0 || Number.isNaN(ms)) return ZERO_TIME
  const iso = new Date(ms).toISOString() // 2026-01-02T03:04:05.678Z
  // Drop the fraction's trailing zeros, and its dot when nothing is left (.670Z → .67Z, .000Z → Z).
  let end = iso.length - 1
  while (iso.charCodeAt(end - 1) === 48) end--
  if (iso.charCodeAt(end - 1) === 46) end--
  return iso.slice(0, end) + 'Z'
}

/** Parses an RFC3339 timestamp into epoch ms; the zero time gives 0. Throws on malformed input. */
export function parseTime(s: string): number {
  if (s === ZERO_TIME || s.startsWith('0001-01-01T00:00:00')) return 0
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s)) {
    throw new ValidationError(`invalid RFC3339 time ${JSON.stringify(s)}`)
  }
  const ms = Date.parse(s)
  if (Number.isNaN(ms)) throw new ValidationError(`invalid RFC3339 time ${JSON.stringify(s)}`)
  // Date.parse rolls impossible days over (Feb 30 → Mar 2); Go rejects them ("day out of range").
  const d = Number(s.slice(8, 10))
  if (d > 28 && d > daysInMonth(Number(s.slice(0, 4)), Number(s.slice(5, 7)))) {
    throw new ValidationError(`invalid RFC3339 time ${JSON.stringify(s)}: day out of range`)
  }
  return ms
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  return month === 2 && leap ? 29 : DAYS[month - 1]
}
