/**
 * Leadership transfer (TimeoutNow).
 */
import assert from 'node:assert/strict'
import { NoLeaderError, TransferError } from '../../../src/consensus/raft/core/mod.ts'
import { enc, TestCluster } from './harness.ts'

Deno.test('leadership moves to a caught-up voter without waiting for a timeout', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.node('a').transferLeadership('b')
  c.stabilize()
  assert.equal(c.leader(), 'b')
  assert.equal(c.node('b').status().term, 2)
  c.propose('b', 'y')
  assert.deepEqual(c.get('c').state, ['x', 'y'])
})

Deno.test('a lagging transferee is caught up first, then takes over with the whole log', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('c')
  for (let i = 0; i < 5; i++) c.node('a').propose(enc.encode(`e${i}`))
  c.stabilize()
  c.heal()
  c.node('a').transferLeadership('c')
  c.stabilize()
  assert.equal(c.leader(), 'c')
  assert.deepEqual(c.get('c').state, ['e0', 'e1', 'e2', 'e3', 'e4'])
})

Deno.test('proposals are refused during a transfer, which is abandoned after an election timeout', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('c')
  c.node('a').transferLeadership('c')
  c.stabilize()
  assert.equal(c.node('a').status().leadTransferee, 'c')
  assert.throws(() => c.node('a').propose(enc.encode('x')), { name: 'ProposalDroppedError' })
  c.tick(10, ['a', 'b'])
  assert.equal(c.node('a').status().leadTransferee, null)
  assert.equal(c.leader(), 'a')
  c.propose('a', 'x')
  assert.deepEqual(c.get('b').state, ['x'])
})

Deno.test('a transfer requested on a follower is forwarded to the leader', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.node('b').transferLeadership('c')
  c.stabilize()
  assert.equal(c.leader(), 'c')
})

Deno.test('a transfer to a learner, a stranger, or with no leader is refused', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  assert.throws(() => c.node('a').transferLeadership('b'), NoLeaderError)
  c.elect('a')
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
  c.addJoiningNode('d')
  c.stabilize()
  assert.throws(() => c.node('a').transferLeadership('d'), TransferError)
  assert.throws(() => c.node('a').transferLeadership('zz'), TransferError)
})
