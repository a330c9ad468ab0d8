/**
 * Allocation as a pure function, over 3,000 random clusters (seeded): 3–30 peers in 1–4 tag
 * groups, some full (no freespace metric, as the disk informer sends none), some dead
 * (blacklisted), random current allocations and factors. Whatever the input:
 * - never more than rf_max peers, and at least rf_min unless it fails with "not enough peers",
 *   which it does only when the candidates are too few;
 * - a peer it adds has every metric and is neither dead nor full;
 * - a fresh pin's peers span as many tag groups as they can (min(peers, groups));
 * - the same input gives the same answer, whatever the order the metrics arrive in.
 */
import assert from 'node:assert/strict'
import { allocate, AllocationError } from '../../src/allocator/allocate.ts'
import { balancedAllocator } from '../../src/allocator/balanced.ts'
import { type Metric, newMetric } from '../../src/types/metric.ts'
import { seededRandom } from '../../src/consensus/raft/core/prng.ts'

const NOW = Date.UTC(2026, 11, 7)
const allocator = balancedAllocator({ allocate_by: ['tag:group', 'freespace'] })

interface Case {
  peers: string[]
  group: Map<string, string>
  full: Set<string>
  dead: Set<string>
  current: string[]
  rfMin: number
  rfMax: number
  metrics: Map<string, Metric[]>
}

function randomCase(rand: () => number): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const n = int(3, 30)
  const groups = int(1, 4)
  const peers = Array.from({ length: n }, (_, i) => `peer${String(i).padStart(2, '0')}`)
  const group = new Map(peers.map((p) => [p, `g${int(1, groups)}`]))
  const full = new Set(peers.filter(() => rand() < 0.15))
  const dead = new Set(peers.filter(() => rand() < 0.15))
  const current = peers.filter(() => rand() < 0.1)
  const rfMin = int(1, 6)
  const rfMax = rfMin + int(0, 3)
  // Distinct free space per peer: the order never rests on a tie.
  const space = peers.map((_, i) => 1000 + i * 37 + int(0, 30) * 1000)
  const metrics = new Map<string, Metric[]>([
    ['tag:group', peers.map((p) => newMetric('tag:group', p, group.get(p)!, 30_000, NOW, 0, true))],
    [
      'freespace',
      peers.filter((p) => !full.has(p)).map((p, i) =>
        newMetric('freespace', p, String(space[i]), 30_000, NOW, space[i])
      ),
    ],
  ])
  return { peers, group, full, dead, current, rfMin, rfMax, metrics }
}

const run = (c: Case, metrics = c.metrics) =>
  allocate({
    cid: 'bafkqaaa',
    rfMin: c.rfMin,
    rfMax: c.rfMax,
    current: c.current,
    userAllocations: [],
    blacklist: [...c.dead],
    metricsByName: metrics,
    allocator,
  })

function shuffled<T>(xs: T[], rand: () => number): T[] {
  const out = xs.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

Deno.test('allocation properties over 3,000 random clusters', async () => {
  const rand = seededRandom(8)
  let failures = 0
  for (let k = 0; k < 3000; k++) {
    const c = randomCase(rand)
    const usable = (p: string) => !c.full.has(p) && !c.dead.has(p)
    const liveCurrent = c.current.filter(usable)
    const candidates = c.peers.filter((p) => usable(p) && !c.current.includes(p))
    let got: string[]
    try {
      got = await run(c)
    } catch (err) {
      assert.ok(err instanceof AllocationError, String(err))
      assert.ok(candidates.length < c.rfMin - liveCurrent.length, `case ${k}: ${err.message}`)
      failures++
      continue
    }
    const why = `case ${k}: ${
      JSON.stringify({ got, rfMin: c.rfMin, rfMax: c.rfMax, current: c.current })
    }`
    if (liveCurrent.length >= c.rfMin && liveCurrent.length <= c.rfMax) {
      // Enough live holders: left as they were (the reference keeps even dead ones listed).
      assert.deepEqual(got, c.current, why)
      continue
    }
    assert.ok(got.length <= c.rfMax, why)
    assert.ok(got.length >= c.rfMin, why)
    assert.equal(new Set(got).size, got.length, why)
    for (const p of got) if (!c.current.includes(p)) assert.ok(usable(p), `${why}: ${p}`)
    if (c.current.length === 0) {
      const groups = new Set(candidates.map((p) => c.group.get(p)))
      const spread = new Set(got.map((p) => c.group.get(p)))
      assert.equal(spread.size, Math.min(got.length, groups.size), `${why}: groups`)
    }
    // Deterministic, whatever order the monitor lists metrics in.
    const reordered = new Map([...c.metrics].map(([n, ms]) => [n, shuffled(ms, rand)]))
    assert.deepEqual(await run(c, reordered), got, `${why}: order`)
  }
  // The generator makes both kinds of case.
  assert.ok(failures > 50 && failures < 2500, `${failures} not-enough cases`)
})
