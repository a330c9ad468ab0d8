import assert from 'node:assert/strict'
import { DigestSet, DigestSum } from '../../src/util/digest_set.ts'
import { sha256 } from 'multiformats/hashes/sha2'
import { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import * as raw from 'multiformats/codecs/raw'

Deno.test('digest set: members are found after growth; non-members are not', async () => {
  const s = new DigestSet(4)
  const digests = await Promise.all(
    Array.from({ length: 50_000 }, (_, i) => sha256.digest(new TextEncoder().encode(`d${i}`))),
  )
  for (const d of digests.slice(0, 25_000)) s.add(d.bytes)
  for (const d of digests.slice(0, 25_000)) s.add(d.bytes) // duplicates are not counted
  assert.equal(s.size, 25_000)
  for (const d of digests.slice(0, 25_000)) assert.ok(s.has(d.bytes))
  for (const d of digests.slice(25_000)) assert.equal(s.has(d.bytes), false)
  assert.equal(s.has(new Uint8Array()), false)
  s.add(new Uint8Array())
  assert.ok(s.has(new Uint8Array()), 'the empty byte string is a member like any other')
})

Deno.test('digest set: CIDs are members by multihash, whatever their version or base', async () => {
  const s = new DigestSet()
  const d = await sha256.digest(new TextEncoder().encode('x'))
  const v0 = CID.createV0(d)
  assert.ok(s.addCid(v0.toString()))
  assert.ok(s.hasCid(v0.toV1().toString()), 'CIDv1 of the same content')
  assert.ok(s.hasCid(v0.toV1().toString(base58btc)))
  assert.ok(s.has(d.bytes), 'the multihash bytes themselves')
  const other = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('y')))
  assert.equal(s.hasCid(other.toString()), false)
  assert.equal(s.addCid('not a cid'), false)
  assert.equal(s.hasCid('not a cid'), false)
  assert.equal(s.size, 1)
})

Deno.test('DigestSum: a set and a sum of the same members agree, in any order; changes show', () => {
  const bytes = (i: number) => new Uint8Array([0x12, 0x20, i & 0xff, (i >> 8) & 0xff, 7])
  const set = new DigestSet(8)
  const sum = new DigestSum()
  const n = 2000
  for (let i = 0; i < n; i++) set.add(bytes(i))
  for (let i = n - 1; i >= 0; i--) sum.add(bytes(i))
  assert.equal(set.sum().digest(), sum.digest(), 'same members, other order')
  // Taking members out of the sum gives the digest of the set without them.
  const fewer = new DigestSet(8)
  for (let i = 0; i < n; i++) if (i % 3 !== 0) fewer.add(bytes(i))
  for (let i = 0; i < n; i += 3) sum.delete(bytes(i))
  assert.equal(sum.digest(), fewer.sum().digest())
  // A member added twice, or one taken out that was never there, matches no set.
  sum.add(bytes(1))
  assert.notEqual(sum.digest(), fewer.sum().digest())
  sum.delete(bytes(1))
  sum.delete(bytes(n + 5))
  assert.notEqual(sum.digest(), fewer.sum().digest())
  // A set's own sum goes on without the set.
  const s2 = fewer.sum()
  s2.add(bytes(0))
  assert.notEqual(s2.digest(), fewer.sum().digest())
})

Deno.test('DigestSet: delete keeps every other member findable, across wrapped probe runs', () => {
  const bytes = (i: number) => new Uint8Array([0x12, 0x20, i & 0xff, (i >> 8) & 0xff, 7])
  const a = new DigestSet(8) // a small table: long probe runs that wrap around the end
  const n = 2000
  for (let i = 0; i < n; i++) a.add(bytes(i))
  for (let i = 0; i < n; i += 3) assert.ok(a.delete(bytes(i)))
  assert.equal(a.delete(bytes(0)), false, 'already gone')
  assert.equal(a.delete(bytes(n + 1)), false, 'never there')
  for (let i = 0; i < n; i++) assert.equal(a.has(bytes(i)), i % 3 !== 0, `member ${i}`)
  assert.equal(a.size, n - Math.ceil(n / 3))
})
