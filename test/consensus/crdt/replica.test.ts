/**
 * The replica (go-ds-crdt's Datastore) between real replicas on real Deno KV, over the in-memory
 * network of net.ts: writes, deletes and batches reach the others as delta nodes; heads, priorities
 * and hooks behave as Go's; rebroadcast, fetch failures, the dirty flag, repair and resuming a walk
 * a crash cut.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { decodeBroadcast, decodeNode } from '../../../src/consensus/crdt/codec.ts'
import { waitFor } from '../../support/wait.ts'
import { contents, CrdtNet, view } from './net.ts'

const te = new TextEncoder()
const v = (s: string) => te.encode(s)

async function nodeOf(net: CrdtNet, name: string, cid: CID) {
  const bytes = await net.nodes.get(name)!.blocks.get(cid)
  return decodeNode(cid, bytes!)
}

Deno.test('a put reaches the other replica: fetched, merged, hooks and view, one head', async () => {
  const net = new CrdtNet({ seed: 1 })
  const a = await net.add('a')
  const b = await net.add('b')
  await a.replica.put('/k', v('one'))
  assert.equal(a.sent.length, 1)
  await net.settle()
  assert.deepEqual(await contents(b.replica), [['/k', 'one']])
  assert.deepEqual(await view(b.kv), [['/k', 'one']])
  assert.deepEqual(await view(a.kv), [['/k', 'one']])
  assert.deepEqual(b.hooks.puts, [['/k', 'one']])
  assert.deepEqual(a.hooks.puts, [['/k', 'one']])
  const [ha] = await a.replica.heads()
  const [hb] = await b.replica.heads()
  assert.ok(ha.cid.equals(hb.cid))
  assert.equal(hb.height, 1)
  assert.equal(b.replica.stats().blocksFetched, 1)
  assert.equal(b.replica.stats().blocksProcessed, 1)
  // The broadcast names only the new head.
  assert.deepEqual(decodeBroadcast(a.sent[0]).map(String), [ha.cid.toString()])
  await net.stop()
})

Deno.test('a new node links every head and gets priority max height + 1', async () => {
  const net = new CrdtNet({ seed: 2 })
  const a = await net.add('a')
  const b = await net.add('b')
  net.dropRate = 1 // concurrent writes: nobody hears anybody
  await a.replica.put('/x', v('a1'))
  await a.replica.put('/x', v('a2'))
  await b.replica.put('/y', v('b1'))
  net.dropRate = 0
  await net.run(90_000) // a rebroadcast each
  const heads = await a.replica.heads()
  assert.deepEqual(heads.map((h) => h.height).sort(), [1, 2])
  await a.replica.put('/z', v('z'))
  const [top] = await a.replica.heads()
  assert.equal(top.height, 3)
  const { delta, links } = await nodeOf(net, 'a', top.cid)
  assert.equal(delta.priority, 3)
  assert.deepEqual(links.map(String).sort(), heads.map((h) => h.cid.toString()).sort())
  await net.settle()
  assert.deepEqual(await contents(b.replica), [['/x', 'a2'], ['/y', 'b1'], ['/z', 'z']])
  assert.equal((await b.replica.heads()).length, 1)
  await net.stop()
})

Deno.test('delete: tombstones every version seen; an unknown key publishes nothing; delete hook', async () => {
  const net = new CrdtNet({ seed: 3 })
  const a = await net.add('a')
  const b = await net.add('b')
  await a.replica.put('/k', v('1'))
  await net.settle()
  await b.replica.delete('/k')
  await net.settle()
  assert.deepEqual(await contents(a.replica), [])
  assert.deepEqual(await view(a.kv), [])
  assert.deepEqual(a.hooks.deletes, ['/k'])
  const sent = b.sent.length
  await b.replica.delete('/k')
  await b.replica.delete('/never')
  assert.equal(b.sent.length, sent)
  await net.stop()
})

Deno.test('concurrent put and delete: the put wins on every replica', async () => {
  const net = new CrdtNet({ seed: 4 })
  const a = await net.add('a')
  const b = await net.add('b')
  await a.replica.put('/k', v('old'))
  await net.settle()
  net.dropRate = 1
  await a.replica.delete('/k')
  await b.replica.put('/k', v('new'))
  net.dropRate = 0
  await net.run(90_000)
  assert.deepEqual(await contents(a.replica), [['/k', 'new']])
  assert.deepEqual(await contents(b.replica), [['/k', 'new']])
  assert.deepEqual(await view(a.kv), [['/k', 'new']])
  await net.stop()
})

Deno.test('commitBatch: one node and one broadcast; a delete drops pending puts; empty batch publishes nothing', async () => {
  const net = new CrdtNet({ seed: 5 })
  const a = await net.add('a')
  const b = await net.add('b')
  await a.replica.put('/gone', v('g'))
  await a.replica.commitBatch([])
  assert.equal(a.sent.length, 1)
  await a.replica.commitBatch([
    { key: '/1', value: v('one') },
    { key: '/2', value: v('two') },
    { key: '/2' }, // drops the put of /2 (no version seen: no tombstone)
    { key: '/gone' }, // tombstones the committed version
    { key: '/3', value: v('three') },
  ])
  assert.equal(a.sent.length, 2)
  const [head] = await a.replica.heads()
  const { delta } = await nodeOf(net, 'a', head.cid)
  assert.deepEqual(delta.elements.map((e) => e.key), ['/1', '/3'])
  assert.deepEqual(delta.tombstones.map((e) => e.key), ['/gone'])
  await net.settle()
  assert.deepEqual(await contents(b.replica), [['/1', 'one'], ['/3', 'three']])
  await net.stop()
})

Deno.test('commitBatch splits a delta that grows past maxBatchBytes', async () => {
  const net = new CrdtNet({ seed: 6, replica: { maxBatchBytes: 1000 } })
  const a = await net.add('a')
  const b = await net.add('b')
  const ops = Array.from(
    { length: 30 },
    (_, i) => ({ key: `/k${String(i).padStart(2, '0')}`, value: v('x'.repeat(90)) }),
  )
  await a.replica.commitBatch(ops)
  assert.ok(a.sent.length >= 3, `${a.sent.length} deltas`)
  const [head] = await a.replica.heads()
  assert.equal(head.height, a.sent.length)
  await net.settle()
  assert.equal((await contents(b.replica)).length, 30)
  await net.stop()
})

Deno.test('rebroadcast every interval ±30 %, leaving out heads received since the last one', async () => {
  const net = new CrdtNet({ seed: 7 })
  const a = await net.add('a')
  const b = await net.add('b')
  await a.replica.put('/k', v('1'))
  await net.settle()
  const sentA = a.sent.length
  const sentB = b.sent.length
  // Both draw their jitter from the PRNG; by 78 s (60 s + 30 %) both timers fired once.
  await net.run(78_000, 1_000)
  assert.equal(a.sent.length, sentA + 1) // a's own head
  assert.equal(b.sent.length, sentB) // b received that head from a: not re-announced
  await net.run(80_000, 1_000)
  assert.ok(b.sent.length > sentB) // the second round re-announces it
  await net.stop()
})

Deno.test('a late replica catches up from the heads a rebroadcast announces', async () => {
  const net = new CrdtNet({ seed: 8 })
  const a = await net.add('a')
  for (let i = 0; i < 20; i++) await a.replica.put(`/k${i}`, v(`v${i}`))
  await a.replica.delete('/k3')
  const late = await net.add('late')
  assert.deepEqual(await contents(late.replica), [])
  await net.run(80_000)
  assert.deepEqual(await contents(late.replica), await contents(a.replica))
  assert.deepEqual(await view(late.kv), await contents(a.replica))
  assert.equal(late.replica.stats().blocksFetched, 21)
  await net.stop()
})

Deno.test('a failed fetch of the head is dropped (clean) and retried on the next broadcast', async () => {
  const net = new CrdtNet({ seed: 9 })
  const a = await net.add('a')
  const b = await net.add('b')
  net.fetchFailRate = 1
  await a.replica.put('/k', v('1'))
  await net.settle()
  assert.deepEqual(await contents(b.replica), [])
  assert.equal(b.replica.stats().dirty, false)
  net.fetchFailRate = 0
  await net.run(80_000)
  assert.deepEqual(await contents(b.replica), [['/k', '1']])
  await net.stop()
})

Deno.test('a failed fetch deeper marks the store dirty; the repair loop fetches it and marks clean', async () => {
  const net = new CrdtNet({ seed: 10, replica: { repairIntervalMs: 600_000 } })
  const a = await net.add('a')
  const b = await net.add('b')
  net.dropRate = 1
  await a.replica.put('/1', v('1'))
  const [first] = await a.replica.heads()
  await a.replica.put('/2', v('2'))
  net.dropRate = 0
  net.hang.add(first.cid.toString())
  await a.replica.put('/3', v('3'))
  // b walks /3 → /2 → /1; the fetch of /1 hangs until the DAG syncer timeout.
  await waitFor(() => b.fetched.includes(first.cid.toString()), { what: 'the fetch of /1' })
  await net.clock.advance(120_000)
  await net.settle()
  assert.equal(b.replica.stats().dirty, true)
  assert.deepEqual(await contents(b.replica), [['/2', '2'], ['/3', '3']])
  net.hang.clear()
  await net.run(600_000, 60_000)
  assert.equal(b.replica.stats().dirty, false)
  assert.deepEqual(await contents(b.replica), [['/1', '1'], ['/2', '2'], ['/3', '3']])
  await net.stop()
})

Deno.test('a walk cut by a stop resumes when the replica starts again on the same KV', async () => {
  const net = new CrdtNet({ seed: 11, replica: { repairIntervalMs: 0 } })
  const a = await net.add('a')
  net.dropRate = 1
  for (let i = 0; i < 5; i++) await a.replica.put(`/k${i}`, v(`${i}`))
  const [top] = await a.replica.heads()
  const second = (await nodeOf(net, 'a', top.cid)).links[0]
  const third = (await nodeOf(net, 'a', second)).links[0]
  net.dropRate = 0
  const b = await net.add('b')
  net.hang.add(third.toString())
  // b walks down from /k5: merges /k5, /k4 and /k3, then waits on /k2.
  await a.replica.put('/k5', v('5'))
  await waitFor(() => b.fetched.includes(third.toString()), { what: 'the fetch of /k2' })
  assert.equal(b.replica.stats().blocksProcessed, 3)
  await net.remove('b', false) // the "crash": the walk is aborted
  net.hang.clear()
  const b2 = await net.add('b2', b.kv)
  await net.settle()
  assert.deepEqual(await contents(b2.replica), await contents(a.replica))
  assert.equal(b2.replica.stats().dirty, false)
  await net.stop()
})

Deno.test('group commit: single writes made while a delta commits share the next one; the last write of a key wins; an aborted queued write leaves', async () => {
  const net = new CrdtNet({ seed: 11 })
  const a = await net.add('a')
  const b = await net.add('b')
  // The first write commits on its own; the ones made meanwhile queue behind it.
  const first = a.replica.put('/first', v('1'))
  const ac = new AbortController()
  const queued = [
    a.replica.put('/k', v('zzz-older')),
    a.replica.put('/k', v('aaa-newer')), // byte-wise smaller: only the order can make it win
    a.replica.put('/other', v('o')),
    a.replica.delete('/first'),
  ]
  const aborted = assert.rejects(a.replica.put('/gone', v('never'), ac.signal), /caller gave up/)
  ac.abort(new Error('caller gave up'))
  await aborted
  await first
  await Promise.all(queued)
  assert.equal(a.sent.length, 2, 'one delta for the first write, one for the four queued')
  const [top] = await a.replica.heads()
  assert.equal(top.height, 2)
  const { delta } = await nodeOf(net, 'a', top.cid)
  assert.deepEqual(delta.elements.map((e) => e.key).sort(), ['/k', '/other'])
  assert.deepEqual(delta.tombstones.map((t) => t.key), ['/first'])
  await net.settle()
  for (const r of [a, b]) {
    assert.deepEqual(await contents(r.replica), [['/k', 'aaa-newer'], ['/other', 'o']])
  }
  await net.stop()
})

Deno.test('hooks.merged: one mutation per merged delta that changed keys, however many keys it changed', async () => {
  const net = new CrdtNet({ seed: 12 })
  const a = await net.add('a')
  const b = await net.add('b')
  const merges = async (n: { kv: Deno.Kv }) => (await n.kv.get<number>(['merges'])).value
  await a.replica.commitBatch([{ key: '/x', value: v('1') }, { key: '/y', value: v('2') }])
  await net.settle()
  assert.equal(await merges(a), 1)
  assert.equal(await merges(b), 1)
  // A re-put of the same value is a new version (a higher priority): it changes the key again.
  await a.replica.put('/x', v('1'))
  await net.settle()
  assert.equal(await merges(b), 2)
  await net.stop()
})
