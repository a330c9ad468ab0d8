/**
 * The pinset on Deno KV. Each pin is one key, `['pin', <cid>]`, whose value is the pin's JSON
 * bytes: reads of one pin are one `get`, and listing streams stored bytes straight to the API
 * without parsing or re-encoding (the difference between ~60k and ~250k pins/s on 2 cores).
 * Writes come as batches of operations applied in one atomic commit together with the index of
 * the last applied log entry, so that after a crash the state and its applied index agree.
 *
 * @example
 * ```ts
 * const state = await openKvState(':memory:')
 * await state.apply([{ type: 'pin', pin }])
 * for await (const p of state.list()) console.log(p.cid)
 * await state.close()
 * ```
 */
import type { LogOp, StateEntry, StateReader } from '../components.ts'
import { encodePin, type Pin, storedPin } from '../types/pin.ts'
import { normalizeCid } from '../types/cid.ts'
import { BloomFilter } from './bloom.ts'
import { ShutdownError, ValidationError } from '../errors.ts'
import { yieldToLoop } from '../util/clock.ts'

const PIN = 'pin'
const META = 'meta'
/** The pin tracker's mark: the IPFS pinset at its last clean stop (see putSyncMark). */
const SYNC_MARK_KEY: Deno.KvKey = [META, 'sync-mark']
const encoder = new TextEncoder()
const decoder = new TextDecoder()
/**
 * Deno KV limits per atomic commit: 1000 mutations, 800 KiB of mutations and 80 KiB of keys
 * (the last one bites first with long CIDs: ~700 sha2-512 CIDs). Stay below all three.
 */
const MAX_MUTATIONS = 900
const MAX_COMMIT_BYTES = 700 * 1024
const MAX_KEY_BYTES = 64 * 1024
/** The largest pin the state can hold, in bytes of JSON (Deno KV's value limit). */
export const MAX_PIN_BYTES = 65536
const LIST_BATCH = 1000
const NDJSON_CHUNK = 64 * 1024
/** The filter starts sized for this many pins and grows fourfold when outgrown. */
const FILTER_MIN = 1_000_000

/**
 * The KV key of a pin whose CID is already normalized. For a writer that commits pins together
 * with keys of its own in one atomic commit (Raft: log entries and their application); the value
 * is the pin's stored JSON bytes, `encodePin(storedPin(pin))`.
 */
export function pinKey(normalizedCid: string): Deno.KvKey {
  return [PIN, normalizedCid]
}

/** The prefix of every pin key (for scans of the raw pinset). */
export const PIN_KEY_PREFIX: Deno.KvKey = [PIN]

/** The KV key of the applied index `apply(ops, appliedIndex)` records (absent after `clear`). */
export const APPLIED_INDEX_KEY: Deno.KvKey = [META, 'applied']

/** The pinset with write access (owned by consensus). */
export interface PinState extends StateReader {
  /** Applies operations atomically (split into several commits only beyond KV limits). */
  apply(ops: LogOp[], appliedIndex?: number): Promise<void>
  /** The index of the last applied consensus entry (0 when none). */
  appliedIndex(): Promise<number>
  /** Removes every pin (state cleanup, import, snapshot restore). */
  clear(): Promise<void>
  /**
   * Records the pin tracker's mark (see StatelessDeps.syncMark) with the applied index it holds
   * for. Refused (and any mark dropped) once `clear` ran since the state opened: a restored
   * snapshot changed the pinset without the tracker seeing each pin.
   */
  putSyncMark(mark: string): Promise<void>
  /**
   * Takes the recorded mark out (a crash after this leaves none behind); undefined when there is
   * none or the pinset moved on from the applied index it was recorded at.
   */
  takeSyncMark(): Promise<string | undefined>
  /** Number of pins (counted by listing keys only). */
  count(signal?: AbortSignal): Promise<number>
  /**
   * For a writer that commits pins itself (`pinKey`, Raft): call with the normalized CIDs it is
   * about to write, before its commit, so that reads are never told "absent" by a stale filter.
   */
  willWrite?(normalizedCids: Iterable<string>): void
  /**
   * Loads the filter of stored keys now (it otherwise starts on the first read) and resolves once
   * reads of absent pins no longer touch KV (or the state closed first).
   */
  loadFilter(): Promise<void>
  close(): void
}

/** Opens (creating) the state at a KV path; ':memory:' for tests. */
export async function openKvState(path: string): Promise<PinState> {
  const kv = await Deno.openKv(path)
  return kvState(kv, true)
}

/** Wraps an open KV handle. `owned` ⇒ close() closes the handle. */
export function kvState(kv: Deno.Kv, owned = false): PinState {
  let closed = false
  /** A clear() ran since open (a snapshot restore): the tracker's mark may no longer be recorded. */
  let cleared = false
  const check = () => {
    if (closed) throw new ShutdownError('state is closed')
  }
  // The filter answers "certainly absent" once it holds every stored key; until the background
  // load finishes (and while it rebuilds bigger) every get reads KV.
  let filter = new BloomFilter(FILTER_MIN)
  let filterReady = false
  let loading: Promise<void> | undefined
  const loadFilter = (capacity: number) => {
    const next = new BloomFilter(capacity)
    let pendingAdds: string[] | undefined = []
    const load = (async () => {
      try {
        let n = 0
        for await (const e of kv.list({ prefix: [PIN] }, { batchSize: LIST_BATCH })) {
          if (closed) return
          next.add(e.key[1] as string)
          // A turn of the event loop per batch: requests go on meanwhile, and V8 collects the
          // walk's garbage as it goes (without it, a million keys grew the heap by ~30 MB).
          if (++n % LIST_BATCH === 0) await yieldToLoop()
        }
        for (const k of pendingAdds ?? []) next.add(k)
        pendingAdds = undefined
        filter = next
        filterReady = true
      } catch {
        // Closed while loading: the filter stays off, gets read KV.
      } finally {
        loading = undefined
      }
    })()
    return { load, added: (k: string) => pendingAdds?.push(k) }
  }
  let loader: ReturnType<typeof loadFilter> | undefined
  const startLoad = (capacity: number) => {
    if (loading) return
    filterReady = false
    loader = loadFilter(capacity)
    loading = loader.load
  }
  const remember = (cid: string) => {
    filter.add(cid)
    loader?.added(cid)
    if (filterReady && filter.saturated) startLoad(filter.capacity * 4)
  }

  async function get(cid: string): Promise<Pin | undefined> {
    check()
    // The filter is loaded on first use, not at open: a peer that only serves reads (or lists
    // right after a restart) never pays for the full key scan.
    if (!loader) startLoad(FILTER_MIN)
    const k = normalizeCid(cid)
    if (filterReady && !filter.mayHave(k)) return undefined
    const e = await kv.get<Uint8Array>([PIN, k])
    return e.value ? JSON.parse(decoder.decode(e.value)) : undefined
  }

  async function* listEncoded(signal?: AbortSignal): AsyncIterable<Uint8Array> {
    check()
    const iter = kv.list<Uint8Array>({ prefix: [PIN] }, { batchSize: LIST_BATCH })
    for await (const e of iter) {
      if (signal?.aborted) return
      yield e.value
    }
  }

  async function* listNDJSON(signal?: AbortSignal): AsyncIterable<Uint8Array> {
    check()
    // One plain loop filling a buffer: an async generator yielding per pin costs as much as the
    // KV read itself (a promise and microtask turns per item), so chunks are built here.
    let buf = new Uint8Array(NDJSON_CHUNK + 8192)
    let n = 0
    for await (const e of kv.list<Uint8Array>({ prefix: [PIN] }, { batchSize: LIST_BATCH })) {
      const v = e.value
      if (n + v.length + 1 > buf.length) {
        if (n > 0) {
          yield buf.subarray(0, n)
          if (signal?.aborted) return
          buf = new Uint8Array(Math.max(NDJSON_CHUNK + 8192, v.length + 1))
          n = 0
        } else {
          buf = new Uint8Array(v.length + 1)
        }
      }
      buf.set(v, n)
      n += v.length
      buf[n++] = 10
      if (n >= NDJSON_CHUNK) {
        yield buf.subarray(0, n)
        if (signal?.aborted) return
        buf = new Uint8Array(NDJSON_CHUNK + 8192)
        n = 0
      }
    }
    if (n > 0) yield buf.subarray(0, n)
  }

  async function* scan(
    opts: { after?: string; signal?: AbortSignal } = {},
  ): AsyncIterable<StateEntry> {
    check()
    const after = opts.after
    const selector = after === undefined
      ? { prefix: [PIN] }
      : { prefix: [PIN], start: [PIN, after] }
    for await (const e of kv.list<Uint8Array>(selector, { batchSize: LIST_BATCH })) {
      if (opts.signal?.aborted) return
      const cid = e.key[1] as string
      if (cid === after) continue // `start` is inclusive
      yield { cid, value: e.value }
    }
  }

  async function commit(ops: LogOp[], appliedIndex?: number) {
    // Encode and size-check every pin before the first commit: an oversized pin then fails the
    // batch with a clear message instead of KV's, and without a part of the batch applied.
    const values = ops.map((op) =>
      op.type === 'pin' ? encoder.encode(encodePin(storedPin(op.pin))) : undefined
    )
    values.forEach((v, i) => v && checkPinSize(ops[i].pin.cid, v.length))
    let a = kv.atomic()
    let n = 0
    let bytes = 0
    let keyBytes = 0
    for (let i = 0; i < ops.length; i++) {
      const cid = ops[i].pin.cid
      const k = [PIN, cid]
      const v = values[i]
      const kSize = cid.length + 16
      const size = (v?.length ?? 0) + kSize
      if (
        n + 1 > MAX_MUTATIONS || bytes + size > MAX_COMMIT_BYTES ||
        keyBytes + kSize > MAX_KEY_BYTES
      ) {
        await mustCommit(a)
        a = kv.atomic()
        n = 0
        bytes = 0
        keyBytes = 0
      }
      if (v) a.set(k, v)
      else a.delete(k)
      n++
      bytes += size
      keyBytes += kSize
    }
    if (appliedIndex !== undefined) a.set([META, 'applied'], appliedIndex)
    await mustCommit(a)
  }

  return {
    get,
    async has(cid) {
      return (await get(cid)) !== undefined
    },
    async *list(signal) {
      for await (const b of listEncoded(signal)) yield JSON.parse(decoder.decode(b)) as Pin
    },
    listEncoded,
    listNDJSON,
    scan,
    async apply(ops, appliedIndex) {
      check()
      // Into the filter before the commit: a reader racing the commit must not be told "absent".
      for (const op of ops) if (op.type === 'pin') remember(op.pin.cid)
      await commit(ops, appliedIndex)
    },
    willWrite(cids) {
      for (const cid of cids) remember(cid)
    },
    async loadFilter() {
      check()
      if (!loader) startLoad(FILTER_MIN)
      await loading
    },
    async appliedIndex() {
      check()
      return (await kv.get<number>([META, 'applied'])).value ?? 0
    },
    async clear() {
      check()
      let a = kv.atomic()
      let n = 0
      for await (const e of kv.list({ prefix: [PIN] }, { batchSize: LIST_BATCH })) {
        a.delete(e.key)
        if (++n >= MAX_MUTATIONS) {
          await mustCommit(a)
          a = kv.atomic()
          n = 0
        }
      }
      a.delete([META, 'applied'])
      a.delete(SYNC_MARK_KEY)
      cleared = true
      await mustCommit(a)
    },
    async putSyncMark(mark) {
      check()
      if (cleared) {
        await kv.delete(SYNC_MARK_KEY)
        return
      }
      const applied = (await kv.get<number>([META, 'applied'])).value ?? 0
      await kv.set(SYNC_MARK_KEY, { mark, applied })
    },
    async takeSyncMark() {
      check()
      const [m, applied] = await kv.getMany<[{ mark: string; applied: number }, number]>([
        SYNC_MARK_KEY,
        [META, 'applied'],
      ])
      if (m.value === null) return undefined
      await kv.delete(SYNC_MARK_KEY)
      return m.value.applied === (applied.value ?? 0) ? m.value.mark : undefined
    },
    async count(signal) {
      check()
      let n = 0
      for await (const _ of kv.list({ prefix: [PIN] }, { batchSize: LIST_BATCH })) {
        if (signal?.aborted) break
        n++
      }
      return n
    },
    close() {
      if (closed) return
      closed = true
      if (owned) kv.close()
    },
  }
}

/** Throws the ValidationError for a pin whose stored JSON (`bytes` long) the state cannot hold. */
export function checkPinSize(cid: string, bytes: number): void {
  if (bytes <= MAX_PIN_BYTES) return
  throw new ValidationError(
    `pin ${cid} is too large to store: ${bytes} bytes of JSON ` +
      `(at most ${MAX_PIN_BYTES}; reduce its metadata)`,
  )
}

/** A pin as the state stores it: its normalized CID and its stored JSON bytes. */
export interface StoredPinRecord {
  key: string
  value: Uint8Array
}

/** Commits of a bulk write that may be in flight at once (see `writeSortedPins`). */
const BULK_IN_FLIGHT = 4

/**
 * Writes pins into a database that holds none yet (a new pinset being built, see `import.ts`),
 * from batches of stored records in ascending key order. Ordered keys fill B-tree pages one after
 * the other, and several commits are kept in flight so that the next one is prepared while KV
 * writes the last (a failure fails the whole write; the caller discards the database). Resolves
 * with the number of pins written.
 */
export async function writeSortedPins(
  kv: Deno.Kv,
  batches: AsyncIterable<readonly StoredPinRecord[]>,
  signal?: AbortSignal,
): Promise<number> {
  const inFlight: Promise<void>[] = []
  let failure: unknown
  const send = async (a: Deno.AtomicOperation) => {
    const p = mustCommit(a)
    // Handled at once (a failure must not surface as an unhandled rejection), awaited in order.
    p.catch((err) => failure ??= err)
    inFlight.push(p)
    if (inFlight.length >= BULK_IN_FLIGHT) await inFlight.shift()
  }
  let a = kv.atomic()
  let n = 0
  let bytes = 0
  let keyBytes = 0
  let total = 0
  try {
    for await (const batch of batches) {
      signal?.throwIfAborted()
      for (const { key, value } of batch) {
        const kSize = key.length + 16
        const size = value.length + kSize
        if (
          n + 1 > MAX_MUTATIONS || bytes + size > MAX_COMMIT_BYTES ||
          keyBytes + kSize > MAX_KEY_BYTES
        ) {
          await send(a)
          a = kv.atomic()
          n = bytes = keyBytes = 0
        }
        a.set([PIN, key], value)
        n++
        bytes += size
        keyBytes += kSize
        total++
      }
    }
    if (n > 0) await send(a)
  } finally {
    await Promise.allSettled(inFlight)
  }
  if (failure !== undefined) throw failure
  return total
}

async function mustCommit(a: Deno.AtomicOperation) {
  const res = await a.commit()
  if (!res.ok) throw new Error('state commit failed: conflicting write')
}
