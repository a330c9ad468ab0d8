/**
 * Where proposals go: appended on the leader, forwarded by followers, refused without a leader.
 */
import assert from 'node:assert/strict'
import {
  NoLeaderError,
  NotLeaderError,
  ProposalDroppedError,
} from '../../../src/consensus/raft/core/mod.ts'
import { enc, TestCluster } from './harness.ts'

Deno.test('a proposal on the leader is appended at once and its index returned', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  const r = c.node('a').propose(enc.encode('x'))
  assert.deepEqual(r, { index: 2, term: 1 })
  c.stabilize()
  assert.deepEqual(c.get('c').state, ['x'])
})

Deno.test('a proposal on a follower is forwarded to the leader', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  assert.deepEqual(c.propose('b', 'via b'), { forwardedTo: 'a' })
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.get(id).state, ['via b'])
})

Deno.test('without a leader a proposal is refused with "no leader"', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  assert.throws(() => c.node('a').propose(enc.encode('x')), (err: unknown) => {
    assert.ok(err instanceof NoLeaderError)
    assert.equal(err.message, 'no leader')
    assert.equal(err.status, 503)
    return true
  })
})

Deno.test('a candidate refuses proposals', () => {
  const c = new TestCluster(['a', 'b', 'c'], { preVote: false })
  c.isolate('a')
  c.node('a').campaign()
  c.stabilize()
  assert.equal(c.node('a').status().role, 'candidate')
  assert.throws(() => c.node('a').propose(enc.encode('x')), NoLeaderError)
})

Deno.test('with forwarding disabled, a follower names the leader instead', () => {
  const c = new TestCluster(['a', 'b', 'c'], { disableProposalForwarding: true })
  c.elect('a')
  assert.throws(() => c.node('b').propose(enc.encode('x')), (err: unknown) => {
    assert.ok(err instanceof NotLeaderError)
    assert.equal(err.leader, 'a')
    return true
  })
})

Deno.test('maxUncommittedEntriesSize pushes back on proposers', () => {
  const c = new TestCluster(['a', 'b', 'c'], { maxUncommittedEntriesSize: 100 })
  c.elect('a')
  c.isolate('a')
  c.node('a').propose(new Uint8Array(60))
  assert.throws(() => c.node('a').propose(new Uint8Array(60)), ProposalDroppedError)
  c.heal()
  c.tick(2)
  c.node('a').propose(new Uint8Array(60))
})

Deno.test('a forwarded proposal that never reaches a leader is lost: the client must retry', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('a')
  c.node('b').propose(enc.encode('lost'))
  c.stabilize()
  c.tick(40, ['b', 'c'])
  c.heal()
  c.tick(3)
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.get(id).state, [])
})
