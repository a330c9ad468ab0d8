/**
 * One allocation among 100 peers with 3 metrics each (issue 8's target: under 50 µs median):
 * `allocate_by: ["tag:group", "pinqueue", "freespace"]`, 100 peers in 5 tag groups, a fresh pin
 * with replication 3. Timed two ways: `allocate()` alone over metrics already gathered, and the
 * cluster's whole call (`allocationFunction`: the monitor's latest valid metric of every peer for
 * each name, then `allocate()`), as a pin pays it.
 *
 * @example
 * ```sh
 * deno run -A bench/allocation.ts [--peers 100] [--runs 20000]
 * ```
 */
import { parseArgs } from 'node:util'
import { allocate, allocationFunction } from '../src/allocator/allocate.ts'
import { balancedAllocator } from '../src/allocator/balanced.ts'
import { localMonitor } from '../src/monitor/local.ts'
import { type Metric, newMetric } from '../src/types/metric.ts'

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

async function time(runs: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(2000, runs); i++) await fn(i) // warm the JIT
  const out: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn(i)
    out.push((performance.now() - t0) * 1000)
  }
  return out.sort((a, b) => a - b)
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      peers: { type: 'string', default: '100' },
      runs: { type: 'string', default: '20000' },
    },
  })
  const n = Number(values.peers)
  const runs = Number(values.runs)
  const now = Date.now()
  const peers = Array.from({ length: n }, (_, i) => `peer${i}`)
  const metrics: Metric[] = []
  for (const [i, p] of peers.entries()) {
    metrics.push(newMetric('tag:group', p, `g${i % 5}`, 60_000, now, 0, true))
    metrics.push(newMetric('pinqueue', p, String(i % 7), 60_000, now, -(i % 7)))
    const free = 1e12 + ((i * 7919) % 1000) * 1e9
    metrics.push(newMetric('freespace', p, String(free), 60_000, now, free))
  }
  const names = ['tag:group', 'pinqueue', 'freespace']
  const allocator = balancedAllocator({ allocate_by: names })
  const metricsByName = new Map(names.map((name) => [name, metrics.filter((m) => m.name === name)]))
  const req = (i: number) => ({
    cid: `bafkqa${i}`,
    rfMin: 3,
    rfMax: 3,
    current: [],
    userAllocations: [],
    blacklist: [],
  })

  const alone = await time(runs, (i) => allocate({ ...req(i), metricsByName, allocator }))
  const monitor = localMonitor({ check_interval: 3_600_000 })
  for (const m of metrics) monitor.logMetric(m)
  const call = allocationFunction({ allocator, monitor })
  const whole = await time(runs, (i) => call(req(i)))
  await monitor.stop()

  const row = (what: string, t: number[]) =>
    console.log(
      `${what.padEnd(58)} median ${percentile(t, 0.5).toFixed(1)} µs, p90 ${
        percentile(t, 0.9).toFixed(1)
      } µs, p99 ${percentile(t, 0.99).toFixed(1)} µs`,
    )
  console.log(`one allocation, rf 3 among ${n} peers × ${names.length} metrics, ${runs} runs`)
  row('allocate() over gathered metrics', alone)
  row('the cluster call (monitor latest metrics + allocate())', whole)
}

if (import.meta.main) await main()
