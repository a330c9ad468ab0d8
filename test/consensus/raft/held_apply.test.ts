/**
 * Held applications (ready_loop.ts): committed entries are acknowledged at once and their KV
 * writes gather across Readys, then ride along with a write's commit once the hold is due. What
 * must hold meanwhile: a read through consensus sees every acknowledged pin, the apply hooks run
 * only once the writes are durable, the hold ends at its size or after `applyHoldMs` (with the next
 * write), on its own after twice that, at a linearizable read or a clean stop, and a crash loses
 * nothing acknowledged.
 *
 * `TestNode.state` is the raw pinset under consensus: it shows what is durable, not what a reader
 * of the cluster sees (that is `consensus.state()`).
 */
import assert from 'node:assert/strict'
import { kvState } from '../../../src/state/kv_state.ts'
import { KvCluster, testConfig, type TestNode, testPin } from './kv_cluster.ts'

/**
 * Holds that only their triggers end: the timer would need an hour of cluster time, and two
 * operations make a hold due.
 */
const LONG_HOLD = { applyHoldMs: 3_600_000, applyHoldMaxOps: 2 }

const hooked = (n: TestNode, cid: string) => n.hooked.some((h) => h.cid === cid)

Deno.test('an acknowledged pin is read at once through consensus while its application is held across writes', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig(), LONG_HOLD)
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const f = [...c.nodes.values()].find((n) => n !== leader)!

    const p1 = await testPin(1, 'held')
    await leader.consensus.logPin(p1)
    assert.equal(await leader.state.has(p1.cid), false, 'acknowledged before it is applied')
    assert.equal(hooked(leader, p1.cid), false, 'no hook before the writes are durable')
    assert.equal(leader.consensus.status().applied < leader.consensus.status().commit, true)
    // A read of that CID makes the held writes durable first.
    assert.ok(await leader.consensus.state().has(p1.cid))
    assert.ok(await leader.state.has(p1.cid))
    assert.ok(hooked(leader, p1.cid))

    // Held across the next write's commit while the hold is small…
    const [p2, p3, p4] = [
      await testPin(2, 'held'),
      await testPin(3, 'held'),
      await testPin(4, 'held'),
    ]
    await leader.consensus.logPin(p2)
    assert.equal(await leader.state.has(p2.cid), false)
    await leader.consensus.logPin(p3)
    assert.equal(await leader.state.has(p2.cid), false, 'p3 was appended without p2 applied')
    assert.equal(await leader.state.has(p3.cid), false)
    // …and carried by the first write once it is due (two operations here).
    await leader.consensus.logPin(p4)
    assert.ok(await leader.state.has(p2.cid), 'p2 went with the commit that appended p4')
    assert.ok(await leader.state.has(p3.cid), 'p3 went with the commit that appended p4')
    assert.ok(hooked(leader, p2.cid) && hooked(leader, p3.cid))
    assert.equal(await leader.state.has(p4.cid), false)
    assert.equal(hooked(leader, p4.cid), false)

    // A follower acknowledges its own write the same way.
    const p14 = await testPin(14, 'held')
    await f.consensus.logPin(p14)
    assert.equal(await f.state.has(p14.cid), false)
    assert.ok(await f.consensus.state().get(p14.cid))
    assert.ok(await f.state.has(p14.cid))

    // A listing waits for whatever is held.
    const p15 = await testPin(15, 'held')
    await leader.consensus.logPin(p15)
    const listed = new Set<string>()
    for await (const p of leader.consensus.state().list()) listed.add(p.cid)
    assert.ok(listed.has(p15.cid) && listed.has(p14.cid))

    // A linearizable read on another peer does not wait for a timer that never fires.
    const p16 = await testPin(16, 'held')
    await leader.consensus.logPin(p16)
    const st = await f.consensus.consistentState()
    assert.ok(await st.has(p16.cid))
    // Nor does a wait for an index.
    const p17 = await testPin(17, 'held')
    await leader.consensus.logPin(p17)
    await leader.consensus.waitApplied(leader.consensus.status().commit)
    assert.ok(await leader.state.has(p17.cid))
  } finally {
    await c.close()
  }
})

Deno.test('a hold past applyHoldMs rides along with the next write, and commits on its own when none comes', async () => {
  const holdMs = 200
  const c = new KvCluster(['a', 'b', 'c'], testConfig(), { applyHoldMs: holdMs })
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const p1 = await testPin(1, 'timer')
    await leader.consensus.logPin(p1)
    const t0 = c.clock.now()
    await c.until(() => c.clock.now() >= t0 + holdMs, 'time stood still')
    assert.equal(await leader.state.has(p1.cid), false, 'due, but no write came yet')
    const p2 = await testPin(2, 'timer')
    await leader.consensus.logPin(p2)
    assert.ok(c.clock.now() < t0 + 2 * holdMs, 'the write came before the hold would commit alone')
    assert.ok(await leader.state.has(p1.cid), 'p1 went with the commit that appended p2')
    assert.ok(hooked(leader, p1.cid))
    assert.equal(await leader.state.has(p2.cid), false, 'p2 is held in turn')

    // No write follows p2: its hold commits on its own after twice applyHoldMs.
    await c.until(() => hooked(leader, p2.cid), 'the held application was never made durable', 1000)
    assert.ok(await leader.state.has(p2.cid))
  } finally {
    await c.close()
  }
})

Deno.test('a clean stop writes what is held; a crash leaves it committed in the log', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig(), LONG_HOLD)
  try {
    await c.startAll()
    let leader = await c.waitLeader()
    const p1 = await testPin(1, 'stop')
    await leader.consensus.logPin(p1)
    assert.equal(await leader.state.has(p1.cid), false)
    const { id, path } = leader
    await c.stop(id)
    const kv = await Deno.openKv(path)
    try {
      assert.ok(await kvState(kv).has(p1.cid), 'written by the clean stop')
    } finally {
      kv.close()
    }
    await c.start(id)

    // A crash: the database goes away under the peer, so nothing held reaches it. The pin is
    // committed on a quorum and comes back to the crashed peer through the log.
    leader = await c.waitLeader()
    const p2 = await testPin(2, 'crash')
    await leader.consensus.logPin(p2)
    const crashed = leader.id
    c.net.isolate(crashed)
    leader.kv.close()
    await c.stop(crashed).catch(() => {})
    const after = await Deno.openKv(leader.path)
    try {
      assert.equal(await kvState(after).has(p2.cid), false, 'the crash lost the held writes')
    } finally {
      after.close()
    }
    c.net.heal()
    const back = await c.start(crashed)
    await c.waitLeader()
    // A linearizable read: everything committed before it, the crashed peer included.
    assert.ok(await (await back.consensus.consistentState()).has(p2.cid))
    for (const n of c.nodes.values()) {
      assert.ok(await (await n.consensus.consistentState()).has(p2.cid), n.id)
    }
  } finally {
    await c.close()
  }
})

Deno.test('a Ready that applies entries it cannot hold (a membership change) writes what is held first: the applied index never passes what is on disk', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig(), LONG_HOLD)
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const p = await testPin(1, 'before the change')
    await leader.consensus.logPin(p)
    for (const n of c.nodes.values()) {
      await c.until(() => n.consensus.status().commit >= leader.consensus.status().commit, 'commit')
    }
    assert.equal(await leader.state.has(p.cid), false, 'held')
    // A learner added: every member applies that change in a Ready of its own, not held.
    const d = await c.start('d', { initialVoters: [] })
    await leader.consensus.addPeer('d')
    await c.converge()
    for (const [id, n] of c.nodes) {
      if (n === d) continue
      assert.ok(await n.state.has(p.cid), `${id}: the held pin is on disk with the change after it`)
    }
  } finally {
    await c.close()
  }
})
