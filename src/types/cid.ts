/**
 * CIDs as the cluster sees them: parsed with multiformats, printed the way Go's go-cid prints them
 * (v0 in base58btc, v1 in base32), and compared by multihash, because daemons answer with other
 * versions and bases than they were asked with (Helia lists v0 pins as v1, js-ipfs prints base58btc).
 *
 * @example
 * ```ts
 * const c = parseCid('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')
 * sameContent(c, parseCid(c.toV1().toString())) // true
 * ```
 */
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { ValidationError } from '../errors.ts'

export { CID }

const decoder = base32.decoder.or(base58btc.decoder).or(base36.decoder)

/** Parses a CID string in any common base; throws ValidationError with the reason. */
export function parseCid(s: string): CID {
  if (typeof s !== 'string' || s.length === 0) {
    throw new ValidationError('cid is empty')
  }
  try {
    if (s.startsWith('Qm') && s.length === 46) return CID.parse(s)
    return CID.parse(s, decoder)
  } catch (err) {
    throw new ValidationError(`invalid cid ${JSON.stringify(s)}: ${(err as Error).message}`)
  }
}

/** Like parseCid but returns undefined instead of throwing. */
export function tryParseCid(s: string): CID | undefined {
  try {
    return parseCid(s)
  } catch {
    return undefined
  }
}

/** The canonical string for a CID: base58btc for v0, base32 for v1 (as go-cid prints it). */
export function cidString(c: CID): string {
  return c.toString()
}

/** A key that is equal for two CIDs addressing the same bytes, whatever version, codec or base. */
export function multihashKey(c: CID): string {
  return base32.baseEncode(c.multihash.bytes)
}

/** True when both CIDs address the same content (same multihash). */
export function sameContent(a: CID, b: CID): boolean {
  return multihashKey(a) === multihashKey(b)
}

// A CID that is not canonical base32 v1 (a v0 `Qm…` is the usual one) takes the full parser, a
// few µs, and a pin's CID is normalized three times on its way in (the REST route, Cluster.pin,
// newPin): the strings parsed last are remembered.
const RECENT_CIDS = 1024
const recentCids = new Map<string, string>()

function remember(s: string, canonical: string) {
  if (recentCids.size >= RECENT_CIDS) recentCids.delete(recentCids.keys().next().value!)
  recentCids.set(s, canonical)
}

/** Re-prints any CID string in canonical form; throws ValidationError on bad input. */
export function normalizeCid(s: string): string {
  if (isCanonicalBase32V1(s)) return s
  const known = recentCids.get(s)
  if (known !== undefined) return known
  const canonical = parseCid(s).toString()
  remember(s, canonical)
  return canonical
}

/** Values of the lower-case base32 (RFC 4648) letters; -1 elsewhere. */
const BASE32 = (() => {
  const t = new Int8Array(128).fill(-1)
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i
  return t
})()

/**
 * True when `s` is a CIDv1 already in its canonical form (multibase `b`, lower-case base32 with
 * no padding, zero trailing bits), checked without building a CID: version 1, then codec, hash
 * code and digest length varints, then exactly as many characters as that digest needs. Only the
 * header is decoded; the digest's characters are only checked to be base32. Anything unusual
 * answers false, and the caller takes the full parser.
 */
function isCanonicalBase32V1(s: string): boolean {
  const n = s.length - 1 // characters after the multibase prefix
  if (n < 7 || s.charCodeAt(0) !== 0x62) return false
  let next = 1 // next character to decode
  let acc = 0
  let bits = 0
  const byte = (): number => {
    while (bits < 8) {
      if (next > n) return -1
      const c = s.charCodeAt(next++)
      const v = c < 128 ? BASE32[c] : -1
      if (v < 0) return -1
      acc = ((acc << 5) | v) & 0xfff // at most 7 bits left over plus 5 new
      bits += 5
    }
    bits -= 8
    return (acc >>> bits) & 0xff
  }
  let bytes = 0
  // Varints of at most 3 bytes (codes up to 2^21) are all that CIDs in use need.
  const varint = (): number => {
    let v = 0
    for (let shift = 0; shift < 21; shift += 7) {
      const b = byte()
      if (b < 0) return -1
      bytes++
      v |= (b & 0x7f) << shift
      if ((b & 0x80) === 0) return b === 0 && shift > 0 ? -1 : v // not minimal: refused
    }
    return -1
  }
  if (varint() !== 1 || varint() < 0 || varint() < 0) return false
  const len = varint()
  if (len < 0) return false
  const total = bytes + len
  // As multiformats' decoder: the characters hold the bytes with fewer than 5 bits to spare,
  // and those bits are zero.
  if (n !== Math.ceil((total * 8) / 5)) return false
  for (let i = next; i <= n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || BASE32[c] < 0) return false
  }
  const spare = n * 5 - total * 8
  return (BASE32[s.charCodeAt(n)] & ((1 << spare) - 1)) === 0
}

/**
 * The canonical string of a CID (as `parseCid(s).toString()`), or undefined when `s` is not a
 * CID. A CIDv1 already in canonical base32, the form state exports hold, is checked without
 * building a CID object: reading a million pins spends its time here otherwise.
 */
export function canonicalCid(s: string): string | undefined {
  if (isCanonicalBase32V1(s)) return s
  return tryParseCid(s)?.toString()
}
