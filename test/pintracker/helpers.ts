/**
 * Test helpers for the pin tracker: a Map-backed StateReader, CID and pin makers, and a poller.
 *
 * @example
 * ```ts
 * const state = mapState()
 * state.put(await testPin(1, { allocations: ['peer0'] }))
 * ```
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { StateReader } from '../../src/components.ts'
import { encodePin, newPin, type Pin, type PinOptions } from '../../src/types/pin.ts'

/** A StateReader over a Map, with counters and an optional failure. */
export interface MapState extends StateReader {
  pins: Map<string, Pin>
  put(pin: Pin): void
  delete(cid: string): void
  calls: { get: number; list: number; scan: number }
  failWith?: string
}

/** Builds a Map-backed state. */
export function mapState(): MapState {
  const pins = new Map<string, Pin>()
  const s: MapState = {
    pins,
    calls: { get: 0, list: 0, scan: 0 },
    put: (pin) => void pins.set(pin.cid, pin),
    delete: (cid) => void pins.delete(cid),
    get(cid) {
      s.calls.get++
      if (s.failWith) return Promise.reject(new Error(s.failWith))
      return Promise.resolve(pins.get(cid))
    },
    has: (cid) => Promise.resolve(pins.has(cid)),
    async *list() {
      s.calls.list++
      if (s.failWith) throw new Error(s.failWith)
      for (const k of [...pins.keys()].sort()) {
        const p = pins.get(k)
        if (p) yield p
      }
    },
    async *listEncoded() {
      for await (const p of s.list()) yield new TextEncoder().encode(encodePin(p))
    },
    async *listNDJSON() {
      for await (const p of s.list()) yield new TextEncoder().encode(encodePin(p) + '\n')
    },
    async *scan(opts = {}) {
      s.calls.scan++
      if (s.failWith) throw new Error(s.failWith)
      for (const k of [...pins.keys()].sort()) {
        if (opts.after !== undefined && k <= opts.after) continue
        const p = pins.get(k)
        if (p) yield { cid: k, value: new TextEncoder().encode(encodePin(p)) }
      }
    },
  }
  return s
}

/** A deterministic CIDv1 (raw, sha2-256) for a number. */
export async function testCid(n: number, version: 0 | 1 = 1): Promise<string> {
  const digest = await sha256.digest(new TextEncoder().encode(`block ${n}`))
  return version === 0 ? CID.createV0(digest).toString() : CID.createV1(raw.code, digest).toString()
}

/** A pin of testCid(n) with the given options and pin fields. */
export async function testPin(
  n: number,
  fields: Partial<Pin> = {},
  opts: Partial<PinOptions> = {},
): Promise<Pin> {
  return { ...newPin(await testCid(n), opts), ...fields }
}

export { waitFor } from '../support/wait.ts'

/** Lets queued microtasks and zero-delay timers run. */
export function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0))
}

/** Gathers an async iterable (tests only: real code streams). */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
