/**
 * A Bloom filter over pin keys, so the pin path can tell "certainly not in the pinset" without a
 * Deno KV read. Every new pin asks the state whether it already exists; that read queues behind
 * the fsyncs of the commits in flight and, with 64 clients, halves ingest. The filter answers
 * most of those asks from memory: ~1.2 MB for a million pins at a 1% false-positive rate (a
 * false positive only costs the read it replaces). Deleted keys stay set (harmless, same cost).
 *
 * @example
 * ```ts
 * const f = new BloomFilter(1_000_000)
 * f.add('bafy…')
 * f.mayHave('bafy…') // true
 * ```
 */

/** A fixed-size Bloom filter with double hashing (FNV-1a and a murmur-style mix). */
export class BloomFilter {
  readonly capacity: number
  #bits: Uint32Array
  #m: number
  #k: number
  #count = 0

  /** Sized for `capacity` keys at ~1% false positives. */
  constructor(capacity: number) {
    this.capacity = Math.max(1024, capacity)
    this.#m = Math.ceil(this.capacity * 9.6) // bits per key for 1%
    this.#k = 7
    this.#bits = new Uint32Array(Math.ceil(this.#m / 32))
  }

  /** Keys added so far (including repeats). */
  get count(): number {
    return this.#count
  }

  /** True when more keys were added than the filter was sized for (its error rate climbs). */
  get saturated(): boolean {
    return this.#count > this.capacity
  }

  add(key: string): void {
    const [h1, h2] = hashes(key)
    for (let i = 0; i < this.#k; i++) {
      const bit = (h1 + i * h2) % this.#m
      this.#bits[bit >>> 5] |= 1 << (bit & 31)
    }
    this.#count++
  }

  /** False only when the key was certainly never added. */
  mayHave(key: string): boolean {
    const [h1, h2] = hashes(key)
    for (let i = 0; i < this.#k; i++) {
      const bit = (h1 + i * h2) % this.#m
      if ((this.#bits[bit >>> 5] & (1 << (bit & 31))) === 0) return false
    }
    return true
  }
}

function hashes(key: string): [number, number] {
  let a = 0x811c9dc5
  let b = 0x9747b28c
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995)
    b ^= b >>> 13
  }
  // Two independent-enough positives; h2 odd so the probe sequence covers the table.
  return [a >>> 0, (b | 1) >>> 0]
}
