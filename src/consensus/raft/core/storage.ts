/**
 * The read side of a node's durable Raft state, as the core sees it, and `MemoryStorage`, the
 * in-memory implementation used by the simulator and tests.
 *
 * ## What the core reads (the `Storage` interface)
 *
 * The core only ever *reads* storage, and only synchronously: it is a pure state machine and
 * cannot await. A durable adapter (Deno KV) therefore keeps a write-through in-memory copy of
 * what the core reads — the hard state, the latest snapshot's metadata and the log entries after
 * the last compaction — loaded once with async reads before the node is constructed.
 *
 * The log as storage holds it is the *stable* log: a dummy position `firstIndex() - 1` whose term
 * is known (the last compacted entry, or the snapshot, or 0 for an empty log) followed by entries
 * `firstIndex() .. lastIndex()`. An empty log has `firstIndex() = 1`, `lastIndex() = 0` and
 * `term(0) = 0`. Compaction may keep entries older than the snapshot (`firstIndex() - 1 <=
 * snapshot().index`), which lets slightly lagging followers catch up without a snapshot.
 *
 * ## What the host writes (the contract a durable adapter must keep)
 *
 * The host is the only writer, always in response to a `Ready` (see `node.ts`), and **before**
 * calling `advance(ready)` it must make durable, in this order and without reordering:
 *
 * 1. `ready.snapshot`, if any: install the staged snapshot data as the state machine's state,
 *    record its metadata, and drop every log entry (the log restarts after `snapshot.index`).
 * 2. `ready.entries`, if any: they replace every stored entry from `entries[0].index` on —
 *    including stored entries beyond the last new one (a new leader may have overwritten an
 *    uncommitted suffix). Deleting the old suffix and writing the new entries must be atomic, or
 *    a crash could leave a log whose terms go down.
 * 3. `ready.hardState`, if any.
 *
 * When `ready.mustSync` is true these writes must be fsynced (Deno KV commits are durable when
 * they resolve). A host that splits one Ready over several atomic KV commits (the 1000-mutation
 * and 800 KB limits) must commit entries before the hard state, and a crash between commits must
 * leave a valid prefix of the log.
 *
 * Compaction happens outside of Ready: after applying up to index `i` and serialising its state,
 * the host stores the snapshot (data + `node.snapshotMetaAt(i)`) and may then drop entries up to
 * some index `<= i`. Storage must never drop entries that are not covered by its snapshot.
 *
 * @example
 * ```ts
 * const storage = MemoryStorage.bootstrap(['a', 'b', 'c'])
 * const node = new RaftNode({ id: 'a', storage, rand: seeded(1) })
 * ```
 *
 * @module
 */
import {
  CompactedError,
  RaftInvariantError,
  SnapshotOutOfDateError,
  UnavailableError,
} from './errors.ts'
import type { ConfState, Entry, HardState, SnapshotMeta } from './types.ts'
import { cloneConfState, limitSize } from './util.ts'

/** The read-only view of durable Raft state the core needs. All methods are synchronous. */
export interface Storage {
  /**
   * The persisted hard state. A brand-new node returns `{ term: 0, vote: null, commit: 0 }`.
   * Called once, when the node is constructed.
   */
  initialState(): HardState
  /**
   * Entries in `[lo, hi)`, in order, stopping early once their total `entrySize` exceeds
   * `maxSize` but always returning at least one entry when `lo < hi`.
   * Throws `CompactedError` if `lo < firstIndex()` and `UnavailableError` if
   * `hi > lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[]
  /**
   * The term of the entry at `i`, for `firstIndex() - 1 <= i <= lastIndex()` (the first of these
   * is the dummy position, whose term storage keeps after compaction).
   * Throws `CompactedError` below that range and `UnavailableError` above it.
   */
  term(i: number): number
  /** Index of the first entry still stored (1 for a log never compacted). */
  firstIndex(): number
  /** Index of the last entry stored; `firstIndex() - 1` when no entry is stored. */
  lastIndex(): number
  /**
   * Metadata of the latest snapshot. A node that never took or received one returns index 0,
   * term 0 and the bootstrap membership (empty for a node that joins an existing cluster).
   */
  snapshot(): SnapshotMeta
}

/** The persisted state a `MemoryStorage` can be rebuilt from (e.g. a simulated disk image). */
export interface PersistedState {
  hardState: HardState
  snapshot: SnapshotMeta
  snapshotData?: Uint8Array
  /** Entries after the dummy position; `entries[0].index` must be `firstIndex`. */
  entries: Entry[]
  /** Index of the first stored entry; defaults to `snapshot.index + 1`. */
  firstIndex?: number
  /** Term at `firstIndex - 1`; defaults to `snapshot.term`. */
  dummyTerm?: number
}

/**
 * An in-memory `Storage` plus the write methods a host calls while handling Ready. Also keeps the
 * snapshot bytes next to their metadata, so tests need no separate snapshot store.
 *
 * @example
 * ```ts
 * const s = MemoryStorage.bootstrap(['a'])
 * s.append([{ term: 1, index: 1, type: 'normal', data: new Uint8Array() }])
 * s.createSnapshot({ index: 1, term: 1, confState: { voters: ['a'], learners: [] } }, bytes)
 * s.compact(1)
 * ```
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: null, commit: 0 }
  #snapshot: SnapshotMeta
  #snapshotData: Uint8Array = new Uint8Array()
  /** `#ents[0]` is the dummy position (index `firstIndex - 1`); its `data` is unused. */
  #ents: Entry[]

  /** An empty log; `confState` is the initial membership (empty for a joining node). */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.#snapshot = { index: 0, term: 0, confState: cloneConfState(confState) }
    this.#ents = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array() }]
  }

  /** Storage for one of the founding members of a new cluster whose voters are `voters`. */
  static bootstrap(voters: string[]): MemoryStorage {
    return new MemoryStorage({ voters, learners: [] })
  }

  /** Storage for a node that will join an existing cluster (it learns membership from the log). */
  static joining(): MemoryStorage {
    return new MemoryStorage()
  }

  /** Rebuilds storage from a persisted image, e.g. a simulated disk after a crash. */
  static fromPersisted(p: PersistedState): MemoryStorage {
    const s = new MemoryStorage(p.snapshot.confState)
    s.#snapshot = { ...p.snapshot, confState: cloneConfState(p.snapshot.confState) }
    s.#snapshotData = p.snapshotData ?? new Uint8Array()
    const first = p.firstIndex ?? p.snapshot.index + 1
    s.#ents = [
      {
        term: p.dummyTerm ?? p.snapshot.term,
        index: first - 1,
        type: 'normal',
        data: new Uint8Array(),
      },
    ]
    for (const [i, e] of p.entries.entries()) {
      if (e.index !== first + i) {
        throw new RaftInvariantError(`persisted entries are not contiguous at ${e.index}`)
      }
      s.#ents.push(e)
    }
    s.#hardState = { ...p.hardState }
    return s
  }

  /** A copy of everything durable, for `fromPersisted`. */
  persisted(): PersistedState {
    return {
      hardState: { ...this.#hardState },
      snapshot: { ...this.#snapshot, confState: cloneConfState(this.#snapshot.confState) },
      snapshotData: this.#snapshotData,
      entries: this.#ents.slice(1),
      firstIndex: this.firstIndex(),
      dummyTerm: this.#ents[0].term,
    }
  }

  initialState(): HardState {
    return { ...this.#hardState }
  }

  /** Records the hard state (step 3 of handling a Ready). */
  setHardState(hs: HardState): void {
    this.#hardState = { ...hs }
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.#ents[0].index
    if (lo <= offset) throw new CompactedError()
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError(
        `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`,
      )
    }
    if (lo >= hi) return []
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxSize)
  }

  term(i: number): number {
    const offset = this.#ents[0].index
    if (i < offset) throw new CompactedError()
    if (i - offset >= this.#ents.length) throw new UnavailableError()
    return this.#ents[i - offset].term
  }

  firstIndex(): number {
    return this.#ents[0].index + 1
  }

  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1
  }

  snapshot(): SnapshotMeta {
    return this.#snapshot
  }

  /** The bytes of the latest snapshot. */
  snapshotData(): Uint8Array {
    return this.#snapshotData
  }

  /**
   * Installs a snapshot received from the leader (step 1 of handling a Ready): the whole log is
   * replaced by the snapshot position.
   */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array = new Uint8Array()): void {
    if (meta.index <= this.#snapshot.index) throw new SnapshotOutOfDateError()
    this.#snapshot = { ...meta, confState: cloneConfState(meta.confState) }
    this.#snapshotData = data
    this.#ents = [{ term: meta.term, index: meta.index, type: 'normal', data: new Uint8Array() }]
  }

  /**
   * Records a snapshot the application took at `meta.index` (use `node.snapshotMetaAt(i)` to
   * build `meta`). Does not drop entries; call `compact` for that.
   */
  createSnapshot(meta: SnapshotMeta, data: Uint8Array = new Uint8Array()): void {
    if (meta.index <= this.#snapshot.index) throw new SnapshotOutOfDateError()
    if (meta.index > this.lastIndex()) {
      throw new UnavailableError(`snapshot ${meta.index} is beyond last index ${this.lastIndex()}`)
    }
    if (this.term(meta.index) !== meta.term) {
      throw new RaftInvariantError(
        `snapshot term ${meta.term} does not match log term ${
          this.term(meta.index)
        } at ${meta.index}`,
      )
    }
    this.#snapshot = { ...meta, confState: cloneConfState(meta.confState) }
    this.#snapshotData = data
  }

  /**
   * Drops entries up to and including `index`, which must be covered by the snapshot:
   * afterwards `firstIndex() = index + 1`.
   */
  compact(index: number): void {
    const offset = this.#ents[0].index
    if (index <= offset) throw new CompactedError()
    if (index > this.#snapshot.index) {
      throw new RaftInvariantError(
        `compact ${index} is beyond the snapshot index ${this.#snapshot.index}`,
      )
    }
    const i = index - offset
    const dummy: Entry = {
      term: this.#ents[i].term,
      index,
      type: 'normal',
      data: new Uint8Array(),
    }
    this.#ents = [dummy, ...this.#ents.slice(i + 1)]
  }

  /**
   * Appends entries (step 2 of handling a Ready). Entries at `entries[0].index` and beyond
   * replace the stored suffix; entries already compacted are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    const last = entries[0].index + entries.length - 1
    if (last < first) return
    let ents = entries
    if (first > entries[0].index) ents = entries.slice(first - entries[0].index)
    const offset = ents[0].index - this.#ents[0].index
    if (offset > this.#ents.length) {
      throw new RaftInvariantError(
        `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0].index}]`,
      )
    }
    this.#ents.length = offset
    for (const e of ents) this.#ents.push(e)
  }
}
