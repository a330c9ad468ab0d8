/**
 * Three Raft peers over real libp2p hosts on 127.0.0.1 (TCP + Noise + Yamux), each with the
 * production `raftConsensus` on its own KV file and a `libp2pTransport`: a leader is elected and
 * pins replicate; a follower's write is forwarded to the leader and applied everywhere; a stopped
 * leader is replaced and writes resume; a peer restarted on the same port reconnects and catches
 * up; a peer behind a compacted log catches up through a snapshot streamed over the wire.
 * Waits are generous wall-clock bounds (real sockets and timers, see libp2p_cluster.ts).
 */
import assert from 'node:assert/strict'
import type { Pin } from '../../../src/types/pin.ts'
import { pinsetOf, testPin } from './kv_cluster.ts'
import { NetCluster, netConfig } from './libp2p_cluster.ts'

async function pinsN(n: number, tag: string): Promise<Pin[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => testPin(i, tag)))
}

async function samePinsets(c: NetCluster): Promise<Map<string, string>> {
  await c.converge()
  const sets = await Promise.all([...c.nodes.values()].map((n) => pinsetOf(n.state)))
  for (const s of sets.slice(1)) assert.deepEqual(s, sets[0])
  return sets[0]
}

Deno.test('three peers over libp2p elect a leader and replicate pins from any peer', async () => {
  const c = await NetCluster.create(3)
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const followers = [...c.nodes.values()].filter((n) => n !== leader)
    const pins = await pinsN(150, 'r')
    await Promise.all(pins.map((p, i) => [leader, ...followers][i % 3].consensus.logPin(p)))
    // A follower's write went to the leader over the wire and is read where it was made.
    const forwarded = await testPin(0, 'forwarded')
    await followers[1].consensus.logPin(forwarded)
    assert.ok(await followers[1].consensus.state().has(forwarded.cid))
    await followers[0].consensus.logUnpin(pins[0])
    const set = await samePinsets(c)
    assert.equal(set.size, 150)
    assert.ok(set.has(forwarded.cid) && !set.has(pins[0].cid))
    for (const n of c.nodes.values()) {
      assert.equal(await n.consensus.leader(), leader.id)
      assert.deepEqual((await n.consensus.peers()).sort(), [...c.ids].sort())
      assert.equal(n.transport.stats(leader.id === n.id ? followers[0].id : leader.id)?.dials, 1)
    }
  } finally {
    await c.close()
  }
})

Deno.test('a stopped leader is replaced, writes resume, and it catches up on the same port', async () => {
  const c = await NetCluster.create(3)
  try {
    await c.startAll()
    const old = await c.waitLeader()
    await Promise.all((await pinsN(50, 'before')).map((p) => old.consensus.logPin(p)))
    await c.converge()
    await c.stop(old.id) // its host goes too: the others' streams to it break
    const next = await c.waitLeader(old.id)
    const follower = [...c.nodes.values()].find((n) => n !== next)!
    await Promise.all((await pinsN(50, 'after')).map((p) => follower.consensus.logPin(p)))
    assert.ok(
      (next.transport.stats(old.id)?.dropped ?? 0) > 0,
      'the new leader dropped traffic to the stopped peer',
    )
    // Back on the same port, key and database: the others reconnect to it and it catches up.
    const back = await c.start(old.id)
    const set = await samePinsets(c)
    assert.equal(set.size, 100)
    assert.equal(await back.consensus.leader(), next.id)
    const said = (what: string) => next.logs.some((l) => l.includes(`${old.id}: ${what}`))
    assert.ok(said('cannot dial') || said('stream broke'), 'the leader said the peer was gone')
    assert.ok(said('reachable again'), 'and that it came back')
    await back.consensus.logPin(await testPin(1, 'from the returned peer'))
    assert.equal((await samePinsets(c)).size, 101)
  } finally {
    await c.close()
  }
})

Deno.test('a peer behind a compacted log catches up through a snapshot over the wire', async () => {
  const c = await NetCluster.create(3, {
    config: netConfig({ trailing_logs: 0 }),
    tuning: { maxOpsPerEntry: 16, snapshotChunkBytes: 120_000 },
  })
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const behind = [...c.nodes.values()].find((n) => n !== leader)!
    await leader.consensus.logPin(await testPin(0, 'early'))
    await c.converge()
    await c.stop(behind.id)
    // ~4,000 pins: a snapshot (deflated) of several chunks on the wire, each up to 120 KB.
    const pins = await pinsN(4000, 'behind')
    for (let i = 0; i < pins.length; i += 100) {
      await Promise.all(pins.slice(i, i + 100).map((p) => leader.consensus.logPin(p)))
    }
    await leader.consensus.compactNow()
    const ls = leader.consensus.status()
    assert.equal(ls.firstIndex, ls.applied + 1, 'the leader dropped its whole log')
    const back = await c.start(behind.id)
    const set = await samePinsets(c)
    assert.equal(set.size, 4001)
    assert.ok(back.consensus.status().snapshotIndex > 1, 'the peer installed a snapshot')
    const sent = leader.logs.find((l) => l.includes('sent snapshot') && l.includes(back.id))
    assert.ok(sent, 'the leader streamed it')
    const bytes = Number(/\((\d+) bytes/.exec(sent!)![1])
    assert.ok(bytes > 2 * 120_000, `several chunks (${bytes} bytes)`)
    await leader.consensus.logPin(await testPin(1, 'after'))
    assert.equal((await samePinsets(c)).size, 4002, 'and it follows the log afterwards')
  } finally {
    await c.close()
  }
})
