/**
 * An in-process IPFSConnector double for deterministic unit tests: a pinned set keyed by
 * multihash, per-call latency, injected failures, a gate that holds pins until released, and
 * counters (calls, concurrency) to assert on. Every wait honours its AbortSignal.
 *
 * @example
 * ```ts
 * const ipfs = fakeIpfs({ latencyMs: 5 })
 * ipfs.failPin.add(badCid)
 * const gate = ipfs.holdPins() // pins block until gate.release()
 * ```
 */
import type {
  IPFSConnector,
  IPFSPinOptions,
  IPFSPinStatus,
  IPFSRepoGCItem,
  IPFSRepoStat,
} from '../../src/components.ts'
import { IPFSError } from '../../src/errors.ts'
import { multihashKey, parseCid } from '../../src/types/cid.ts'
import type { IPFSID } from '../../src/types/id.ts'
import type { Pin } from '../../src/types/pin.ts'

/** Options of the double. */
export interface FakeIpfsOptions {
  /** Delay of every call, in ms (0 = answer in the same microtask turn). */
  latencyMs?: number
  id?: string
  addresses?: string[]
  repoStat?: IPFSRepoStat
}

/** A gate that holds calls until released. */
export interface Gate {
  release(): void
}

/** The double: an IPFSConnector plus knobs and counters. */
export interface FakeIpfs extends IPFSConnector {
  /** Pinned CIDs: multihash key → how they are pinned (and the CID string as pinned). */
  readonly pins: Map<string, { cid: string; type: 'recursive' | 'direct' }>
  latencyMs: number
  repoStatValue: IPFSRepoStat
  /** CIDs (any form) whose pin fails with `pin failed`. */
  readonly failPin: Set<string>
  /** CIDs (any form) whose unpin fails with `unpin failed`. */
  readonly failUnpin: Set<string>
  /** When set, every call of these methods fails with this message. */
  failAll: Partial<Record<'pin' | 'unpin' | 'pinLs' | 'pinLsCid' | 'repoStat' | 'id', string>>
  readonly calls: Record<'pin' | 'unpin' | 'pinLs' | 'pinLsCid' | 'repoStat' | 'id', number>
  /** Pins started but not finished right now, and the most ever seen at once. */
  readonly concurrency: { current: number; max: number }
  /** CIDs in the order pin calls started. */
  readonly pinOrder: string[]
  /** Calls that ended because their signal aborted. */
  aborted: number
  /** Blocks every pin call (after it starts) until the gate is released. */
  holdPins(): Gate
  /** Marks a CID pinned without a call (state the daemon already had). */
  addPin(cid: string, type?: 'recursive' | 'direct'): void
  isPinned(cid: string): boolean
}

const key = (cid: string) => multihashKey(parseCid(cid))

/** Builds the double. */
export function fakeIpfs(opts: FakeIpfsOptions = {}): FakeIpfs {
  const pins = new Map<string, { cid: string; type: 'recursive' | 'direct' }>()
  const blocks = new Map<string, Uint8Array>()
  let gate: Promise<void> | undefined

  const abortError = () => new DOMException('The operation was aborted.', 'AbortError')

  /** Waits `ms` (or the gate), rejecting when the signal aborts. */
  function wait(ms: number, signal?: AbortSignal, extra?: Promise<void>): Promise<void> {
    if (signal?.aborted) {
      fake.aborted++
      return Promise.reject(abortError())
    }
    if (ms <= 0 && !extra) return Promise.resolve()
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const onAbort = () => {
        clearTimeout(timer)
        fake.aborted++
        reject(abortError())
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const finish = () => {
        signal?.removeEventListener('abort', onAbort)
        if (!signal?.aborted) resolve()
      }
      const afterDelay = () => (extra ? extra.then(finish) : finish())
      if (ms > 0) timer = setTimeout(afterDelay, ms)
      else afterDelay()
    })
  }

  function failIf(method: keyof FakeIpfs['failAll']) {
    fake.calls[method]++
    const msg = fake.failAll[method]
    if (msg) throw new IPFSError(msg)
  }

  const fake: FakeIpfs = {
    pins,
    latencyMs: opts.latencyMs ?? 0,
    repoStatValue: opts.repoStat ?? { repoSize: 1000, storageMax: 10_000 },
    failPin: new Set(),
    failUnpin: new Set(),
    failAll: {},
    calls: { pin: 0, unpin: 0, pinLs: 0, pinLsCid: 0, repoStat: 0, id: 0 },
    concurrency: { current: 0, max: 0 },
    pinOrder: [],
    aborted: 0,

    holdPins(): Gate {
      let release!: () => void
      gate = new Promise((r) => (release = r))
      const held = gate
      return {
        release: () => {
          if (gate === held) gate = undefined
          release()
        },
      }
    },
    addPin(cid, type = 'recursive') {
      pins.set(key(cid), { cid, type })
    },
    isPinned(cid) {
      return pins.has(key(cid))
    },

    ready: () => Promise.resolve(),
    async id(signal): Promise<IPFSID> {
      failIf('id')
      await wait(fake.latencyMs, signal)
      return { id: opts.id ?? '12D3KooWFakeIpfs', addresses: opts.addresses ?? [], error: '' }
    },
    async pin(pin: Pin, o?: IPFSPinOptions) {
      fake.pinOrder.push(pin.cid)
      fake.concurrency.current++
      fake.concurrency.max = Math.max(fake.concurrency.max, fake.concurrency.current)
      try {
        failIf('pin')
        await wait(fake.latencyMs, o?.signal, gate)
        if (fake.failPin.has(pin.cid)) throw new IPFSError('pin failed')
        pins.set(key(pin.cid), { cid: pin.cid, type: pin.max_depth === 0 ? 'direct' : 'recursive' })
      } finally {
        fake.concurrency.current--
      }
    },
    async unpin(cid, signal) {
      failIf('unpin')
      await wait(fake.latencyMs, signal)
      if (fake.failUnpin.has(cid)) throw new IPFSError('unpin failed')
      pins.delete(key(cid))
    },
    async pinLsCid(pin, signal): Promise<IPFSPinStatus> {
      failIf('pinLsCid')
      await wait(fake.latencyMs, signal)
      return pins.get(key(pin.cid))?.type ?? 'unpinned'
    },
    async *pinLs(type, signal) {
      failIf('pinLs')
      await wait(fake.latencyMs, signal)
      for (const p of [...pins.values()]) {
        if (signal?.aborted) throw abortError()
        if (type === 'all' || p.type === type) yield { cid: p.cid, type: p.type }
      }
    },
    swarmPeers: () => Promise.resolve([]),
    connectSwarms: () => Promise.resolve(),
    configKey: () => Promise.resolve(undefined),
    async repoStat(signal) {
      failIf('repoStat')
      await wait(fake.latencyMs, signal)
      return { ...fake.repoStatValue }
    },
    // deno-lint-ignore require-yield
    async *repoGC(): AsyncIterable<IPFSRepoGCItem> {
      await Promise.resolve()
    },
    resolve: (path) => Promise.resolve(path.replace(/^\/ipfs\//, '').split('/')[0]),
    blockGet(cid) {
      const b = blocks.get(key(cid))
      return b ? Promise.resolve(b) : Promise.reject(new IPFSError('block not found'))
    },
    async blockStream(bs) {
      for await (const b of bs) blocks.set(key(b.cid), b.bytes)
    },
    stop() {
      gate = undefined
      return Promise.resolve()
    },
  }
  return fake
}
