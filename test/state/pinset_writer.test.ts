/**
 * The pinset's one writer: the state's filter hears of a pin before the commit that writes it,
 * whoever writes (Raft's groups or `apply`), and a filter rebuilt meanwhile too; `clear` takes the applied index and the tracker's
 * mark with the pins, and no mark is recorded after it.
 */
import assert from 'node:assert/strict'
import { commitPlan, planCommits } from '../../src/state/kv_batch.ts'
import { kvState } from '../../src/state/kv_state.ts'
import { PinsetWriter } from '../../src/state/pinset_writer.ts'
import { encodePin, newPin, storedPin } from '../../src/types/pin.ts'

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const json = (cid: string) => new TextEncoder().encode(encodePin(storedPin(newPin(cid))))

Deno.test('a mutation of the writer tells the state before it is committed', async () => {
  const kv = await Deno.openKv(':memory:')
  try {
    const heard: string[] = []
    const w = new PinsetWriter(kv, { willWrite: (cid) => heard.push(cid) })
    const group = { mutations: [w.pin(CID, json(CID))], mark: w.appliedMark(3) }
    assert.deepEqual(heard, [CID], 'told while building the group, before any commit')
    assert.equal((await kv.get(['pin', CID])).value, null)
    await commitPlan(kv, planCommits([group]))
    const state = kvState(kv)
    assert.equal((await state.get(CID))?.cid, CID)
    assert.equal(await state.appliedIndex(), 3)
    await commitPlan(kv, planCommits([{ mutations: [w.unpin(CID)], mark: w.appliedMark(4) }]))
    assert.equal(await state.has(CID), false)
    assert.equal(await w.storedApplied(), 4)
  } finally {
    kv.close()
  }
})

Deno.test('a filter built while a write is in flight still knows its key', async () => {
  const kv = await Deno.openKv(':memory:')
  try {
    const state = kvState(kv)
    // Announced (a Ready staged it), not committed yet: a read then loads the filter, whose
    // scan cannot see the key; the commit lands after the scan.
    const group = {
      mutations: [state.writer.pin(CID, json(CID))],
      mark: state.writer.appliedMark(1),
    }
    assert.equal(await state.has(CID), false)
    await state.loadFilter()
    await commitPlan(kv, planCommits([group]))
    state.writer.written()
    assert.equal(await state.has(CID), true, 'the rebuilt filter was told of the key in flight')
    // Once written, a later rebuild finds it by scanning.
    await state.loadFilter()
    assert.equal(await state.has(CID), true)
  } finally {
    kv.close()
  }
})

Deno.test('clear drops pins, applied index and mark; no mark is recorded after it', async () => {
  const kv = await Deno.openKv(':memory:')
  try {
    const state = kvState(kv)
    await state.apply([{ type: 'pin', pin: newPin(CID) }], 5)
    await state.putSyncMark('m1')
    assert.equal(await state.takeSyncMark(), 'm1')
    await state.putSyncMark('m2')
    await state.clear()
    assert.equal(await state.count(), 0)
    assert.equal(await state.writer.storedApplied(), null)
    assert.equal(await state.takeSyncMark(), undefined, 'the mark went with the pinset')
    await state.putSyncMark('m3')
    assert.equal(await state.takeSyncMark(), undefined, 'refused after a clear')
  } finally {
    kv.close()
  }
})
