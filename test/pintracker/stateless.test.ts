import assert from 'node:assert/strict'
import { QUEUE_FULL, QueueFullError } from '../../src/pintracker/errors.ts'
import { type StatelessConfig, statelessSection } from '../../src/pintracker/config.ts'
import { type StatelessTracker, statelessTracker } from '../../src/pintracker/stateless.ts'
import { ShutdownError } from '../../src/errors.ts'
import type { Pin } from '../../src/types/pin.ts'
import { parseStatusFilter } from '../../src/types/status.ts'
import { formatTime } from '../../src/types/time.ts'
import type { Clock } from '../../src/util/clock.ts'
import { manualClock } from '../support/manual_clock.ts'
import { type FakeIpfs, fakeIpfs } from '../support/fake_ipfs.ts'
import { collect, type MapState, mapState, settle, testPin, waitFor } from './helpers.ts'

const SELF = '12D3KooWSelfPeer'
const OTHER = '12D3KooWOtherPeer'

interface Setup {
  tracker: StatelessTracker
  ipfs: FakeIpfs
  state: MapState
  [Symbol.asyncDispose](): Promise<void>
}

function setup(
  cfg: Partial<StatelessConfig> = {},
  extra: { recoverIntervalMs?: number; ipfs?: FakeIpfs; state?: MapState; clock?: Clock } = {},
): Setup {
  const ipfs = extra.ipfs ?? fakeIpfs()
  const state = extra.state ?? mapState()
  const tracker = statelessTracker({ ...statelessSection.defaults(), ...cfg }, {
    peerId: SELF,
    peername: () => 'peer0',
    ipfs,
    state: () => state,
    ipfsId: () => ({ id: '12D3KooWIpfs', addresses: ['/ip4/127.0.0.1/tcp/4001'] }),
    recoverIntervalMs: extra.recoverIntervalMs,
    clock: extra.clock,
  })
  return { tracker, ipfs, state, [Symbol.asyncDispose]: () => tracker.stop() }
}

/** A pin allocated here, committed now (so it is a priority pin), stored in the state. */
async function localPin(s: Setup, n: number, fields: Partial<Pin> = {}): Promise<Pin> {
  const pin = await testPin(n, {
    allocations: [SELF],
    replication_factor_min: 1,
    replication_factor_max: 1,
    timestamp: formatTime(Date.now()),
    ...fields,
  })
  s.state.put(pin)
  return pin
}

const OLD = formatTime(Date.now() - 48 * 3_600_000) // older than priority_pin_max_age

Deno.test('track pins allocated pins; the done operation is forgotten and status is pinned', async () => {
  await using s = setup()
  await s.tracker.start()
  const pin = await localPin(s, 1)
  await s.tracker.track(pin)
  await waitFor(() => s.ipfs.isPinned(pin.cid))
  await waitFor(() => s.tracker.operationCount() === 0)
  const pi = await s.tracker.status(pin.cid)
  assert.equal(pi.status, 'pinned')
  assert.equal(pi.peer, SELF)
  assert.equal(pi.peername, 'peer0')
  assert.equal(pi.ipfs_peer_id, '12D3KooWIpfs')
  assert.deepEqual(pi.ipfs_peer_addresses, ['/ip4/127.0.0.1/tcp/4001'])
  assert.deepEqual(pi.allocations, [SELF])
  assert.equal(pi.created, pin.timestamp)
  assert.equal(pi.timestamp, pin.timestamp)
  assert.equal(pi.error, '')
})

Deno.test('pins everywhere (rf -1) are pinned even with no allocations', async () => {
  await using s = setup()
  await s.tracker.start()
  const pin = await localPin(s, 1, {
    allocations: [],
    replication_factor_min: -1,
    replication_factor_max: -1,
  })
  await s.tracker.track(pin)
  await waitFor(() => s.ipfs.isPinned(pin.cid))
})

Deno.test('priority pins are taken before normal pins', async () => {
  await using s = setup({ concurrent_pins: 1 })
  await s.tracker.start()
  const gate = s.ipfs.holdPins()
  const first = await localPin(s, 0)
  await s.tracker.track(first) // taken at once by the single worker, held by the gate
  await settle()
  const n1 = await localPin(s, 1, { timestamp: OLD })
  const n2 = await localPin(s, 2, { timestamp: OLD })
  const p1 = await localPin(s, 3)
  const p2 = await localPin(s, 4)
  for (const p of [n1, n2, p1, p2]) await s.tracker.track(p)
  assert.equal((await s.tracker.status(n1.cid)).priority_pin, false)
  assert.equal((await s.tracker.status(p1.cid)).priority_pin, true)
  assert.equal(s.tracker.pinQueueSize(), 4)
  gate.release()
  await waitFor(() => s.ipfs.pinOrder.length === 5)
  assert.deepEqual(s.ipfs.pinOrder, [first.cid, p1.cid, p2.cid, n1.cid, n2.cid])
  await waitFor(() => s.tracker.pinQueueSize() === 0)
})

Deno.test('no more than concurrent_pins pins run at once', async () => {
  await using s = setup({ concurrent_pins: 3 })
  await s.tracker.start()
  const gate = s.ipfs.holdPins()
  const pins: Pin[] = []
  for (let i = 0; i < 10; i++) pins.push(await localPin(s, i))
  for (const p of pins) await s.tracker.track(p)
  await settle()
  assert.equal(s.ipfs.concurrency.current, 3)
  const statuses = await collect(s.tracker.statusAll(0))
  assert.equal(statuses.filter((p) => p.status === 'pinning').length, 3)
  assert.equal(statuses.filter((p) => p.status === 'pin_queued').length, 7)
  assert.equal(s.tracker.pinQueueSize(), 7)
  gate.release()
  await waitFor(() => pins.every((p) => s.ipfs.isPinned(p.cid)))
  assert.equal(s.ipfs.concurrency.max, 3)
})

Deno.test('untrack cancels a running pin (aborting the IPFS call) and unpins', async () => {
  await using s = setup({ concurrent_pins: 1 })
  await s.tracker.start()
  const gate = s.ipfs.holdPins()
  const pin = await localPin(s, 1)
  await s.tracker.track(pin)
  await settle()
  assert.equal((await s.tracker.status(pin.cid)).status, 'pinning')
  s.state.delete(pin.cid)
  await s.tracker.untrack(pin)
  await waitFor(() => s.ipfs.aborted === 1, { what: 'the pin call to abort' })
  await waitFor(() => s.tracker.operationCount() === 0)
  gate.release()
  assert.equal(s.ipfs.isPinned(pin.cid), false)
  assert.equal(s.ipfs.calls.unpin, 1)
  assert.equal((await s.tracker.status(pin.cid)).status, 'unpinned')
})

Deno.test('untrack cancels a queued pin: it is never sent to IPFS', async () => {
  await using s = setup({ concurrent_pins: 1 })
  await s.tracker.start()
  // The start-up sync would otherwise race the tracks below for the pins put in the state.
  await waitFor(() => !s.tracker.syncing())
  const gate = s.ipfs.holdPins()
  const blocker = await localPin(s, 0)
  const pin = await localPin(s, 1)
  await s.tracker.track(blocker)
  await s.tracker.track(pin)
  assert.equal(s.tracker.pinQueueSize(), 1)
  await s.tracker.untrack(pin)
  assert.equal(s.tracker.pinQueueSize(), 0, 'a canceled pin no longer counts as queued')
  const st = (await s.tracker.status(pin.cid)).status
  assert.ok(['unpin_queued', 'unpinning', 'unpinned'].includes(st), st)
  gate.release()
  await waitFor(() => s.tracker.operationCount() === 0)
  assert.deepEqual(s.ipfs.pinOrder, [blocker.cid])
})

Deno.test('tracking a pin again while it is queued only updates the pin', async () => {
  await using s = setup()
  const pin = await localPin(s, 1)
  await s.tracker.track(pin) // not started: stays queued
  await s.tracker.track({ ...pin, name: 'renamed' })
  assert.equal(s.tracker.operationCount(), 1)
  assert.equal(s.tracker.pinQueueSize(), 1)
  const pi = await s.tracker.status(pin.cid)
  assert.equal(pi.status, 'pin_queued')
  assert.equal(pi.name, 'renamed')
  await s.tracker.start()
  await waitFor(() => s.ipfs.isPinned(pin.cid))
  assert.equal(s.ipfs.calls.pin, 1)
})

Deno.test('failed pins stay as pin_error; retries carry attempts and lose priority', async () => {
  await using s = setup({ priority_pin_max_retries: 1 })
  await s.tracker.start()
  const pin = await localPin(s, 1)
  s.ipfs.failPin.add(pin.cid)
  await s.tracker.track(pin)
  await waitFor(async () => (await s.tracker.status(pin.cid)).status === 'pin_error')
  let pi = await s.tracker.status(pin.cid)
  assert.equal(pi.error, 'pin failed')
  assert.equal(pi.attempt_count, 1)
  assert.equal(pi.priority_pin, true)

  pi = await s.tracker.recover(pin.cid)
  assert.equal(pi.priority_pin, true, 'attempts (1) <= priority_pin_max_retries (1)')
  await waitFor(async () => (await s.tracker.status(pin.cid)).attempt_count === 2)
  await waitFor(async () => (await s.tracker.status(pin.cid)).status === 'pin_error')

  pi = await s.tracker.recover(pin.cid)
  assert.equal(pi.priority_pin, false, 'attempts (2) > priority_pin_max_retries (1)')
  await waitFor(async () => (await s.tracker.status(pin.cid)).attempt_count === 3)

  s.ipfs.failPin.clear()
  await s.tracker.recover(pin.cid)
  await waitFor(() => s.ipfs.isPinned(pin.cid))
  await waitFor(() => s.tracker.operationCount() === 0)
})

Deno.test('a full queue rejects with the reference error and marks the item pin_error', async () => {
  await using s = setup({ max_pin_queue_size: 2 })
  const pins = [await localPin(s, 1), await localPin(s, 2), await localPin(s, 3)]
  await s.tracker.track(pins[0])
  await s.tracker.track(pins[1])
  await assert.rejects(() => s.tracker.track(pins[2]), (err: Error) => {
    assert.ok(err instanceof QueueFullError)
    assert.equal(
      err.message,
      'pin/unpin operation queue is full. Try increasing max_pin_queue_size',
    )
    return true
  })
  const pi = await s.tracker.status(pins[2].cid)
  assert.equal(pi.status, 'pin_error')
  assert.equal(pi.error, QUEUE_FULL)
  // The priority and normal pin queues are separate, and so is the unpin queue.
  await s.tracker.track(await localPin(s, 4, { timestamp: OLD }))
  await s.tracker.untrack(await localPin(s, 5))
  await s.tracker.untrack(await localPin(s, 6))
  await assert.rejects(() => s.tracker.untrack(pins[0]), QueueFullError)
  assert.equal((await s.tracker.status(pins[0].cid)).status, 'unpin_error')
})

Deno.test('status derivations: unpinned, sharded, remote, pinned, unexpectedly_unpinned', async () => {
  await using s = setup()
  const absent = await testPin(100)
  let pi = await s.tracker.status(absent.cid)
  assert.equal(pi.status, 'unpinned')
  assert.equal(pi.allocations, null)
  assert.equal(pi.created, '0001-01-01T00:00:00Z')

  const meta = await localPin(s, 1, { type: 'meta-pin', allocations: [] })
  assert.equal((await s.tracker.status(meta.cid)).status, 'sharded')

  const remote = await localPin(s, 2, { allocations: [OTHER] })
  pi = await s.tracker.status(remote.cid)
  assert.equal(pi.status, 'remote')
  assert.deepEqual(pi.allocations, [OTHER])

  const pinned = await localPin(s, 3, { name: 'named' })
  s.ipfs.addPin(pinned.cid)
  pi = await s.tracker.status(pinned.cid)
  assert.equal(pi.status, 'pinned')
  assert.equal(pi.name, 'named')

  const missing = await localPin(s, 4)
  pi = await s.tracker.status(missing.cid)
  assert.equal(pi.status, 'unexpectedly_unpinned')
  assert.equal(pi.error, 'the item should be pinned but it is not')

  const indirect = await localPin(s, 5)
  s.ipfs.pinLsCid = () => Promise.resolve('indirect')
  assert.equal((await s.tracker.status(indirect.cid)).status, 'unexpectedly_unpinned')
})

Deno.test('status: an operation wins; IPFS and state failures are cluster_error', async () => {
  await using s = setup()
  const pin = await localPin(s, 1)
  s.ipfs.addPin(pin.cid)
  await s.tracker.track(pin) // not started: queued
  assert.equal((await s.tracker.status(pin.cid)).status, 'pin_queued')

  const other = await localPin(s, 2)
  s.ipfs.failAll.pinLsCid = 'ipfs is down'
  let pi = await s.tracker.status(other.cid)
  assert.equal(pi.status, 'cluster_error')
  assert.equal(pi.error, 'ipfs is down')

  s.state.failWith = 'state unavailable'
  pi = await s.tracker.status(other.cid)
  assert.equal(pi.status, 'cluster_error')
  assert.equal(pi.error, 'state unavailable')
})

Deno.test('status matches IPFS pins by multihash (CIDv0 in state, CIDv1 in IPFS)', async () => {
  await using s = setup()
  const { testCid } = await import('./helpers.ts')
  const v0 = await testCid(7, 0)
  const pin = await localPin(s, 7)
  const pinV0 = { ...pin, cid: v0 }
  s.state.delete(pin.cid)
  s.state.put(pinV0)
  const { CID } = await import('multiformats/cid')
  s.ipfs.pins.clear()
  s.ipfs.addPin(CID.parse(v0).toV1().toString())
  const all = await collect(s.tracker.statusAll(parseStatusFilter('pinned')))
  assert.deepEqual(all.map((p) => p.cid), [v0])
})

Deno.test('tracking a pin allocated elsewhere drops it from IPFS at once', async () => {
  await using s = setup()
  const pin = await localPin(s, 1, { allocations: [OTHER] })
  s.ipfs.addPin(pin.cid)
  await s.tracker.track(pin) // no start(): this path does not use the queues
  assert.equal(s.ipfs.isPinned(pin.cid), false)
  assert.equal(s.tracker.operationCount(), 0)
  assert.equal((await s.tracker.status(pin.cid)).status, 'remote')
  // Meta pins are ignored altogether.
  await s.tracker.track(await localPin(s, 2, { type: 'meta-pin', allocations: [] }))
  assert.equal(s.ipfs.calls.unpin, 1)
  assert.equal(s.tracker.operationCount(), 0)
})

Deno.test('statusAll streams every state item with its status; operations win', async () => {
  await using s = setup()
  const pinned = await localPin(s, 1)
  s.ipfs.addPin(pinned.cid)
  const missing = await localPin(s, 2)
  const remote = await localPin(s, 3, { allocations: [OTHER] })
  const meta = await localPin(s, 4, { type: 'meta-pin', allocations: [] })
  const queued = await localPin(s, 5)
  await s.tracker.track(queued)
  const byCid = new Map((await collect(s.tracker.statusAll(0))).map((p) => [p.cid, p]))
  assert.equal(byCid.size, 5)
  assert.equal(byCid.get(pinned.cid)?.status, 'pinned')
  assert.equal(byCid.get(missing.cid)?.status, 'unexpectedly_unpinned')
  assert.equal(byCid.get(missing.cid)?.error, 'the item should be pinned but it is not')
  assert.equal(byCid.get(remote.cid)?.status, 'remote')
  assert.equal(byCid.get(meta.cid)?.status, 'sharded')
  assert.equal(byCid.get(queued.cid)?.status, 'pin_queued')
  assert.equal(byCid.get(queued.cid)?.priority_pin, true)
  assert.equal(s.ipfs.calls.pinLs, 2, 'recursive and direct lists, once each')
})

Deno.test('statusAll filters; IPFS lists load only when pinned/unexpectedly_unpinned can match', async () => {
  await using s = setup()
  const pinned = await localPin(s, 1)
  s.ipfs.addPin(pinned.cid)
  const missing = await localPin(s, 2)
  const remote = await localPin(s, 3, { allocations: [OTHER] })
  const queued = await localPin(s, 4)
  await s.tracker.track(queued)
  const cids = async (f: string) =>
    (await collect(s.tracker.statusAll(parseStatusFilter(f)))).map((p) => p.cid)

  assert.deepEqual(await cids('remote'), [remote.cid])
  assert.deepEqual(await cids('queued'), [queued.cid])
  assert.equal(s.ipfs.calls.pinLs, 0, 'remote/queued filters never list IPFS pins')
  assert.equal(s.state.calls.scan, 1, 'the queued filter reads operations only')

  assert.deepEqual(await cids('pinned'), [pinned.cid])
  assert.deepEqual(await cids('unexpectedly_unpinned'), [missing.cid])
  assert.deepEqual((await cids('pinned,remote')).sort(), [pinned.cid, remote.cid].sort())
  assert.deepEqual(await cids('error'), [])
  assert.equal(s.ipfs.calls.pinLs, 6)
})

Deno.test('statusAll fails with a clear error when IPFS cannot list pins', async () => {
  await using s = setup()
  await localPin(s, 1)
  s.ipfs.failAll.pinLs = 'connection refused'
  await assert.rejects(
    () => collect(s.tracker.statusAll(0)),
    /could not get pinset from IPFS: connection refused/,
  )
})

Deno.test('recover re-queues pin_error and unpin_error items; other statuses are a no-op', async () => {
  await using s = setup()
  await s.tracker.start()
  const bad = await localPin(s, 1)
  s.ipfs.failPin.add(bad.cid)
  await s.tracker.track(bad)
  const gone = await localPin(s, 2)
  s.ipfs.addPin(gone.cid)
  s.ipfs.failUnpin.add(gone.cid)
  s.state.delete(gone.cid)
  await s.tracker.untrack(gone)
  await waitFor(async () => (await s.tracker.status(gone.cid)).status === 'unpin_error')
  await waitFor(async () => (await s.tracker.status(bad.cid)).status === 'pin_error')

  const ok = await localPin(s, 3)
  s.ipfs.addPin(ok.cid)
  const pi = await s.tracker.recover(ok.cid)
  assert.equal(pi.status, 'pinned')
  assert.equal(s.ipfs.calls.pin, 1)

  s.ipfs.failPin.clear()
  s.ipfs.failUnpin.clear()
  const gate = s.ipfs.holdPins()
  const rec = await s.tracker.recover(bad.cid)
  assert.ok(['pin_queued', 'pinning'].includes(rec.status), rec.status)
  assert.equal(rec.attempt_count, 1)
  gate.release()
  await waitFor(() => s.ipfs.isPinned(bad.cid))
  await s.tracker.recover(gone.cid)
  await waitFor(() => !s.ipfs.isPinned(gone.cid))
  await waitFor(() => s.tracker.operationCount() === 0)
})

Deno.test('recoverAll streams only what it re-queued', async () => {
  await using s = setup({}, {})
  const pinned = await localPin(s, 1)
  s.ipfs.addPin(pinned.cid)
  const missing = await localPin(s, 2)
  await localPin(s, 3, { allocations: [OTHER] })
  const recovered = await collect(s.tracker.recoverAll())
  assert.deepEqual(recovered.map((p) => [p.cid, p.status]), [[missing.cid, 'pin_queued']])
  await s.tracker.start()
  await waitFor(() => s.ipfs.isPinned(missing.cid))
})

Deno.test('start-up sync re-queues state pins missing from IPFS', async () => {
  await using s = setup()
  const pins = [
    await localPin(s, 1),
    await localPin(s, 2),
    await localPin(s, 3, { timestamp: OLD }),
  ]
  s.ipfs.addPin(pins[0].cid)
  await s.tracker.start()
  await waitFor(() => pins.every((p) => s.ipfs.isPinned(p.cid)))
  assert.equal(s.ipfs.calls.pin, 2)
  assert.deepEqual(s.ipfs.pinOrder.sort(), [pins[1].cid, pins[2].cid].sort())
})

Deno.test('the recover loop runs again every recoverIntervalMs', async () => {
  const clock = manualClock()
  await using s = setup({}, { recoverIntervalMs: 60_000, clock })
  const pin = await localPin(s, 1)
  s.ipfs.addPin(pin.cid)
  await s.tracker.start()
  // The start-up pass lists IPFS (recursive and direct pins), then the loop sleeps.
  await waitFor(() => s.ipfs.calls.pinLs === 2 && clock.pending() === 1, { what: 'the sleep' })
  s.ipfs.pins.clear() // someone ran `ipfs pin rm` behind the cluster's back
  await clock.advance(59_999)
  assert.equal(s.ipfs.calls.pinLs, 2, 'no pass before the interval')
  await clock.advance(1)
  await waitFor(() => s.ipfs.isPinned(pin.cid), { what: 'the periodic recover to re-pin' })
  assert.equal(s.ipfs.calls.pinLs, 4)
})

Deno.test('stop aborts running IPFS calls, ends every worker, and is idempotent', async () => {
  const s = setup({ concurrent_pins: 2 })
  await s.tracker.start()
  s.ipfs.holdPins() // never released: only stop can end these calls
  await s.tracker.track(await localPin(s, 1))
  await s.tracker.track(await localPin(s, 2))
  await settle()
  assert.equal(s.ipfs.concurrency.current, 2)
  await s.tracker.stop()
  assert.equal(s.ipfs.aborted, 2)
  assert.equal(s.ipfs.concurrency.current, 0)
  await s.tracker.stop()
  await assert.rejects(() => s.tracker.track(pinFor(3)), ShutdownError)
})

function pinFor(n: number): Pin {
  return { ...pinTemplate, name: `p${n}` }
}
const pinTemplate = await testPin(999, { allocations: [SELF] })

Deno.test('20,000 tracked pins all reach IPFS and leave no operation behind', async () => {
  // Its speed is measured by bench/tracker.ts, not here.
  await using s = setup()
  await s.tracker.start()
  const N = 20_000
  const now = formatTime(Date.now())
  for (let i = 0; i < N; i++) {
    await s.tracker.track(await testPin(i, { allocations: [SELF], timestamp: now }))
  }
  await waitFor(() => s.ipfs.pins.size === N, { what: 'all pins' })
  await waitFor(() => s.tracker.operationCount() === 0, { what: 'the operations to clear' })
})

Deno.test('statusAll and recoverAll stream in the state key order, operations and gone unpins included', async () => {
  await using s = setup()
  await s.tracker.start()
  const pins: Pin[] = []
  for (let i = 0; i < 12; i++) pins.push(await localPin(s, i))
  // Operations created in reverse key order: a Map keeps insertion order, the stream must not.
  const byKey = pins.map((p) => p.cid).sort()
  const gate = s.ipfs.holdPins()
  for (const cid of [...byKey].reverse()) await s.tracker.track(pins.find((p) => p.cid === cid)!)
  const queued = (await collect(s.tracker.statusAll(parseStatusFilter('queued,pinning'))))
    .map((p) => p.cid)
  assert.deepEqual(queued, byKey, 'operations-only listing')
  gate.release()
  await waitFor(() => s.tracker.operationCount() === 0)

  // Failed unpins of CIDs gone from the pinset fall among the listing's CIDs by key.
  const gone = [byKey[1], byKey[6], byKey[11]]
  for (const cid of gone) {
    s.ipfs.failUnpin.add(cid)
    const pin = pins.find((p) => p.cid === cid)!
    s.state.delete(cid)
    await s.tracker.untrack(pin)
  }
  const missing = [byKey[0], byKey[4], byKey[9]]
  for (const cid of missing) await s.ipfs.unpin(cid) // behind the cluster's back
  await waitFor(async () =>
    (await Promise.all(gone.map((c) => s.tracker.status(c)))).every((p) =>
      p.status === 'unpin_error'
    )
  )
  s.ipfs.failUnpin.clear()
  const recovered = (await collect(s.tracker.recoverAll())).map((p) => p.cid)
  assert.deepEqual(recovered, [...gone, ...missing].sort(), 'in key order')
})

Deno.test('resync: what IPFS holds and the restored pinset allocates elsewhere is unpinned, after start and before it', async () => {
  for (const before of [false, true]) {
    await using s = setup()
    // Held here; the restored pinset moved two of them to another peer.
    const kept = await localPin(s, 1)
    const moved = [await localPin(s, 2), await localPin(s, 3)]
    for (const p of [kept, ...moved]) await s.ipfs.pin(p)
    const elsewhere = await localPin(s, 4, { allocations: [OTHER] }) // never held here
    if (!before) {
      await s.tracker.start()
      await waitFor(() => !s.tracker.syncing())
    }
    for (const p of moved) s.state.put({ ...p, allocations: [OTHER] })
    s.tracker.resync()
    if (before) await s.tracker.start()
    await waitFor(() => moved.every((p) => !s.ipfs.isPinned(p.cid)), {
      what: `unpinned (${before})`,
    })
    assert.ok(s.ipfs.isPinned(kept.cid), 'what is still allocated here stays')
    assert.equal(s.ipfs.isPinned(elsewhere.cid), false)
    for (const p of moved) assert.equal((await s.tracker.status(p.cid)).status, 'remote')
  }
})

Deno.test('resync walks the state again: pins that arrived without track (a restored snapshot) are pinned', async () => {
  await using s = setup()
  await s.tracker.start()
  await waitFor(() => !s.tracker.syncing())
  // The pinset replaced wholesale: no track() for these.
  const pins = [await localPin(s, 1), await localPin(s, 2), await localPin(s, 3)]
  s.tracker.resync()
  assert.ok(s.tracker.syncing(), 'a new pass runs')
  await waitFor(() => pins.every((p) => s.ipfs.isPinned(p.cid)))
  await waitFor(() => !s.tracker.syncing())
})
