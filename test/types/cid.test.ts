import assert from 'node:assert/strict'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import * as Digest from 'multiformats/hashes/digest'
import {
  canonicalCid,
  CID,
  multihashKey,
  normalizeCid,
  parseCid,
  sameContent,
  tryParseCid,
} from '../../src/types/cid.ts'
import { ValidationError } from '../../src/errors.ts'

const V0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const V1 = 'bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34'
// The same multihash as a raw-codec CID (what Helia lists for some blocks).
const RAW = 'bafkreicqkc4lriv5vfcto5uts7wg6wn7dn6g7kfplcl67mtfalsyx2r2ku'

Deno.test('a v0 CID stays base58btc and a v1 CID prints in base32, as go-cid prints them', () => {
  assert.equal(normalizeCid(V0), V0)
  assert.equal(normalizeCid(V1), V1)
  assert.equal(parseCid(V0).version, 0)
  assert.equal(parseCid(V1).version, 1)
  assert.equal(parseCid(V0).toV1().toString(), V1)
})

Deno.test('v1 CIDs in base58btc and base36 normalize to base32', () => {
  const c = parseCid(V1)
  const b58 = c.toString(base58btc)
  const b36 = c.toString(base36)
  assert.ok(b58.startsWith('z') && b36.startsWith('k'))
  assert.equal(normalizeCid(b58), V1)
  assert.equal(normalizeCid(b36), V1)
})

Deno.test('normalizeCid answers the same when it remembers a string and after it forgot it', () => {
  // More distinct CIDs than it remembers, v0 and v1, each given in two bases, twice over.
  const cids = Array.from({ length: 3000 }, (_, i) => {
    const bytes = new Uint8Array(32)
    new DataView(bytes.buffer).setUint32(0, i)
    const digest = Digest.create(0x12, bytes)
    return i % 2 ? CID.createV1(0x55, digest) : CID.createV0(digest)
  })
  for (let round = 0; round < 2; round++) {
    for (const c of cids) {
      if (c.version === 1) assert.equal(normalizeCid(c.toString(base58btc)), c.toString())
      assert.equal(normalizeCid(c.toString()), c.toString())
    }
    // Bad input is refused each time, never remembered.
    assert.throws(() => normalizeCid(V1.slice(0, -1) + '1'), ValidationError)
  }
})

Deno.test('CIDs are compared by multihash across versions, bases and codecs', () => {
  const v0 = parseCid(V0)
  const v1 = parseCid(V1)
  assert.ok(sameContent(v0, v1))
  assert.equal(multihashKey(v0), multihashKey(v1))
  assert.ok(sameContent(v1, parseCid(v1.toString(base36))))
  const raw = parseCid(RAW)
  assert.ok(!sameContent(v0, raw))
  // A raw-codec CID over v0's multihash addresses the same bytes.
  const rawSame = CID.createV1(0x55, v0.multihash)
  assert.ok(rawSame.toString() !== V1 && rawSame.toString().startsWith('bafk'))
  assert.ok(sameContent(v0, rawSame))
})

Deno.test('bad CIDs throw ValidationError naming the input; tryParseCid returns undefined', () => {
  for (const s of ['', 'notacid', 'Qm', 'bafy', V0.slice(0, 45) + '0']) {
    assert.throws(() => parseCid(s), ValidationError, JSON.stringify(s))
    assert.equal(tryParseCid(s), undefined)
  }
  assert.throws(() => parseCid('notacid'), /invalid cid "notacid"/)
  assert.equal(tryParseCid(V0)?.toString(), V0)
})

Deno.test('canonicalCid equals parseCid(s).toString() on canonical, other and broken forms', () => {
  // A deterministic generator: the same cases on every run.
  let seed = 7
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  const cases: string[] = [
    'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
    'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
    'BAFYBEIGDYRZT5SFP7UDM7HU76UH7Y26NF3EFUYLQABF3OCLGTQY55FBZDI', // upper case: re-printed
    'bciqftfeehedf6klbt32bfaglxezl4uwfnwm4lftlmxqbcerz6cmlx3y', // a CIDv0 in base32
    'k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8', // base36
    'zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7', // base58btc CIDv1
    '',
    'b',
    'bafy',
  ]
  for (let i = 0; i < 3000; i++) {
    const len = [32, 20, 64, 0, 1][rnd(5)]
    const digest = Uint8Array.from({ length: len }, () => rnd(256))
    const code = [0x12, 0x13, 0xb220, 0x00, 0x1e][rnd(5)]
    const codec = [0x70, 0x55, 0x71, 0x72, 0x0129, 0x300001][rnd(6)]
    let s = CID.createV1(codec, Digest.create(code, digest)).toString()
    if (rnd(2) === 0) { // one character changed, added or dropped
      const at = rnd(s.length)
      s = s.slice(0, at) + (alphabet + 'BQ=1')[rnd(36)] + s.slice(at + rnd(2))
    }
    cases.push(s)
  }
  for (const s of cases) assert.equal(canonicalCid(s), tryParseCid(s)?.toString(), s)
})
