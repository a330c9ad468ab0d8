/**
 * The simulator as a test: many seeded runs must find no violation, a run must replay exactly,
 * and deliberately broken runs must be caught (a checker that cannot fail proves nothing).
 */
import assert from 'node:assert/strict'
import { runSim } from './sim.ts'

Deno.test('200 seeded runs (3 and 5 nodes) find no safety, liveness or linearizability violation', () => {
  const failures: string[] = []
  for (let seed = 1; seed <= 200; seed++) {
    const r = runSim({ seed, nodes: seed % 2 === 0 ? 5 : 3, steps: 600 })
    if (r.violation) failures.push(`seed ${seed}: ${r.violation}\n  ${r.trace.join('\n  ')}`)
  }
  assert.deepEqual(failures, [])
})

Deno.test('a seed replays exactly', () => {
  const a = runSim({ seed: 42, steps: 300 })
  const b = runSim({ seed: 42, steps: 300 })
  assert.deepEqual(a.stats, b.stats)
  assert.ok(a.stats.leaders >= 1 && a.stats.ackedWrites > 0, 'the run did real work')
})

Deno.test('a corrupted apply is reported as a state machine safety violation, with a trace', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const r = runSim({ seed, steps: 300, fault: 'corruptApply' })
    assert.match(r.violation ?? '', /^state machine safety: /, `seed ${seed}`)
    assert.ok(r.trace.length > 10)
    assert.match(r.trace.at(-1)!, /VIOLATION state machine safety/)
  }
})

Deno.test('reads served without ReadIndex are reported as not linearizable', () => {
  let caught = 0
  for (let seed = 1; seed <= 10; seed++) {
    const r = runSim({ seed, steps: 300, fault: 'staleRead' })
    if (r.violation) {
      assert.match(r.violation, /^linearizability: /, `seed ${seed}`)
      caught++
    }
  }
  assert.ok(caught >= 5, `caught in ${caught} of 10 runs`)
})
