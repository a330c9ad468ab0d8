/**
 * The wire's frames without a network: every frame type survives encoding, a batch of items
 * decodes as one ITEMS frame whatever its size (each CBOR array head length), frames split across
 * chunks or packed into one come out whole, and garbage is refused.
 */
import assert from 'node:assert/strict'
import * as lp from 'it-length-prefixed'
import {
  type Batch,
  CALL,
  CANCEL,
  CREDIT,
  DONE,
  encodeFrame,
  END,
  ERROR,
  type Frame,
  FrameDecoder,
  ItemBatch,
  ITEMS,
  itemsOf,
} from '../../src/rpc/frames.ts'

function bytesOf(frames: Frame[]): Uint8Array {
  const parts = frames.map((f) => encodeFrame(f).subarray())
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

Deno.test('frames: each type round-trips, packed together or split byte by byte', () => {
  const frames: Frame[] = [
    [CALL, 'PinTracker.Status', ['bafy', 1, null, { a: [1, 2] }], 1500, 0],
    [CALL, 'Cluster.ID', [], null, 16],
    [ITEMS, [{ cid: 'x', bytes: new Uint8Array([1, 2, 3]) }]],
    [DONE, undefined],
    [DONE, { z: 1, a: 2 }],
    [END],
    [ERROR, 'NotFoundError', 'pin is not part of the pinset'],
    [CANCEL],
    [CREDIT, 8],
  ]
  const all = bytesOf(frames)
  assert.deepEqual([...new FrameDecoder().push(all)], frames)
  const dec = new FrameDecoder()
  const got: Frame[] = []
  for (let i = 0; i < all.length; i++) got.push(...dec.push(all.subarray(i, i + 1)))
  assert.deepEqual(got, frames)
  // Key order is kept (the reference's JSON order of a PinInfo must survive the hop).
  const [[, obj]] = [...new FrameDecoder().push(encodeFrame([DONE, { z: 1, a: 2 }]))]
  assert.deepEqual(Object.keys(obj as object), ['z', 'a'])
})

Deno.test('frames: a batch of any size is one ITEMS frame of its items', () => {
  for (const n of [1, 23, 24, 255, 256, 65_535, 65_536, 70_000]) {
    const batch = new ItemBatch(1_000_000, 1 << 30)
    const items = Array.from({ length: n }, (_, i) => ({ i, s: `item ${i}` }))
    for (const it of items) batch.add(it)
    assert.equal(batch.count, n)
    const frames = [...new FrameDecoder().push(batch.take())]
    assert.equal(frames.length, 1)
    assert.equal(frames[0][0], ITEMS)
    assert.deepEqual(frames[0][1], items, `${n} items`)
    assert.equal(batch.count, 0)
    assert.equal(batch.bytes, 0)
  }
})

Deno.test('frames: a batch is full at its item count or its byte size', () => {
  const byCount = new ItemBatch(3, 1 << 20)
  for (let i = 0; i < 2; i++) byCount.add(i)
  assert.equal(byCount.full, false)
  byCount.add(2)
  assert.equal(byCount.full, true)
  const byBytes = new ItemBatch(1000, 100)
  byBytes.add(new Uint8Array(99))
  assert.equal(byBytes.full, true)
})

Deno.test('frames: what is not a frame is refused', () => {
  assert.throws(() => [...new FrameDecoder().push(lp.encode.single(Uint8Array.of(0x01)))])
  assert.throws(() => [...new FrameDecoder().push(lp.encode.single(Uint8Array.of(0xff, 0xff)))])
})

Deno.test('frames: a JSON batch is one ITEMS frame of its items, whatever its length in bytes', () => {
  // Text lengths on both sides of each CBOR head size (24, 256, 65,536 bytes), non-ASCII included.
  for (const n of [0, 1, 2, 5, 30, 3_000, 3_100, 70_000]) {
    const batch = new ItemBatch(1_000_000, 1 << 30, 'json')
    const items = Array.from({ length: n }, (_, i) => ({ i, s: i % 7 ? `é ${i}` : '€𝄞"\\\n' }))
    for (const it of items) batch.add(it)
    assert.equal(batch.count, n)
    const frames = [...new FrameDecoder().push(batch.take())]
    assert.equal(frames.length, 1)
    assert.equal(frames[0][0], ITEMS)
    // The text travels as it is; the consumer parses it when it reaches the batch.
    assert.equal(typeof frames[0][1], 'string')
    const got = itemsOf(frames[0][1] as Batch)
    assert.deepEqual(got, items, `${n} items`)
    // Key order survives, as with CBOR items.
    if (n) assert.deepEqual(Object.keys((got as object[])[0]), ['i', 's'])
  }
  const full = new ItemBatch(1000, 10, 'json')
  full.add('0123456789')
  assert.equal(full.full, true)
})

Deno.test('frames: an ITEMS frame whose JSON text does not parse is refused when read', () => {
  const bad = lp.encode.single(new Uint8Array([0x82, ITEMS, 0x62, 0x5b, 0x7b])).subarray() // "[{"
  const [[, text]] = [...new FrameDecoder().push(bad)]
  assert.throws(() => itemsOf(text as Batch), SyntaxError)
})
