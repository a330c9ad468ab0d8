/**
 * The CRDT Consensus component over a stand-in replica (fake_replica.ts): what it writes to the
 * replica (Go's keys and protobuf bytes), the pinset view it keeps in the same commits (read by
 * the ordinary state reader), the apply hooks, the applied counter the tracker's clean-stop mark
 * relies on, the peerset from valid metrics, trust, Go's errors, and batching by size, by age (a
 * manual clock), by stop and with a full queue.
 */
import assert from 'node:assert/strict'
import {
  CANNOT_REMOVE,
  type CrdtConsensus,
  crdtConsensus,
  NO_LEADER,
  QUEUE_FULL,
} from '../../../src/consensus/crdt/crdt_consensus.ts'
import { type CrdtConfig, crdtSection } from '../../../src/consensus/crdt/config.ts'
import { dsKey } from '../../../src/consensus/crdt/codec.ts'
import { decodePinPb, encodePinPb } from '../../../src/consensus/crdt/pin_pb.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import { parseCid } from '../../../src/types/cid.ts'
import { newPin, type Pin, storedPin } from '../../../src/types/pin.ts'
import { ConsensusError, ShutdownError, ValidationError } from '../../../src/errors.ts'
import { type ManualClock, manualClock, turn } from '../../support/manual_clock.ts'
import { type FakeReplica, fakeReplica } from './fake_replica.ts'
import { waitFor } from '../../support/wait.ts'

const SELF = '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K'
const PEER_B = 'QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL'
const PEER_C = '12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const CIDS = [
  'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
  'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
  'QmNvm9pDVMnwLftoDxDjJLTJZDBkHfLUzHeHLbYh2LHQaZ',
  'QmWmPnwdKd7JwjWwXDBT5aFHfyjS8JTYvWajPNEGtWtr2D',
]

interface Harness {
  kv: Deno.Kv
  state: PinState
  consensus: CrdtConsensus
  replica: FakeReplica
  clock: ManualClock
  pinned: Pin[]
  unpinned: Pin[]
  metrics: Map<string, string[]>
}

async function start(
  json: Record<string, unknown> = {},
  kv?: Deno.Kv,
  extra: { trusted?: string[] } = {},
): Promise<Harness> {
  kv ??= await Deno.openKv(':memory:')
  const cfg: CrdtConfig = crdtSection.load({ trusted_peers: ['*'], ...json })
  const state = kvState(kv)
  const clock = manualClock()
  const h = { kv, state, clock, pinned: [], unpinned: [], metrics: new Map() } as unknown as Harness
  h.consensus = crdtConsensus(cfg, {
    peerId: SELF,
    state,
    replica: (hooks) => (h.replica = fakeReplica(kv, hooks)),
    hooks: {
      onPin: (p) => h.pinned.push(p),
      onUnpin: (p) => h.unpinned.push(p),
      onRestore: () => {},
    },
    validPeers: (metric) => h.metrics.get(metric) ?? [],
    trusted: extra.trusted,
    clock,
  })
  await h.consensus.ready()
  return h
}

function pinOf(cid: string, name = 'x'): Pin {
  const p = newPin(cid, { name, replication_factor_min: -1, replication_factor_max: -1 })
  p.timestamp = '2026-01-01T00:00:00Z'
  return p
}

Deno.test('logPin puts Go’s key and protobuf; the view holds the pin; the tracker follows', async () => {
  const h = await start()
  assert.ok(h.replica.started)
  const pin = pinOf(CIDS[0])
  await h.consensus.logPin(pin)
  assert.deepEqual(h.replica.puts, [{
    key: '/CIQJ23BL4UHXA2KTI6NLTXZM4PW4VEFWQBJ4ACZQAS37BLGL4HUO5XY', // crdt-interop §3.4
    value: encodePinPb(pin),
  }])
  assert.deepEqual(await h.consensus.state().get(CIDS[0]), storedPin(pin))
  assert.deepEqual(h.pinned, [storedPin(pin)])
  const listed = []
  for await (const p of h.consensus.state().list()) listed.push(p)
  assert.deepEqual(listed, [storedPin(pin)])

  await h.consensus.logUnpin(pin)
  await waitFor(() => h.unpinned.length === 1, { what: 'the untrack' })
  assert.deepEqual(h.replica.deletes, [dsKey(parseCid(CIDS[0]))])
  assert.equal(await h.consensus.state().get(CIDS[0]), undefined)
  assert.deepEqual(h.unpinned.map((p) => p.cid), [CIDS[0]])
  // Unpinning what is not pinned: a delete the replica turns into nothing (Go: no-op).
  await h.consensus.logUnpin(pinOf(CIDS[1]))
  assert.equal(h.unpinned.length, 1)
  await h.consensus.stop()
  await h.consensus.stop() // idempotent
  assert.ok(h.replica.stopped)
  h.kv.close()
})

Deno.test('merges from other peers reach the view and the hooks; bad values never crash', async () => {
  const h = await start()
  const key = dsKey(parseCid(CIDS[1]))
  const pin = pinOf(CIDS[1], 'remote')
  // The value's own CID field is ignored: the key says which pin it is (Go's dsstate).
  await h.replica.remote(key, encodePinPb({ ...pin, cid: CIDS[2] }))
  assert.deepEqual(await h.state.get(CIDS[1]), storedPin(pin))
  assert.equal(await h.state.get(CIDS[2]), undefined)
  assert.deepEqual(h.pinned.map((p) => p.name), ['remote'])
  // A tombstone that left another version winning: Go untracks; here the survivor is tracked.
  h.replica.remoteTombstone(key)
  await waitFor(() => h.pinned.length === 2, { what: 'the survivor tracked' })
  assert.equal(h.unpinned.length, 0)
  assert.deepEqual(h.pinned.map((p) => p.name), ['remote', 'remote'])
  // A value that is no pin: left out of the view (and logged), the merge goes on.
  await h.replica.remote(dsKey(parseCid(CIDS[3])), Uint8Array.of(0x0a, 0x50, 1))
  assert.equal(await h.state.get(CIDS[3]), undefined)
  // A key that is no CID: not the pinset's, ignored.
  await h.replica.remote('/not-base32!', encodePinPb(pin))
  assert.equal(await h.state.count(), 1)
  await h.replica.remote(key, undefined)
  await waitFor(() => h.unpinned.length === 1, { what: 'the untrack' })
  assert.equal(await h.state.get(CIDS[1]), undefined)
  assert.deepEqual(h.unpinned.map((p) => p.cid), [CIDS[1]])
  await h.consensus.stop()
  h.kv.close()
})

Deno.test('the applied counter moves with the view: the tracker’s clean-stop mark survives a restart', async () => {
  const kv = await Deno.openKv(':memory:')
  const a = await start({}, kv)
  await a.consensus.logPin(pinOf(CIDS[0]))
  await a.consensus.logPin(pinOf(CIDS[1]))
  await a.consensus.logUnpin(pinOf(CIDS[0]))
  assert.equal(
    await a.state.appliedIndex(),
    3,
    'one per merge that changed the view, in its commit',
  )
  await a.consensus.stop()
  await a.state.putSyncMark('ipfs-pinset-at-stop')

  // A clean restart with nothing merged since: the mark is good.
  const b = await start({}, kv)
  assert.equal(await b.state.takeSyncMark(), 'ipfs-pinset-at-stop')
  await b.consensus.logPin(pinOf(CIDS[2]))
  assert.equal(await b.state.appliedIndex(), 4, 'counting on from the stored value')
  await b.state.putSyncMark('second')
  // A merge after the mark was recorded: the next start must not trust it.
  await b.replica.remote(dsKey(parseCid(CIDS[3])), encodePinPb(pinOf(CIDS[3])))
  await b.consensus.stop()
  const c = await start({}, kv)
  assert.equal(await c.state.takeSyncMark(), undefined)
  await c.consensus.stop()
  kv.close()
})

Deno.test('peers are the valid peerset metric’s peers plus self, sorted; no leader, no removal', async () => {
  const h = await start({ peerset_metric: 'freespace' })
  assert.deepEqual(await h.consensus.peers(), [SELF], 'alone: self')
  h.metrics.set('freespace', [PEER_C, PEER_B, SELF])
  h.metrics.set('ping', ['ignored'])
  assert.deepEqual(await h.consensus.peers(), [PEER_C, SELF, PEER_B].sort())
  await assert.rejects(
    h.consensus.leader(),
    (e) => e instanceof ConsensusError && e.message === NO_LEADER,
  )
  await assert.rejects(
    h.consensus.rmPeer(PEER_B),
    (e) => e instanceof ConsensusError && e.message === CANNOT_REMOVE,
  )
  await h.consensus.addPeer(PEER_B) // a no-op, as in Go
  assert.equal(typeof await h.consensus.readBarrier(), 'number', 'resolves at once')
  await h.consensus.stop()
  h.kv.close()
})

Deno.test('trust: "*" trusts everyone; else self, trusted_peers and the bootstrap peers', async () => {
  const all = await start()
  assert.equal(all.consensus.isTrustedPeer(PEER_B), true)
  await all.consensus.stop()
  all.kv.close()
  const listed = await start({ trusted_peers: [PEER_B] }, undefined, { trusted: [PEER_C] })
  assert.equal(listed.consensus.isTrustedPeer(SELF), true)
  assert.equal(listed.consensus.isTrustedPeer(PEER_B), true)
  assert.equal(listed.consensus.isTrustedPeer(PEER_C), true)
  assert.equal(listed.consensus.isTrustedPeer('QmUntrusted'), false)
  await listed.consensus.stop()
  listed.kv.close()
})

Deno.test('a pin the state cannot hold is refused before anything is written', async () => {
  const h = await start()
  const big = pinOf(CIDS[0])
  big.metadata = { blob: 'x'.repeat(70_000) }
  await assert.rejects(h.consensus.logPin(big), ValidationError)
  assert.deepEqual(h.replica.puts, [])
  await h.consensus.stop()
  h.kv.close()
})

const BATCHING = { batching: { max_batch_size: 3, max_batch_age: '1m', max_queue_size: 5 } }

Deno.test('batching: a batch commits as one delta at max_batch_size; reads wait for it', async () => {
  const h = await start(BATCHING)
  await h.consensus.logPin(pinOf(CIDS[0]))
  await h.consensus.logPin(pinOf(CIDS[1]))
  await turn()
  assert.equal(h.replica.batches.length, 0)
  assert.equal(await h.state.get(CIDS[0]), undefined, 'queued, not committed (as Go)')
  assert.equal(h.consensus.queued(), 2)
  await h.consensus.logUnpin(pinOf(CIDS[0]))
  await turn()
  assert.equal(h.replica.batches.length, 1)
  assert.deepEqual(h.replica.batches[0].map((o) => [o.key, o.value !== undefined]), [
    [dsKey(parseCid(CIDS[0])), true],
    [dsKey(parseCid(CIDS[1])), true],
    [dsKey(parseCid(CIDS[0])), false],
  ])
  assert.equal(await h.state.get(CIDS[0]), undefined)
  assert.equal((await h.state.get(CIDS[1]))?.cid, CIDS[1])
  assert.equal(h.clock.pending(), 0, 'the age timer went with the batch')
  assert.equal(h.replica.puts.length + h.replica.deletes.length, 0, 'nothing outside batches')
  await h.consensus.stop()
  h.kv.close()
})

Deno.test('batching: a batch commits max_batch_age after its first item (manual clock)', async () => {
  const h = await start(BATCHING)
  await h.consensus.logPin(pinOf(CIDS[0]))
  await h.clock.advance(30_000)
  await h.consensus.logPin(pinOf(CIDS[1]))
  await h.clock.advance(29_999)
  assert.equal(h.replica.batches.length, 0)
  await h.clock.advance(1)
  assert.equal(h.replica.batches.length, 1)
  assert.equal(h.replica.batches[0].length, 2)
  assert.equal((await h.state.get(CIDS[1]))?.cid, CIDS[1])
  // The next batch's clock starts with its own first item.
  await h.clock.advance(120_000)
  await h.consensus.logPin(pinOf(CIDS[2]))
  await h.clock.advance(59_999)
  assert.equal(h.replica.batches.length, 1)
  await h.clock.advance(1)
  assert.equal(h.replica.batches.length, 2)
  await h.consensus.stop()
  h.kv.close()
})

Deno.test('batching: a full queue refuses with Go’s error; stop commits what waits', async () => {
  const h = await start(BATCHING)
  const release = h.replica.holdBatches()
  for (const c of CIDS.slice(0, 3)) await h.consensus.logPin(pinOf(c)) // a batch, held
  await turn()
  assert.equal(h.replica.batches.length, 1)
  for (let i = 0; i < 5; i++) await h.consensus.logPin(pinOf(CIDS[3], `n${i}`))
  await assert.rejects(
    h.consensus.logPin(pinOf(CIDS[0])),
    (e) => e instanceof ConsensusError && e.message === `error batching item: ${QUEUE_FULL}`,
  )
  const stopped = h.consensus.stop()
  await assert.rejects(h.consensus.logPin(pinOf(CIDS[0])), ShutdownError)
  release()
  await stopped
  // The held batch, then the five waiting ones in one last batch (Go: commit on shutdown).
  assert.deepEqual(h.replica.batches.map((b) => b.length), [3, 5])
  assert.equal((await h.state.get(CIDS[3]))?.name, 'n4', 'the last write of a key wins')
  assert.ok(h.replica.stopped)
  h.kv.close()
})

Deno.test('the view is Go’s decoding of the bytes on the replica', async () => {
  const h = await start()
  const pin = pinOf(CIDS[1])
  pin.allocations = [PEER_B]
  pin.replication_factor_min = 1
  pin.replication_factor_max = 2
  await h.consensus.logPin(pin)
  const stored = await h.state.get(CIDS[1])
  assert.deepEqual(stored, decodePinPb(h.replica.puts[0].value, CIDS[1]))
  await h.consensus.stop()
  h.kv.close()
})
