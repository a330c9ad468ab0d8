import assert from 'node:assert/strict'
import { concatBytes, writeAll } from '../../src/util/bytes.ts'

Deno.test('writeAll lays parts end to end from an offset and returns the offset after them', () => {
  const out = new Uint8Array(7)
  assert.equal(
    writeAll(out, 1, [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3, 4, 5)]),
    6,
  )
  assert.deepEqual([...out], [0, 1, 2, 3, 4, 5, 0])
})

Deno.test('concatBytes: the parts in a new buffer, with or without the total given', () => {
  const parts = [Uint8Array.of(9), Uint8Array.of(8, 7)]
  assert.deepEqual([...concatBytes(parts)], [9, 8, 7])
  assert.deepEqual([...concatBytes(parts, 3)], [9, 8, 7])
  assert.equal(concatBytes([]).byteLength, 0)
})
