/**
 * Snapshots and compaction: a follower behind the compacted log receives the leader's snapshot
 * as a stream of chunks; a torn stream is never installed.
 */
import assert from 'node:assert/strict'
import { MemoryStorage, RaftNode } from '../../../src/consensus/raft/core/mod.ts'
import { TestCluster } from './harness.ts'

function lagging(): TestCluster {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'first')
  c.crash('c')
  for (let i = 0; i < 20; i++) c.propose('a', `entry-${i}`)
  c.compact('a')
  c.compact('b')
  return c
}

const expected = ['first', ...Array.from({ length: 20 }, (_, i) => `entry-${i}`)]

Deno.test('a follower behind the compacted log gets the snapshot in chunks and catches up', () => {
  const c = lagging()
  assert.ok(c.get('a').storage.firstIndex() > c.get('c').storage.lastIndex() + 1)
  let chunks = 0
  c.filter = (m) => {
    if (m.type === 'snapshotChunk') chunks++
    return true
  }
  c.restart('c')
  c.tick(3)
  assert.ok(chunks > 3, `the snapshot travelled in ${chunks} chunks`)
  assert.deepEqual(c.get('c').state, expected)
  assert.equal(c.get('c').storage.snapshot().index, c.get('a').storage.snapshot().index)
  c.propose('a', 'after')
  assert.deepEqual(c.get('c').state, [...expected, 'after'], 'replication resumes from the log')
})

Deno.test('a torn snapshot stream is never installed; the leader retries', () => {
  const c = lagging()
  let streams = 0
  c.filter = (m) => {
    if (m.type !== 'snapshotChunk') return true
    if (m.chunkIndex === 0) streams++
    // The first stream loses its second chunk.
    return !(streams === 1 && m.chunkIndex === 1)
  }
  c.restart('c')
  c.stabilize()
  assert.equal(c.get('c').storage.snapshot().index, 0, 'nothing installed from the torn stream')
  assert.deepEqual(c.get('c').state, ['first'], 'only what c had before')
  c.tick(3)
  assert.equal(streams, 2, 'after the failure report, the leader asked for a second stream')
  assert.deepEqual(c.get('c').state, expected)
})

Deno.test('a restarted node recovers its state from its snapshot and log', () => {
  const c = lagging()
  c.restart('c')
  c.tick(3)
  c.propose('a', 'tail')
  c.crash('c')
  c.restart('c')
  assert.deepEqual(
    c.get('c').state,
    expected,
    'the snapshot is the state; entries after it are replayed',
  )
  c.tick(1)
  assert.deepEqual(c.get('c').state, [...expected, 'tail'])
})

Deno.test('snapshot metadata records the membership at its index', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
  c.addJoiningNode('d')
  c.stabilize()
  const before = c.node('a').snapshotMetaAt(2)
  const after = c.node('a').snapshotMetaAt(c.node('a').status().commit)
  assert.deepEqual(before.confState, { voters: ['a', 'b', 'c'], learners: [] })
  assert.deepEqual(after.confState, { voters: ['a', 'b', 'c'], learners: ['d'] })
})

Deno.test('a node restarts exactly from persisted state (hard state, snapshot, entries)', () => {
  const c = lagging()
  const s = c.get('a').storage
  const image = MemoryStorage.fromPersisted(s.persisted())
  const node = new RaftNode({ id: 'a', storage: image, rand: () => 0 })
  const st = node.status()
  const hs = s.initialState()
  assert.equal(st.term, hs.term)
  assert.equal(st.vote, hs.vote)
  assert.equal(st.commit, hs.commit)
  assert.equal(st.applied, s.snapshot().index, 'applied restarts at the snapshot')
  assert.equal(st.firstIndex, s.firstIndex())
  assert.equal(st.lastIndex, s.lastIndex())
  const rd = node.ready()
  assert.deepEqual(
    rd.committedEntries.map((e) => e.index),
    Array.from({ length: hs.commit - s.snapshot().index }, (_, i) => s.snapshot().index + 1 + i),
    'committed entries after the snapshot are handed out again',
  )
})
