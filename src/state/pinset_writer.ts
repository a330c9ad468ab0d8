/**
 * The one writer of the pinset's keys in Deno KV: a pin per key `['pin', <normalized CID>]`
 * holding its stored JSON bytes, the applied index `['meta', 'applied']` that moves in the same
 * commit as the pins it covers, and the pin tracker's clean-stop mark `['meta', 'sync-mark']`.
 * Every write of them is built here — Raft applying entries and restoring snapshots
 * (consensus/raft/fsm.ts hands the mutations to the Ready's single KV commit), the state's own
 * `apply`, `state cleanup` (`clear`) and `state import` (`writeSortedPins`, into a new database) —
 * so the rules that go with the keys hold for every writer:
 *
 * - the state's filter of stored keys (kv_state.ts) learns a key before the commit that writes
 *   it, so a read racing the commit is never told "absent" — nor a filter rebuilt while the
 *   commit is in flight (`written` says when none is);
 * - a pin's size is checked in bytes of its stored JSON (`checkPinSize`);
 * - `clear` drops the applied index and the tracker's mark with the pins, and after a clear this
 *   process records no mark (a restored snapshot changed the pinset without the tracker seeing
 *   each pin).
 *
 * @example
 * ```ts
 * const w = new PinsetWriter(kv, { willWrite: (cid) => filter.add(cid) })
 * const group = { mutations: [w.pin(cid, json), w.unpin(other)], mark: w.appliedMark(7) }
 * await w.apply([{ type: 'pin', pin }], 8) // or on its own, in commits within KV's limits
 * ```
 *
 * @module
 */
import type { LogOp } from '../components.ts'
import { ValidationError } from '../errors.ts'
import { encodePin, storedPin } from '../types/pin.ts'
import {
  deleteMutation,
  KvCommitError,
  KvWriter,
  type Mutation,
  PipelinedKvWriter,
  setMutation,
} from './kv_batch.ts'

const PIN = 'pin'
/** The prefix of every pin key (for scans of the raw pinset). */
export const PIN_KEY_PREFIX: Deno.KvKey = [PIN]
const APPLIED_INDEX_KEY: Deno.KvKey = ['meta', 'applied']
/** The pin tracker's mark: the IPFS pinset at its last clean stop (see putSyncMark). */
const SYNC_MARK_KEY: Deno.KvKey = ['meta', 'sync-mark']
/** The largest pin the state can hold, in bytes of JSON (Deno KV's value limit). */
export const MAX_PIN_BYTES = 65536
const LIST_BATCH = 1000
const encoder = new TextEncoder()

/** What the writer tells the state's readers around writes. */
export interface PinsetWriterHooks {
  /** `cid` (normalized) is about to be written. */
  willWrite(cid: string): void
  /** Every write announced so far is committed (or was given up). */
  written?(): void
}

/** Writes of the pinset's keys; see the module comment. */
export class PinsetWriter {
  readonly #kv: Deno.Kv
  readonly #hooks: PinsetWriterHooks | undefined
  #cleared = false

  constructor(kv: Deno.Kv, hooks?: PinsetWriterHooks) {
    this.#kv = kv
    this.#hooks = hooks
  }

  /** Stores `json` (a pin's stored JSON bytes) as the pin of `cid` (normalized). */
  pin(cid: string, json: Uint8Array): Mutation {
    this.#hooks?.willWrite(cid)
    return setMutation([PIN, cid], json, json.byteLength + 8)
  }

  /** Removes the pin of `cid` (normalized). */
  unpin(cid: string): Mutation {
    return deleteMutation([PIN, cid])
  }

  /**
   * The mutations built so far are committed: the state's filter may forget that they were
   * still in flight. Callers that commit the mutations themselves (Raft's Ready) say so here;
   * this writer's own `apply` and `clear` do it on their own.
   */
  written(): void {
    this.#hooks?.written?.()
  }

  /** The applied index as a group's mark (kv_batch.ts): written with the group's last commit. */
  appliedMark(index: number): { key: Deno.KvKey; value: number } {
    return { key: APPLIED_INDEX_KEY, value: index }
  }

  /** Records the applied index. */
  applied(index: number): Mutation {
    return setMutation(APPLIED_INDEX_KEY, index, 16)
  }

  /** The recorded applied index; null when none (a pinset written outside consensus, or new). */
  async storedApplied(): Promise<number | null> {
    return (await this.#kv.get<number>(APPLIED_INDEX_KEY)).value
  }

  /**
   * Applies operations (split into several commits only beyond KV's limits), with the applied
   * index in the last commit. Every pin is encoded and size-checked before the first commit: an
   * oversized pin fails the batch with a clear message, and without a part of it applied.
   */
  async apply(ops: readonly LogOp[], appliedIndex?: number): Promise<void> {
    const values = ops.map((op) =>
      op.type === 'pin' ? encoder.encode(encodePin(storedPin(op.pin))) : undefined
    )
    values.forEach((v, i) => v && checkPinSize(ops[i].pin.cid, v.length))
    const w = new KvWriter(this.#kv)
    for (let i = 0; i < ops.length; i++) {
      const v = values[i]
      await w.add(v ? this.pin(ops[i].pin.cid, v) : this.unpin(ops[i].pin.cid))
    }
    await w.flush(appliedIndex === undefined ? [] : [this.applied(appliedIndex)])
    this.written()
  }

  /** Removes every pin, the applied index and the tracker's mark, then `extra` (last commit). */
  async clear(extra: readonly Mutation[] = []): Promise<void> {
    // Deletes in key order: commits overlap, and `extra` lands only after all of them.
    const w = new PipelinedKvWriter(this.#kv)
    for await (const e of this.#kv.list({ prefix: PIN_KEY_PREFIX }, { batchSize: LIST_BATCH })) {
      await w.add(deleteMutation(e.key))
    }
    this.#cleared = true
    await w.flush([deleteMutation(APPLIED_INDEX_KEY), deleteMutation(SYNC_MARK_KEY), ...extra])
    this.written()
  }

  /**
   * Records the tracker's mark with the applied index it holds for; drops any mark instead once
   * `clear` ran in this process.
   */
  async putSyncMark(mark: string): Promise<void> {
    if (this.#cleared) {
      await this.#kv.delete(SYNC_MARK_KEY)
      return
    }
    const applied = (await this.storedApplied()) ?? 0
    await this.#kv.set(SYNC_MARK_KEY, { mark, applied })
  }

  /** Takes the mark out; undefined when none, or when the pinset moved on since it was put. */
  async takeSyncMark(): Promise<string | undefined> {
    const [m, applied] = await this.#kv.getMany<[{ mark: string; applied: number }, number]>([
      SYNC_MARK_KEY,
      APPLIED_INDEX_KEY,
    ])
    if (m.value === null) return undefined
    await this.#kv.delete(SYNC_MARK_KEY)
    return m.value.applied === (applied.value ?? 0) ? m.value.mark : undefined
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
 * The bulk write's own packing: keys of ASCII CIDs are sized exactly (kv_batch.ts estimates any
 * string high, which would halve the pins per commit of an import). Below Deno KV's limits of
 * 1000 mutations, 800 KiB and 80 KiB of keys per commit.
 */
const BULK_MUTATIONS = 900
const BULK_BYTES = 700 * 1024
const BULK_KEY_BYTES = 64 * 1024

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
    const p = a.commit().then((res) => {
      if (!res.ok) throw new KvCommitError('state commit failed: conflicting write')
    })
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
          n + 1 > BULK_MUTATIONS || bytes + size > BULK_BYTES || keyBytes + kSize > BULK_KEY_BYTES
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
