import assert from 'node:assert/strict'
import { formatTime, parseTime, ZERO_TIME } from '../../src/types/time.ts'
import { ValidationError } from '../../src/errors.ts'

Deno.test('formatTime prints RFC3339 UTC without trailing fractional zeros, as Go does', () => {
  assert.equal(formatTime(Date.UTC(2026, 10, 25, 12, 36, 18)), '2026-11-25T12:36:18Z')
  assert.equal(formatTime(Date.UTC(2026, 10, 25, 12, 36, 18, 230)), '2026-11-25T12:36:18.23Z')
  assert.equal(formatTime(Date.UTC(2026, 10, 25, 12, 36, 18, 5)), '2026-11-25T12:36:18.005Z')
  assert.equal(formatTime(Date.UTC(2026, 10, 25, 12, 36, 10, 100)), '2026-11-25T12:36:10.1Z')
  assert.equal(formatTime(Date.UTC(2026, 10, 25, 12, 30, 0)), '2026-11-25T12:30:00Z')
  assert.equal(formatTime(new Date(Date.UTC(2000, 0, 1))), '2000-01-01T00:00:00Z')
})

Deno.test('the zero time is Go’s zero time.Time both ways', () => {
  assert.equal(formatTime(0), ZERO_TIME)
  assert.equal(formatTime(undefined), ZERO_TIME)
  assert.equal(formatTime(NaN), ZERO_TIME)
  assert.equal(ZERO_TIME, '0001-01-01T00:00:00Z')
  assert.equal(parseTime(ZERO_TIME), 0)
})

Deno.test('parseTime reads nanosecond and offset timestamps', () => {
  const ms = Date.UTC(2026, 10, 25, 12, 36, 18, 233)
  assert.equal(parseTime('2026-11-25T12:36:18.233052385Z'), ms)
  assert.equal(parseTime('2026-11-25T14:36:18.233+02:00'), ms)
  assert.equal(formatTime(parseTime('2026-11-25T12:36:18Z')), '2026-11-25T12:36:18Z')
})

Deno.test('parseTime rejects malformed and impossible dates', () => {
  for (
    const s of [
      '',
      'yesterday',
      '2026-11-25',
      '2026-11-25 12:36:18Z',
      '2026-11-25T12:36:18',
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2026-01-32T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-11-25T25:00:00Z',
      // As Go's time.Parse: hour 24, minute 60, second 60, offsets past 23:59.
      '2026-11-25T24:00:00Z',
      '2026-11-25T12:60:00Z',
      '2026-11-25T12:00:60Z',
      '2026-11-25T12:00:00+24:00',
      '2026-11-25T12:00:00.Z',
      '2026-11-25T12:00:00+0200',
      '２026-11-25T12:00:00Z',
    ]
  ) {
    assert.throws(() => parseTime(s), ValidationError, s)
  }
  assert.equal(parseTime('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29))
  assert.equal(parseTime('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29))
  assert.equal(parseTime('2026-12-31T23:59:59Z'), Date.UTC(2026, 11, 31, 23, 59, 59))
})

Deno.test('parseTime: early years, fractions past the millisecond, negative offsets', () => {
  assert.equal(parseTime('0050-03-01T00:00:00Z'), new Date('0050-03-01T00:00:00Z').getTime())
  assert.equal(parseTime('9999-12-31T23:59:59.999999999Z'), Date.UTC(9999, 11, 31, 23, 59, 59, 999))
  assert.equal(parseTime('2026-01-01T00:00:00.5-01:30'), Date.UTC(2026, 0, 1, 1, 30, 0, 500))
  assert.equal(parseTime('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29))
  assert.throws(() => parseTime('1900-02-29T00:00:00Z'), /day out of range/)
})
