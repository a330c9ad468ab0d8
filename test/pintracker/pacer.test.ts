import assert from 'node:assert/strict'
import { Pacer } from '../../src/pintracker/pacer.ts'

/** A pacer over a manual clock whose sleeps only record their length. */
function manual(busy: { v: boolean }) {
  let t = 0
  const slept: number[] = []
  const pacer = new Pacer({
    busy: () => busy.v,
    clock: {
      now: () => t,
      sleep: (ms) => {
        slept.push(ms)
        return Promise.resolve()
      },
    },
    gapMs: 10,
  })
  return { pacer, slept, advance: (ms: number) => void (t += ms) }
}

Deno.test('pacer: while the foreground is busy, background steps go one per gap across callers', async () => {
  const busy = { v: true }
  const { pacer, slept, advance } = manual(busy)
  // Five workers ask at the same moment: they are spread 10 ms apart.
  await Promise.all([1, 2, 3, 4, 5].map(() => pacer.turn()))
  assert.deepEqual(slept, [10, 20, 30, 40], 'the first goes at once')
  // Later asks queue behind the ones already given out.
  advance(15)
  await pacer.turn()
  assert.equal(slept.at(-1), 35)
  // Once the foreground is quiet, nobody sleeps.
  busy.v = false
  slept.length = 0
  for (let i = 0; i < 100; i++) await pacer.turn()
  assert.deepEqual(slept, [])
})

Deno.test('pacer: an aborted signal ends the wait', async () => {
  const pacer = new Pacer({ busy: () => true, gapMs: 60_000 })
  const ac = new AbortController()
  await pacer.turn(ac.signal) // the first turn is immediate
  const waiting = pacer.turn(ac.signal) // the second waits a minute…
  ac.abort(new Error('stop'))
  await assert.rejects(waiting, /stop/) // …unless aborted
  await assert.rejects(pacer.turn(ac.signal), /stop/)
})
