import assert from 'node:assert/strict'
import {
  ERROR_STATUSES,
  filterCanMatch,
  parseStatusFilter,
  STATUS_BITS,
  statusMatches,
  TRACKER_STATUSES,
} from '../../src/types/status.ts'
import { ValidationError } from '../../src/errors.ts'

Deno.test('status bits are the reference values', () => {
  const want: Record<string, number> = {
    undefined: 0,
    cluster_error: 2,
    pin_error: 4,
    unpin_error: 8,
    pinned: 16,
    pinning: 32,
    unpinning: 64,
    unpinned: 128,
    remote: 256,
    pin_queued: 512,
    unpin_queued: 1024,
    sharded: 2048,
    unexpectedly_unpinned: 4096,
    error: 14,
    queued: 1536,
  }
  assert.deepEqual({ ...STATUS_BITS }, want)
  assert.equal(TRACKER_STATUSES.length, 12)
  assert.ok(ERROR_STATUSES.has('pin_error') && !ERROR_STATUSES.has('pinned'))
})

Deno.test('parseStatusFilter: lists, composites, spaces, unknown names ignored', () => {
  assert.equal(parseStatusFilter(''), 0)
  assert.equal(parseStatusFilter(null), 0)
  assert.equal(parseStatusFilter(undefined), 0)
  assert.equal(parseStatusFilter('pinned'), 16)
  assert.equal(parseStatusFilter('pinned,pin_error'), 20)
  assert.equal(parseStatusFilter('error'), 14)
  assert.equal(parseStatusFilter('queued, remote'), 1536 | 256)
  assert.equal(parseStatusFilter('bogus,pinned'), 16)
})

Deno.test('parseStatusFilter: a list that gives no status is "invalid filter value" (400)', () => {
  // The reference answers 400 when the mask comes out 0, which includes `undefined` alone.
  for (const f of ['bogus', 'undefined', ',', 'constructor', 'toString,__proto__']) {
    assert.throws(
      () => parseStatusFilter(f),
      (e: Error) => e instanceof ValidationError && e.message === 'invalid filter value',
      f,
    )
  }
})

Deno.test('statusMatches: filter 0 matches all, undefined status matches all, else bit overlap', () => {
  const err = parseStatusFilter('error')
  assert.ok(statusMatches('pin_error', err))
  assert.ok(statusMatches('cluster_error', err))
  assert.ok(!statusMatches('pinned', err))
  assert.ok(statusMatches('pinned', 0))
  assert.ok(statusMatches('undefined', err))
  assert.ok(statusMatches('pin_queued', parseStatusFilter('queued')))
  assert.ok(!statusMatches('pinning', parseStatusFilter('queued')))
  assert.ok(filterCanMatch(parseStatusFilter('pinned,remote'), 'remote'))
  assert.ok(!filterCanMatch(parseStatusFilter('pinned'), 'remote', 'pin_queued'))
})
