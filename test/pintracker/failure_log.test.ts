import assert from 'node:assert/strict'
import { FailureLog } from '../../src/pintracker/failure_log.ts'
import type { LogLevel } from '../../src/pintracker/stateless.ts'

function capture() {
  const lines: string[] = []
  let t = Date.parse('2026-01-01T00:00:00Z')
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) }
  const log = (level: LogLevel, msg: string) => void lines.push(`${level} ${msg}`)
  return { lines, clock, failures: new FailureLog(log, clock.now, 60_000) }
}

Deno.test('a failure is logged once per interval; the ones in between are counted', () => {
  const { lines, clock, failures } = capture()
  for (let i = 0; i < 1000; i++) failures.failed('pin', `bafy${i}`, 'no block arrived for 1m0s')
  assert.deepEqual(lines, ['error pin bafy0: no block arrived for 1m0s'])
  clock.advance(59_999)
  failures.failed('pin', 'bafyA', 'no block arrived for 1m0s')
  assert.equal(lines.length, 1, 'still within the interval')
  clock.advance(1)
  failures.failed('pin', 'bafyB', 'no block arrived for 1m0s')
  assert.deepEqual(lines.slice(1), [
    'error pin bafyB: no block arrived for 1m0s ' +
    '(and 1000 more pin failures like it since 2026-01-01T00:00:00Z)',
  ])
})

Deno.test('kinds are told apart by operation and message, with the CID taken out', () => {
  const { lines, failures } = capture()
  failures.failed('pin', 'bafy1', 'pin bafy1: not found') // the same message for every CID
  failures.failed('pin', 'bafy2', 'pin bafy2: not found')
  failures.failed('pin', 'bafy3', 'connection refused')
  failures.failed('unpin', 'bafy4', 'connection refused')
  assert.deepEqual(lines, [
    'error pin bafy1: pin bafy1: not found',
    'error pin bafy3: connection refused',
    'error unpin bafy4: connection refused',
  ])
})

Deno.test('flush writes the counts held back; the interval still runs', () => {
  const { lines, clock, failures } = capture()
  failures.failed('pin', 'bafy1', 'boom')
  failures.failed('pin', 'bafy2', 'boom')
  failures.failed('pin', 'bafy3', 'boom')
  failures.flush()
  assert.deepEqual(lines, [
    'error pin bafy1: boom',
    'error pin: boom (and 2 more pin failures like it since 2026-01-01T00:00:00Z)',
  ])
  failures.flush()
  assert.equal(lines.length, 2, 'nothing held back: nothing written')
  failures.failed('pin', 'bafy4', 'boom')
  assert.equal(lines.length, 2, 'within the interval: counted')
  clock.advance(60_000)
  failures.failed('pin', 'bafy5', 'boom')
  assert.deepEqual(lines.slice(2), [
    'error pin bafy5: boom (and 1 more pin failure like it since 2026-01-01T00:00:00Z)',
  ])
})

Deno.test('many distinct messages stay bounded: beyond 64 kinds they share one count', () => {
  const { lines, failures } = capture()
  for (let i = 0; i < 500; i++) failures.failed('pin', `c${i}`, `error number ${i}`)
  assert.equal(lines.length, 65, '64 kinds, then one line for the catch-all')
  failures.flush()
  assert.match(lines.at(-1)!, /^error pin: 435 more pin failures with other errors since /)
})
