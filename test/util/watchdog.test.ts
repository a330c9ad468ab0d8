/**
 * The pin progress watchdog on a manual clock: it fires exactly `timeoutMs` after the last
 * growth (or the start), once; repeated counts do not re-arm it; stop disarms it.
 */
import assert from 'node:assert/strict'
import { progressWatchdog } from '../../src/util/watchdog.ts'
import { manualClock } from '../support/manual_clock.ts'

Deno.test('progressWatchdog: fires timeoutMs after the start without growth, only once', async () => {
  const clock = manualClock()
  const t0 = clock.now()
  const fired: number[] = []
  const dog = progressWatchdog(60, () => fired.push(clock.now() - t0), clock)
  await clock.advance(40)
  dog.progress(0) // no growth: does not re-arm
  await clock.advance(19)
  assert.deepEqual(fired, [], 'not before 60 ms')
  await clock.advance(1)
  assert.deepEqual(fired, [60])
  dog.progress(5) // too late: a fired watchdog stays fired
  await clock.advance(1000)
  assert.deepEqual(fired, [60])
  assert.equal(clock.pending(), 0)
  dog.stop()
})

Deno.test('progressWatchdog: growth re-arms it; a repeated count does not', async () => {
  const clock = manualClock()
  const t0 = clock.now()
  const fired: number[] = []
  const dog = progressWatchdog(60, () => fired.push(clock.now() - t0), clock)
  for (let i = 1; i <= 4; i++) {
    await clock.advance(59)
    dog.progress(i) // at 59, 118, 177, 236 ms: each just in time
  }
  assert.deepEqual(fired, [], 'alive after 236 ms of growth')
  await clock.advance(30)
  dog.progress(4) // Kubo repeats the same count while stuck
  dog.progress(3)
  await clock.advance(29)
  assert.deepEqual(fired, [])
  await clock.advance(1)
  assert.deepEqual(fired, [296], '60 ms after the last growth (236 ms)')
})

Deno.test('progressWatchdog: stop disarms it, twice is harmless', async () => {
  const clock = manualClock()
  let fired = 0
  const dog = progressWatchdog(30, () => fired++, clock)
  await clock.advance(29)
  dog.stop()
  dog.stop()
  assert.equal(clock.pending(), 0, 'no timer left behind')
  dog.progress(10)
  await clock.advance(1000)
  assert.equal(fired, 0)
})
