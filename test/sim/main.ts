/**
 * The Raft simulator's command line.
 *
 * ```
 * deno task sim --seeds 200 [--nodes 5] [--steps 600] [--seed X] [--trace] [--fault F]
 * ```
 *
 * Runs seeds 1..N (X..X+N-1 with `--seed X`; just X without `--seeds`), prints every failing
 * seed with its violation and the last events of its trace, and ends with exactly one line
 * `sim: N runs, V violations` (exit status 1 if V > 0). A failing seed replays exactly:
 * rerun it with `--seed X` (and the same `--nodes` and `--steps`).
 */
import { parseArgs } from 'node:util'
import { type FaultMode, runSim } from './sim.ts'

function positive(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`)
    Deno.exit(2)
  }
  return n
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    steps: { type: 'string' },
    fault: { type: 'string' },
    trace: { type: 'boolean' },
  },
  strict: true,
})

const nodes = positive('nodes', values.nodes, 5)
const steps = positive('steps', values.steps, 600)
const fault = (values.fault ?? 'none') as FaultMode
if (!['none', 'corruptApply', 'staleRead'].includes(fault)) {
  console.error(
    `--fault must be one of none, corruptApply, staleRead; got ${JSON.stringify(fault)}`,
  )
  Deno.exit(2)
}
// `--seed X` alone replays one seed; with `--seeds N` it runs N seeds starting at X.
const first = positive('seed', values.seed, 1)
const count = values.seed !== undefined && values.seeds === undefined
  ? 1
  : positive('seeds', values.seeds, 100)
const seeds = Array.from({ length: count }, (_, i) => first + i)
const single = count === 1 && values.seed !== undefined

let violations = 0
const started = performance.now()
for (const seed of seeds) {
  const r = runSim({ seed, nodes, steps, fault })
  if (r.violation) {
    violations++
    console.log(`seed ${seed}: ${r.violation}`)
    for (const line of r.trace) console.log(`  ${line}`)
    console.log(`  (replay: deno task sim --seed ${seed} --nodes ${nodes} --steps ${steps})`)
  } else if (values.trace || single) {
    console.log(`seed ${seed}: ok ${JSON.stringify(r.stats)}`)
  }
}
const secs = (performance.now() - started) / 1000
console.log(`(${(seeds.length / secs).toFixed(1)} seeds/s, ${secs.toFixed(1)} s)`)
console.log(`sim: ${seeds.length} runs, ${violations} violations`)
if (violations > 0) Deno.exit(1)
