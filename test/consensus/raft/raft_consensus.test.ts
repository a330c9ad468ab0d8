/**
 * The Raft consensus of one peer: the single-voter path the daemon runs (elects itself at once,
 * acknowledges a pin only once applied and durable, restarts without replaying), shutdown,
 * `NoLeaderError` without a quorum, and a pinset written outside consensus being adopted.
 */
import assert from 'node:assert/strict'
import { NoLeaderError } from '../../../src/consensus/raft/core/mod.ts'
import { raftConsensus } from '../../../src/consensus/raft/raft_consensus.ts'
import { ShutdownError } from '../../../src/errors.ts'
import { kvState } from '../../../src/state/kv_state.ts'
import { manualClock } from '../../support/manual_clock.ts'
import { proxyKv } from '../../support/kv_proxy.ts'
import { replacePinset } from '../../../src/state/import.ts'
import { RecordBatch } from '../../../src/state/sorted_runs.ts'
import { carryOverRaftState } from '../../../src/consensus/raft/kv_storage.ts'
import { encodePin, storedPin } from '../../../src/types/pin.ts'
import { KvCluster, pinsetOf, tempKvPath, testConfig, testPin } from './kv_cluster.ts'

Deno.test('a single voter leads at once, applies pins before acknowledging, restarts without replay', async () => {
  // Time never moves in this test: a single voter needs no election timeout, nor any timer, to
  // lead, commit, apply and restart. (If it waited for one, `ready` would never resolve.)
  const c = new KvCluster(['solo'], testConfig(), {}, { autoTick: false })
  try {
    const started = c.clock.now()
    const n = await c.start('solo')
    await n.consensus.ready()
    assert.equal(c.clock.now(), started, 'ready without any time passing')
    assert.deepEqual(await n.consensus.peers(), ['solo'])
    assert.equal(await n.consensus.leader(), 'solo')
    // Members are trusted; a peer outside the peerset is not (its trusted RPC calls are refused).
    assert.equal(n.consensus.isTrustedPeer('solo'), true)
    assert.equal(n.consensus.isTrustedPeer('anyone'), false)

    const pins = await Promise.all(Array.from({ length: 300 }, (_, i) => testPin(i)))
    await Promise.all(pins.map(async (p) => {
      await n.consensus.logPin(p)
      // Acknowledged means applied here: readable at once.
      assert.ok(await n.state.has(p.cid), `${p.cid} readable once acknowledged`)
    }))
    await n.consensus.logUnpin(pins[0])
    assert.equal(await n.state.has(pins[0].cid), false)
    assert.equal(n.hooked.length, 301)
    assert.deepEqual(n.hooked.at(-1), { kind: 'unpin', cid: pins[0].cid })
    const s = n.consensus.status()
    assert.ok(s.lastIndex < 150, `300 concurrent pins were batched into ${s.lastIndex} entries`)

    await c.stop('solo')
    const again = await c.start('solo')
    await again.consensus.ready()
    assert.equal(again.hooked.length, 0, 'nothing applied before the restart is applied again')
    assert.equal((await pinsetOf(again.state)).size, 299)
    await again.consensus.logPin(await testPin(1000))
    assert.ok(await again.state.has((await testPin(1000)).cid))
  } finally {
    await c.close()
  }
})

Deno.test('stop is idempotent; operations in flight or after it fail with ShutdownError', async () => {
  const c = new KvCluster(['solo'])
  try {
    const n = await c.start('solo')
    await n.consensus.ready()
    const pins = await Promise.all(Array.from({ length: 200 }, (_, i) => testPin(i)))
    const results = pins.map((p) => n.consensus.logPin(p).then(() => 'ok', (e) => e))
    const stopping = n.consensus.stop()
    await Promise.all([stopping, n.consensus.stop()])
    for (const r of await Promise.all(results)) {
      if (r !== 'ok') assert.ok(r instanceof ShutdownError, `in flight: ${r}`)
    }
    await assert.rejects(n.consensus.logPin(pins[0]), ShutdownError)
    // Every acknowledged pin is in the state.
    const outcome = await Promise.all(results)
    const state = await pinsetOf(n.state)
    pins.forEach((p, i) => outcome[i] === 'ok' && assert.ok(state.has(p.cid), p.cid))
  } finally {
    await c.close()
  }
})

Deno.test('without a quorum, operations fail with NoLeaderError after wait_for_leader_timeout', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig({ wait_for_leader_timeout: 300 }))
  try {
    const a = await c.start('a') // b and c never come up
    const pin = await testPin(1)
    const started = c.clock.now()
    const err = await a.consensus.logPin(pin).catch((e) => e)
    const waited = c.clock.now() - started
    assert.ok(err instanceof NoLeaderError, `got ${err}`)
    assert.equal(
      err.message,
      "no leader after waiting 300ms (wait_for_leader_timeout): a write needs a majority of the cluster's peers running and reachable",
    )
    assert.equal(err.status, 503)
    // Deadlines are checked on every tick (5 ms here): the first tick at or past 300 ms.
    assert.ok(waited >= 300 && waited < 305, `it waited ${waited} ms for a leader`)
    await assert.rejects(a.consensus.ready(), NoLeaderError)
    await assert.rejects(a.consensus.leader(), NoLeaderError)
    assert.equal(await a.state.has((await testPin(1)).cid), false)
  } finally {
    await c.close()
  }
})

Deno.test('a pinset written outside consensus (state import, cleanup) becomes the new starting point', async () => {
  const path = await tempKvPath()
  const hooks = { onPin() {}, onUnpin() {}, onRestore() {} }
  const cfg = testConfig()
  const clock = manualClock()
  const open = async () => {
    const kv = await Deno.openKv(path)
    const state = kvState(kv)
    // A single voter: nothing here needs time to pass, so it stands still.
    return { kv, state, c: raftConsensus(cfg, { peerId: 'p', kv, state, hooks, clock }) }
  }
  try {
    // 1. Pins imported before Raft ever ran (no applied index).
    let kv = await Deno.openKv(path)
    await kvState(kv).apply(
      await Promise.all([1, 2, 3].map(async (i) => ({
        type: 'pin' as const,
        pin: await testPin(i),
      }))),
    )
    kv.close()
    let r = await open()
    await r.c.ready()
    assert.equal((await pinsetOf(r.state)).size, 3)
    await r.c.logPin(await testPin(4))
    assert.ok(r.c.status().snapshotIndex >= 1, 'the imported pinset is the snapshot')
    await r.c.stop()
    r.kv.close()

    // 2. `state import` over an existing Raft log: clear + apply without an applied index.
    kv = await Deno.openKv(path)
    const st = kvState(kv)
    await st.clear()
    await st.apply([{ type: 'pin', pin: await testPin(50) }])
    kv.close()
    r = await open()
    await r.c.ready()
    const pins = await pinsetOf(r.state)
    assert.deepEqual([...pins.keys()], [(await testPin(50)).cid], 'the old log is not replayed')
    await r.c.stop()
    r.kv.close()

    // 3. And a normal restart after that keeps it.
    r = await open()
    await r.c.ready()
    assert.equal((await pinsetOf(r.state)).size, 1)
    await r.c.stop()
    r.kv.close()
  } finally {
    for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {})
  }
})

Deno.test('a pinset imported into a new file (state import) is adopted; term, vote and membership carry over', async () => {
  const path = await tempKvPath()
  const hooks = { onPin() {}, onUnpin() {}, onRestore() {} }
  const open = async () => {
    const kv = await Deno.openKv(path)
    const state = kvState(kv)
    return { kv, state, c: raftConsensus(testConfig(), { peerId: 'p', kv, state, hooks }) }
  }
  try {
    let r = await open()
    await r.c.ready()
    for (const i of [1, 2, 3]) await r.c.logPin(await testPin(i))
    const before = r.c.status()
    await r.c.stop()
    r.kv.close()

    const imported = await Promise.all([60, 61].map((i) => testPin(i)))
    const batches = async function* () {
      const b = new RecordBatch()
      for (const p of imported) b.push(p.cid, encodePin(storedPin(p)))
      yield b.take()
    }
    await replacePinset(path, batches(), { carryOver: carryOverRaftState })

    r = await open()
    await r.c.ready()
    assert.deepEqual(
      [...(await pinsetOf(r.state)).keys()].sort(),
      imported.map((p) => p.cid).sort(),
      'the imported pinset, not the old log replayed',
    )
    const after = r.c.status()
    assert.ok(after.term >= before.term, `term ${after.term} kept from ${before.term}`)
    assert.deepEqual(after.voters, before.voters)
    assert.ok(
      after.snapshotIndex >= before.lastIndex,
      'the import is the snapshot after the old log',
    )
    await r.c.logPin(await testPin(62))
    await r.c.stop()
    r.kv.close()

    r = await open()
    await r.c.ready()
    assert.equal((await pinsetOf(r.state)).size, 3, 'a normal restart keeps it')
    await r.c.stop()
    r.kv.close()
  } finally {
    for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {})
  }
})

Deno.test('a failing disk stops the node: waiting and later operations get the error, stop works', async () => {
  const path = await tempKvPath()
  const kv = await Deno.openKv(path)
  let failing = false
  // The same database, but its commits fail once `failing` is set.
  const flaky = proxyKv(kv, {
    commit: (run) => failing ? Promise.reject(new Error('disk I/O error')) : run(),
  })
  const c = raftConsensus(testConfig(), {
    peerId: 'p',
    kv: flaky,
    state: kvState(kv),
    hooks: { onPin() {}, onUnpin() {}, onRestore() {} },
    clock: manualClock(), // a single voter needs no time to pass
  })
  try {
    await c.ready()
    await c.logPin(await testPin(1))
    failing = true
    const err = await c.logPin(await testPin(2)).catch((e) => e)
    assert.match(String(err?.message), /raft stopped: disk I\/O error/)
    await assert.rejects(c.logPin(await testPin(3)), /raft stopped/)
    await assert.rejects(c.readBarrier(), /raft stopped/)
    await c.stop()
  } finally {
    kv.close()
    for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {})
  }
})
