/**
 * The follower's end of a snapshot stream (snapshots.ts `receive`), over a real KV database:
 * chunks of any size are staged as KV values, several commits in flight, and the snapshot reaches
 * the core only once every staged chunk is durable and the stream verified; a stream that breaks
 * or restarts leaves no staged chunk behind, even with commits in flight.
 */
import assert from 'node:assert/strict'
import {
  type Message,
  snapshotChunks,
  type SnapshotMessage,
} from '../../../src/consensus/raft/core/mod.ts'
import { KvRaftStorage } from '../../../src/consensus/raft/kv_storage.ts'
import { SnapshotEncoder, TornSnapshotError } from '../../../src/consensus/raft/snapshot_format.ts'
import { Snapshots } from '../../../src/consensus/raft/snapshots.ts'
import type { PinFsm } from '../../../src/consensus/raft/fsm.ts'
import { nullLogger } from '../../../src/util/log.ts'

const enc = new TextEncoder()
const conf = { voters: ['a', 'b'], learners: [] }
const msg: SnapshotMessage = {
  type: 'snapshot',
  from: 'a',
  to: 'b',
  term: 2,
  snapshot: { index: 50, term: 2, confState: conf },
}

/** A valid snapshot stream of `pins` pins (of names that do not compress), as one byte array. */
function streamBytes(pins: number): Uint8Array {
  const parts: Uint8Array[] = []
  const w = new SnapshotEncoder((c) => parts.push(c))
  let x = 1
  const noise = () => {
    let t = ''
    for (let k = 0; k < 40; k++) {
      x = (x * 1103515245 + 12345) >>> 0
      t += (x >>> 8).toString(36)
    }
    return t
  }
  for (let i = 0; i < pins; i++) {
    w.pin(`cid${i}`, enc.encode(`{"cid":"cid${i}","name":"${noise()}"}`))
  }
  w.finish()
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  parts.reduce((at, p) => (out.set(p, at), at + p.byteLength), 0)
  return out
}

async function follower() {
  const kv = await Deno.openKv(':memory:')
  const storage = await KvRaftStorage.open(kv, { initialConf: { voters: [], learners: [] } })
  const stepped: Promise<{ msg: Message; chunksDurable: number }>[] = []
  const chunkCount = async () => {
    let n = 0
    for await (const _ of kv.list({ prefix: ['chunk'] })) n++
    return n
  }
  const ac = new AbortController()
  const snaps = new Snapshots({
    self: 'b',
    storage,
    fsm: {} as PinFsm,
    node: {
      step: (m: Message) =>
        void stepped.push(chunkCount().then((n) => ({ msg: m, chunksDurable: n }))),
      reportSnapshot() {},
      snapshotMetaAt: () => msg.snapshot,
    },
    transport: { sendSnapshot: () => Promise.resolve() },
    clock: { now: () => 1000 },
    log: nullLogger,
    signal: ac.signal,
    schedule() {},
    check() {},
    stopped: () => false,
    halted: () => false,
  })
  return { kv, storage, snaps, stepped, chunkCount, close: () => kv.close() }
}

Deno.test('a whole stream in large chunks is staged as KV values, then stepped once durable', async () => {
  const f = await follower()
  try {
    const bytes = streamBytes(8000) // ~290 KB, in chunks of 70 KB: two KV values each
    const chunks = [...snapshotChunks(msg, 7, bytes, 70_000)]
    assert.ok(chunks.length >= 4)
    for (const c of chunks) await f.snaps.receive(c)
    await f.snaps.stop()
    assert.equal(f.stepped.length, 1)
    const step = await f.stepped[0]
    assert.equal(step.msg.type, 'snapshot')
    const values = chunks.reduce((n, c) => n + Math.ceil(c.data.byteLength / 60_000), 0)
    assert.equal(step.chunksDurable, values, 'every chunk was durable before the step')
  } finally {
    f.close()
  }
})

Deno.test('a torn stream, or one that restarts, leaves no staged chunk behind', async () => {
  const f = await follower()
  try {
    const bytes = streamBytes(8000)
    const chunks = [...snapshotChunks(msg, 7, bytes, 70_000)]
    await f.snaps.receive(chunks[0])
    await f.snaps.receive(chunks[1])
    // A gap: chunk 3 before chunk 2.
    await assert.rejects(() => f.snaps.receive(chunks[3]), TornSnapshotError)
    await f.snaps.stop()
    await f.storage.drain()
    assert.equal(await f.chunkCount(), 0, 'the torn stream was dropped')

    // A new stream replaces one in progress: the first one's chunks go.
    const again = [...snapshotChunks(msg, 8, bytes, 70_000)]
    const other = [...snapshotChunks(msg, 9, bytes, 70_000)]
    await f.snaps.receive(again[0])
    await f.snaps.receive(again[1])
    for (const c of other) await f.snaps.receive(c)
    await f.snaps.stop()
    await f.storage.drain()
    const n = await f.chunkCount()
    const values = other.reduce((n, c) => n + Math.ceil(c.data.byteLength / 60_000), 0)
    assert.equal(n, values, `only the new set (${n})`)
    assert.equal(f.stepped.length, 1)

    // A stream cut by stop: nothing stays.
    const g = await follower()
    try {
      const cut = [...snapshotChunks(msg, 10, bytes, 70_000)]
      await g.snaps.receive(cut[0])
      await g.snaps.receive(cut[1])
      await g.snaps.stop()
      await g.storage.drain()
      assert.equal(await g.chunkCount(), 0)
    } finally {
      g.close()
    }
  } finally {
    f.close()
  }
})
