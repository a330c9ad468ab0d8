/**
 * A compact set of byte strings (multihash digests), kept as 64-bit fingerprints in one typed
 * array: 16 bytes per member at most, against ~150 for a JS Set of base32 strings. The tracker
 * holds the IPFS daemon's whole pin list in one of these while it checks the pinset against it
 * (start-up sync, `statusAll`), so a million pins cost 16 MiB outside the JS heap instead of
 * ~150 MiB inside it — and the daemon's resident size no longer follows the pinset's.
 *
 * CIDs go in and are looked up by their multihash (`addCid`, `hasCid`, through `multihashView`,
 * which decodes the usual CID strings without building a CID object), so that a CIDv0 and the
 * CIDv1 of the same content are one member.
 *
 * Membership is by fingerprint: two different digests collide with probability ~n²/2⁶⁵
 * (3·10⁻⁸ for a million pins), which would report one missing pin as present.
 *
 * @example
 * ```ts
 * const s = new DigestSet()
 * s.addCid('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
 * s.hasCid('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG') // false
 * ```
 */
import { multihashView } from '../types/cid.ts'

/** A growable open-addressing set of 64-bit fingerprints. */
export class DigestSet {
  #slots: Uint32Array // pairs [hi, lo]; [0, 0] = empty
  #mask: number
  #size = 0

  constructor(initialCapacity = 1024) {
    let cap = 16
    while (cap < initialCapacity * 2) cap *= 2
    this.#slots = new Uint32Array(cap * 2)
    this.#mask = cap - 1
  }

  /** Members held. */
  get size(): number {
    return this.#size
  }

  /** Adds a byte string (a multihash). */
  add(bytes: Uint8Array): void {
    fingerprint(bytes)
    if (this.#insert(fp[0], fp[1])) {
      this.#size++
      if (this.#size * 2 > this.#mask + 1) this.#grow()
    }
  }

  has(bytes: Uint8Array): boolean {
    fingerprint(bytes)
    const hi = fp[0]
    const lo = fp[1]
    let i = lo & this.#mask
    while (true) {
      const h = this.#slots[i * 2]
      const l = this.#slots[i * 2 + 1]
      if (h === 0 && l === 0) return false
      if (h === hi && l === lo) return true
      i = (i + 1) & this.#mask
    }
  }

  /** Adds the multihash of a CID string; false (nothing added) when it is not a CID. */
  addCid(cid: string): boolean {
    const mh = multihashView(cid)
    if (!mh) return false
    this.add(mh)
    return true
  }

  /** True when a CID with the same multihash was added; false for a string that is no CID. */
  hasCid(cid: string): boolean {
    const mh = multihashView(cid)
    return mh !== undefined && this.has(mh)
  }

  /** Removes a byte string; false when it was not a member. */
  delete(bytes: Uint8Array): boolean {
    fingerprint(bytes)
    const hi = fp[0]
    const lo = fp[1]
    const slots = this.#slots
    const mask = this.#mask
    let i = lo & mask
    while (true) {
      const h = slots[i * 2]
      const l = slots[i * 2 + 1]
      if (h === 0 && l === 0) return false
      if (h === hi && l === lo) break
      i = (i + 1) & mask
    }
    // Linear probing without tombstones: later members of the run whose home slot is not
    // between the hole and them move back into the hole, so that every lookup still finds them.
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const h = slots[j * 2]
      const l = slots[j * 2 + 1]
      if (h === 0 && l === 0) break
      const home = l & mask
      const stays = i < j ? home > i && home <= j : home > i || home <= j
      if (stays) continue
      slots[i * 2] = h
      slots[i * 2 + 1] = l
      i = j
    }
    slots[i * 2] = 0
    slots[i * 2 + 1] = 0
    this.#size--
    return true
  }

  /**
   * The members' order-independent summary, as a DigestSum that can go on changing without the
   * set (`.digest()` of it, unchanged, is the set's digest).
   */
  sum(): DigestSum {
    const sum = new DigestSum()
    const slots = this.#slots
    for (let i = 0; i < slots.length; i += 2) {
      if (slots[i] !== 0 || slots[i + 1] !== 0) sum.addFingerprint(slots[i], slots[i + 1])
    }
    return sum
  }

  #insert(hi: number, lo: number): boolean {
    let i = lo & this.#mask
    while (true) {
      const h = this.#slots[i * 2]
      const l = this.#slots[i * 2 + 1]
      if (h === 0 && l === 0) {
        this.#slots[i * 2] = hi
        this.#slots[i * 2 + 1] = lo
        return true
      }
      if (h === hi && l === lo) return false
      i = (i + 1) & this.#mask
    }
  }

  #grow() {
    const old = this.#slots
    this.#slots = new Uint32Array(old.length * 2)
    this.#mask = (this.#mask + 1) * 2 - 1
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.#insert(old[i], old[i + 1])
    }
  }
}

// One fingerprint at a time: [hi, lo] of the last call (no array allocated per lookup).
const fp = new Uint32Array(2)

/** Two independent 32-bit hashes of the bytes into `fp`; never [0, 0] (the empty slot). */
function fingerprint(b: Uint8Array): void {
  let h1 = 0x811c9dc5
  let h2 = 0x9747b28c ^ b.length
  for (let i = 0; i < b.length; i++) {
    h1 = Math.imul(h1 ^ b[i], 0x01000193)
    h2 = Math.imul(h2 ^ b[i], 0x5bd1e995)
    h2 ^= h2 >>> 15
  }
  h1 >>>= 0
  h2 = (h2 ^ (h2 >>> 13)) >>> 0
  fp[0] = h1 === 0 && h2 === 0 ? 1 : h1
  fp[1] = h2
}

/**
 * An order-independent summary of a multiset of byte strings in constant memory: the count, and
 * the sums and XORs of their 64-bit fingerprints. Two collections with the same digest hold the
 * same members unless a change happened to keep all five figures (~2⁻⁶⁴ for changes that are not
 * crafted). Adding a member twice, or taking out one that was never added, gives a digest no set
 * has (the count and the sums are off), so a comparison with a real set then fails — the safe way.
 */
export class DigestSum {
  #count = 0
  #sumHi = 0
  #sumLo = 0
  #xorHi = 0
  #xorLo = 0

  add(bytes: Uint8Array): void {
    fingerprint(bytes)
    this.addFingerprint(fp[0], fp[1])
  }

  /** Takes out a byte string added before. */
  delete(bytes: Uint8Array): void {
    fingerprint(bytes)
    this.#count--
    this.#sumHi = (this.#sumHi - fp[0]) >>> 0
    this.#sumLo = (this.#sumLo - fp[1]) >>> 0
    this.#xorHi ^= fp[0]
    this.#xorLo ^= fp[1]
  }

  addFingerprint(hi: number, lo: number): void {
    this.#count++
    this.#sumHi = (this.#sumHi + hi) >>> 0
    this.#sumLo = (this.#sumLo + lo) >>> 0
    this.#xorHi ^= hi
    this.#xorLo ^= lo
  }

  digest(): string {
    const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0')
    return `${this.#count}:${hex(this.#sumHi)}${hex(this.#sumLo)}:${hex(this.#xorHi)}${
      hex(this.#xorLo)
    }`
  }
}
