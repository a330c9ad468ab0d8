/**
 * The pinset state machine behind Raft, kept on disk (the on-disk FSM pattern): the pinset in
 * Deno KV *is* the applied state, and the index of the last applied entry is written in the same
 * commit as the entry's effects. A restart therefore resumes right after that index — nothing
 * before it is replayed and nothing is skipped — and compacting the log needs no copy of the
 * state, only a note of the index the state already covers.
 *
 * ## Applying
 *
 * `stage(entries)` turns committed entries into KV mutation groups, one per entry (its pin sets
 * and deletes, its dedupe row, and the applied index as the group's mark), which the host commits
 * together with the Ready's log writes (kv_storage.ts `persist`). Batches carry (origin, seq);
 * a batch whose seq is not above the last applied seq of its origin is a duplicate (a forwarded
 * proposal the network delivered twice, or one overtaken by a later batch of the same peer) and
 * is skipped — deterministically, on every replica, because the table is part of the state.
 *
 * ## Snapshots
 *
 * A snapshot is taken only when a follower needs one. Deno KV has no point-in-time reads, and
 * the pinset may be hundreds of MB, so writes are not paused: the pinset is scanned while entries
 * keep being applied (a fuzzy scan starting after applied index `a`), then the entries `a+1 … b`
 * applied meanwhile are appended as records. Every record is a set or a delete of one key, so
 * replaying them over the scan gives exactly the state at `b` — the snapshot's index. Bytes go to
 * KV chunks as they are produced (never gathered). Restoring clears the state and applies the
 * records in order; the last commit writes the applied index.
 *
 * @example
 * ```ts
 * const fsm = await PinFsm.open(kv, state)
 * const staged = fsm.stage(ready.committedEntries)
 * await storage.persist(ready.entries, ready.hardState, staged.groups)
 * fsm.applied = staged.lastIndex
 * ```
 *
 * @module
 */
import { type ConfChangeRecord, decodeConfChangeEntry, type Entry } from './core/mod.ts'
import { RaftInvariantError } from './core/mod.ts'
import { decodeBatch, type EncodedOp, isBatch } from './entry_codec.ts'
import {
  deleteMutation,
  KvWriter,
  type Mutation,
  type MutationGroup,
  PipelinedKvWriter,
  setMutation,
} from '../../state/kv_batch.ts'
import type { PinState } from '../../state/kv_state.ts'
import { PIN_KEY_PREFIX as PIN_PREFIX, type PinsetWriter } from '../../state/pinset_writer.ts'
import { type KvRaftStorage, RAFT_PREFIX, type SnapshotData } from './kv_storage.ts'
import { crc32, SNAPSHOT_CHUNK_BYTES, SnapshotDecoder, SnapshotEncoder } from './snapshot_format.ts'

const SEQ = 'seq'
const seqKey = (origin: string): Deno.KvKey => [RAFT_PREFIX, SEQ, origin]
/** Chunks the encoder may hold before they go to the chunk writer (and the signal is checked). */
const CHUNKS_PER_COMMIT = 12

/** A batch applied by a Ready, for the host (waiters, hooks). */
export interface AppliedBatch {
  index: number
  origin: string
  seq: number
  ops: EncodedOp[]
}

/** What `stage` prepared: the writes, and what to report once they are durable. */
export interface StagedApply {
  groups: MutationGroup[]
  /** Index of the last entry staged (the applied index once durable); -1 if none. */
  lastIndex: number
  batches: AppliedBatch[]
  confChanges: { index: number; record: ConfChangeRecord }[]
  /** Entries skipped as duplicates. */
  duplicates: number
}

/** The pinset state machine on Deno KV. */
export class PinFsm {
  readonly kv: Deno.Kv
  readonly state: PinState
  /** The pinset's one writer: every pin and applied-index write of the FSM is built by it. */
  readonly #pins: PinsetWriter
  /** The applied index that is durable. */
  applied: number
  /** The highest index handed to `stage` (≥ applied). */
  staged: number
  /** False when the state holds no applied index: something other than Raft wrote it. */
  readonly appliedKnown: boolean
  #seqs: Map<string, number>
  /** Indexes of entries skipped as duplicates (a snapshot's replay must skip them too). */
  #skipped = new Set<number>()

  private constructor(
    kv: Deno.Kv,
    state: PinState,
    applied: number | null,
    seqs: Map<string, number>,
  ) {
    this.kv = kv
    this.state = state
    this.#pins = state.writer
    this.applied = this.staged = applied ?? 0
    this.appliedKnown = applied !== null
    this.#seqs = seqs
  }

  /** Loads the applied index and the dedupe table. `kv` is the database `state` lives in. */
  static async open(kv: Deno.Kv, state: PinState): Promise<PinFsm> {
    const applied = await state.writer.storedApplied()
    const seqs = new Map<string, number>()
    for await (const e of kv.list<number>({ prefix: [RAFT_PREFIX, SEQ] })) {
      seqs.set(e.key[2] as string, e.value)
    }
    return new PinFsm(kv, state, applied, seqs)
  }

  /** True if the pinset holds at least one pin. */
  async hasPins(): Promise<boolean> {
    for await (const _ of this.kv.list({ prefix: PIN_PREFIX }, { limit: 1 })) return true
    return false
  }

  /** The last applied seq of `origin` (0 if none). */
  lastSeq(origin: string): number {
    return this.#seqs.get(origin) ?? 0
  }

  /** Records `index` as applied, with `extra` in the same commit. */
  async setApplied(index: number, extra: readonly Mutation[] = []): Promise<void> {
    await new KvWriter(this.kv).flush([this.#pins.applied(index), ...extra])
    this.applied = this.staged = index
  }

  /**
   * Prepares committed entries for application (see the module comment). The dedupe table is
   * updated in memory at once: the host commits the groups in the order they were staged (a
   * held staging rides along with the next one, ready_loop.ts).
   */
  stage(entries: readonly Entry[]): StagedApply {
    const out: StagedApply = {
      groups: [],
      lastIndex: -1,
      batches: [],
      confChanges: [],
      duplicates: 0,
    }
    for (const e of entries) {
      const mark = this.#pins.appliedMark(e.index)
      out.lastIndex = e.index
      if (e.type === 'confChange') {
        out.confChanges.push({ index: e.index, record: decodeConfChangeEntry(e.data) })
        out.groups.push({ mutations: [], mark })
        continue
      }
      if (e.data.byteLength === 0) {
        out.groups.push({ mutations: [], mark })
        continue
      }
      const b = decodeBatch(e.data)
      if (b.seq <= this.lastSeq(b.origin)) {
        this.#skipped.add(e.index)
        out.duplicates++
        out.groups.push({ mutations: [], mark })
        continue
      }
      this.#seqs.set(b.origin, b.seq)
      const pins = this.#pins
      const mutations: Mutation[] = b.ops.map((op) =>
        op.kind === 'pin' ? pins.pin(op.cid, op.json) : pins.unpin(op.cid)
      )
      mutations.push(setMutation(seqKey(b.origin), b.seq, 16))
      out.groups.push({ mutations, mark })
      out.batches.push({ index: e.index, origin: b.origin, seq: b.seq, ops: b.ops })
    }
    if (out.lastIndex >= 0) this.staged = out.lastIndex
    return out
  }

  /** The staged writes are durable (with every staging before them). */
  applyDone(staged: StagedApply): void {
    if (staged.lastIndex >= 0) this.applied = staged.lastIndex
    // Nothing staged is still on its way to disk (none held, ready_loop.ts): the state's filter
    // may stop counting those keys as in flight.
    if (this.applied === this.staged) this.#pins.written()
  }

  /** Forgets duplicate markers below `index` (entries compacted away). */
  forgetBefore(index: number): void {
    for (const i of this.#skipped) if (i < index) this.#skipped.delete(i)
  }

  /**
   * Writes a snapshot of the pinset to KV chunks while application goes on, and returns the
   * index it stands for with where its bytes are. `storage` must keep the entries after the
   * current applied index until this resolves (the host does not compact meanwhile).
   */
  async takeSnapshot(
    storage: KvRaftStorage,
    signal?: AbortSignal,
  ): Promise<{ index: number; data: SnapshotData }> {
    const from = this.applied
    const id = storage.newDataId()
    const out = storage.chunkWriter(id)
    let bytes = 0
    let crc = 0
    let pending: Uint8Array[] = []
    const flush = async () => {
      const batch = pending
      pending = []
      for (const c of batch) await out.write(c)
    }
    const enc = new SnapshotEncoder((c) => {
      bytes += c.byteLength
      crc = crc32(crc, c)
      pending.push(c)
    }, SNAPSHOT_CHUNK_BYTES)
    try {
      const pins = this.kv.list<Uint8Array>({ prefix: PIN_PREFIX }, { batchSize: 1000 })
      for await (const e of pins) {
        enc.pin(e.key[1] as string, e.value)
        if (pending.length >= CHUNKS_PER_COMMIT) {
          signal?.throwIfAborted()
          await flush()
        }
      }
      for await (const e of this.kv.list<number>({ prefix: [RAFT_PREFIX, SEQ] })) {
        enc.seq(e.key[2] as string, e.value)
      }
      // Every write the scan may have seen belongs to an entry staged by now.
      const to = this.staged
      for (let i = from + 1; i <= to;) {
        const ents = storage.entries(i, to + 1, 4 << 20)
        for (const e of ents) {
          if (e.type !== 'normal' || !isBatch(e.data) || this.#skipped.has(e.index)) continue
          const b = decodeBatch(e.data)
          for (const op of b.ops) {
            if (op.kind === 'pin') enc.pin(op.cid, op.json)
            else enc.unpin(op.cid)
          }
          enc.seq(b.origin, b.seq)
        }
        i += ents.length
        if (pending.length >= CHUNKS_PER_COMMIT) await flush()
      }
      signal?.throwIfAborted()
      enc.finish()
      await flush()
      await out.flush()
      return { index: to, data: { id, chunks: out.count, bytes, crc } }
    } catch (err) {
      storage.discardChunks(id)
      throw err
    }
  }

  /**
   * Replaces the state by the snapshot `data` at `index`: clears the pinset and the dedupe table,
   * applies the records in order, and commits the applied index with `finalExtra` last. The data
   * must have been verified (a damaged stream here is a bug: `RaftInvariantError`).
   */
  async restore(
    storage: KvRaftStorage,
    data: SnapshotData,
    index: number,
    finalExtra: readonly Mutation[] = [],
  ): Promise<void> {
    const pins = this.#pins
    await pins.clear()
    const w = new KvWriter(this.kv)
    for await (const e of this.kv.list({ prefix: [RAFT_PREFIX, SEQ] })) {
      await w.add(deleteMutation(e.key))
    }
    await w.flush()
    // The records are mostly the pinset in key order: commits of them overlap (see
    // PipelinedKvWriter); the replayed tail waits where a key repeats. A crash anywhere here is
    // redone from `clear` at the next start (the `restore` mark goes only with the last commit).
    const pw = new PipelinedKvWriter(this.kv)
    const seqs = new Map<string, number>()
    const dec = new SnapshotDecoder()
    try {
      for await (const chunk of storage.readChunks(data)) {
        for (const r of dec.push(chunk)) {
          if (r.kind === 'pin') {
            await pw.add(pins.pin(r.cid, r.json))
          } else if (r.kind === 'unpin') {
            await pw.add(pins.unpin(r.cid))
          } else {
            seqs.set(r.origin, r.seq)
            await pw.add(setMutation(seqKey(r.origin), r.seq, 16))
          }
        }
      }
      dec.end()
    } catch (err) {
      throw new RaftInvariantError(`restoring snapshot ${index}: ${(err as Error).message}`)
    }
    await pw.flush([pins.applied(index), ...finalExtra])
    pins.written()
    this.applied = this.staged = index
    this.#seqs = seqs
    this.#skipped.clear()
  }
}
