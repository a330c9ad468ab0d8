/**
 * The clock: `sleep` rejects with the signal's reason on abort (already aborted or later) and
 * leaves no timer behind; the system clock holds delays longer than a platform timer can; the
 * manual clock fires timers in deadline order with `now()` at each deadline.
 */
import assert from 'node:assert/strict'
import { systemClock } from '../../src/util/clock.ts'
import { manualClock } from '../support/manual_clock.ts'

Deno.test('sleep resolves when the time has passed, not before', async () => {
  const clock = manualClock()
  let done = false
  const p = clock.sleep(100).then(() => (done = true))
  await clock.advance(99)
  assert.equal(done, false)
  await clock.advance(1)
  await p
  assert.equal(done, true)
})

Deno.test('sleep rejects with the reason of an abort, before or during the wait', async () => {
  const clock = manualClock()
  const reason = new Error('stop')
  await assert.rejects(clock.sleep(100, AbortSignal.abort(reason)), (e) => e === reason)
  assert.equal(clock.pending(), 0, 'no timer set for an aborted signal')

  const ac = new AbortController()
  const p = clock.sleep(100, ac.signal)
  await clock.advance(50)
  ac.abort(reason)
  await assert.rejects(p, (e) => e === reason)
  assert.equal(clock.pending(), 0, 'the timer is cancelled')

  // The system clock behaves the same (its timer is cleared, or this test leaks it).
  const ac2 = new AbortController()
  const q = systemClock.sleep(60_000, ac2.signal)
  ac2.abort(reason)
  await assert.rejects(q, (e) => e === reason)
})

Deno.test('timeoutSignal aborts with a TimeoutError at its deadline, not before', async () => {
  const clock = manualClock()
  const signal = clock.timeoutSignal(100)
  await clock.advance(99)
  assert.equal(signal.aborted, false)
  await clock.advance(1)
  assert.equal(signal.aborted, true)
  assert.ok(signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError')
  // The system clock's is AbortSignal.timeout's: the same reason, and it keeps no process alive.
  const sys = systemClock.timeoutSignal(0)
  await new Promise((r) => sys.addEventListener('abort', r, { once: true }))
  assert.equal(sys.reason.name, 'TimeoutError')
})

Deno.test('systemClock: a delay beyond 2^31-1 ms is not cut to 1 ms', async () => {
  // Platform timers run in deadline order: a 40-day timer wrongly cut to 1 ms fires before the
  // 20 ms one set after it. No wall-clock margin is involved.
  const order: string[] = []
  const cancelLong = systemClock.timeout(40 * 24 * 3_600_000, () => order.push('40 days'))
  const cancelTick = systemClock.interval(40 * 24 * 3_600_000, () => order.push('every 40 days'))
  await new Promise<void>((r) => systemClock.timeout(20, () => r()))
  order.push('20 ms')
  cancelLong()
  cancelTick()
  assert.deepEqual(order, ['20 ms'])
})

Deno.test('manual clock: timers fire in deadline order, each seeing its own time', async () => {
  const clock = manualClock(1000)
  const seen: string[] = []
  clock.timeout(30, () => seen.push(`b@${clock.now()}`))
  clock.timeout(10, () => seen.push(`a@${clock.now()}`))
  clock.timeout(30, () => seen.push(`c@${clock.now()}`))
  const stop = clock.interval(25, () => seen.push(`i@${clock.now()}`))
  const cancel = clock.timeout(20, () => seen.push('cancelled'))
  cancel()
  await clock.advance(60)
  assert.deepEqual(seen, ['a@1010', 'i@1025', 'b@1030', 'c@1030', 'i@1050'])
  assert.equal(clock.now(), 1060)
  stop()
  assert.equal(clock.pending(), 0)
  assert.equal(await clock.next(), false)
})

Deno.test('manual clock: what a timer starts on microtasks settles before the next fires', async () => {
  const clock = manualClock()
  const seen: string[] = []
  clock.timeout(10, async () => {
    for (let i = 0; i < 100; i++) await Promise.resolve()
    seen.push('first done')
  })
  clock.timeout(10, () => seen.push('second'))
  await clock.advance(10)
  assert.deepEqual(seen, ['first done', 'second'])
})
