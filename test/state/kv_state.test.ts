import assert from 'node:assert/strict'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { MAX_PIN_BYTES, openKvState, type PinState } from '../../src/state/kv_state.ts'
import { encodePin, newPin, type Pin, storedPin } from '../../src/types/pin.ts'
import type { LogOp } from '../../src/components.ts'
import { ShutdownError, ValidationError } from '../../src/errors.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** A deterministic CIDv1 (raw codec) for i; sha2-512 ones are 110 characters long. */
async function cidFor(i: number, long = false): Promise<string> {
  const bytes = enc.encode(`pin ${i}`)
  const mh = long ? await sha512.digest(bytes) : await sha256.digest(bytes)
  return CID.createV1(0x55, mh).toString()
}

async function pins(n: number, long = false, from = 0): Promise<Pin[]> {
  const out: Pin[] = []
  for (let i = from; i < from + n; i++) {
    const p = newPin(await cidFor(i, long), { name: `p${i}`, metadata: { i: String(i) } })
    p.timestamp = '2026-11-25T12:36:18.5Z'
    out.push(p)
  }
  return out
}

const pinOps = (ps: Pin[]): LogOp[] => ps.map((pin) => ({ type: 'pin', pin }))

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Runs `fn` with a fresh in-memory state, closed afterwards. */
async function withState(fn: (s: PinState) => Promise<void>): Promise<void> {
  const s = await openKvState(':memory:')
  try {
    await fn(s)
  } finally {
    s.close()
  }
}

Deno.test('apply/get/has: pins are stored in the reference stored form', () =>
  withState(async (s) => {
    const [p] = await pins(1)
    p.user_allocations = ['12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ']
    assert.equal(await s.has(p.cid), false)
    assert.equal(await s.get(p.cid), undefined)
    await s.apply([{ type: 'pin', pin: p }])
    assert.equal(await s.has(p.cid), true)
    const got = await s.get(p.cid)
    assert.deepEqual(got, storedPin(p))
    assert.equal(got?.timestamp, '2026-11-25T12:36:18Z')
    assert.deepEqual(got?.origins, [])
    assert.equal(got?.user_allocations, null)
  }))

Deno.test('get/has accept any form of the CID (v0, v1, base36)', () =>
  withState(async (s) => {
    const v0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
    await s.apply([{ type: 'pin', pin: newPin(v0) }])
    assert.equal((await s.get(v0))?.cid, v0)
    const c = CID.parse(v0)
    // Same multihash but a different CID (v1 dag-pb) is a different key: the pinset is by CID.
    assert.equal(await s.has(c.toV1().toString()), false)
    const v1pin = newPin(c.toV1().toString())
    await s.apply([{ type: 'pin', pin: v1pin }])
    const { base36 } = await import('multiformats/bases/base36')
    assert.equal(await s.has(c.toV1().toString(base36)), true)
    await assert.rejects(s.get('notacid'), ValidationError)
  }))

Deno.test('unpin deletes; pin then unpin of one CID in a batch applies in order', () =>
  withState(async (s) => {
    const [a, b] = await pins(2)
    await s.apply(pinOps([a, b]))
    await s.apply([{ type: 'unpin', pin: a }])
    assert.equal(await s.has(a.cid), false)
    assert.equal(await s.has(b.cid), true)
    await s.apply([{ type: 'pin', pin: a }, { type: 'unpin', pin: a }])
    assert.equal(await s.has(a.cid), false)
    await s.apply([{ type: 'unpin', pin: b }, { type: 'pin', pin: b }])
    assert.equal(await s.has(b.cid), true)
    // Unpinning an absent pin is harmless.
    await s.apply([{ type: 'unpin', pin: a }])
    assert.equal(await s.count(), 1)
  }))

Deno.test('list/listEncoded stream every pin in key (CID string) order as stored JSON bytes', () =>
  withState(async (s) => {
    const ps = await pins(250)
    ps.push(newPin('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'))
    await s.apply(pinOps(ps))
    const listed = await collect(s.list())
    const want = ps.map((p) => p.cid).sort()
    assert.deepEqual(listed.map((p) => p.cid), want)
    assert.equal(listed[0].cid.startsWith('Qm'), true, "'Q' sorts before 'b'")
    const raw = await collect(s.listEncoded())
    assert.equal(raw.length, ps.length)
    const byCid = new Map(ps.map((p) => [p.cid, p]))
    for (const bytes of raw) {
      const text = dec.decode(bytes)
      const cid = JSON.parse(text).cid
      assert.equal(text, encodePin(storedPin(byCid.get(cid)!)))
    }
  }))

Deno.test('list stops when the signal aborts and streams (first item before the rest)', () =>
  withState(async (s) => {
    await s.apply(pinOps(await pins(2500)))
    const ac = new AbortController()
    let n = 0
    for await (const _ of s.list(ac.signal)) {
      if (++n === 10) ac.abort()
    }
    assert.equal(n, 10)
    const it = s.listEncoded()[Symbol.asyncIterator]()
    const first = await it.next()
    assert.equal(first.done, false)
    await it.return?.()
    assert.equal(await s.count(), 2500)
    const ac2 = new AbortController()
    ac2.abort()
    assert.equal(await s.count(ac2.signal), 0)
  }))

Deno.test('batches over KV limits are split: 2,500 ops, and 2,500 long (sha2-512) CIDs', () =>
  withState(async (s) => {
    await s.apply(pinOps(await pins(2500)), 42)
    assert.equal(await s.count(), 2500)
    assert.equal(await s.appliedIndex(), 42)
    // Long CIDs hit KV's 80 KiB total-key limit before its 1,000-mutation limit.
    const long = await pins(2500, true)
    assert.equal(long[0].cid.length, 110)
    await s.apply(pinOps(long), 43)
    assert.equal(await s.count(), 5000)
    await s.apply(long.map((pin) => ({ type: 'unpin', pin })), 44)
    assert.equal(await s.count(), 2500)
    assert.equal(await s.appliedIndex(), 44)
  }))

Deno.test('values near 64 KiB: big pins fit; too big ones fail clearly and apply nothing', () =>
  withState(async (s) => {
    const [a, b, c] = await pins(3)
    const base = enc.encode(encodePin(storedPin({ ...a, metadata: { m: '' } }))).length
    a.metadata = { m: 'x'.repeat(MAX_PIN_BYTES - base) }
    assert.equal(enc.encode(encodePin(storedPin(a))).length, MAX_PIN_BYTES)
    // Many big pins in one batch also exceed the 800 KiB commit limit: split too.
    const bigs = (await pins(30, false, 100)).map((p) => ({
      ...p,
      metadata: { m: 'y'.repeat(60_000) },
    }))
    await s.apply([...pinOps([a]), ...pinOps(bigs)])
    assert.equal((await s.get(a.cid))?.metadata?.m.length, MAX_PIN_BYTES - base)
    assert.equal(await s.count(), 31)
    b.metadata = { m: 'x'.repeat(MAX_PIN_BYTES) }
    await assert.rejects(
      s.apply(pinOps([c, b]), 9),
      (e: Error) =>
        e instanceof ValidationError && e.message.includes(`pin ${b.cid} is too large to store`),
    )
    assert.equal(await s.has(c.cid), false, 'nothing of the failed batch was applied')
    assert.equal(await s.appliedIndex(), 0)
  }))

Deno.test('appliedIndex: 0 at first, set with a batch, kept when a batch has none', () =>
  withState(async (s) => {
    const ps = await pins(3)
    assert.equal(await s.appliedIndex(), 0)
    await s.apply(pinOps(ps.slice(0, 1)), 5)
    assert.equal(await s.appliedIndex(), 5)
    await s.apply(pinOps(ps.slice(1, 2)))
    assert.equal(await s.appliedIndex(), 5)
    await s.apply([], 6)
    assert.equal(await s.appliedIndex(), 6)
  }))

Deno.test('clear removes every pin (more than one commit) and the applied index', () =>
  withState(async (s) => {
    await s.apply(pinOps(await pins(2100)), 7)
    await s.clear()
    assert.equal(await s.count(), 0)
    assert.deepEqual(await collect(s.list()), [])
    assert.equal(await s.appliedIndex(), 0)
    await s.clear()
  }))

Deno.test('a state file persists across reopen; close is idempotent; use after close fails', async () => {
  const dir = await Deno.makeTempDir()
  try {
    const path = join(dir, 'state.kv')
    const ps = await pins(20)
    const s1 = await openKvState(path)
    await s1.apply(pinOps(ps), 20)
    s1.close()
    s1.close()
    await assert.rejects(s1.get(ps[0].cid), ShutdownError)
    await assert.rejects(s1.apply([]), ShutdownError)
    await assert.rejects(s1.list()[Symbol.asyncIterator]().next(), ShutdownError)
    const s2 = await openKvState(path)
    try {
      assert.equal(await s2.count(), 20)
      assert.equal(await s2.appliedIndex(), 20)
      assert.deepEqual(await s2.get(ps[3].cid), storedPin(ps[3]))
    } finally {
      s2.close()
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('listNDJSON streams every pin as whole lines in ~64 KiB chunks, in key order', () =>
  withState(async (s) => {
    const ps = await pins(1500)
    await s.apply(pinOps(ps))
    const chunks = await collect(s.listNDJSON())
    assert.ok(chunks.length > 1, 'more than one chunk for 1,500 pins')
    for (const c of chunks) {
      assert.equal(c.at(-1), 10, 'every chunk ends at a line end')
      assert.ok(c.length <= 64 * 1024 + 8192, `chunk of ${c.length} bytes`)
    }
    const lines = chunks.map((c) => dec.decode(c)).join('').trimEnd().split('\n')
    const want = ps.map((p) => encodePin(storedPin(p))).sort((a, b) =>
      JSON.parse(a).cid < JSON.parse(b).cid ? -1 : 1
    )
    assert.deepEqual(lines, want)
    const ac = new AbortController()
    let n = 0
    for await (const _ of s.listNDJSON(ac.signal)) {
      n++
      ac.abort()
    }
    assert.equal(n, 1, 'an aborted listing stops after the chunk in hand')
  }))

Deno.test('sync mark: taken once, only for the pinset it was recorded with; clear drops it', async () => {
  await withState(async (s) => {
    assert.equal(await s.takeSyncMark(), undefined)
    await s.apply(pinOps(await pins(2)), 7)
    await s.putSyncMark('m1')
    assert.equal(await s.takeSyncMark(), 'm1')
    assert.equal(await s.takeSyncMark(), undefined, 'taking removes it')
    // The pinset moved on after the mark (an entry applied by a path that skipped the tracker).
    await s.putSyncMark('m2')
    await s.apply(pinOps(await pins(1, false, 5)), 8)
    assert.equal(await s.takeSyncMark(), undefined)
    // A cleared pinset (a restored snapshot) drops the mark and refuses new ones.
    await s.putSyncMark('m3')
    await s.clear()
    assert.equal(await s.takeSyncMark(), undefined)
    await s.putSyncMark('m4')
    assert.equal(await s.takeSyncMark(), undefined)
  })
})
