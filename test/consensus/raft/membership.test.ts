/**
 * Membership changes one server at a time: learners, promotion, removal (of the leader too),
 * and changes racing with partitions.
 */
import assert from 'node:assert/strict'
import {
  ConfChangeError,
  ConfChangeInProgressError,
  decodeConfChangeEntry,
} from '../../../src/consensus/raft/core/mod.ts'
import { TestCluster } from './harness.ts'

function confOf(c: TestCluster, id: string) {
  return c.node(id).status().confState
}

Deno.test('a learner receives the log but neither votes nor counts for commit; then it is promoted', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
  c.addJoiningNode('d')
  c.stabilize()
  c.propose('a', 'y')
  assert.deepEqual(c.get('d').state, ['x', 'y'], 'the learner replicated the whole log')
  assert.deepEqual(confOf(c, 'd'), { voters: ['a', 'b', 'c'], learners: ['d'] })

  // a + d are not a majority of the three voters: nothing commits.
  c.partition(['a', 'd'], ['b', 'c'])
  const commit = c.node('a').status().commit
  c.node('a').propose(new TextEncoder().encode('z'))
  c.stabilize()
  assert.equal(c.node('a').status().commit, commit, 'the learner does not count')
  // A learner never campaigns, however long it hears nothing.
  c.isolate('d')
  c.tick(50, ['d'])
  assert.equal(c.node('d').status().role, 'follower')
  assert.equal(c.node('d').status().term, 1)
  c.heal()
  c.tick(40)
  const leader = c.leader()!

  const progress = c.node(leader).status().progress!
  assert.ok(progress.d.match >= c.node(leader).status().commit, 'd caught up')
  c.node(leader).proposeConfChange({ type: 'addVoter', id: 'd' })
  c.stabilize()
  assert.deepEqual(confOf(c, 'a'), { voters: ['a', 'b', 'c', 'd'], learners: [] })
  // Four voters: the leader and d alone are no longer a quorum; with one more voter they are.
  const [o1, o2] = ['a', 'b', 'c'].filter((id) => id !== leader)
  c.partition([leader, 'd'], [o1, o2])
  const before = c.node(leader).status().commit
  c.propose(leader, 'with d voting')
  assert.equal(c.node(leader).status().commit, before)
  c.heal()
  c.isolate(o2)
  c.tick(2, [leader, 'd', o1])
  assert.ok(c.get('d').state.includes('with d voting'))
})

Deno.test('a new voter can be added while a member is partitioned away', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('c')
  c.node('a').proposeConfChange({ type: 'addVoter', id: 'd' })
  c.addJoiningNode('d')
  c.stabilize()
  // {a, b, c, d}: a quorum is 3, so a, b and d must all agree.
  c.propose('a', 'x')
  assert.deepEqual(c.get('d').state, ['x'])
  c.heal()
  c.tick(2)
  assert.deepEqual(confOf(c, 'c'), { voters: ['a', 'b', 'c', 'd'], learners: [] })
})

Deno.test('a voter removed while partitioned cannot disrupt the cluster when it returns', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd'])
  c.elect('a')
  c.isolate('d')
  c.node('a').proposeConfChange({ type: 'removeNode', id: 'd' })
  c.stabilize()
  c.propose('a', 'x')
  assert.deepEqual(confOf(c, 'a').voters, ['a', 'b', 'c'])
  c.tick(60)
  assert.ok(c.node('d').status().term <= 1, 'd kept pre-voting without bumping its term')
  c.heal()
  c.tick(60)
  assert.equal(c.leader(), 'a', 'the leader was never disturbed')
  assert.equal(c.node('a').status().term, 1)
})

Deno.test('a removal proposed by a leader that loses its quorum is rolled back', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'])
  c.elect('a')
  c.propose('a', 'x')
  c.partition(['a', 'b'], ['c', 'd', 'e'])
  c.node('a').proposeConfChange({ type: 'removeNode', id: 'e' })
  c.stabilize()
  assert.deepEqual(confOf(c, 'a').voters, ['a', 'b', 'c', 'd'], 'a uses the new membership at once')
  c.tick(40)
  const leader = c.leader()!
  assert.ok(['c', 'd', 'e'].includes(leader))
  c.propose(leader, 'y')
  c.heal()
  c.tick(5)
  for (const id of ['a', 'b', 'c', 'd', 'e']) {
    assert.deepEqual(confOf(c, id).voters, ['a', 'b', 'c', 'd', 'e'], `${id} rolled back`)
    assert.deepEqual(c.get(id).state, ['x', 'y'])
  }
})

Deno.test('a leader that removes itself commits the removal, steps down and hands over', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.node('a').proposeConfChange({ type: 'removeNode', id: 'a' })
  c.stabilize()
  // No tick needed: the removed leader tells a caught-up voter to campaign at once.
  const leader = c.leader()
  assert.ok(leader === 'b' || leader === 'c', `new leader ${leader}`)
  assert.deepEqual(confOf(c, leader).voters, ['b', 'c'])
  const removal = c.get('a').appliedEntries.find((e) => e.type === 'confChange')!
  assert.deepEqual(decodeConfChangeEntry(removal.data).change, { type: 'removeNode', id: 'a' })
  assert.equal(c.get('a').alive, false, 'a applied its removal and shut down')
  c.propose(leader, 'y')
  assert.deepEqual(c.get(leader === 'b' ? 'c' : 'b').state, ['x', 'y'])
})

Deno.test('a leader being removed refuses new proposals', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('b')
  c.isolate('c')
  c.node('a').proposeConfChange({ type: 'removeNode', id: 'a' })
  assert.throws(() => c.node('a').propose(new Uint8Array([1])), { name: 'ProposalDroppedError' })
})

Deno.test('one membership change at a time', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('b')
  c.isolate('c')
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
  assert.throws(
    () => c.node('a').proposeConfChange({ type: 'addLearner', id: 'e' }),
    ConfChangeInProgressError,
  )
  c.heal()
  c.tick(2)
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'e' })
})

Deno.test('a new leader changes membership only after committing an entry of its term', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.filter = (m) => m.type !== 'appendResp'
  c.elect('a')
  assert.equal(c.leader(), 'a')
  assert.throws(
    () => c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' }),
    ConfChangeInProgressError,
  )
  c.filter = () => true
  c.tick(2)
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
})

Deno.test('nonsensical changes are refused with ConfChangeError', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  const n = c.node('a')
  assert.throws(() => n.proposeConfChange({ type: 'addVoter', id: 'b' }), ConfChangeError)
  assert.throws(() => n.proposeConfChange({ type: 'removeNode', id: 'zz' }), ConfChangeError)
  assert.throws(() => n.proposeConfChange({ type: 'addLearner', id: 'c' }), ConfChangeError)
  assert.throws(
    () => n.proposeConfChange({ type: 'bogus' as 'addVoter', id: 'x' }),
    /invalid conf change type "bogus"/,
  )
  const single = new TestCluster(['a'])
  single.elect('a')
  assert.throws(
    () => single.node('a').proposeConfChange({ type: 'removeNode', id: 'a' }),
    /last voter/,
  )
})

Deno.test('a conf change proposed on a follower is forwarded to the leader', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  assert.deepEqual(c.node('b').proposeConfChange({ type: 'addLearner', id: 'd' }), {
    forwardedTo: 'a',
  })
  c.addJoiningNode('d')
  c.stabilize()
  assert.deepEqual(confOf(c, 'a').learners, ['d'])
})

Deno.test('a learner is promoted only once it holds everything committed', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.node('a').proposeConfChange({ type: 'addLearner', id: 'd' })
  c.addJoiningNode('d')
  c.stabilize()
  c.isolate('d')
  c.propose('a', 'x')
  assert.throws(
    () => c.node('a').proposeConfChange({ type: 'addVoter', id: 'd' }),
    { name: 'LearnerBehindError' },
  )
  c.heal()
  c.tick(2)
  c.node('a').proposeConfChange({ type: 'addVoter', id: 'd' })
  c.stabilize()
  assert.deepEqual(confOf(c, 'd').voters, ['a', 'b', 'c', 'd'])
})
