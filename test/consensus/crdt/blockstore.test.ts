/** The replica's KV blockstore: blocks by multihash, chunked under KV's value limit. */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Buffer } from 'node:buffer'
import { kvBlockstore } from '../../../src/consensus/crdt/blockstore.ts'

async function block(size: number) {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + size) & 0xff
  return { cid: CID.createV1(0x70, await sha256.digest(bytes)), bytes }
}

Deno.test('kvBlockstore: small, chunked and over-one-commit blocks round-trip; CIDv0 and v1 are one block', async () => {
  const kv = await Deno.openKv(':memory:')
  const blocks = kvBlockstore(kv)
  for (const size of [0, 10, 60_000, 60_001, 200_000, 1_200_000]) {
    const { cid, bytes } = await block(size)
    assert.equal(await blocks.has(cid), false)
    assert.equal(await blocks.get(cid), undefined)
    await blocks.put(cid, bytes)
    await blocks.put(cid, bytes) // idempotent
    assert.equal(await blocks.has(cid), true)
    assert.deepEqual(await blocks.get(cid), bytes, `size ${size}`)
    assert.deepEqual(await blocks.get(CID.createV0(cid.multihash)), bytes)
    await blocks.delete(cid)
    assert.equal(await blocks.has(cid), false)
  }
  let left = 0
  for await (const _ of kv.list({ prefix: ['crdt', 'blocks'] })) left++
  assert.equal(left, 0)
  kv.close()
})

Deno.test('kvBlockstore stores a block given as a view without the rest of its buffer', async () => {
  const kv = await Deno.openKv(':memory:')
  const blocks = kvBlockstore(kv)
  const { cid, bytes } = await block(100)
  // A 100-byte block inside a 1 MiB buffer, as a received message's Node Buffer holds it.
  const big = new Uint8Array(1 << 20)
  big.set(bytes, 5000)
  await blocks.put(cid, Buffer.from(big.buffer, 5000, 100))
  assert.deepEqual(await blocks.get(cid), bytes)
  const stored = (await kv.get<{ d: Uint8Array }>(['crdt', 'blocks', cid.multihash.bytes, 0]))
    .value!
  assert.equal(stored.d.buffer.byteLength, 100)
  kv.close()
})
