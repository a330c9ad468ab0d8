/**
 * The pinset on Deno KV. Each pin is one key, `['pin', <cid>]`, whose value is the pin's JSON
 * bytes: reads of one pin are one `get`, and listing streams stored bytes straight to the API
 * without parsing or re-encoding (the difference between ~60k and ~250k pins/s on 2 cores).
 * Every write of its keys goes through their one writer (pinset_writer.ts): Raft's state machine
 * commits pins together with the applied index and its log, so that after a crash the state and
 * its applied index agree; `apply` here is the same writer for a state used without Raft.
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
import type { Pin } from '../types/pin.ts'
import { normalizeCid } from '../types/cid.ts'
import { BloomFilter } from './bloom.ts'
import { openKvFile } from './kv_file.ts'
import { ShutdownError } from '../errors.ts'
import { yieldToLoop } from '../util/clock.ts'
import { checkPinSize, MAX_PIN_BYTES, PIN_KEY_PREFIX, PinsetWriter } from './pinset_writer.ts'

const LIST_BATCH = 1000
const NDJSON_CHUNK = 64 * 1024
/** The filter starts sized for this many pins and grows fourfold when outgrown. */
const FILTER_MIN = 1_000_000
const PIN = PIN_KEY_PREFIX[0]
const decoder = new TextDecoder()

// The state's limit, for those that check a pin before it reaches the writer (the REST API).
export { checkPinSize, MAX_PIN_BYTES }

/** The pinset with write access (owned by consensus). */
export interface PinState extends StateReader {
  /** Applies operations atomically (split into several commits only beyond KV limits). */
  apply(ops: LogOp[], appliedIndex?: number): Promise<void>
  /** The index of the last applied consensus entry (0 when none). */
  appliedIndex(): Promise<number>
  /** Removes every pin (state cleanup, snapshot restore). */
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
   * The one writer of the pinset's keys (pinset_writer.ts), wired to this state's filter of
   * stored keys: for Raft, which commits pins together with its log.
   */
  readonly writer: PinsetWriter
  /**
   * Loads the filter of stored keys now (it otherwise starts on the first read) and resolves once
   * reads of absent pins no longer touch KV (or the state closed first).
   */
  loadFilter(): Promise<void>
  close(): void
}

/** Opens (creating) the state at a KV path; ':memory:' for tests. */
export async function openKvState(path: string): Promise<PinState> {
  const kv = await openKvFile(path)
  return kvState(kv, true)
}

/** Wraps an open KV handle. `owned` ⇒ close() closes the handle. */
export function kvState(kv: Deno.Kv, owned = false): PinState {
  let closed = false
  const check = () => {
    if (closed) throw new ShutdownError('state is closed')
  }
  // The filter answers "certainly absent" once it holds every stored key; until the background
  // load finishes (and while it rebuilds bigger) every get reads KV.
  let filter = new BloomFilter(FILTER_MIN)
  let filterReady = false
  let loading: Promise<void> | undefined
  // Keys announced to the filter whose commit is not known to have landed (see loadFilter).
  let inFlight: string[] = []
  const loadFilter = (capacity: number) => {
    const next = new BloomFilter(capacity)
    // Keys announced before this load whose commit may land after the scan passed them.
    let pendingAdds: string[] | undefined = [...inFlight]
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
    inFlight.push(cid)
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

  // Into the filter before the commit: a reader racing the commit must not be told "absent".
  const writer = new PinsetWriter(kv, {
    willWrite: (cid) => remember(cid),
    written: () => void (inFlight = []),
  })

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
    writer,
    async apply(ops: LogOp[], appliedIndex?: number) {
      check()
      await writer.apply(ops, appliedIndex)
    },
    async loadFilter() {
      check()
      if (!loader) startLoad(FILTER_MIN)
      await loading
    },
    async appliedIndex() {
      check()
      return (await writer.storedApplied()) ?? 0
    },
    async clear() {
      check()
      return await writer.clear()
    },
    async putSyncMark(mark) {
      check()
      return await writer.putSyncMark(mark)
    },
    async takeSyncMark() {
      check()
      return await writer.takeSyncMark()
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
