/**
 * Log replication: quorum commit, the current-term rule, durability before counting, batching,
 * flow control and fast repair of divergent logs.
 */
import assert from 'node:assert/strict'
import {
  type AppendMessage,
  type AppendResponse,
  MemoryStorage,
  RaftNode,
} from '../../../src/consensus/raft/core/mod.ts'
import { drain, enc, lone, TestCluster } from './harness.ts'

Deno.test('an entry commits once a majority stores it, and every node applies it in order', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'])
  c.elect('a')
  for (const x of ['1', '2', '3']) c.propose('a', x)
  for (const id of ['a', 'b', 'c', 'd', 'e']) assert.deepEqual(c.get(id).state, ['1', '2', '3'])
})

Deno.test('a leader cut off with a minority cannot commit', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'])
  c.elect('a')
  c.propose('a', 'ok')
  c.partition(['a', 'b'], ['c', 'd', 'e'])
  const before = c.node('a').status().commit
  c.propose('a', 'stuck')
  c.tick(5, ['a', 'b'])
  assert.equal(c.node('a').status().commit, before)
  assert.deepEqual(c.get('a').state, ['ok'])
  assert.deepEqual(c.get('b').state, ['ok'])
})

Deno.test('§5.4.2: a leader does not commit an entry of an earlier term by counting replicas', () => {
  // a restarts with three term-1 entries nobody committed, then wins term 2.
  const storage = MemoryStorage.bootstrap(['a', 'b', 'c'])
  storage.append([1, 2, 3].map((index) => ({
    term: 1,
    index,
    type: 'normal' as const,
    data: enc.encode(`e${index}`),
  })))
  storage.setHardState({ term: 1, vote: null, commit: 0 })
  const a = new RaftNode({ id: 'a', storage, rand: () => 0 })
  a.campaign()
  drain(a, storage)
  a.step({ type: 'preVoteResp', from: 'b', to: 'a', term: 2, reject: false })
  drain(a, storage)
  a.step({ type: 'voteResp', from: 'b', to: 'a', term: 2, reject: false })
  drain(a, storage)
  assert.equal(a.status().role, 'leader')
  assert.equal(a.status().lastIndex, 4, 'the new leader appended its empty entry at 4')
  const ack = (index: number): AppendResponse => ({
    type: 'appendResp',
    from: 'b',
    to: 'a',
    term: 2,
    index,
    reject: false,
    rejectHint: 0,
    logTerm: 0,
  })
  a.step(ack(3))
  drain(a, storage)
  assert.equal(a.status().commit, 0, 'index 3 is on a majority (a, b) but is from term 1')
  a.step(ack(4))
  const out = drain(a, storage)
  assert.equal(a.status().commit, 4, 'committing the term-2 entry commits everything before it')
  assert.deepEqual(out.committed.map((e) => e.index), [1, 2, 3, 4])
})

Deno.test('the leader counts its own entries toward a quorum only once they are durable', () => {
  const { node, storage } = lone('a', ['a'])
  node.campaign()
  drain(node, storage)
  const { index } = node.propose(enc.encode('x')) as { index: number }
  const rd = node.ready()
  assert.deepEqual(rd.entries.map((e) => e.index), [index])
  assert.equal(rd.committedEntries.length, 0)
  assert.ok(node.status().commit < index, 'not committed before the host persisted it')
  storage.append(rd.entries)
  node.advance(rd)
  assert.equal(node.status().commit, index)
  assert.deepEqual(drain(node, storage).committed.map((e) => e.index), [index])
})

Deno.test('batching: appends carry many entries, within maxEntriesPerMsg and maxSizePerMsg', () => {
  const c = new TestCluster(['a', 'b', 'c'], { maxEntriesPerMsg: 4, maxSizePerMsg: 1 << 20 })
  c.elect('a')
  c.isolate('c')
  for (let i = 0; i < 20; i++) c.node('a').propose(enc.encode(`e${i}`))
  c.stabilize()
  c.heal()
  c.delivered = []
  c.tick(3)
  const toC = c.delivered.filter((m): m is AppendMessage => m.type === 'append' && m.to === 'c')
  assert.ok(toC.every((m) => m.entries.length <= 4))
  assert.ok(toC.some((m) => m.entries.length === 4), 'batches are filled up to the limit')
  assert.equal(c.get('c').state.length, 20)

  const s = new TestCluster(['a', 'b'], { maxSizePerMsg: 250 })
  s.elect('a')
  s.delivered = []
  for (let i = 0; i < 6; i++) s.node('a').propose(new Uint8Array(100))
  s.stabilize()
  const sizes = s.delivered.filter((m): m is AppendMessage => m.type === 'append')
    .map((m) => m.entries.length).filter((n) => n > 0)
  assert.ok(sizes.every((n) => n <= 2), `at most two 116-byte entries per 250 bytes: ${sizes}`)
})

Deno.test('pipelining: at most maxInflightMsgs appends are in flight to a follower', () => {
  const c = new TestCluster(['a', 'b'], { maxEntriesPerMsg: 1, maxInflightMsgs: 3 })
  c.elect('a')
  c.filter = (m) => !(m.type === 'appendResp' && m.from === 'b')
  c.delivered = []
  for (let i = 0; i < 10; i++) c.node('a').propose(enc.encode(`e${i}`))
  c.stabilize()
  const sent = c.delivered.filter((m) =>
    m.type === 'append' && m.to === 'b' && m.entries.length > 0
  )
  assert.equal(sent.length, 3, 'three appends without an answer, then the leader waits')
  c.filter = () => true
  c.tick(2)
  assert.equal(c.get('b').state.length, 10, 'acknowledgements reopen the window')
})

Deno.test('replication recovers when every append in flight was lost', () => {
  const c = new TestCluster(['a', 'b', 'c'], { maxEntriesPerMsg: 1, maxInflightMsgs: 2 })
  c.elect('a')
  c.filter = (m) => !(m.type === 'append' && m.to === 'c')
  for (let i = 0; i < 6; i++) c.propose('a', `e${i}`)
  c.filter = () => true
  c.tick(3)
  assert.equal(c.get('c').state.length, 6)
})

Deno.test('a divergent follower log is repaired with one rejection per term, not per entry', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'base')
  // a, cut off, appends 30 entries nobody else will ever see.
  c.isolate('a')
  for (let i = 0; i < 30; i++) c.node('a').propose(enc.encode(`orphan${i}`))
  c.stabilize()
  // b and c move on with 30 entries of a later term, then change leader so that the new leader
  // starts probing a at the end of a long log.
  c.tick(40, ['b', 'c'])
  const first = c.leader()!
  assert.notEqual(first, 'a')
  for (let i = 0; i < 30; i++) c.node(first).propose(enc.encode(`new${i}`))
  c.stabilize()
  const second = first === 'b' ? 'c' : 'b'
  c.node(first).transferLeadership(second)
  c.stabilize()
  assert.equal(c.leader(), second)
  c.delivered = []
  c.heal()
  c.tick(3)
  const rejections = c.delivered.filter((m) =>
    m.type === 'appendResp' && m.from === 'a' && m.reject
  )
  assert.ok(rejections.length >= 1, 'the divergence was detected')
  assert.ok(rejections.length <= 2, `${rejections.length} rejections for 30 divergent entries`)
  const expected = ['base', ...Array.from({ length: 30 }, (_, i) => `new${i}`)]
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.get(id).state, expected)
})

Deno.test('a follower that restarts catches up from where its disk left off', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', '1')
  c.crash('c')
  c.propose('a', '2')
  c.propose('a', '3')
  c.restart('c')
  assert.deepEqual(c.get('c').state, [], 'nothing applied yet: no snapshot, state is replayed')
  c.tick(2)
  assert.deepEqual(c.get('c').state, ['1', '2', '3'])
})
