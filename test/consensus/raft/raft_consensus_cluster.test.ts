/**
 * Three (and four) in-process Raft peers on real Deno KV files: replication of pins proposed
 * anywhere, a follower restarted from its database catching up, a follower behind a compacted
 * log getting a chunked snapshot, a leader crash losing no acknowledged pin, membership changes
 * and linearizable reads on a follower. Time is the cluster's manual clock (see kv_cluster.ts):
 * it moves only while the cluster is idle, so a slow disk cannot cause an election.
 */
import assert from 'node:assert/strict'
import type { Pin } from '../../../src/types/pin.ts'
import { KvCluster, pinsetOf, testConfig, testPin } from './kv_cluster.ts'

async function pinsN(n: number, tag: string): Promise<Pin[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => testPin(i, tag)))
}

async function assertSamePinsets(c: KvCluster): Promise<Map<string, string>> {
  await c.converge()
  const nodes = [...c.nodes.entries()]
  const sets = await Promise.all(nodes.map(([, n]) => pinsetOf(n.state)))
  // Should the sets differ, each node's pins and Raft view say which and how far it got.
  const views = nodes.map(([id, n], i) => {
    const st = n.consensus.status()
    return `${id}: ${
      sets[i].size
    } pins, ${st.role}, term ${st.term}, commit ${st.commit}, applied ${st.applied}`
  }).join('; ')
  for (const s of sets.slice(1)) assert.deepEqual(s, sets[0], views)
  return sets[0]
}

Deno.test('three peers replicate pins proposed on the leader and on followers', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    await Promise.all([...c.nodes.values()].map((n) => n.consensus.ready()))
    const leader = await c.waitLeader()
    const followers = [...c.nodes.values()].filter((n) => n !== leader)
    const pins = await pinsN(300, 'r')
    await Promise.all(pins.map((p, i) => [leader, ...followers][i % 3].consensus.logPin(p)))
    // A follower's acknowledgement also means a read there sees it.
    for (const f of followers) assert.ok(await f.consensus.state().has(pins[1].cid))
    await followers[0].consensus.logUnpin(pins[0])
    const set = await assertSamePinsets(c)
    assert.equal(set.size, 299)
    for (const n of c.nodes.values()) {
      assert.equal(n.hooked.length, 301, `${n.id} ran the apply hooks of every operation`)
      assert.deepEqual((await n.consensus.peers()).sort(), ['a', 'b', 'c'])
      assert.equal(await n.consensus.leader(), leader.id)
    }
  } finally {
    await c.close()
  }
})

Deno.test('a follower restarted from its KV database catches up', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const f = [...c.nodes.values()].find((n) => n !== leader)!
    await Promise.all((await pinsN(50, 'before')).map((p) => leader.consensus.logPin(p)))
    await c.converge()
    const appliedBefore = f.consensus.status().applied
    await c.stop(f.id)
    await Promise.all((await pinsN(100, 'while down')).map((p) => leader.consensus.logPin(p)))
    const back = await c.start(f.id)
    assert.equal(back.consensus.status().applied, appliedBefore, 'resumes at its applied index')
    const set = await assertSamePinsets(c)
    assert.equal(set.size, 150)
    assert.equal(back.hooked.length, 100, 'only what it missed is applied after the restart')
  } finally {
    await c.close()
  }
})

Deno.test('a follower behind the compacted log gets a snapshot, streamed in chunks', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig({ trailing_logs: 0 }))
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const f = [...c.nodes.values()].find((n) => n !== leader)!
    await leader.consensus.logPin(await testPin(0, 'early'))
    await c.converge()
    c.net.isolate(f.id)
    // ~4,000 pins: a snapshot (deflated) of several 60 KB chunks.
    const pins = await pinsN(4000, 'behind')
    for (let i = 0; i < pins.length; i += 100) {
      await Promise.all(pins.slice(i, i + 100).map((p) => leader.consensus.logPin(p)))
    }
    await leader.consensus.logUnpin(pins[7])
    await leader.consensus.compactNow()
    const ls = leader.consensus.status()
    assert.equal(ls.firstIndex, ls.applied + 1, 'the leader dropped its whole log')
    c.net.heal()
    const set = await assertSamePinsets(c)
    assert.equal(set.size, 4000)
    assert.ok(f.consensus.status().snapshotIndex > 1, 'the follower installed a snapshot')
    const sent = leader.logs.find((l) => l.includes(`sent snapshot`) && l.includes(f.id))
    assert.ok(sent, 'the leader streamed it')
    const bytes = Number(/\((\d+) bytes/.exec(sent!)![1])
    assert.ok(bytes > 3 * 60_000, `several chunks (${bytes} bytes)`)
    assert.ok(f.logs.some((l) => l.includes('installed snapshot')))
    // And it keeps following the log afterwards, and survives a restart.
    await leader.consensus.logPin(await testPin(1, 'after'))
    await c.stop(f.id)
    await c.start(f.id)
    assert.equal((await assertSamePinsets(c)).size, 4001)
  } finally {
    await c.close()
  }
})

Deno.test('a leader crash: a new leader takes over and no acknowledged pin is lost', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    const old = await c.waitLeader()
    const acked: string[] = []
    let stop = false
    let seq = 0
    const proposer = async (id: string) => {
      while (!stop) {
        const n = c.nodes.get(id)
        if (!n) break
        const p = await testPin(seq++, 'crash')
        await n.consensus.logPin(p).then(() => acked.push(p.cid), () => {})
      }
    }
    const workers = [...c.nodes.keys()].flatMap((id) => [proposer(id), proposer(id)])
    // Cut the leader off once pins were acknowledged, let it append entries it can no longer
    // commit (none of them may be acknowledged), crash it, and keep going under the new leader.
    await c.until(() => acked.length >= 60, '60 pins acknowledged before the crash')
    c.net.isolate(old.id)
    const cutAt = old.consensus.status().lastIndex
    const orphan = await testPin(0, 'orphan')
    const orphaned = old.consensus.logPin(orphan).then(() => acked.push(orphan.cid), () => {})
    await c.until(
      () => old.consensus.status().lastIndex > cutAt,
      'the cut-off leader appended an entry it cannot commit',
    )
    await c.crash(old.id)
    await orphaned
    const next = await c.waitLeader(5000, old.id)
    assert.notEqual(next.id, old.id)
    const before = acked.length
    await c.until(() => acked.length >= before + 40, '40 more pins under the new leader')
    stop = true
    await Promise.all(workers)
    c.net.heal()
    await c.start(old.id)
    const set = await assertSamePinsets(c)
    assert.ok(acked.length >= 100, `${acked.length} pins acknowledged`)
    const lost = acked.filter((cid) => !set.has(cid))
    assert.deepEqual(lost, [], 'every acknowledged pin survived')
  } finally {
    await c.close()
  }
})

Deno.test('membership: a peer joins as a learner, is promoted, and is removed', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    await Promise.all((await pinsN(100, 'm')).map((p) => leader.consensus.logPin(p)))
    const d = await c.start('d', { initialVoters: [] }) // not a founder: joins empty
    assert.equal(leader.consensus.isTrustedPeer('d'), false, 'not a member yet: not trusted')
    await leader.consensus.addPeer('d')
    assert.deepEqual(await leader.consensus.peers(), ['a', 'b', 'c', 'd'])
    assert.equal(leader.consensus.isTrustedPeer('d'), true, 'a member is trusted')
    const changes = leader.logs.filter((l) => l.includes('membership change applied'))
    assert.deepEqual(changes.map((l) => l.split(': ').at(-1)), ['addLearner d', 'addVoter d'])
    await d.consensus.ready()
    assert.equal((await assertSamePinsets(c)).size, 100)
    await leader.consensus.addPeer('d') // idempotent
    await leader.consensus.rmPeer('d')
    assert.deepEqual(await leader.consensus.peers(), ['a', 'b', 'c'])
    assert.equal(leader.consensus.isTrustedPeer('d'), false, 'removed: trusted no more')
    await leader.consensus.rmPeer('d') // idempotent
    await c.waitLeader()
  } finally {
    await c.close()
  }
})

Deno.test('consistentState on a follower reflects every pin acknowledged anywhere before', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const f = [...c.nodes.values()].find((n) => n !== leader)!
    for (let i = 0; i < 20; i++) {
      const p = await testPin(i, 'read')
      await leader.consensus.logPin(p)
      const st = await f.consensus.consistentState()
      assert.ok(await st.has(p.cid), `read ${i} on the follower sees the pin`)
    }
  } finally {
    await c.close()
  }
})
