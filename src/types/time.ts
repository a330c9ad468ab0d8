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

const DIGIT_0 = 0x30

/** The value of `len` decimal digits at `at`, or -1 if one is not a digit. */
function digits(s: string, at: number, len: number): number {
  let v = 0
  for (let i = at; i < at + len; i++) {
    const d = s.charCodeAt(i) - DIGIT_0
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}

/** Days in a month (1-12) of the proleptic Gregorian calendar. */
function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/**
 * Parses an RFC 3339 timestamp (`2006-01-02T15:04:05[.999999999](Z|±07:00)`) into epoch ms,
 * fractions past the millisecond dropped; the zero time gives 0. Fields out of range are refused
 * as Go's time.Parse refuses them (Feb 30, hour 24, minute 60). Written out by hand: state
 * imports parse two of these per pin.
 */
export function parseTime(s: string): number {
  if (typeof s !== 'string') throw new ValidationError(`invalid RFC3339 time ${String(s)}`)
  if (s === ZERO_TIME || s.startsWith('0001-01-01T00:00:00')) return 0
  const fail = (why = '') =>
    new ValidationError(`invalid RFC3339 time ${JSON.stringify(s)}${why ? `: ${why}` : ''}`)
  if (
    s.length < 20 || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' ||
    s[13] !== ':' || s[16] !== ':'
  ) throw fail()
  const year = digits(s, 0, 4)
  const month = digits(s, 5, 2)
  const day = digits(s, 8, 2)
  const hour = digits(s, 11, 2)
  const minute = digits(s, 14, 2)
  const second = digits(s, 17, 2)
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) throw fail()
  let i = 19
  let ms = 0
  if (s[i] === '.') {
    const from = ++i
    while (i < s.length && s.charCodeAt(i) >= DIGIT_0 && s.charCodeAt(i) <= DIGIT_0 + 9) i++
    if (i === from) throw fail()
    ms = digits(s.slice(from, Math.min(i, from + 3)).padEnd(3, '0'), 0, 3)
  }
  let offset = 0
  if (s[i] === 'Z' && i + 1 === s.length) {
    // UTC
  } else if ((s[i] === '+' || s[i] === '-') && i + 6 === s.length && s[i + 3] === ':') {
    const oh = digits(s, i + 1, 2)
    const om = digits(s, i + 4, 2)
    if (oh < 0 || om < 0) throw fail()
    if (oh > 23 || om > 59) throw fail('time zone offset out of range')
    offset = (s[i] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000
  } else {
    throw fail()
  }
  if (month < 1 || month > 12) throw fail('month out of range')
  if (day < 1 || day > daysIn(year, month)) throw fail('day out of range')
  if (hour > 23) throw fail('hour out of range')
  if (minute > 59) throw fail('minute out of range')
  if (second > 59) throw fail('second out of range')
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day) // Date.UTC would read years 0-99 as 1900-1999
  d.setUTCHours(hour, minute, second, ms)
  return d.getTime() - offset
}
