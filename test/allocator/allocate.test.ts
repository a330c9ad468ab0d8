import assert from 'node:assert/strict'
import { allocate, AllocationError, allocationFunction } from '../../src/allocator/allocate.ts'
import { balancedAllocator } from '../../src/allocator/balanced.ts'
import { type Metric, newMetric } from '../../src/types/metric.ts'

const NOW = Date.now()

function free(peer: string, bytes: number): Metric {
  return newMetric('freespace', peer, String(bytes), 30_000, NOW, bytes)
}
function group(peer: string, g: string): Metric {
  return newMetric('tag:group', peer, g, 30_000, NOW, 0, true)
}

const allocator = balancedAllocator({ allocate_by: ['tag:group', 'freespace'] })
const peers = ['p1', 'p2', 'p3', 'p4']
const metricsByName = new Map([
  ['tag:group', peers.map((p) => group(p, 'default'))],
  ['freespace', [free('p1', 100), free('p2', 400), free('p3', 300), free('p4', 200)]],
])
const base = {
  cid: 'bafkqaaa',
  current: [] as string[],
  userAllocations: [] as string[],
  blacklist: [] as string[],
  metricsByName,
  allocator,
}

Deno.test('allocate: 0/0 is a bad replication factor; -1/-1 is everywhere', async () => {
  await assert.rejects(
    () => allocate({ ...base, rfMin: 0, rfMax: 0 }),
    (err: Error) =>
      err instanceof AllocationError && err.message === 'bad replication factors: 0/0',
  )
  assert.deepEqual(await allocate({ ...base, rfMin: -1, rfMax: -1 }), [])
})

Deno.test('allocate: picks up to rf_max peers, most free space first', async () => {
  assert.deepEqual(await allocate({ ...base, rfMin: 1, rfMax: 2 }), ['p2', 'p3'])
  assert.deepEqual(await allocate({ ...base, rfMin: 1, rfMax: 10 }), ['p2', 'p3', 'p4', 'p1'])
})

Deno.test('allocate: not enough peers gives the reference message', async () => {
  await assert.rejects(
    () => allocate({ ...base, rfMin: 5, rfMax: 6 }),
    (err: Error) =>
      err instanceof AllocationError &&
      err.message ===
        'not enough peers to allocate CID. Needed at least: 5. Wanted at most: 6. ' +
          'Available candidates: 4. See logs for more info.',
  )
  // Blacklisted peers and peers missing a metric are not candidates.
  const partial = new Map(metricsByName)
  partial.set('freespace', [free('p1', 100), free('p2', 400)])
  await assert.rejects(
    () => allocate({ ...base, metricsByName: partial, blacklist: ['p1'], rfMin: 2, rfMax: 2 }),
    /Needed at least: 2\. Wanted at most: 2\. Available candidates: 1\./,
  )
})

Deno.test('allocate: keeps current allocations; adds only what is needed', async () => {
  // Enough replicas: the current list comes back unchanged, even a peer without metrics.
  assert.deepEqual(
    await allocate({ ...base, current: ['p1', 'p2', 'gone'], rfMin: 2, rfMax: 3 }),
    ['p1', 'p2', 'gone'],
  )
  // Below the minimum (only p1 has metrics): keep p1, add the best others up to rf_max.
  assert.deepEqual(
    await allocate({ ...base, current: ['p1', 'gone'], rfMin: 3, rfMax: 3 }),
    ['p1', 'p2', 'p3'],
  )
  // Above the maximum: drop the extra current peers.
  assert.deepEqual(
    await allocate({ ...base, current: ['p4', 'p1', 'p3'], rfMin: 1, rfMax: 2 }),
    ['p4', 'p1'],
  )
})

Deno.test('allocate: user allocations come first; trust filters apply', async () => {
  assert.deepEqual(
    await allocate({ ...base, userAllocations: ['p1'], rfMin: 2, rfMax: 2 }),
    ['p1', 'p2'],
  )
  const isTrusted = (p: string) => p === 'p1' || p === 'p4'
  assert.deepEqual(
    await allocate({ ...base, isTrusted, onlyTrusted: true, rfMin: 1, rfMax: 4 }),
    ['p4', 'p1'],
  )
  assert.deepEqual(
    await allocate({ ...base, isTrusted, onlyUntrusted: true, rfMin: 1, rfMax: 4 }),
    ['p2', 'p3'],
  )
})

Deno.test('allocate: tags spread replicas across groups', async () => {
  const byName = new Map([
    ['tag:group', [group('a1', 'A'), group('a2', 'A'), group('b1', 'B')]],
    ['freespace', [free('a1', 1000), free('a2', 900), free('b1', 10)]],
  ])
  assert.deepEqual(
    await allocate({ ...base, metricsByName: byName, rfMin: 2, rfMax: 2 }),
    ['a1', 'b1'],
  )
})

Deno.test('allocationFunction reads the latest metrics from the monitor', async () => {
  const asked: string[] = []
  const monitor = {
    latestMetrics: (name: string) => {
      asked.push(name)
      return metricsByName.get(name) ?? []
    },
  }
  const alloc = allocationFunction({ allocator, monitor })
  const got = await alloc({
    cid: 'x',
    rfMin: 1,
    rfMax: 1,
    current: [],
    userAllocations: [],
    blacklist: [],
  })
  assert.deepEqual(got, ['p2'])
  assert.deepEqual(asked, ['tag:group', 'freespace'])
})

Deno.test('allocationFunction: bytes a running add sent to a peer come off its freespace', async () => {
  const monitor = {
    latestMetrics: (name: string) =>
      name === 'freespace' ? [free('a', 1_000_000), free('b', 1_000_000)] : [],
  }
  const alloc = allocationFunction({
    allocator: balancedAllocator({ allocate_by: ['freespace'] }),
    monitor,
  })
  const req = { cid: 'x', rfMin: 1, rfMax: 1, current: [], userAllocations: [], blacklist: [] }
  const first = await alloc(req)
  const other = first[0] === 'a' ? 'b' : 'a'
  // The first shard's megabyte went to `first`: the next one goes to the other peer, and back.
  assert.deepEqual(await alloc({ ...req, sent: new Map([[first[0], 600_000]]) }), [other])
  assert.deepEqual(
    await alloc({ ...req, sent: new Map([[first[0], 600_000], [other, 700_000]]) }),
    first,
  )
})
