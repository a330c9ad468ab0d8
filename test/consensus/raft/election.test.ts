/**
 * Leader election: timeouts, pre-vote, check-quorum and what happens to stale leaders.
 */
import assert from 'node:assert/strict'
import { TestCluster } from './harness.ts'

Deno.test('a leader is elected, and a new one after the leader crashes', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.tick(25)
  const first = c.leader()
  assert.ok(first, 'a leader within two election timeouts')
  c.propose(first, 'before')
  c.crash(first)
  c.tick(45)
  const second = c.leader()
  assert.ok(second && second !== first, 'a survivor takes over')
  assert.ok(c.node(second).status().term > c.node(first).status().term)
  c.propose(second, 'after')
  c.restart(first)
  c.tick(3)
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.get(id).state, ['before', 'after'])
  assert.equal(c.node(first).status().leader, second, 'the old leader follows the new one')
})

Deno.test('election timeouts are drawn from [electionTick, 2*electionTick) with the injected rand', () => {
  for (const [r, expected] of [[0, 10], [0.999, 19], [0.5, 15]] as const) {
    const c = new TestCluster(['a'], { rand: () => r })
    c.tick(expected - 1)
    assert.equal(c.node('a').status().role, 'follower', `rand ${r}: not yet at ${expected - 1}`)
    c.tick(1)
    assert.equal(c.node('a').status().role, 'leader', `rand ${r}: campaigns at tick ${expected}`)
  }
})

Deno.test('a partitioned minority cannot elect a leader, and pre-vote keeps its term', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'])
  c.elect('a')
  c.partition(['a', 'b', 'c'], ['d', 'e'])
  c.tick(100)
  for (const id of ['d', 'e']) {
    const s = c.node(id).status()
    assert.notEqual(s.role, 'leader')
    assert.equal(s.term, 1, `${id} never bumped its term: its pre-votes failed`)
  }
  assert.equal(c.leader(), 'a', 'the majority side keeps its leader')
})

Deno.test('pre-vote: a rejoining partitioned node does not disrupt the healthy leader', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('c')
  c.tick(100)
  c.heal()
  c.tick(5)
  assert.equal(c.leader(), 'a')
  assert.equal(c.node('a').status().term, 1, 'no election happened')
  assert.equal(c.node('c').status().leader, 'a')
})

Deno.test('without pre-vote and check-quorum, the same rejoin deposes the leader', () => {
  // The contrast that shows the previous test can fail.
  const c = new TestCluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false })
  c.elect('a')
  c.isolate('c')
  c.tick(100)
  assert.ok(c.node('c').status().term > 1, 'c bumped its term while cut off')
  c.heal()
  c.tick(5)
  assert.ok(c.node('a').status().term > 1, 'the healthy leader was forced into a new term')
})

Deno.test('check-quorum: a leader that hears from no quorum steps down within two election timeouts', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.isolate('a')
  c.tick(20, ['a'])
  assert.equal(c.node('a').status().role, 'follower')
  assert.equal(c.node('a').status().leader, null)
})

Deno.test('a voter in a leader lease ignores a disruptive candidate', () => {
  const c = new TestCluster(['a', 'b', 'c'], { preVote: false })
  c.elect('a')
  // c campaigns on its own (as if its timer fired early); b and a still hear from a.
  c.node('c').campaign()
  c.stabilize()
  assert.equal(c.leader(), 'a')
  assert.equal(c.node('b').status().term, 1, 'b ignored the vote request')
})

Deno.test('a stale leader steps down and its uncommitted entries are overwritten', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'])
  c.elect('a')
  c.propose('a', 'committed')
  c.partition(['a', 'b'], ['c', 'd', 'e'])
  c.propose('a', 'lost-1')
  c.propose('a', 'lost-2')
  assert.deepEqual(c.get('a').state, ['committed'], 'the minority cannot commit')
  c.tick(40)
  assert.notEqual(c.node('a').status().role, 'leader', 'check-quorum deposed the stale leader')
  const leader = c.leader()
  assert.ok(leader && ['c', 'd', 'e'].includes(leader))
  c.propose(leader, 'kept')
  c.heal()
  c.tick(5)
  for (const id of ['a', 'b', 'c', 'd', 'e']) {
    assert.deepEqual(c.get(id).state, ['committed', 'kept'], `${id} converged`)
  }
  const lostIndex = c.node('a').status().commit
  assert.equal(c.node('a').termAt(lostIndex), c.node(leader).termAt(lostIndex))
})

Deno.test('without check-quorum a stale leader steps down when it hears the newer term', () => {
  const c = new TestCluster(['a', 'b', 'c'], { checkQuorum: false })
  c.elect('a')
  c.isolate('a')
  c.tick(40, ['b', 'c'])
  const leader = c.leader()
  assert.ok(leader && leader !== 'a')
  assert.equal(c.node('a').status().role, 'leader', 'a still believes it leads')
  c.heal()
  c.tick(2)
  assert.equal(c.node('a').status().role, 'follower')
  assert.equal(c.node('a').status().leader, leader)
})

Deno.test('a node grants one vote per term, to a candidate whose log is at least as up to date', () => {
  const c = new TestCluster(['a', 'b', 'c'])
  c.elect('a')
  c.propose('a', 'x')
  c.isolate('c')
  c.propose('a', 'y')
  c.crash('a')
  c.heal()
  // c's log is behind b's: c cannot win, b can.
  c.tick(60, ['b', 'c'])
  assert.equal(c.leader(), 'b')
  assert.deepEqual(c.get('c').state, ['x', 'y'])
})
