/**
 * Linearizable reads (ReadIndex): a read is served at the commit index the leader had when the
 * read arrived, and only after a heartbeat round proved it was still the leader.
 */
import assert from 'node:assert/strict'
import { NoLeaderError } from '../../../src/consensus/raft/core/mod.ts'
import { TestCluster } from './harness.ts'

Deno.test('a read on the leader is confirmed by a quorum and names the commit index', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  const commit = c.node('a').status().commit
  c.delivered = []
  c.node('a').readIndex('r1')
  c.stabilize()
  assert.deepEqual(c.get('a').readStates, [{ index: commit, ctx: 'r1' }])
  assert.ok(
    c.delivered.some((m) => m.type === 'heartbeatResp' && m.ctx === 'r1'),
    'confirmed by a heartbeat round',
  )
})

Deno.test("a read on a follower is forwarded and answered with the leader's commit index", () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.node('b').readIndex('r2')
  c.stabilize()
  assert.deepEqual(c.get('b').readStates, [{ index: c.node('a').status().commit, ctx: 'r2' }])
  assert.ok(c.get('b').appliedIndex >= c.get('b').readStates[0].index, 'b can serve it')
})

Deno.test('a leader cut off from its quorum cannot confirm a read', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('a')
  c.node('a').readIndex('stale')
  c.tick(5, ['a'])
  assert.deepEqual(c.get('a').readStates, [])
  // Meanwhile the others elect a leader and commit a write the stale leader never saw.
  c.tick(40, ['b', 'c'])
  const leader = c.leader()!
  c.propose(leader, 'newer')
  c.node(leader).readIndex('fresh')
  c.stabilize()
  assert.deepEqual(c.get(leader).readStates.map((r) => r.ctx), ['fresh'])
})

Deno.test('reads wait until the new leader has committed an entry of its term', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.filter = (m) => m.type !== 'appendResp'
  c.elect('a')
  c.node('a').readIndex('early')
  c.stabilize()
  assert.deepEqual(c.get('a').readStates, [], 'held back: its commit index may still be stale')
  c.filter = () => true
  c.tick(2)
  const rs = c.get('a').readStates
  assert.equal(rs.length, 1)
  assert.ok(rs[0].index >= 1, "served at or after the leader's own first entry")
})

Deno.test('a single voter answers reads without a round trip', () => {
  const c = new TestCluster(['a'])
  c.elect('a')
  c.node('a').readIndex('solo')
  c.stabilize()
  assert.equal(c.get('a').readStates[0].ctx, 'solo')
})

Deno.test('a read with no known leader is refused with NoLeaderError', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  assert.throws(() => c.node('b').readIndex('r'), NoLeaderError)
})
