/**
 * The host-facing contract of RaftNode: the Ready/advance protocol, which messages may leave
 * before persistence, input validation and configuration errors.
 */
import assert from 'node:assert/strict'
import {
  type AppendMessage,
  canSendBeforePersist,
  InvalidMessageError,
  MemoryStorage,
  RaftConfigError,
  RaftNode,
  ReadyContractError,
} from '../../../src/consensus/raft/core/mod.ts'
import { drain, enc, lone } from './harness.ts'

Deno.test('ready() twice without advance() is refused, and advance() wants that very Ready', () => {
  const { node } = lone('a', ['a'])
  node.campaign()
  const rd = node.ready()
  assert.equal(node.hasReady(), false, 'nothing more is handed out while a Ready is outstanding')
  assert.throws(() => node.ready(), ReadyContractError)
  assert.throws(() => node.advance({ ...rd }), ReadyContractError)
  node.advance(rd)
})

Deno.test('step, tick and proposals work while a Ready is being persisted', () => {
  const { node, storage } = lone('a', ['a', 'b'])
  node.campaign()
  drain(node, storage)
  node.step({ type: 'preVoteResp', from: 'b', to: 'a', term: 1, reject: false })
  drain(node, storage)
  node.step({ type: 'voteResp', from: 'b', to: 'a', term: 1, reject: false })
  assert.equal(node.status().role, 'leader')
  const rd = node.ready()
  node.propose(enc.encode('during'))
  node.tick()
  storage.append(rd.entries)
  if (rd.hardState) storage.setHardState(rd.hardState)
  node.advance(rd)
  const next = node.ready()
  assert.deepEqual(next.entries.map((e) => new TextDecoder().decode(e.data)), ['during'])
})

Deno.test("only a leader's replication may leave before persistence, and not with a new term", () => {
  // A single voter becomes leader inside one Ready: its term change is not durable yet.
  const storage = MemoryStorage.bootstrap(['a'])
  storage.setHardState({ term: 0, vote: null, commit: 0 })
  const a = new RaftNode({ id: 'a', storage, rand: () => 0 })
  // Give it a learner so that it has someone to replicate to.
  const withLearner = MemoryStorage.fromPersisted({
    ...storage.persisted(),
    snapshot: { index: 0, term: 0, confState: { voters: ['a'], learners: ['l'] } },
  })
  const leader = new RaftNode({ id: 'a', storage: withLearner, rand: () => 0 })
  leader.campaign()
  leader.tick()
  const first = leader.ready()
  assert.ok(first.hardState && first.hardState.term === 1)
  const appends = first.messages.filter((m) => m.type === 'append' || m.type === 'heartbeat')
  assert.ok(appends.length > 0)
  for (const m of appends) assert.equal(canSendBeforePersist(first, m), false)
  withLearner.append(first.entries)
  withLearner.setHardState(first.hardState)
  leader.advance(first)
  drain(leader, withLearner)
  leader.step({
    type: 'appendResp',
    from: 'l',
    to: 'a',
    term: 1,
    index: 1,
    reject: false,
    rejectHint: 0,
    logTerm: 0,
  })
  drain(leader, withLearner)
  leader.propose(enc.encode('x'))
  const second = leader.ready()
  const append = second.messages.find((m): m is AppendMessage => m.type === 'append')!
  assert.ok(append.entries.length > 0)
  assert.equal(canSendBeforePersist(second, append), true, 'a leader replicates while it writes')

  // A follower's acknowledgement or vote always waits for the disk.
  a.step({ type: 'vote', from: 'b', to: 'a', term: 5, index: 9, logTerm: 5, transfer: false })
  const rd = a.ready()
  const vote = rd.messages.find((m) => m.type === 'voteResp')!
  assert.equal(canSendBeforePersist(rd, vote), false)
})

Deno.test('step rejects malformed, misaddressed and host-only messages', () => {
  const { node } = lone('a', ['a', 'b'])
  const base = { from: 'b', to: 'a', term: 1 }
  const e = (index: number, term = 1) => ({
    term,
    index,
    type: 'normal' as const,
    data: new Uint8Array(),
  })
  const bad: unknown[] = [
    null,
    { ...base, type: 'nonsense' },
    { ...base, to: 'z', type: 'heartbeat', commit: 0 },
    { ...base, type: 'snapStatus', ok: true },
    { ...base, term: -1, type: 'heartbeat', commit: 0 },
    { ...base, term: 0, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [] },
    { ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [e(1), e(3)] },
    { ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [e(1, 2)] },
    { ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [{ ...e(1), data: 'x' }] },
    { ...base, type: 'vote', index: 0, logTerm: 0 },
    { ...base, term: 1, type: 'propose', entries: [e(1)] },
  ]
  for (const m of bad) {
    assert.throws(() => node.step(m as never), InvalidMessageError, JSON.stringify(m))
  }
})

Deno.test('configuration errors name the key', () => {
  const storage = MemoryStorage.bootstrap(['a'])
  const ok = { id: 'a', storage, rand: () => 0 }
  assert.throws(() => new RaftNode({ ...ok, id: '' }), /id must be a non-empty string/)
  assert.throws(
    () => new RaftNode({ ...ok, electionTick: 2, heartbeatTick: 2 }),
    (err: unknown) =>
      err instanceof RaftConfigError &&
      /electionTick \(2\) must be greater than heartbeatTick \(2\)/.test(err.message),
  )
  assert.throws(
    () => new RaftNode({ ...ok, maxInflightMsgs: 0 }),
    /maxInflightMsgs must be a positive/,
  )
  assert.throws(() => new RaftNode({ ...ok, rand: undefined as never }), /rand must be a function/)
  assert.throws(() => new RaftNode({ ...ok, applied: 3 }), /applied 3 is beyond commit 0/)
})

Deno.test('a single-voter cluster runs through the same path: propose, persist, commit, apply', () => {
  const { node, storage } = lone('a', ['a'])
  node.campaign()
  drain(node, storage)
  assert.equal(node.status().role, 'leader')
  node.propose(enc.encode('one'))
  node.propose(enc.encode('two'))
  const out = drain(node, storage)
  assert.deepEqual(
    out.committed.filter((e) => e.data.length > 0).map((e) => new TextDecoder().decode(e.data)),
    ['one', 'two'],
  )
  assert.equal(storage.initialState().commit, 3)
})

Deno.test('termAt and status describe the log', () => {
  const { node, storage } = lone('a', ['a'])
  node.campaign()
  drain(node, storage)
  assert.equal(node.termAt(0), 0)
  assert.equal(node.termAt(1), 1)
  assert.equal(node.termAt(2), undefined)
  const s = node.status()
  assert.deepEqual(s.progress, { a: { match: 1, next: 2, state: 'replicate' } })
  assert.deepEqual(s.confState, { voters: ['a'], learners: [] })
})

Deno.test('an acknowledgement queued before a term change is not sent for entries since overwritten', () => {
  const storage = MemoryStorage.bootstrap(['a', 'b', 'c'])
  storage.append(Array.from({ length: 12 }, (_, i) => ({
    term: 1,
    index: i + 1,
    type: 'normal' as const,
    data: new Uint8Array(),
  })))
  storage.setHardState({ term: 1, vote: 'a', commit: 8 })
  const c = new RaftNode({ id: 'c', storage, rand: () => 0 })
  const entry = (index: number, term: number) => ({
    term,
    index,
    type: 'normal' as const,
    data: new Uint8Array(),
  })
  // The old leader's append is acknowledged (12)...
  c.step({
    type: 'append',
    from: 'a',
    to: 'c',
    term: 1,
    index: 11,
    logTerm: 1,
    commit: 8,
    entries: [entry(12, 1)],
  })
  // ...but before that answer leaves, a term-2 leader overwrites 9..12.
  c.step({
    type: 'append',
    from: 'b',
    to: 'c',
    term: 2,
    index: 8,
    logTerm: 1,
    commit: 8,
    entries: [entry(9, 2)],
  })
  const rd = c.ready()
  const acks = rd.messages.filter((m) => m.type === 'appendResp')
  assert.deepEqual(acks.map((m) => [m.to, m.term, m.index]), [['b', 2, 9]])
})
