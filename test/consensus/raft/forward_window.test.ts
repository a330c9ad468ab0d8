/**
 * A follower's forward window (proposals.ts): at most `maxForwardsInFlight` batches on their way
 * to the leader; what arrives meanwhile waits and goes as one batch when one settles. A leader has
 * no window; a new leader, a settled batch or a forward's patience frees the window.
 */
import assert from 'node:assert/strict'
import { raftSection } from '../../../src/consensus/raft/config.ts'
import { decodeBatch, encodeOp } from '../../../src/consensus/raft/entry_codec.ts'
import type { ProposalResult } from '../../../src/consensus/raft/core/mod.ts'
import { Proposals } from '../../../src/consensus/raft/proposals.ts'
import { nullLogger } from '../../../src/util/log.ts'
import { manualClock } from '../../support/manual_clock.ts'
import { testPin } from './kv_cluster.ts'

function setup(window = 2) {
  const clock = manualClock()
  const proposed: { seq: number; cids: string[] }[] = []
  let followed: string | null = 'L'
  let schedules = 0
  const p = new Proposals({
    self: 'me',
    cfg: { ...raftSection.defaults(), network_timeout: 1000, commit_retries: 0 },
    tuning: {
      maxOpsPerEntry: 256,
      maxEntryBytes: 256 * 1024,
      maxForwardsInFlight: window,
      forwardPatienceMs: 500,
    },
    clock,
    log: nullLogger,
    propose: (data): ProposalResult => {
      const b = decodeBatch(data)
      proposed.push({ seq: b.seq, cids: b.ops.map((o) => o.cid) })
      return followed === null ? { index: proposed.length, term: 1 } : { forwardedTo: followed }
    },
    leader: () => followed ?? 'me',
    schedule: () => void schedules++,
    stopped: () => false,
  })
  p.resumeAfter(0)
  return {
    p,
    clock,
    proposed,
    schedules: () => schedules,
    follow: (l: string | null) => void (followed = l),
    submit: async (i: number) => {
      const op = encodeOp({ type: 'pin', pin: await testPin(i, 'window') })
      const done = p.submit(op)
      // Tests await what they check; the rest may fail unseen (a deadline, the final failAll).
      done.catch(() => {})
      return { cid: op.cid, done }
    },
    settle: (n: number) => {
      const b = proposed[n]
      p.applied({ index: n + 1, origin: 'me', seq: b.seq, ops: [] })
    },
  }
}

Deno.test('a follower keeps two batches in flight; what waits goes as one batch when one settles', async () => {
  const t = setup(2)
  const a = await t.submit(1)
  t.p.flush()
  const b = await t.submit(2)
  t.p.flush()
  assert.equal(t.proposed.length, 2, 'two batches forwarded')
  const [c, d, e] = [await t.submit(3), await t.submit(4), await t.submit(5)]
  t.p.flush()
  t.p.flush()
  assert.equal(t.proposed.length, 2, 'the window is full: nothing more is forwarded')

  const before = t.schedules()
  t.settle(0)
  await a.done
  assert.ok(t.schedules() > before, 'a settled batch asks the loop for a look')
  t.p.flush()
  assert.equal(t.proposed.length, 3)
  assert.deepEqual(t.proposed[2].cids, [c.cid, d.cid, e.cid], 'what waited went in one batch')
  t.settle(1)
  t.settle(2)
  await Promise.all([b.done, c.done, d.done, e.done])
})

Deno.test("a leader has no window; a new leader or an unanswered forward's patience frees a follower's", async () => {
  const t = setup(1)
  await t.submit(1)
  t.p.flush()
  const waiting = await t.submit(2)
  t.p.flush()
  assert.equal(t.proposed.length, 1)

  // Another leader: the forward to the old one no longer holds the window.
  t.follow('M')
  t.p.flush()
  assert.equal(t.proposed.length, 2)
  assert.deepEqual(t.proposed[1].cids, [waiting.cid])

  // The forward to M is never answered (dropped on the way): after forwardPatienceMs it no
  // longer holds the window, though it stays in flight until its own deadline.
  const late = await t.submit(3)
  t.p.flush()
  assert.equal(t.proposed.length, 2)
  await t.clock.advance(499)
  t.p.flush()
  assert.equal(t.proposed.length, 2, 'still within its patience')
  await t.clock.advance(2)
  t.p.flush()
  assert.deepEqual(t.proposed[2].cids, [late.cid])
  await t.clock.advance(500)
  t.p.expire(t.clock.now())
  await assert.rejects(waiting.done, /network_timeout/, 'its deadline still fails it (no retries)')

  // Leading: every flush proposes at once.
  t.follow(null)
  for (let i = 10; i < 14; i++) {
    await t.submit(i)
    t.p.flush()
  }
  assert.equal(t.proposed.length, 7)
  t.p.failAll(new Error('stop'))
})
