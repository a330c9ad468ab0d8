/**
 * Listing (api/pinsvc/listing.ts) where the routes do not reach easily: an index being rebuilt
 * (waited for briefly, then a 503 that says why), the status filter's walk of the cluster's status
 * stream keeping only the newest `limit`, and statuses asked with bounded concurrency.
 */
import assert from 'node:assert/strict'
import type { RequestIndex } from '../../../src/api/pinsvc/index.ts'
import { IndexRebuildingError, listRequests, mapBounded } from '../../../src/api/pinsvc/listing.ts'
import { parseListQuery } from '../../../src/api/pinsvc/query.ts'
import { formatTime } from '../../../src/types/time.ts'
import { benchCid } from '../../../bench/cids.ts'
import { fakeCluster } from '../../support/fake_cluster.ts'
import { manualClock } from '../../support/manual_clock.ts'

/** An index stub that is rebuilding until told otherwise. */
function rebuildingIndex() {
  let done: () => void
  const ready = new Promise<void>((r) => (done = r))
  let rebuilding = true
  const index = {
    rebuilding: () => rebuilding,
    rebuildProgress: () => 1234,
    ready: (signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        ready.then(resolve)
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
      }),
    list: async function* () {},
    countRange: () => Promise.resolve(0),
  } as unknown as RequestIndex
  return {
    index,
    finish() {
      rebuilding = false
      done()
    },
  }
}

Deno.test('a listing waits 10 s for a rebuild, then answers 503 with the progress', async () => {
  const clock = manualClock()
  const { index, finish } = rebuildingIndex()
  const cluster = fakeCluster()
  const q = parseListQuery(new URLSearchParams())
  const late = listRequests(q, { cluster, index, clock })
  let settled = false
  late.then(() => settled = true, () => settled = true)
  await clock.advance(9_999)
  assert.equal(settled, false)
  await clock.advance(1)
  await assert.rejects(late, (e: unknown) => {
    assert.ok(e instanceof IndexRebuildingError)
    assert.equal(e.status, 503)
    assert.match(e.message, /being rebuilt from the pinset \(1234 pins so far\).*retry/)
    return true
  })
  // A rebuild that ends within the wait is waited for.
  const soon = listRequests(q, { cluster, index, clock })
  await clock.advance(5_000)
  finish()
  assert.deepEqual(await soon, { count: 0, results: [] })
})

Deno.test('the status filter walks the status stream once, keeping the newest `limit`', async () => {
  const cluster = fakeCluster()
  const n = 300
  for (let i = 0; i < n; i++) {
    const pin = await cluster.pin(benchCid(i), {
      replication_factor_min: -1,
      replication_factor_max: -1,
      name: `p${i}`,
      mode: 'recursive',
      shard_size: 0,
      user_allocations: null,
      expire_at: '0001-01-01T00:00:00Z',
      metadata: {},
      pin_update: null,
      origins: null,
    })
    pin.timestamp = formatTime(Date.UTC(2026, 0, 1) + i * 1000)
    if (i % 3 === 0) cluster.statuses.set(pin.cid, 'pin_error')
  }
  const { index } = rebuildingIndex() // not used by this path
  const page = await listRequests(
    parseListQuery(new URLSearchParams('status=failed&limit=7')),
    { cluster, index },
  )
  assert.equal(page.count, 100)
  assert.deepEqual(
    page.results.map((l) => l.req.name),
    [297, 294, 291, 288, 285, 282, 279].map((i) => `p${i}`),
  )
  assert.ok(page.results.every((l) => l.status === 'failed'))
  assert.equal(cluster.calls.filter((c) => c.method === 'statusAll').length, 1)
})

Deno.test('mapBounded: at most n at once, results in order', async () => {
  let running = 0
  let most = 0
  const out = await mapBounded([...Array(100).keys()], 8, async (i) => {
    running++
    most = Math.max(most, running)
    await new Promise((r) => setTimeout(r, i % 3))
    running--
    return i * 2
  })
  assert.equal(most, 8)
  assert.deepEqual(out, [...Array(100).keys()].map((i) => i * 2))
})
