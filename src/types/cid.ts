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
  if (isCanonicalCid(s)) return s
  const known = recentCids.get(s)
  if (known !== undefined) return known
  const canonical = parseCid(s).toString()
  remember(s, canonical)
  return canonical
}

/**
 * The order of the pinset's keys: canonical CID strings as Deno KV sorts them (by UTF-8 bytes;
 * canonical CIDs are ASCII, so code-unit order is the same). Every per-peer status stream comes
 * in this order, which is what lets the cluster merge them one CID at a time.
 */
export function compareCidKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The canonical string of a CID (as `parseCid(s).toString()`), or undefined when `s` is not a
 * CID. A CIDv1 already in canonical base32, the form state exports hold, is checked without
 * building a CID object: reading a million pins spends its time here otherwise.
 */
export function canonicalCid(s: string): string | undefined {
  if (isCanonicalCid(s)) return s
  return tryParseCid(s)?.toString()
}

/**
 * The multihash of a CID string, as a view into a buffer that the next call overwrites (copy it
 * to keep it), or undefined when the string is no CID. Same bytes as
 * `parseCid(s).multihash.bytes`, without building a CID object: the canonical forms (CIDv0
 * `Qm…`, CIDv1 in base32 `b…`) are decoded by hand in ~0.3 µs, where multiformats takes ~15 µs
 * — the difference between 1 s and 30 s of CPU when the tracker compares a million pins with
 * the IPFS daemon's list. Other forms go through parseCid.
 */
export function multihashView(s: string): Uint8Array | undefined {
  // The CID just checked by isCanonicalCid (a connector validating, then the tracker hashing)
  // is still decoded in the scratch buffer.
  const n = s === lastCanonical ? lastLength : multihashOf(s)
  return n < 0 ? undefined : scratch.subarray(0, n)
}

let lastCanonical: string | undefined
let lastLength = -1

/**
 * True when `s` is a CID already in canonical form (what `normalizeCid(s)` returns: `Qm…` for
 * v0, base32 for v1), decided without building a CID object. False means "parse it to know".
 */
export function isCanonicalCid(s: string): boolean {
  const n = decodeCanonical(s)
  if (n < 0) return false
  lastCanonical = s
  lastLength = n
  return true
}

// Decoded CID bytes land here; multihashView moves the multihash to the front. Grown (never
// shrunk) for the rare long CID, such as an identity CID with inline data.
let scratch = new Uint8Array(256)
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const b32 = new Int8Array(128).fill(-1)
const b58 = new Int8Array(128).fill(-1)
for (let i = 0; i < BASE32.length; i++) b32[BASE32.charCodeAt(i)] = i
for (let i = 0; i < BASE58.length; i++) b58[BASE58.charCodeAt(i)] = i

/**
 * Writes the multihash of a CID string to the front of `scratch`; returns its length, or -1
 * when the string is not a CID. CIDv0 and base32 CIDv1 are decoded here; anything else (other
 * bases, or a string the fast path rejects) is left to parseCid, which decides.
 */
function multihashOf(s: string): number {
  const n = decodeCanonical(s)
  if (n >= 0) return n
  const c = tryParseCid(s)
  if (!c) return -1
  const mh = c.multihash.bytes
  if (scratch.length < mh.length) scratch = new Uint8Array(mh.length)
  scratch.set(mh)
  return mh.length
}

/**
 * Decodes the canonical forms by hand — CIDv0 (`Qm…`, a bare sha2-256 multihash in base58btc)
 * and CIDv1 in base32 (`b…`: <version 1><codec varint><multihash>) — writing the multihash to
 * the front of `scratch`; returns its length, or -1 for any other string.
 */
function decodeCanonical(s: string): number {
  lastCanonical = undefined // the scratch buffer is about to change
  if (scratch.length < s.length) scratch = new Uint8Array(s.length * 2)
  if (s.length === 46 && s.charCodeAt(0) === 81 && s.charCodeAt(1) === 109) {
    const n = base58Decode(s)
    return n !== 34 || scratch[0] !== 0x12 || scratch[1] !== 0x20 ? -1 : n
  }
  if (s.charCodeAt(0) !== 98) return -1
  const len = base32Decode(s)
  return len > 0 ? cidV1Multihash(len) : -1
}

/** Decodes unpadded lower-case base32 after the 'b' prefix into `scratch`; -1 if invalid. */
function base32Decode(s: string): number {
  let bits = 0
  let value = 0
  let n = 0
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? b32[c] : -1
    if (v < 0) return -1
    value = ((value << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      scratch[n++] = (value >>> bits) & 0xff
    }
  }
  // RFC 4648 without padding: the leftover bits must be fewer than 5 and zero.
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return -1
  return n
}

/** Decodes base58btc into `scratch` (big-endian base conversion); -1 if invalid. */
function base58Decode(s: string): number {
  let n = 0 // bytes used, least significant first
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let carry = c < 128 ? b58[c] : -1
    if (carry < 0) return -1
    for (let j = 0; j < n; j++) {
      carry += scratch[j] * 58
      scratch[j] = carry & 0xff
      carry >>= 8
    }
    while (carry > 0) {
      scratch[n++] = carry & 0xff
      carry >>= 8
    }
  }
  // Leading '1's are leading zero bytes.
  for (let i = 0; i < s.length && s.charCodeAt(i) === 49; i++) scratch[n++] = 0
  scratch.subarray(0, n).reverse()
  return n
}

/**
 * Moves the multihash of decoded CIDv1 bytes (`len` of them in `scratch`) to its front; returns
 * its length, or -1 when the bytes are not a CIDv1 with a well-formed multihash.
 */
function cidV1Multihash(len: number): number {
  let at = 0
  // Non-minimal varints are refused: multiformats would print them shorter, so such a string
  // is not canonical (parseCid decides what it is).
  const varint = (): number => {
    let v = 0
    for (let shift = 0; shift < 28 && at < len; shift += 7) {
      const b = scratch[at++]
      v |= (b & 0x7f) << shift
      if (b < 0x80) return b === 0 && shift > 0 ? -1 : v
    }
    return -1
  }
  if (varint() !== 1) return -1
  if (varint() < 0) return -1
  const start = at
  if (varint() < 0) return -1 // hash function code
  const digestLength = varint()
  if (digestLength < 0 || at + digestLength !== len) return -1
  scratch.copyWithin(0, start, len)
  return len - start
}
