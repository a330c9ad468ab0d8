/**
 * The simulator's only source of randomness: a seeded generator with the helpers the scenario
 * needs. Every random choice in a run flows from the run's seed, so a seed replays exactly.
 */
import { seededRandom } from '../../src/consensus/raft/core/mod.ts'

/** Seeded random helpers. */
export class Rng {
  readonly next: () => number

  constructor(seed: number) {
    this.next = seededRandom(seed)
  }

  /** An integer in `[0, n)`. */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** An integer in `[lo, hi]`. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]
  }

  /** A derived seed, for giving each node its own independent generator. */
  fork(): number {
    return Math.floor(this.next() * 0x1_0000_0000)
  }
}

/** FNV-1a over bytes, continuing from `h`. */
export function fnv(bytes: Uint8Array, h = 2166136261): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619)
  return h >>> 0
}

/** Mixes numbers into a 32-bit hash. */
export function mix(h: number, ...xs: number[]): number {
  for (const x of xs) {
    h = Math.imul(h ^ (x & 0xffff), 16777619)
    h = Math.imul(h ^ (x >>> 16), 16777619)
  }
  return h >>> 0
}
