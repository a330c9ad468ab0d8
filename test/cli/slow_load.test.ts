/**
 * The first-start notice: one line when a module load is still pending at the deadline, none when
 * loads are quick, and never a second one. Time is driven by hand (no wall clock).
 */
import { deepEqual, equal } from 'node:assert/strict'
import { SLOW_LOAD_LINE, slowLoadNotice, type Timeout } from '../../cli/slow_load.ts'

/** A timeout whose timers fire when the test says so. */
function manualTimeout() {
  const timers = new Map<number, { ms: number; fn: () => void }>()
  let next = 0
  const timeout: Timeout = (ms, fn) => {
    const id = next++
    timers.set(id, { ms, fn })
    return () => void timers.delete(id)
  }
  const fireAll = () => {
    for (const [id, t] of [...timers]) {
      timers.delete(id)
      t.fn()
    }
  }
  return { timeout, timers, fireAll }
}

Deno.test('slow load: a quick load prints nothing and leaves no timer', async () => {
  const lines: string[] = []
  const clock = manualTimeout()
  const loading = slowLoadNotice((l) => void lines.push(l), { timeout: clock.timeout })
  equal(await loading(Promise.resolve(42)), 42)
  deepEqual(lines, [])
  equal(clock.timers.size, 0)
})

Deno.test('slow load: pending at the deadline prints one line, once for every later load', async () => {
  const lines: string[] = []
  const clock = manualTimeout()
  const loading = slowLoadNotice((l) => void lines.push(l), {
    afterMs: 2_000,
    timeout: clock.timeout,
  })
  const slow = Promise.withResolvers<string>()
  const first = loading(slow.promise)
  deepEqual([...clock.timers.values()].map((t) => t.ms), [2_000])
  clock.fireAll()
  deepEqual(lines, [SLOW_LOAD_LINE])
  slow.resolve('daemon')
  equal(await first, 'daemon')
  // A second slow load (the embedded node's modules) adds nothing.
  const second = Promise.withResolvers<string>()
  const p = loading(second.promise)
  clock.fireAll()
  second.resolve('helia')
  equal(await p, 'helia')
  deepEqual(lines, [SLOW_LOAD_LINE])
})

Deno.test('slow load: a failed load rejects as it was, and cancels its timer', async () => {
  const lines: string[] = []
  const clock = manualTimeout()
  const loading = slowLoadNotice((l) => void lines.push(l), { timeout: clock.timeout })
  let caught: unknown
  try {
    await loading(Promise.reject(new Error('no network')))
  } catch (err) {
    caught = err
  }
  equal((caught as Error).message, 'no network')
  equal(clock.timers.size, 0)
  deepEqual(lines, [])
})
