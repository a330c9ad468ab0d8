/**
 * The Add-Wins OR-set rules of go-ds-crdt (crdt-interop.md §2.5) on real Deno KV: deltas are real
 * dag-pb nodes stored in the KV blockstore, merged with planMerge and committed as the replica does.
 */
import assert from 'node:assert/strict'
import { type CID } from 'multiformats/cid'
import { blockId, type Delta, type Element, encodeNode } from '../../../src/consensus/crdt/codec.ts'
import { kvBlockstore } from '../../../src/consensus/crdt/blockstore.ts'
import {
  INLINE_MAX,
  type KeyChange,
  kvSetReader,
  listValues,
  planMerge,
  removal,
  valueOf,
} from '../../../src/consensus/crdt/set.ts'
import { commitPlan, planCommits } from '../../../src/state/kv_batch.ts'

const te = new TextEncoder()
const td = new TextDecoder()
const b = (s: string) => te.encode(s)

async function store() {
  const kv = await Deno.openKv(':memory:')
  const blocks = kvBlockstore(kv)
  let n = 0
  /** Stores a node for the delta and merges it; returns its CID and the per-key changes. */
  const merge = async (
    d: { elements?: Element[]; tombstones?: Element[]; priority: number },
  ): Promise<{ cid: CID; changes: Map<string, KeyChange> }> => {
    // A distinct link per node keeps equal deltas apart (their ids must differ, as in a real DAG).
    const delta: Delta = {
      elements: d.elements ?? [],
      tombstones: d.tombstones ?? [],
      priority: d.priority,
    }
    const salt = await encodeNode({ elements: [], tombstones: [], priority: ++n }, [])
    const { cid, bytes } = await encodeNode(delta, [salt.cid])
    await blocks.put(cid, bytes)
    const changes = await planMerge(kvSetReader(kv, blocks), delta, blockId(cid), cid)
    await commitPlan(
      kv,
      planCommits([...changes.values()].map((c) => ({ mutations: c.mutations }))),
    )
    return { cid, changes }
  }
  const get = async (key: string) => {
    const v = await valueOf(kv, blocks, key)
    return v === undefined ? undefined : td.decode(v)
  }
  return { kv, blocks, merge, get }
}
const put = (key: string, value: string): Element => ({ key, id: '', value: b(value) })
const tomb = (key: string, cid: CID): Element => ({
  key,
  id: blockId(cid),
  value: new Uint8Array(),
})

Deno.test('add wins over a concurrent remove, in either order', async () => {
  for (const order of ['remove-first', 'add-first']) {
    const s = await store()
    const a = await s.merge({ elements: [put('/k', 'a')], priority: 1 })
    const rm = { tombstones: [tomb('/k', a.cid)], priority: 2 }
    const add = { elements: [put('/k', 'b')], priority: 2 }
    if (order === 'remove-first') {
      await s.merge(rm)
      await s.merge(add)
    } else {
      await s.merge(add)
      await s.merge(rm)
    }
    assert.equal(await s.get('/k'), 'b', order)
    s.kv.close()
  }
})

Deno.test('higher priority wins whatever the order; a lower one does not replace it', async () => {
  const s = await store()
  const hi = await s.merge({ elements: [put('/k', 'aaa')], priority: 5 })
  assert.equal(hi.changes.get('/k')!.put !== undefined, true)
  const lo = await s.merge({ elements: [put('/k', 'zzz')], priority: 3 })
  assert.equal(await s.get('/k'), 'aaa')
  assert.equal(lo.changes.get('/k')!.changed, false)
  assert.equal(lo.changes.get('/k')!.put, undefined)
  // The lower version is still a version: removing the winner brings it back.
  const rm = await s.merge({ tombstones: [tomb('/k', hi.cid)], priority: 6 })
  assert.equal(await s.get('/k'), 'zzz')
  assert.equal(rm.changes.get('/k')!.changed, true)
  assert.equal(rm.changes.get('/k')!.deleted, true)
  assert.equal(td.decode(rm.changes.get('/k')!.value!), 'zzz')
})

Deno.test('equal priority: the byte-wise greater value wins, in either order and within one delta', async () => {
  for (const [x, y] of [['b', 'ab'], ['ab', 'b']]) {
    const s = await store()
    await s.merge({ elements: [put('/k', x)], priority: 2 })
    await s.merge({ elements: [put('/k', y)], priority: 2 })
    assert.equal(await s.get('/k'), 'b')
    s.kv.close()
  }
  const s = await store()
  const one = await s.merge({
    elements: [put('/k', 'x'), put('/k', 'y'), put('/k', 'w')],
    priority: 1,
  })
  assert.equal(await s.get('/k'), 'y')
  assert.equal(td.decode(one.changes.get('/k')!.put!), 'y')
})

Deno.test('a tombstone that arrives before its element keeps that version out; a new add comes back', async () => {
  const s = await store()
  // Build the add node without merging it, tombstone it first.
  const addDelta: Delta = { elements: [put('/k', 'v1')], tombstones: [], priority: 1 }
  const add = await encodeNode(addDelta, [])
  await s.blocks.put(add.cid, add.bytes)
  const t = await s.merge({ tombstones: [tomb('/k', add.cid)], priority: 2 })
  assert.equal(t.changes.get('/k')!.deleted, true)
  const late = await planMerge(kvSetReader(s.kv, s.blocks), addDelta, blockId(add.cid), add.cid)
  await commitPlan(s.kv, planCommits([...late.values()].map((c) => ({ mutations: c.mutations }))))
  assert.equal(await s.get('/k'), undefined)
  assert.equal(late.get('/k')!.put, undefined)
  assert.deepEqual(await removal(s.kv, '/k'), []) // nothing live to remove
  await s.merge({ elements: [put('/k', 'v2')], priority: 3 })
  assert.equal(await s.get('/k'), 'v2')
})

Deno.test('removing tombstones every live version; the delete hook fires once per key', async () => {
  const s = await store()
  const v1 = await s.merge({ elements: [put('/k', 'a')], priority: 1 })
  const v2 = await s.merge({ elements: [put('/k', 'b')], priority: 1 })
  await s.merge({ elements: [put('/j', 'j')], priority: 1 })
  const tombs = await removal(s.kv, '/k')
  assert.deepEqual(tombs.map((t) => t.id).sort(), [blockId(v1.cid), blockId(v2.cid)].sort())
  const rm = await s.merge({ tombstones: tombs, priority: 2 })
  assert.equal(rm.changes.size, 1)
  const c = rm.changes.get('/k')!
  assert.equal(c.deleted, true)
  assert.equal(c.changed, true)
  assert.equal(c.value, undefined)
  assert.equal(await s.get('/k'), undefined)
  const listed = []
  for await (const e of listValues(s.kv, s.blocks)) listed.push([e.key, td.decode(e.value)])
  assert.deepEqual(listed, [['/j', 'j']])
})

Deno.test('a tombstone of a losing version: delete hook fires, the value stays unchanged', async () => {
  const s = await store()
  const lo = await s.merge({ elements: [put('/k', 'lo')], priority: 1 })
  await s.merge({ elements: [put('/k', 'hi')], priority: 4 })
  const rm = await s.merge({ tombstones: [tomb('/k', lo.cid)], priority: 5 })
  const c = rm.changes.get('/k')!
  assert.equal(c.deleted, true)
  assert.equal(c.changed, false)
  assert.equal(await s.get('/k'), 'hi')
})

Deno.test('a delta removing then re-adding a key (a batch): tombstones first, then the new element', async () => {
  const s = await store()
  const v1 = await s.merge({ elements: [put('/k', 'zzz')], priority: 1 })
  const both = await s.merge({
    tombstones: [tomb('/k', v1.cid)],
    elements: [put('/k', 'aaa')],
    priority: 2,
  })
  const c = both.changes.get('/k')!
  assert.equal(c.deleted, true)
  assert.equal(td.decode(c.put!), 'aaa')
  assert.equal(await s.get('/k'), 'aaa')
})

Deno.test('merging a delta twice changes nothing the second time', async () => {
  const s = await store()
  const delta: Delta = { elements: [put('/k', 'a'), put('/l', 'b')], tombstones: [], priority: 1 }
  const { cid, bytes } = await encodeNode(delta, [])
  await s.blocks.put(cid, bytes)
  const reader = kvSetReader(s.kv, s.blocks)
  const first = await planMerge(reader, delta, blockId(cid), cid)
  await commitPlan(s.kv, planCommits([...first.values()].map((c) => ({ mutations: c.mutations }))))
  const again = await planMerge(reader, delta, blockId(cid), cid)
  for (const c of again.values()) {
    assert.equal(c.changed, false)
    assert.equal(c.put, undefined)
  }
})

Deno.test('values too large for one KV value are read back from their delta node', async () => {
  const s = await store()
  const big = 'x'.repeat(INLINE_MAX + 10)
  const v = await s.merge({ elements: [put('/big', big)], priority: 1 })
  assert.equal(await s.get('/big'), big)
  await s.merge({ elements: [put('/big', 'small')], priority: 2 })
  assert.equal(await s.get('/big'), 'small')
  const other = await s.merge({ elements: [put('/big', 'other')], priority: 3 })
  // Removing the top version recomputes from the survivors, one of them only in its node.
  const t = await removal(s.kv, '/big')
  assert.equal(t.length, 3)
  await s.merge({
    tombstones: [
      tomb('/big', other.cid),
      t.find((e) => e.id !== blockId(v.cid) && e.id !== blockId(other.cid))!,
    ],
    priority: 4,
  })
  assert.equal(await s.get('/big'), big)
  s.kv.close()
})
