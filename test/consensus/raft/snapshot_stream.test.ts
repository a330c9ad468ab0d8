/**
 * The chunked InstallSnapshot stream: a receiver only ever completes a whole, in-order stream.
 */
import assert from 'node:assert/strict'
import {
  MemorySnapshotAssembler,
  type SnapshotChunk,
  snapshotChunks,
  type SnapshotMessage,
  SnapshotReceiver,
} from '../../../src/consensus/raft/core/mod.ts'

const msg: SnapshotMessage = {
  type: 'snapshot',
  from: 'a',
  to: 'b',
  term: 3,
  snapshot: { index: 40, term: 2, confState: { voters: ['a', 'b'], learners: [] } },
}
const data = Uint8Array.from({ length: 100 }, (_, i) => i)
const chunks = (streamId = 1) => [...snapshotChunks(msg, streamId, data, 30)]

Deno.test('chunking: offsets add up, the last chunk is marked done, even an empty snapshot is one chunk', () => {
  const cs = chunks()
  assert.deepEqual(cs.map((c) => [c.chunkIndex, c.offset, c.data.length, c.done]), [
    [0, 0, 30, false],
    [1, 30, 30, false],
    [2, 60, 30, false],
    [3, 90, 10, true],
  ])
  const empty = [...snapshotChunks(msg, 1, new Uint8Array(), 30)]
  assert.equal(empty.length, 1)
  assert.equal(empty[0].done, true)
  assert.throws(() => [...snapshotChunks(msg, 1, data, 0)], RangeError)
})

Deno.test('a whole stream completes with the original message and data', () => {
  const a = new MemorySnapshotAssembler('b')
  const cs = chunks()
  for (const c of cs.slice(0, -1)) assert.equal(a.receive(c), undefined)
  const done = a.receive(cs.at(-1)!)
  assert.deepEqual(done?.message, msg)
  assert.deepEqual(done?.data, data)
})

Deno.test('a missing chunk tears the stream: nothing completes, even when "done" arrives', () => {
  const a = new MemorySnapshotAssembler('b')
  const cs = chunks()
  a.receive(cs[0])
  a.receive(cs[2])
  assert.equal(a.receive(cs[3]), undefined)
  const r = new SnapshotReceiver('b')
  r.accept(cs[0])
  assert.deepEqual(r.accept(cs[2]), { action: 'reject', reason: 'chunk 2 at 60 out of sequence' })
})

Deno.test('duplicates and late chunks of an old stream are ignored', () => {
  const r = new SnapshotReceiver('b')
  const old = chunks(1)
  const cur = chunks(2)
  assert.deepEqual(r.accept(old[0]), { action: 'store', restart: true })
  assert.deepEqual(r.accept(old[0]), { action: 'ignore' })
  assert.deepEqual(r.accept(cur[0]), { action: 'store', restart: true }, 'a new stream supersedes')
  assert.deepEqual(r.accept(old[1]), { action: 'ignore' }, 'late chunk of the old stream')
  assert.deepEqual(r.accept(cur[1]), { action: 'store', restart: false })
  assert.deepEqual(r.accept(cur[1]), { action: 'ignore' })
  r.accept(cur[2])
  const v = r.accept(cur[3])
  assert.ok(v.action === 'store' && v.complete)
  assert.deepEqual(r.accept(cur[3]), { action: 'ignore' }, 'a finished stream stays finished')
})

Deno.test('chunks that do not fit their stream, or are malformed, are rejected', () => {
  const r = new SnapshotReceiver('b')
  const cs = chunks()
  r.accept(cs[0])
  const other: SnapshotChunk = { ...cs[1], snapshot: { ...cs[1].snapshot, index: 41 } }
  assert.equal(r.accept(other).action, 'reject')
  assert.equal(r.accept({ ...cs[0], offset: 5 }).action, 'reject')
  assert.equal(r.accept({ ...cs[0], to: 'c' }).action, 'reject')
  assert.equal(r.accept({ ...cs[0], data: 'x' as never }).action, 'reject')
})

Deno.test('abort discards a stream in progress', () => {
  const a = new MemorySnapshotAssembler('b')
  const cs = chunks()
  a.receive(cs[0])
  a.receive(cs[1])
  a.abort('a')
  a.receive(cs[2])
  assert.equal(a.receive(cs[3]), undefined)
})
