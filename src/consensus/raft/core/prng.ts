/**
 * A small seeded pseudo-random generator, so hosts and tests can give the core reproducible
 * randomness (election timeout jitter) without the core ever calling `Math.random`.
 *
 * @module
 */

/**
 * Returns a function yielding floats in `[0, 1)` from a 32-bit seed (the sfc32 generator:
 * fast, passes PractRand, and fully determined by the seed).
 *
 * @example
 * ```ts
 * const rand = seededRandom(42)
 * const node = new RaftNode({ id: 'a', storage, rand })
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9
  let b = 0x243f6a88
  let c = 0xb7e15162
  let d = seed >>> 0
  const next = (): number => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  // Discard the first outputs so nearby seeds diverge.
  for (let i = 0; i < 12; i++) next()
  return next
}
