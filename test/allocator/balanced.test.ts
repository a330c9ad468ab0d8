import assert from 'node:assert/strict'
import { balancedAllocator } from '../../src/allocator/balanced.ts'
import type { Metric } from '../../src/types/metric.ts'

function metric(name: string, value: string, weight: number, peer: string, part: boolean): Metric {
  return {
    name,
    peer,
    value,
    weight,
    partitionable: part,
    valid: true,
    expire: (Date.now() + 60_000) * 1_000_000,
    received_at: Date.now() * 1_000_000,
  }
}

/** Peer → metrics, as the allocator receives it. */
function byPeer(metrics: Metric[]): Map<string, Metric[]> {
  const out = new Map<string, Metric[]>()
  for (const m of metrics) out.set(m.peer, [...(out.get(m.peer) ?? []), m])
  return out
}

Deno.test('balanced: spreads over regions and zones, heaviest first (reference TestAllocate)', async () => {
  const alloc = balancedAllocator({ allocate_by: ['region', 'az', 'pinqueue', 'freespace'] })
  const candidates = byPeer([
    metric('abc', 'a', 0, 'p1', true), // not in allocate_by: ignored
    metric('abc', 'b', 0, 'p2', true),
    metric('region', 'a-us', 0, 'p1', true),
    metric('region', 'a-us', 0, 'p2', true),
    metric('region', 'b-eu', 0, 'p3', true),
    metric('region', 'b-eu', 0, 'p4', true),
    metric('region', 'b-eu', 0, 'p5', true),
    metric('region', 'c-au', 0, 'p6', true),
    metric('region', 'c-au', 0, 'p7', true),
    metric('region', 'c-au', 0, 'p8', true), // lacks the other metrics: never chosen
    metric('az', 'us1', 0, 'p1', true),
    metric('az', 'us2', 0, 'p2', true),
    metric('az', 'eu1', 0, 'p3', true),
    metric('az', 'eu1', 0, 'p4', true),
    metric('az', 'eu2', 0, 'p5', true),
    metric('az', 'au1', 0, 'p6', true),
    metric('az', 'au1', 0, 'p7', true),
    metric('pinqueue', '100', 0, 'p1', true),
    metric('pinqueue', '200', 0, 'p2', true),
    metric('pinqueue', '100', 0, 'p3', true),
    metric('pinqueue', '200', 0, 'p4', true),
    metric('pinqueue', '300', 0, 'p5', true),
    metric('pinqueue', '100', 0, 'p6', true),
    metric('pinqueue', '1000', -1, 'p7', true),
    metric('freespace', '100', 100, 'p1', false),
    metric('freespace', '500', 500, 'p2', false),
    metric('freespace', '200', 200, 'p3', false),
    metric('freespace', '400', 400, 'p4', false),
    metric('freespace', '10', 10, 'p5', false),
    metric('freespace', '50', 50, 'p6', false),
    metric('freespace', '600', 600, 'p7', false),
    metric('freespace', '10000', 10000, 'p8', false),
  ])
  // Region weights: c-au 649 > b-eu 610 > a-us 600; zones inside them likewise.
  const order = await alloc.allocate('cid', new Map(), candidates, new Map())
  assert.deepEqual(order, ['p6', 'p4', 'p2', 'p7', 'p5', 'p1', 'p3'])
})

Deno.test('balanced: tag:group then freespace alternates groups, most free space first', async () => {
  const alloc = balancedAllocator({ allocate_by: ['tag:group', 'freespace'] })
  const peers: [string, string, number][] = [
    ['a1', 'A', 100],
    ['a2', 'A', 900],
    ['a3', 'A', 500],
    ['b1', 'B', 300],
    ['b2', 'B', 200],
  ]
  const candidates = byPeer(
    peers.flatMap(([p, g, free]) => [
      metric('tag:group', g, 0, p, true),
      metric('freespace', String(free), free, p, false),
    ]),
  )
  const order = await alloc.allocate('cid', new Map(), candidates, new Map())
  // Group A aggregates 1500 free > B 500: A first, then alternate, biggest free space first.
  assert.deepEqual(order, ['a2', 'b1', 'a3', 'b2', 'a1'])
})

Deno.test('balanced: freespace alone orders by weight; equal weights fall back to value', async () => {
  const alloc = balancedAllocator({ allocate_by: ['freespace'] })
  const candidates = byPeer([
    metric('freespace', '100', 100, 'x', false),
    metric('freespace', '300', 300, 'y', false),
    metric('freespace', '200', 200, 'z', false),
    metric('freespace', '200', 200, 'w', false),
  ])
  const order = await alloc.allocate('cid', new Map(), candidates, new Map())
  assert.deepEqual(order, ['y', 'w', 'z', 'x'])
  assert.deepEqual(alloc.metrics(), ['freespace'])
})

Deno.test('balanced: priority peers (user allocations) come before every candidate', async () => {
  const alloc = balancedAllocator({ allocate_by: ['freespace'] })
  const candidates = byPeer([metric('freespace', '900', 900, 'big', false)])
  const priority = byPeer([
    metric('freespace', '1', 1, 'small', false),
    metric('freespace', '5', 5, 'medium', false),
  ])
  const order = await alloc.allocate('cid', new Map(), candidates, priority)
  assert.deepEqual(order, ['medium', 'small', 'big'])
})
