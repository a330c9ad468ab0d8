import assert from 'node:assert/strict'
import { formatDuration, parseDuration } from '../../src/types/duration.ts'
import { ValidationError } from '../../src/errors.ts'

Deno.test("formatDuration matches Go's Duration.String()", () => {
  // Expected strings are what Go prints for the same time.Duration values.
  const cases: [number, string][] = [
    [0, '0s'],
    [1, '1ms'],
    [1.5, '1.5ms'],
    [0.3, '300µs'],
    [0.0005, '500ns'],
    [200, '200ms'],
    [500, '500ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [3000, '3s'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [120_000, '2m0s'],
    [12 * 60_000, '12m0s'],
    [30 * 60_000, '30m0s'],
    [3_600_000, '1h0m0s'],
    [3_600_500, '1h0m0.5s'],
    [3 * 3_600_000, '3h0m0s'],
    [24 * 3_600_000, '24h0m0s'],
    [-1500, '-1.5s'],
  ]
  for (const [ms, want] of cases) assert.equal(formatDuration(ms), want, `${ms} ms`)
})

Deno.test('parseDuration reads Go duration strings into milliseconds', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['1ms', 1],
    ['300µs', 0.3],
    ['300us', 0.3],
    ['500ns', 0.0005],
    ['1.5s', 1500],
    ['2m0s', 120_000],
    ['1h30m', 5_400_000],
    ['24h0m0s', 86_400_000],
    ['-1s', -1000],
    ['.5s', 500],
  ]
  for (const [s, want] of cases) assert.equal(parseDuration(s), want, s)
})

Deno.test('parseDuration rejects malformed strings with ValidationError', () => {
  for (const s of ['', '1', '10', 's', '1x', '1e3s', '1 s', '-', 'abc', '1s2']) {
    assert.throws(() => parseDuration(s), ValidationError, JSON.stringify(s))
  }
})

Deno.test('formatDuration and parseDuration round trip every config default', () => {
  for (
    const ms of [0, 50, 200, 500, 1000, 3000, 5000, 10_000, 15_000, 60_000, 300_000, 10_800_000]
  ) {
    assert.equal(parseDuration(formatDuration(ms)), ms)
  }
})

Deno.test("parseDuration holds what Go's time.Duration holds, and names the limit past it", () => {
  assert.equal(parseDuration('2562047h47m16.854775807s'), 9_223_372_036_854.775807)
  assert.equal(parseDuration('-2562047h'), -2562047 * 3_600_000)
  for (const s of ['2562048h', '9999999999999h', '-9999999999999h', `1${'0'.repeat(400)}s`]) {
    assert.throws(
      () => parseDuration(s),
      (e: Error) =>
        e instanceof ValidationError &&
        e.message === `invalid duration "${s}": out of range (at most 2562047h47m16.854775807s)`,
      s,
    )
  }
})
