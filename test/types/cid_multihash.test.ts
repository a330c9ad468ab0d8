import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { base32, base32upper } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { isCanonicalCid, multihashView, normalizeCid, parseCid } from '../../src/types/cid.ts'

/** CIDs of every shape the fast path must agree with multiformats on. */
async function sampleCids(): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < 200; i++) {
    const data = new TextEncoder().encode(`block ${i}`)
    const d256 = await sha256.digest(data)
    const d512 = await sha512.digest(data)
    const id = identity.digest(new Uint8Array(i * 3)) // 0…597 bytes inline
    out.push(CID.createV0(d256).toString())
    for (
      const c of [CID.createV1(raw.code, d256), CID.createV1(0x70, d512), CID.createV1(0x71, id)]
    ) {
      out.push(c.toString(), c.toString(base58btc), c.toString(base36))
    }
    // A codec above 2^14: a three-byte varint.
    out.push(CID.createV1(0x300001, d256).toString(base32))
  }
  return out
}

Deno.test('multihashView gives the multihash multiformats gives, for every version and base', async () => {
  for (const s of await sampleCids()) {
    const want = parseCid(s).multihash.bytes
    assert.deepEqual(multihashView(s), want, s)
  }
})

Deno.test('isCanonicalCid is true exactly when normalizeCid leaves the string as it is', async () => {
  for (const s of await sampleCids()) assert.equal(isCanonicalCid(s), normalizeCid(s) === s, s)
})

Deno.test('strings that are no CID get no multihash and are not canonical', async () => {
  const good = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1]))).toString()
  const v0 = CID.createV0(await sha256.digest(new Uint8Array([1]))).toString()
  const bad = [
    '',
    'b',
    'Qm',
    'hello',
    good.slice(0, -1), // a digest one byte short: length mismatch
    good + 'a', // trailing bits that are not zero, or one byte too many
    good.replace('b', 'c'), // unknown multibase
    CID.parse(good).toString(base32upper), // a base parseCid does not take either
    good.slice(0, 10) + '1' + good.slice(11), // '1' is not base32
    v0.slice(0, 45) + '0', // '0' is not base58
    'b' + base32.baseEncode(new Uint8Array([2, 0x55, 0x12, 1, 0])), // CID version 2
    'b' + base32.baseEncode(new Uint8Array([1, 0x55, 0x12, 0x20, 1, 2, 3])), // digest too short
  ]
  for (const s of bad) {
    assert.equal(multihashView(s), undefined, JSON.stringify(s))
    assert.equal(isCanonicalCid(s), false, JSON.stringify(s))
  }
})

Deno.test('multihashView right after isCanonicalCid (the connector, then the tracker) is still right', async () => {
  const all = await sampleCids()
  for (let i = 0; i < all.length; i++) {
    const s = all[i]
    const other = all[(i + 7) % all.length]
    isCanonicalCid(s)
    assert.deepEqual(multihashView(s), parseCid(s).multihash.bytes, s)
    isCanonicalCid(s)
    assert.deepEqual(multihashView(other), parseCid(other).multihash.bytes, other)
  }
})
