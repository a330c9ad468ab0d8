/**
 * A compact set of byte strings (multihash digests), kept as 64-bit fingerprints in one typed
 * array: 16 bytes per member at most, against ~150 for a JS Set of base32 strings. The tracker
 * holds the IPFS daemon's whole pin list in one of these while it checks the pinset against it
 * (start-up sync, `status`), so a million pins cost 16 MiB outside the JS heap instead of
 * ~150 MiB inside it — and the daemon's resident size no longer follows the pinset's.
 *
 * Membership is by fingerprint: two different digests collide with probability ~n²/2⁶⁵
 * (3·10⁻⁸ for a million pins), which would report one missing pin as present.
 *
 * @example
 * ```ts
 * const s = new DigestSet()
 * s.add(cid.multihash.bytes)
 * s.has(other.multihash.bytes)
 * ```
 */

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

  add(bytes: Uint8Array): void {
    const [hi, lo] = fingerprint(bytes)
    if (this.#insert(hi, lo)) {
      this.#size++
      if (this.#size * 2 > this.#mask + 1) this.#grow()
    }
  }

  has(bytes: Uint8Array): boolean {
    const [hi, lo] = fingerprint(bytes)
    let i = lo & this.#mask
    while (true) {
      const h = this.#slots[i * 2]
      const l = this.#slots[i * 2 + 1]
      if (h === 0 && l === 0) return false
      if (h === hi && l === lo) return true
      i = (i + 1) & this.#mask
    }
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

/** Two independent 32-bit hashes of the bytes; never [0, 0] (the empty slot). */
function fingerprint(b: Uint8Array): [number, number] {
  let h1 = 0x811c9dc5
  let h2 = 0x9747b28c ^ b.length
  for (let i = 0; i < b.length; i++) {
    h1 = Math.imul(h1 ^ b[i], 0x01000193)
    h2 = Math.imul(h2 ^ b[i], 0x5bd1e995)
    h2 ^= h2 >>> 15
  }
  h1 >>>= 0
  h2 = (h2 ^ (h2 >>> 13)) >>> 0
  return h1 === 0 && h2 === 0 ? [1, 0] : [h1, h2]
}
