/**
 * The node's view of its log: the stable part (in `Storage`) followed by the unstable part
 * (entries or a snapshot the host has not yet made durable), plus the commit and apply cursors.
 * A port of etcd-io/raft's `raftLog` and `unstable`.
 *
 * @module
 */
import { CompactedError, RaftInvariantError, UnavailableError } from './errors.ts'
import type { Storage } from './storage.ts'
import type { Entry, SnapshotMeta } from './types.ts'
import { limitSize } from './util.ts'

/**
 * Entries and/or a snapshot not yet handed to (or not yet acknowledged by) the host's storage.
 * `entries[i]` has index `offset + i`.
 */
export class Unstable {
  snapshot: SnapshotMeta | undefined
  entries: Entry[] = []
  offset: number

  constructor(offset: number) {
    this.offset = offset
  }

  /** Index of the first entry if a snapshot is pending (the log then restarts after it). */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.index + 1 : undefined
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    return this.snapshot ? this.snapshot.index : undefined
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot && this.snapshot.index === i ? this.snapshot.term : undefined
    }
    const last = this.maybeLastIndex()
    if (last === undefined || i > last) return undefined
    return this.entries[i - this.offset].term
  }

  /**
   * Entries up to (`i`, `t`) are durable. The term check matters: if the entries the host just
   * persisted were overwritten meanwhile by a new leader, the newer ones stay unstable and are
   * handed out again.
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i)
    if (gt === undefined) return
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset)
      this.offset = i + 1
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.index === i) this.snapshot = undefined
  }

  restore(s: SnapshotMeta): void {
    this.offset = s.index + 1
    this.entries = []
    this.snapshot = s
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e)
    } else if (after <= this.offset) {
      // The new entries replace everything unstable (and, once persisted, part of storage).
      this.offset = after
      this.entries = [...ents]
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents)
    }
  }

  slice(lo: number, hi: number): Entry[] {
    const upper = this.offset + this.entries.length
    if (lo > hi || lo < this.offset || hi > upper) {
      throw new RaftInvariantError(
        `unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`,
      )
    }
    return this.entries.slice(lo - this.offset, hi - this.offset)
  }
}

/** The log as the core reasons about it. */
export class RaftLog {
  readonly storage: Storage
  readonly unstable: Unstable
  /** Highest index known to be stored on a quorum. Never decreases. */
  committed: number
  /** Highest index the host has applied (acknowledged through advance). `applied <= committed`. */
  applied: number
  readonly maxNextCommittedSize: number

  constructor(storage: Storage, maxNextCommittedSize: number) {
    this.storage = storage
    this.maxNextCommittedSize = maxNextCommittedSize
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    this.committed = first - 1
    this.applied = first - 1
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex()
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex()
  }

  /** Term at `i`. Throws `CompactedError` / `UnavailableError` outside `[firstIndex-1, lastIndex]`. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1
    if (i < dummy) throw new CompactedError()
    if (i > this.lastIndex()) throw new UnavailableError()
    const t = this.unstable.maybeTerm(i)
    if (t !== undefined) return t
    return this.storage.term(i)
  }

  /**
   * Term at `i`, or undefined when it is compacted or beyond the log. Hot paths use this rather
   * than catching `term`'s errors: building an Error (with its stack) per entry dominated the cost
   * of appending.
   */
  maybeTerm(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined
    const t = this.unstable.maybeTerm(i)
    if (t !== undefined) return t
    try {
      return this.storage.term(i)
    } catch (err) {
      // Storage may have compacted concurrently with our view of firstIndex.
      if (err instanceof CompactedError || err instanceof UnavailableError) return undefined
      throw err
    }
  }

  /** Term at `i`, or 0 when it is compacted or beyond the log. */
  zeroTermOnErr(i: number): number {
    return this.maybeTerm(i) ?? 0
  }

  lastTerm(): number {
    return this.term(this.lastIndex())
  }

  matchTerm(i: number, t: number): boolean {
    return this.maybeTerm(i) === t
  }

  /**
   * The election restriction (§5.4.1): grant a vote only to a candidate whose log ends with a
   * higher term, or the same term and at least as long. This is what puts every committed entry
   * in every future leader's log.
   */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm()
    return term > lt || (term === lt && lasti >= this.lastIndex())
  }

  /**
   * AppendEntries on a follower: if our log holds (`index`, `logTerm`), append `ents` after it,
   * replacing a conflicting suffix. Returns the last index now known to match the leader and
   * the entries actually appended, or undefined if the consistency check failed.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: Entry[],
  ): { lastNew: number; appended: Entry[] } | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    let appended: Entry[] = []
    if (ci !== 0) {
      if (ci <= this.committed) {
        // A leader never sends entries that conflict with a committed one (Leader
        // Completeness); if it happens, storage is corrupt and continuing would diverge.
        throw new RaftInvariantError(
          `entry ${ci} conflicts with committed entry [committed(${this.committed})]`,
        )
      }
      appended = ents.slice(ci - (index + 1))
      this.append(appended)
    }
    this.commitTo(Math.min(committed, lastNew))
    return { lastNew, appended }
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0].index - 1
    if (after < this.committed) {
      throw new RaftInvariantError(`after(${after}) is out of range [committed(${this.committed})]`)
    }
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /**
   * Index of the first entry of `ents` that is not in our log with the same term (a conflict
   * or a new entry), or 0 if all are present. Entries must be contiguous.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`, and that term (0 if unknown). Any entry
   * after it and up to `index` has a term above `term`, so it cannot match a log whose entry at
   * `index` has `term`: the leader may skip all of them at once.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const ours = this.maybeTerm(index)
      if (ours === undefined) return [index, 0]
      if (ours <= term) return [index, ours]
    }
    return [0, 0]
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries
  }

  /** Committed entries the host has not applied yet (none while a snapshot awaits install). */
  nextCommittedEntries(): Entry[] {
    if (this.unstable.snapshot) return []
    const off = Math.max(this.applied + 1, this.firstIndex())
    const hi = this.committed + 1
    if (hi <= off) return []
    return this.slice(off, hi, this.maxNextCommittedSize)
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot) return false
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex())
  }

  /** Entries from `i` on, at most `maxSize` bytes (at least one entry if any). */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return []
    return this.slice(i, this.lastIndex() + 1, maxSize)
  }

  /** Entries in `[lo, hi)`. Throws `CompactedError` if `lo` was compacted. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    const first = this.firstIndex()
    if (lo < first) throw new CompactedError()
    if (hi > this.lastIndex() + 1 || lo > hi) {
      throw new RaftInvariantError(`slice[${lo},${hi}) out of bound [${first},${this.lastIndex()}]`)
    }
    if (lo === hi) return []
    const uo = this.unstable.offset
    let ents: Entry[] = []
    if (lo < uo) {
      const storedHi = Math.min(hi, uo)
      const stored = this.storage.entries(lo, storedHi, maxSize)
      // Storage stopped early because of maxSize: the unstable part would exceed it too.
      if (stored.length < storedHi - lo) return stored
      ents = stored
    }
    if (hi > uo) {
      const u = this.unstable.slice(Math.max(lo, uo), hi)
      ents = ents.length > 0 ? ents.concat(u) : u
    }
    return limitSize(ents, maxSize)
  }

  /** Advances `committed` to `maxIndex` if that entry is from `term` (see raft.ts maybeCommit). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnErr(maxIndex) === term) {
      this.commitTo(maxIndex)
      return true
    }
    return false
  }

  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return
    if (this.lastIndex() < toCommit) {
      throw new RaftInvariantError(
        `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. ` +
          'Was the raft log corrupted, truncated, or lost?',
      )
    }
    this.committed = toCommit
  }

  appliedTo(i: number): void {
    if (i === 0) return
    if (this.committed < i || i < this.applied) {
      throw new RaftInvariantError(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      )
    }
    this.applied = i
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t)
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i)
  }

  /** Replaces the whole log by `s` (a follower installing the leader's snapshot). */
  restore(s: SnapshotMeta): void {
    this.committed = s.index
    this.unstable.restore(s)
  }

  /** The snapshot to send a lagging follower: the pending one if any, else storage's. */
  snapshot(): SnapshotMeta {
    return this.unstable.snapshot ?? this.storage.snapshot()
  }
}
