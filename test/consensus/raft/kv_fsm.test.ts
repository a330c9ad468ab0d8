/**
 * The pinset state machine on Deno KV: entry encoding, application with its applied index and
 * dedupe table, and snapshots — the same pinset after a restore, even for a snapshot taken while
 * entries kept being applied — and the snapshot byte format rejecting torn streams.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type Entry, RaftInvariantError } from '../../../src/consensus/raft/core/mod.ts'
import {
  decodeBatch,
  encodeBatch,
  encodeOp,
  opPin,
} from '../../../src/consensus/raft/entry_codec.ts'
import { PinFsm } from '../../../src/consensus/raft/fsm.ts'
import { KvRaftStorage } from '../../../src/consensus/raft/kv_storage.ts'
import {
  crc32,
  SnapshotDecoder,
  SnapshotEncoder,
  SnapshotVerifier,
  TornSnapshotError,
} from '../../../src/consensus/raft/snapshot_format.ts'
import { kvState } from '../../../src/state/kv_state.ts'
import { encodePin, newPin, type Pin, storedPin } from '../../../src/types/pin.ts'
import { ValidationError } from '../../../src/errors.ts'
import { tempKvPath } from './kv_cluster.ts'

const enc = new TextEncoder()
const conf = { voters: ['a'], learners: [] }

async function cidFor(i: number): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(enc.encode(`fsm ${i}`))).toString()
}

async function pinFor(i: number): Promise<Pin> {
  // A name that does not compress (a second CID), so that snapshots span several chunks.
  const p = newPin(await cidFor(i), { name: `p${i}-${await cidFor(-i - 1)}` })
  p.timestamp = '2026-11-25T12:00:00Z'
  return p
}

interface Env {
  kv: Deno.Kv
  storage: KvRaftStorage
  fsm: PinFsm
  state: ReturnType<typeof kvState>
  close(): void
}

async function env(): Promise<Env> {
  const kv = await Deno.openKv(await tempKvPath())
  const state = kvState(kv)
  const storage = await KvRaftStorage.open(kv, { initialConf: conf })
  const fsm = await PinFsm.open(kv, state)
  await fsm.setApplied(0)
  return { kv, storage, fsm, state, close: () => kv.close() }
}

/** Appends `entries` and applies them, as the host does for a solo leader. */
async function appendAndApply(e: Env, entries: Entry[]): Promise<void> {
  const staged = e.fsm.stage(entries)
  const last = entries.at(-1)!.index
  await e.storage.persist(entries, { term: 1, vote: 'a', commit: last }, staged.groups)
  e.fsm.applyDone(staged)
}

function batchEntry(
  index: number,
  origin: string,
  seq: number,
  ops: Parameters<typeof encodeOp>[0][],
) {
  return {
    term: 1,
    index,
    type: 'normal' as const,
    data: encodeBatch(origin, seq, ops.map(encodeOp)),
  }
}

async function pinset(state: ReturnType<typeof kvState>): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  for await (const p of state.list()) m.set(p.cid, JSON.stringify(p))
  return m
}

Deno.test('a batch entry round-trips its ops, stored bytes and origin; garbage is refused', async () => {
  const p1 = await pinFor(1)
  const p2 = await pinFor(2)
  const data = encodeBatch('peer-A', 1_700_000_000_000_123, [
    encodeOp({ type: 'pin', pin: p1 }),
    encodeOp({ type: 'unpin', pin: p2 }),
  ])
  const b = decodeBatch(data)
  assert.equal(b.origin, 'peer-A')
  assert.equal(b.seq, 1_700_000_000_000_123)
  assert.deepEqual(b.ops.map((o) => [o.kind, o.cid]), [['pin', p1.cid], ['unpin', p2.cid]])
  assert.equal(new TextDecoder().decode(b.ops[0].json), encodePin(storedPin(p1)))
  assert.deepEqual(opPin(b.ops[0]), JSON.parse(encodePin(storedPin(p1))))
  assert.throws(() => decodeBatch(data.subarray(0, data.length - 3)), RaftInvariantError)
  assert.throws(() => decodeBatch(new Uint8Array([1, 0, 5])), RaftInvariantError)
  const huge = await pinFor(3)
  huge.metadata = { blob: 'x'.repeat(70_000) }
  assert.throws(() => encodeOp({ type: 'pin', pin: huge }), ValidationError)
})

Deno.test('apply writes pins with the applied index; a restart resumes after it', async () => {
  const e = await env()
  const [a, b, c] = await Promise.all([pinFor(1), pinFor(2), pinFor(3)])
  await appendAndApply(e, [
    batchEntry(1, 'x', 1, [{ type: 'pin', pin: a }, { type: 'pin', pin: b }]),
    { term: 1, index: 2, type: 'normal', data: new Uint8Array() },
    batchEntry(3, 'y', 1, [{ type: 'pin', pin: c }, { type: 'unpin', pin: a }]),
  ])
  assert.deepEqual([...(await pinset(e.state)).keys()].sort(), [b.cid, c.cid].sort())
  assert.equal(e.fsm.applied, 3)
  const again = await PinFsm.open(e.kv, e.state)
  assert.equal(again.applied, 3, 'the applied index was committed with the state')
  assert.equal(again.lastSeq('x'), 1)
  assert.equal(again.lastSeq('y'), 1)
  assert.ok(await e.state.has(c.cid), 'the state reads what Raft wrote (its filter was told)')
  e.close()
})

Deno.test("a held staging stays in flight for the state's filter until its own commit lands", async () => {
  const e = await env()
  const a = await pinFor(1)
  const ent = batchEntry(1, 'x', 1, [{ type: 'pin', pin: a }])
  await e.storage.persist([ent], { term: 1, vote: 'a', commit: 0 }, [])
  // Committed and staged, its writes held (ready_loop.ts); a later Ready writes nothing.
  const held = e.fsm.stage([ent])
  e.fsm.applyDone(e.fsm.stage([]))
  // A filter rebuilt now cannot see the key in KV: it must still count it as in flight.
  await e.state.loadFilter()
  await e.storage.persist([], { term: 1, vote: 'a', commit: 1 }, held.groups)
  e.fsm.applyDone(held)
  assert.ok(await e.state.has(a.cid))
  e.close()
})

Deno.test('a batch delivered twice, or overtaken by a later one of its peer, is skipped everywhere', async () => {
  const e = await env()
  const [a, b] = await Promise.all([pinFor(1), pinFor(2)])
  await appendAndApply(e, [
    batchEntry(1, 'x', 5, [{ type: 'pin', pin: a }]),
    batchEntry(2, 'x', 6, [{ type: 'unpin', pin: a }]),
  ])
  const staged = e.fsm.stage([
    batchEntry(3, 'x', 5, [{ type: 'pin', pin: a }]), // duplicate of entry 1
    batchEntry(4, 'x', 4, [{ type: 'pin', pin: b }]), // older than what was applied
  ])
  assert.equal(staged.duplicates, 2)
  assert.deepEqual(staged.batches, [])
  await e.storage.persist([], { term: 1, vote: 'a', commit: 4 }, staged.groups)
  e.fsm.applyDone(staged)
  assert.equal(e.fsm.applied, 4)
  assert.equal((await pinset(e.state)).size, 0, 'the duplicate did not re-pin a')
  e.close()
})

Deno.test('snapshot then restore gives the same pinset and dedupe table', async () => {
  const src = await env()
  const pins = await Promise.all(Array.from({ length: 700 }, (_, i) => pinFor(i)))
  const entries: Entry[] = []
  for (let i = 0; i < 7; i++) {
    entries.push(batchEntry(
      i + 1,
      `peer${i % 2}`,
      i + 10,
      pins.slice(i * 100, i * 100 + 100).map(
        (pin, k) => ({ type: k % 10 === 0 && i > 0 ? 'unpin' : 'pin', pin }) as const,
      ),
    ))
  }
  await appendAndApply(src, entries)
  const snap = await src.fsm.takeSnapshot(src.storage)
  assert.equal(snap.index, 7)
  assert.ok(snap.data.chunks >= 2, 'several chunks')
  await src.storage.verifyData(snap.data)

  // Restore on another node: chunks copied as a stream would stage them.
  const dst = await env()
  await dst.state.apply([{ type: 'pin', pin: await pinFor(9999) }]) // stale content to replace
  const id = dst.storage.newDataId()
  let n = 0
  for await (const c of src.storage.readChunks(snap.data)) {
    await dst.storage.writeChunks(id, n++, [c])
  }
  const data = { ...snap.data, id }
  await dst.storage.beginInstall({ index: 7, term: 1, confState: conf }, data)
  await dst.fsm.restore(dst.storage, data, 7, [dst.storage.restoreDoneMutation()])
  assert.deepEqual(await pinset(dst.state), await pinset(src.state))
  assert.equal(dst.fsm.applied, 7)
  assert.equal(dst.fsm.lastSeq('peer0'), src.fsm.lastSeq('peer0'))
  assert.equal(dst.fsm.lastSeq('peer1'), src.fsm.lastSeq('peer1'))
  const reopened = await KvRaftStorage.open(dst.kv, { initialConf: conf })
  assert.equal(reopened.restorePending, false, 'the restore marker went with the last write')
  src.close()
  dst.close()
})

Deno.test('a snapshot taken while entries keep being applied is the state at its index', async () => {
  const src = await env()
  const pins = await Promise.all(Array.from({ length: 3000 }, (_, i) => pinFor(i)))
  // Model: what the state is after each index.
  const model = new Map<string, string>()
  const after: Map<string, string>[] = [new Map()]
  const entryFor = (index: number): Entry => {
    const ops = Array.from({ length: 40 }, (_, k) => {
      const pin = pins[(index * 37 + k * 11) % pins.length]
      return { type: (index + k) % 3 === 0 ? 'unpin' : 'pin', pin } as const
    })
    for (const op of ops) {
      if (op.type === 'pin') model.set(op.pin.cid, encodePin(storedPin(op.pin)))
      else model.delete(op.pin.cid)
    }
    after[index] = new Map(model)
    return batchEntry(index, 'p', index, ops)
  }
  let index = 0
  for (; index < 60; index++) await appendAndApply(src, [entryFor(index + 1)])
  // Apply more entries concurrently with the scan.
  let stop = false
  const writer = (async () => {
    while (!stop && index < 400) {
      index++
      await appendAndApply(src, [entryFor(index)])
    }
  })()
  const snap = await src.fsm.takeSnapshot(src.storage)
  stop = true
  await writer
  assert.ok(snap.index > 60, `writes went on during the snapshot (index ${snap.index})`)

  const dst = await env()
  const id = dst.storage.newDataId()
  let n = 0
  for await (const c of src.storage.readChunks(snap.data)) {
    await dst.storage.writeChunks(id, n++, [c])
  }
  await dst.fsm.restore(dst.storage, { ...snap.data, id }, snap.index)
  const got = new Map<string, string>()
  for await (const b of dst.state.listEncoded()) {
    const s = new TextDecoder().decode(b)
    got.set(JSON.parse(s).cid, s)
  }
  assert.deepEqual(got, after[snap.index])
  src.close()
  dst.close()
})

Deno.test('snapshot bytes: records straddle chunks; truncation and bit flips are detected', () => {
  const chunks: Uint8Array[] = []
  const w = new SnapshotEncoder((c) => chunks.push(c), 7)
  w.pin('cidA', enc.encode('{"cid":"cidA"}'))
  w.unpin('cidB')
  w.seq('peer', 42)
  w.finish()
  const all = () => {
    const d = new SnapshotDecoder()
    const recs = chunks.flatMap((c) => d.push(c))
    d.end()
    return recs
  }
  assert.deepEqual(all().map((r) => r.kind), ['pin', 'unpin', 'seq'])
  const v = new SnapshotVerifier()
  for (const c of chunks) v.push(c)
  v.end()

  const truncated = new SnapshotDecoder()
  for (const c of chunks.slice(0, -1)) truncated.push(c)
  assert.throws(() => truncated.end(), TornSnapshotError)
  const tv = new SnapshotVerifier()
  for (const c of chunks.slice(0, -1)) tv.push(c)
  assert.throws(() => tv.end(), TornSnapshotError)

  const flipped = chunks.map((c) => c.slice())
  flipped[3][2] ^= 1
  const fv = new SnapshotVerifier()
  for (const c of flipped) fv.push(c)
  assert.throws(() => fv.end(), TornSnapshotError)
})

Deno.test('the verifier gives the same answer however the stream is cut', () => {
  const chunks: Uint8Array[] = []
  const w = new SnapshotEncoder((c) => chunks.push(c), 50)
  for (let i = 0; i < 20; i++) w.pin(`cid${i}`, enc.encode(`{"cid":"cid${i}"}`))
  w.seq('peer', 7)
  w.finish()
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  chunks.reduce((at, c) => (all.set(c, at), at + c.byteLength), 0)
  const whole = new SnapshotVerifier()
  whole.push(all)
  const expected = whole.end()
  // Pieces shorter and longer than the trailer, one byte to the whole stream, and uneven cuts.
  for (let size = 1; size <= all.byteLength; size += size < 40 ? 1 : 37) {
    const v = new SnapshotVerifier()
    for (let at = 0; at < all.byteLength; at += size) v.push(all.subarray(at, at + size))
    assert.deepEqual(v.end(), expected, `pieces of ${size} bytes`)
    const flipped = all.slice()
    flipped[(size * 13) % (all.byteLength - 20)] ^= 4
    const fv = new SnapshotVerifier()
    for (let at = 0; at < all.byteLength; at += size) fv.push(flipped.subarray(at, at + size))
    assert.throws(() => fv.end(), TornSnapshotError, `a flipped bit, pieces of ${size} bytes`)
  }
  const uneven = new SnapshotVerifier()
  for (let at = 0, k = 1; at < all.byteLength; at += k, k = (k * 7) % 61 + 1) {
    uneven.push(all.subarray(at, at + k))
  }
  assert.deepEqual(uneven.end(), expected)
})

Deno.test('a restore cut short by a crash leaves no applied index and is redone whole at the next start', async () => {
  const src = await env()
  const pins = await Promise.all(Array.from({ length: 3000 }, (_, i) => pinFor(i)))
  for (let i = 0; i < 30; i++) {
    await appendAndApply(src, [
      batchEntry(
        i + 1,
        'p',
        i + 1,
        pins.slice(i * 100, i * 100 + 100).map((pin) => ({
          type: 'pin' as const,
          pin,
        })),
      ),
    ])
  }
  const snap = await src.fsm.takeSnapshot(src.storage)
  assert.ok(snap.data.chunks >= 4, `${snap.data.chunks} chunks`)

  const path = await tempKvPath()
  let kv = await Deno.openKv(path)
  let storage = await KvRaftStorage.open(kv, { initialConf: conf })
  let fsm = await PinFsm.open(kv, kvState(kv))
  const id = storage.newDataId()
  const out = storage.chunkWriter(id)
  for await (const c of src.storage.readChunks(snap.data)) await out.write(c)
  await out.flush()
  const data = { ...snap.data, id }
  const meta = { index: snap.index, term: 1, confState: conf }
  await storage.beginInstall(meta, data)
  // The crash: the database goes away after the restore read a third of the chunks, with its
  // commits (several in flight) wherever they were.
  const cut = {
    async *readChunks(d: typeof data) {
      let n = 0
      for await (const c of storage.readChunks(d)) {
        if (n++ === Math.floor(d.chunks / 3)) {
          kv.close()
          throw new Error('power cut')
        }
        yield c
      }
    },
  } as unknown as KvRaftStorage
  await assert.rejects(() => fsm.restore(cut, data, snap.index, [storage.restoreDoneMutation()]))

  kv = await Deno.openKv(path)
  storage = await KvRaftStorage.open(kv, { initialConf: conf })
  const state = kvState(kv)
  fsm = await PinFsm.open(kv, state)
  assert.equal(storage.restorePending, true, 'the restore is reported')
  assert.equal(fsm.appliedKnown, false, 'a partial pinset never claims an applied index')
  await fsm.restore(storage, storage.snapshotData()!, storage.snapshot().index, [
    storage.restoreDoneMutation(),
  ])
  assert.deepEqual(await pinset(state), await pinset(src.state))
  const again = await KvRaftStorage.open(kv, { initialConf: conf })
  assert.equal(again.restorePending, false)
  kv.close()
  src.close()
})

Deno.test('snapshot bytes: records go in deflated blocks; a version 1 stream still decodes', () => {
  const chunks: Uint8Array[] = []
  const w = new SnapshotEncoder((c) => chunks.push(c), 60_000)
  const json = (i: number) => enc.encode(`{"cid":"cid${i}","name":"pin number ${i}"}`)
  for (let i = 0; i < 20_000; i++) w.pin(`cid${i}`, json(i))
  w.unpin('cid7')
  w.seq('peer', 3)
  const { length } = w.finish()
  const raw = 20_000 * (5 + 2 + 8 + 30)
  assert.ok(length < raw / 3, `deflated: ${length} bytes for about ${raw} of records`)
  const d = new SnapshotDecoder()
  const recs = chunks.flatMap((c) => d.push(c))
  d.end()
  assert.equal(recs.length, 20_002)
  const last = recs[19_999]
  assert.ok(last.kind === 'pin' && last.cid === 'cid19999')
  assert.deepEqual(last.json, json(19_999))
  assert.deepEqual(recs.slice(-2).map((r) => r.kind), ['unpin', 'seq'])

  // Version 1: plain records after the old header.
  const rec = (kind: number, payload: Uint8Array) => {
    const r = new Uint8Array(5 + payload.byteLength)
    r[0] = kind
    new DataView(r.buffer).setUint32(1, payload.byteLength)
    r.set(payload, 5)
    return r
  }
  const pin = new Uint8Array(2 + 4 + 2)
  new DataView(pin.buffer).setUint16(0, 4)
  pin.set(enc.encode('cidA{}'), 2)
  const body = [rec(0, enc.encode('ipfs-cluster-deno raft snapshot 1')), rec(1, pin)]
  const bodyBytes = body.reduce((n, r) => n + r.byteLength, 0)
  const trailer = new Uint8Array(12)
  new DataView(trailer.buffer).setFloat64(0, bodyBytes)
  new DataView(trailer.buffer).setUint32(8, body.reduce((c, r) => crc32(c, r), 0))
  const v1 = new SnapshotDecoder()
  const got = [...body, rec(127, trailer)].flatMap((r) => v1.push(r))
  v1.end()
  assert.deepEqual(got.map((r) => r.kind === 'pin' && r.cid), ['cidA'])

  // A block that does not inflate is a torn stream.
  const bad = chunks.map((c) => c.slice())
  bad[0][60] ^= 0xff
  assert.throws(() => {
    const b = new SnapshotDecoder()
    for (const c of bad) b.push(c)
    b.end()
  }, TornSnapshotError)
})
