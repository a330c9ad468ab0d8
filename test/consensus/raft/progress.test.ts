/**
 * Building blocks: flow control windows, quorum arithmetic, follower progress and log lookups.
 */
import assert from 'node:assert/strict'
import { MemoryStorage, RaftInvariantError } from '../../../src/consensus/raft/core/mod.ts'
import { RaftLog } from '../../../src/consensus/raft/core/log.ts'
import { Inflights, Progress, ProgressTracker } from '../../../src/consensus/raft/core/progress.ts'

Deno.test('inflights: a bounded ring freed by acknowledgements, wrapping around', () => {
  const w = new Inflights(3)
  w.add(1, 10)
  w.add(2, 10)
  w.add(3, 10)
  assert.equal(w.full(), true)
  assert.throws(() => w.add(4, 10))
  w.freeLE(2)
  assert.equal(w.count(), 1)
  w.add(4, 10)
  w.add(5, 10)
  assert.equal(w.full(), true)
  w.freeLE(5)
  assert.equal(w.count(), 0)
  const bytes = new Inflights(100, 25)
  bytes.add(1, 20)
  assert.equal(bytes.full(), false)
  bytes.add(2, 20)
  assert.equal(bytes.full(), true, 'the byte budget also closes the window')
})

Deno.test('quorum: the commit index is the match of the median voter', () => {
  const t = new ProgressTracker(4, 0)
  t.applyConf({ voters: ['a', 'b', 'c', 'd', 'e'], learners: ['l'] }, 1)
  const set = (id: string, m: number) => (t.progress.get(id)!.match = m)
  set('a', 9)
  set('b', 7)
  set('c', 5)
  set('d', 2)
  set('e', 1)
  set('l', 100)
  assert.equal(t.committed(), 5, 'three of five hold 5; the learner does not count')
  t.applyConf({ voters: ['a', 'b', 'c', 'd'], learners: [] }, 1)
  assert.equal(t.committed(), 5, 'with four voters, three must hold it')
  t.resetVotes()
  t.recordVote('a', true)
  t.recordVote('b', false)
  assert.equal(t.tallyVotes().result, 'pending')
  t.recordVote('b', true)
  assert.equal(t.tallyVotes().result, 'pending', 'a first answer sticks')
  t.recordVote('c', false)
  assert.equal(t.tallyVotes().result, 'lost', 'two of four against: no majority possible')
})

Deno.test('progress: probing walks back on rejections, replication pipelines', () => {
  const p = new Progress(10, 2, 0, false)
  assert.equal(p.maybeDecrTo(5, 3), false, 'an answer to an older probe is ignored')
  assert.equal(p.maybeDecrTo(9, 3), true)
  assert.equal(p.next, 4, 'jumps to the hint')
  p.sentEntries(1, 4, 10)
  assert.equal(p.isPaused(), true, 'one probe at a time')
  p.maybeUpdate(4)
  p.becomeReplicate()
  p.sentEntries(2, 6, 10)
  p.sentEntries(2, 8, 10)
  assert.equal(p.isPaused(), true, 'the window of two is full')
  assert.equal(p.next, 9)
  assert.equal(p.maybeDecrTo(3, 0), false, 'a stale rejection below match')
  p.becomeSnapshot(50)
  assert.equal(p.isPaused(), true)
  p.becomeProbe()
  assert.equal(p.next, 51, 'after a snapshot, probe just past it')
})

Deno.test('log: findConflictByTerm skips a whole term, maybeAppend never rewrites the committed prefix', () => {
  const s = MemoryStorage.bootstrap(['a'])
  s.append([1, 1, 2, 2, 2, 4, 4].map((term, i) => ({
    term,
    index: i + 1,
    type: 'normal' as const,
    data: new Uint8Array(),
  })))
  const log = new RaftLog(s, Infinity)
  assert.deepEqual(log.findConflictByTerm(7, 3), [5, 2])
  assert.deepEqual(log.findConflictByTerm(7, 4), [7, 4])
  assert.deepEqual(log.findConflictByTerm(9, 4), [9, 0], 'beyond our log: unknown term')
  assert.equal(log.isUpToDate(7, 4), true)
  assert.equal(log.isUpToDate(8, 3), false, 'a higher last term wins over a longer log')
  log.commitTo(5)
  assert.throws(
    () => log.maybeAppend(3, 2, 5, [{ term: 3, index: 4, type: 'normal', data: new Uint8Array() }]),
    RaftInvariantError,
  )
  const r = log.maybeAppend(5, 2, 5, [{
    term: 5,
    index: 6,
    type: 'normal',
    data: new Uint8Array(),
  }])
  assert.equal(r?.lastNew, 6)
  assert.equal(log.lastIndex(), 6, 'the conflicting term-4 suffix was replaced')
  assert.throws(() => log.commitTo(9), RaftInvariantError)
})
