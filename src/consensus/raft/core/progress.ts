/**
 * What a leader knows about each follower's log, the flow control on appends in flight, and
 * quorum arithmetic over the current membership. A port of etcd-io/raft's `tracker` package
 * without joint consensus (membership changes one server at a time).
 *
 * @module
 */
import type { ConfState, NodeId } from './types.ts'

/**
 * How the leader replicates to a follower:
 * - `probe`: the follower's log end is unknown; send one append per heartbeat interval and wait
 *   for the answer (a rejection walks `next` back using the follower's hint).
 * - `replicate`: the follower is known to match up to `match`; stream appends optimistically,
 *   up to `maxInflightMsgs` unacknowledged.
 * - `snapshot`: the follower needs entries we compacted; the host is streaming a snapshot and
 *   nothing else is sent until it reports back.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/**
 * A bounded window of appends in flight to one follower: each entry is the last index of an
 * append message and its size. Freed as acknowledgements arrive. This is what lets a leader
 * pipeline appends without flooding a slow follower.
 */
export class Inflights {
  readonly #capacity: number
  readonly #maxBytes: number
  #buf: { index: number; bytes: number }[] = []
  #start = 0
  #count = 0
  #bytes = 0

  constructor(capacity: number, maxBytes = 0) {
    this.#capacity = capacity
    this.#maxBytes = maxBytes
  }

  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights')
    const next = (this.#start + this.#count) % this.#capacity
    this.#buf[next] = { index, bytes }
    this.#count++
    this.#bytes += bytes
  }

  /** Frees every inflight append whose last index is ≤ `to`. */
  freeLE(to: number): void {
    while (this.#count > 0) {
      const e = this.#buf[this.#start]
      if (e.index > to) break
      this.#bytes -= e.bytes
      this.#start = (this.#start + 1) % this.#capacity
      this.#count--
    }
    if (this.#count === 0) this.#start = 0
  }

  full(): boolean {
    return this.#count === this.#capacity || (this.#maxBytes > 0 && this.#bytes >= this.#maxBytes)
  }

  count(): number {
    return this.#count
  }

  reset(): void {
    this.#start = 0
    this.#count = 0
    this.#bytes = 0
  }
}

/** The leader's view of one member. */
export class Progress {
  /** Highest index known to be durable on the member. */
  match = 0
  /** Next index to send. Invariant: `match < next`. */
  next: number
  state: ProgressState = 'probe'
  /** In `snapshot` state: the index of the snapshot being sent. */
  pendingSnapshot = 0
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false
  /**
   * Flow control: in `probe`, a probe is outstanding; in `replicate`, the inflight window was
   * full when we last sent. Cleared by an acknowledgement or a heartbeat response, so that even
   * if every append in flight was lost, the next heartbeat round restarts replication.
   */
  paused = false
  readonly inflights: Inflights
  isLearner: boolean

  constructor(next: number, maxInflight: number, maxInflightBytes: number, isLearner: boolean) {
    this.next = next
    this.inflights = new Inflights(maxInflight, maxInflightBytes)
    this.isLearner = isLearner
  }

  #resetState(state: ProgressState): void {
    this.paused = false
    this.pendingSnapshot = 0
    this.state = state
    this.inflights.reset()
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot (if the transfer worked);
    // start probing just after it rather than from the old match.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.#resetState('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.#resetState('probe')
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.#resetState('replicate')
    this.next = this.match + 1
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState('snapshot')
    this.pendingSnapshot = snapshotIndex
  }

  /** An acknowledgement up to `n` arrived. Returns true if `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.paused = false
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  /**
   * A rejection of the append at `rejected` arrived, with the follower's hint `matchHint`.
   * Returns false if the rejection is stale (an answer to an older probe) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Appends are pipelined: a rejection below match is an old, reordered answer.
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    // In probe state only the answer to the last probe (for next - 1) counts.
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.paused = false
    return true
  }

  /** Records that an append of `entries` entries, `bytes` large, was sent. */
  sentEntries(entries: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next = lastIndex + 1
        this.inflights.add(lastIndex, bytes)
      }
      this.paused = this.inflights.full()
    } else if (this.state === 'probe') {
      // Any append in probe state is a probe: wait for its answer.
      this.paused = true
    }
  }

  /** True when nothing more may be sent right now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
      case 'replicate':
        return this.paused
      case 'snapshot':
        return true
    }
  }
}

/** Outcome of counting votes. */
export type VoteResult = 'pending' | 'lost' | 'won'

/** Progress of every member plus quorum arithmetic over the voters. */
export class ProgressTracker {
  voters = new Set<NodeId>()
  learners = new Set<NodeId>()
  progress = new Map<NodeId, Progress>()
  votes = new Map<NodeId, boolean>()
  readonly maxInflight: number
  readonly maxInflightBytes: number

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight
    this.maxInflightBytes = maxInflightBytes
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() }
  }

  /**
   * Switches to membership `cs`, keeping the progress of members that stay and creating progress
   * (probing from `nextIndex`) for new ones.
   */
  applyConf(cs: ConfState, nextIndex: number): void {
    this.voters = new Set(cs.voters)
    this.learners = new Set(cs.learners)
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id)
    }
    for (const id of [...cs.voters, ...cs.learners]) {
      const pr = this.progress.get(id)
      const learner = this.learners.has(id)
      if (pr) {
        pr.isLearner = learner
      } else {
        const p = new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, learner)
        // A new member counts as active, so adding it cannot make check-quorum depose us
        // before it ever had a chance to answer.
        p.recentActive = true
        this.progress.set(id, p)
      }
    }
  }

  isSingleton(): boolean {
    return this.voters.size === 1
  }

  /**
   * The highest index stored on a majority of voters: sort the voters' `match` descending and
   * take the one at position ⌊n/2⌋. With no voters, 0 (nothing can commit).
   */
  committed(): number {
    const n = this.voters.size
    if (n === 0) return 0
    const matches: number[] = []
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0)
    matches.sort((a, b) => b - a)
    return matches[Math.floor(n / 2)]
  }

  /** True if a majority of voters was recently active (used by check-quorum). */
  quorumActive(self: NodeId): boolean {
    let active = 0
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++
    }
    return active > this.voters.size / 2
  }

  resetVotes(): void {
    this.votes.clear()
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted)
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0
    let rejected = 0
    for (const id of this.voters) {
      const v = this.votes.get(id)
      if (v === true) granted++
      else if (v === false) rejected++
    }
    const q = Math.floor(this.voters.size / 2) + 1
    let result: VoteResult = 'pending'
    if (granted >= q) result = 'won'
    else if (this.voters.size - rejected < q) result = 'lost'
    return { granted, rejected, result }
  }
}
