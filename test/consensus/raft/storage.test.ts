/**
 * MemoryStorage: the reference implementation of the Storage contract the Deno KV adapter must
 * also honour.
 */
import assert from 'node:assert/strict'
import {
  CompactedError,
  type Entry,
  MemoryStorage,
  RaftInvariantError,
  SnapshotOutOfDateError,
  UnavailableError,
} from '../../../src/consensus/raft/core/mod.ts'

const ents = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    term,
    index: from + i,
    type: 'normal' as const,
    data: new Uint8Array([from + i]),
  }))

const conf = { voters: ['a'], learners: [] }

Deno.test('an empty log: firstIndex 1, lastIndex 0, term(0) = 0', () => {
  const s = MemoryStorage.bootstrap(['a'])
  assert.equal(s.firstIndex(), 1)
  assert.equal(s.lastIndex(), 0)
  assert.equal(s.term(0), 0)
  assert.deepEqual(s.initialState(), { term: 0, vote: null, commit: 0 })
  assert.deepEqual(s.snapshot(), { index: 0, term: 0, confState: conf })
  assert.deepEqual(MemoryStorage.joining().snapshot().confState, { voters: [], learners: [] })
})

Deno.test('append replaces the suffix from the first new entry on', () => {
  const s = MemoryStorage.bootstrap(['a'])
  s.append(ents(1, 5, 1))
  s.append(ents(3, 4, 2))
  assert.equal(s.lastIndex(), 4, 'entry 5 of the old suffix is gone')
  assert.deepEqual([1, 2, 3, 4].map((i) => s.term(i)), [1, 1, 2, 2])
  assert.throws(() => s.append(ents(7, 7, 2)), RaftInvariantError, 'a gap is refused')
})

Deno.test('entries and term enforce their bounds', () => {
  const s = MemoryStorage.bootstrap(['a'])
  s.append(ents(1, 10, 1))
  assert.equal(s.entries(2, 5, Infinity).length, 3)
  assert.equal(s.entries(2, 11, 1).length, 1, 'always at least one entry, whatever maxSize')
  assert.equal(s.entries(2, 11, 40).length, 2, 'sizes count payload plus overhead (17 bytes each)')
  assert.throws(() => s.entries(2, 12, Infinity), UnavailableError)
  assert.throws(() => s.term(11), UnavailableError)
  s.createSnapshot({ index: 5, term: 1, confState: conf }, new Uint8Array([42]))
  s.compact(4)
  assert.equal(s.firstIndex(), 5)
  assert.equal(s.term(4), 1, 'the dummy position keeps its term')
  assert.throws(() => s.term(3), CompactedError)
  assert.throws(() => s.entries(4, 6, Infinity), CompactedError)
})

Deno.test('snapshots: created from the log, installed from a leader, never going back', () => {
  const s = MemoryStorage.bootstrap(['a'])
  s.append(ents(1, 10, 2))
  assert.throws(
    () => s.createSnapshot({ index: 4, term: 1, confState: conf }),
    RaftInvariantError,
    'the term must match the log',
  )
  assert.throws(() => s.compact(4), RaftInvariantError, 'never compact past the snapshot')
  s.createSnapshot({ index: 6, term: 2, confState: conf }, new Uint8Array([6]))
  assert.throws(
    () => s.createSnapshot({ index: 5, term: 2, confState: conf }),
    SnapshotOutOfDateError,
  )
  s.applySnapshot({ index: 20, term: 3, confState: conf }, new Uint8Array([20]))
  assert.equal(s.firstIndex(), 21)
  assert.equal(s.lastIndex(), 20)
  assert.equal(s.term(20), 3)
  assert.deepEqual(s.snapshotData(), new Uint8Array([20]))
  assert.throws(
    () => s.applySnapshot({ index: 20, term: 3, confState: conf }),
    SnapshotOutOfDateError,
  )
})

Deno.test('persisted() and fromPersisted() round-trip everything durable', () => {
  const s = MemoryStorage.bootstrap(['a'])
  s.append(ents(1, 8, 1))
  s.setHardState({ term: 1, vote: 'a', commit: 7 })
  s.createSnapshot({ index: 5, term: 1, confState: conf }, new Uint8Array([5]))
  s.compact(3)
  const t = MemoryStorage.fromPersisted(s.persisted())
  assert.deepEqual(t.initialState(), s.initialState())
  assert.deepEqual(t.snapshot(), s.snapshot())
  assert.deepEqual(t.snapshotData(), s.snapshotData())
  assert.equal(t.firstIndex(), 4)
  assert.equal(t.term(3), 1)
  assert.deepEqual(t.entries(4, 9, Infinity), s.entries(4, 9, Infinity))
})
