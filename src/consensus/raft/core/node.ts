/**
 * `RaftNode`: the host-facing API of the core (etcd's RawNode). The host drives it with
 * `tick()`, `step(msg)` and the client calls, and collects the work to do as `Ready` batches.
 *
 * ## The Ready loop
 *
 * ```ts
 * if (node.hasReady()) {
 *   const rd = node.ready()
 *   for (const m of rd.messages) if (canSendBeforePersist(rd, m)) transport.send(m)   // optional
 *   await storage.persist(rd.snapshot, rd.entries, rd.hardState)   // durable when mustSync
 *   for (const m of rd.messages) if (!canSendBeforePersist(rd, m)) transport.send(m)
 *   for (const e of rd.committedEntries) stateMachine.apply(e)
 *   for (const rs of rd.readStates) reads.confirm(rs.ctx, rs.index)
 *   node.advance(rd)
 * }
 * ```
 *
 * Rules (each one protects a Raft guarantee):
 * - **Persist before you answer.** Messages may be sent only once the Ready's snapshot, entries
 *   and hard state are durable — an `appendResp` promises the entries are on disk, a vote
 *   promises the vote is. The one exception, as in etcd, is what a leader sends to replicate its
 *   log (`append`, `heartbeat`, `snapshot`), which may go out while its own write is in progress,
 *   provided the Ready does not also change the term or the vote (see `canSendBeforePersist`).
 *   That is safe because the leader counts its own copy toward a quorum only after `advance`.
 * - **Apply only after persisting**, in order, every entry of `committedEntries`.
 * - **One Ready at a time.** `ready()` may not be called again before `advance(ready)`;
 *   meanwhile `tick`, `step` and the client calls may be used freely (their effects show up in
 *   the next Ready).
 * - **Snapshot messages are streamed, not sent**: see `snapshot_stream.ts`. Report the outcome
 *   with `reportSnapshot(peer, ok)`.
 *
 * Membership changes need no call from the host: the core adopts a membership as soon as its
 * `confChange` entry is in the log. When such an entry shows up in `committedEntries`, decode it
 * with `decodeConfChangeEntry` to update the peer address book (and, for our own removal,
 * to shut down once it is applied).
 *
 * @module
 */
import { encodeConfChangeProposal, validateConfChange } from './conf_change.ts'
import { type RaftNodeConfig, resolveConfig } from './config.ts'
import { InvalidMessageError, RaftInvariantError, ReadyContractError } from './errors.ts'
import { type ProposalResult, Raft } from './raft.ts'
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Role,
  SnapshotMeta,
  SoftState,
} from './types.ts'
import { LOCAL_MESSAGE_TYPES, MESSAGE_TYPES } from './types.ts'
import type { ProgressState } from './progress.ts'

/**
 * One batch of work for the host. Fields are in the order they must be handled.
 */
export interface Ready {
  /** Leader or role changed (volatile; for observers). Absent when unchanged. */
  softState?: SoftState
  /** A snapshot received from the leader: install its staged data and record it. */
  snapshot?: SnapshotMeta
  /** Entries to append durably; they replace the stored log from `entries[0].index` on. */
  entries: Entry[]
  /** The hard state to persist. Absent when unchanged. */
  hardState?: HardState
  /** True if entries or term/vote changed: the writes must be synced before messages go out. */
  mustSync: boolean
  /** Messages to send (after persisting; see `canSendBeforePersist` for the exception). */
  messages: Message[]
  /** Committed entries to apply, in order, after persisting. */
  committedEntries: Entry[]
  /** Confirmed linearizable reads: serve `ctx` once `index` is applied. */
  readStates: ReadState[]
}

/** The cheap part of `Status` (no copies of membership or progress). */
export interface BasicStatus {
  id: NodeId
  term: number
  vote: NodeId | null
  commit: number
  applied: number
  lastIndex: number
  firstIndex: number
  role: Role
  leader: NodeId | null
  leadTransferee: NodeId | null
}

/** A point-in-time view of a node, for status pages, tests and the simulator. */
export interface Status extends BasicStatus {
  confState: ConfState
  /** Leader only: what it knows of each member's log. */
  progress?: Record<NodeId, { match: number; next: number; state: ProgressState }>
}

const LEADER_REPLICATION: ReadonlySet<Message['type']> = new Set([
  'append',
  'heartbeat',
  'snapshot',
])

/**
 * True if `m` may be sent before `rd`'s writes are durable: replication traffic from a leader
 * whose term and vote are already durable. Everything else (votes, vote answers, appendResp,
 * read answers, forwarded requests, timeoutNow) waits for persistence.
 *
 * Why the term/vote condition: a node that becomes leader within this very Ready (a single-voter
 * cluster) and crashed before persisting could restart at the old term, win the same term again
 * and send different entries under it, breaking Log Matching on any follower that got the
 * first ones.
 */
export function canSendBeforePersist(rd: Ready, m: Message): boolean {
  return LEADER_REPLICATION.has(m.type) && termOrVoteChanged.get(rd) === false
}

/** Whether a Ready (from `RaftNode.ready`) changes the durable term or vote. */
const termOrVoteChanged = new WeakMap<Ready, boolean>()

/**
 * The host-facing Raft node. Construct it from storage: a fresh storage bootstraps, a storage
 * with persisted state restarts exactly where the durable state left off.
 *
 * @example
 * ```ts
 * const node = new RaftNode({ id: 'a', storage: MemoryStorage.bootstrap(['a']), rand: seededRandom(1) })
 * node.campaign()
 * while (node.hasReady()) { const rd = node.ready(); persistAndApply(rd); node.advance(rd) }
 * node.propose(new TextEncoder().encode('hello'))
 * ```
 */
export class RaftNode {
  readonly #raft: Raft
  #prevSoft: SoftState
  #prevHard: HardState
  #outstanding: Ready | undefined

  constructor(config: RaftNodeConfig) {
    this.#raft = new Raft(resolveConfig(config))
    this.#prevSoft = this.#raft.softState()
    this.#prevHard = this.#raft.hardState()
  }

  get id(): NodeId {
    return this.#raft.id
  }

  /** Advances logical time by one tick (election and heartbeat timers). */
  tick(): void {
    this.#raft.tick()
  }

  /**
   * Feeds a message received from a peer. Throws `InvalidMessageError` for malformed messages,
   * messages addressed to another node, and host-only message types.
   */
  step(m: Message): void {
    validateMessage(m, this.#raft.id)
    if (LOCAL_MESSAGE_TYPES.includes(m.type)) {
      throw new InvalidMessageError(`${m.type} is a local message and cannot come from the network`)
    }
    this.#raft.step(m)
  }

  /**
   * Proposes `data` for the log. On the leader it is appended at once (returns its index and
   * term); on a follower it is forwarded (returns the leader's id). The client learns of success
   * only by seeing the entry in `committedEntries`, so `data` should carry a request id.
   * Throws `NoLeaderError`, `NotLeaderError` (forwarding disabled) or `ProposalDroppedError`.
   */
  propose(data: Uint8Array): ProposalResult {
    return this.#raft.propose([{ type: 'normal', data }])
  }

  /**
   * Proposes a single-server membership change. The leader validates it against its current
   * membership: `ConfChangeError` for a change that makes no sense, `ConfChangeInProgressError`
   * while a previous change is uncommitted. `addVoter` on a learner promotes it once it holds
   * everything committed (`LearnerBehindError` until then). Prefer adding a learner and promoting
   * it to adding an empty voter, which leaves the cluster unable to commit while it catches up.
   */
  proposeConfChange(cc: ConfChange): ProposalResult {
    validateConfChange(cc)
    return this.#raft.propose([{ type: 'confChange', data: encodeConfChangeProposal(cc) }])
  }

  /**
   * Starts a linearizable read identified by `ctx` (unique per read). The answer arrives in a
   * later Ready's `readStates`; serve the read from local state once `index` is applied. If
   * leadership changes meanwhile the read is silently dropped: time it out and retry.
   * Throws `NoLeaderError` when no leader is known.
   */
  readIndex(ctx: string): void {
    this.#raft.readIndex(ctx)
  }

  /**
   * Asks the leader to hand leadership to voter `to`: it catches `to` up, then tells it to
   * campaign at once. Proposals are refused meanwhile; the attempt is abandoned after an
   * election timeout. Throws `NoLeaderError`, or `TransferError` if `to` is not a voter.
   */
  transferLeadership(to: NodeId): void {
    this.#raft.transferLeadership(to)
  }

  /** Starts an election now (pre-vote first if enabled). A no-op on leaders and non-voters. */
  campaign(): void {
    this.#raft.campaign(false)
  }

  /** The host's snapshot stream to `peer` ended: `ok` if every chunk was delivered. */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.#raft.step({ type: 'snapStatus', from: peer, to: this.id, term: 0, ok })
  }

  /** The transport could not reach `peer`; replication to it falls back to probing. */
  reportUnreachable(peer: NodeId): void {
    this.#raft.step({ type: 'unreachable', from: peer, to: this.id, term: 0 })
  }

  /** True if `ready()` has work to hand out (always false while a Ready is outstanding). */
  hasReady(): boolean {
    if (this.#outstanding) return false
    const r = this.#raft
    const soft = r.softState()
    if (soft.leader !== this.#prevSoft.leader || soft.role !== this.#prevSoft.role) return true
    if (!hardStateEquals(r.hardState(), this.#prevHard)) return true
    const log = r.log
    return log.unstable.snapshot !== undefined || log.unstable.entries.length > 0 ||
      r.msgs.length > 0 || r.readStates.length > 0 || log.hasNextCommittedEntries()
  }

  /** Takes the pending work. The host must handle it and call `advance(rd)` before the next. */
  ready(): Ready {
    if (this.#outstanding) throw new ReadyContractError('ready() called again before advance()')
    const r = this.#raft
    const soft = r.softState()
    const hard = r.hardState()
    const entries = [...r.log.unstable.entries]
    const changed = hard.term !== this.#prevHard.term || hard.vote !== this.#prevHard.vote
    const rd: Ready = {
      entries,
      mustSync: entries.length > 0 || changed,
      messages: r.msgs,
      committedEntries: r.log.nextCommittedEntries(),
      readStates: r.readStates,
    }
    termOrVoteChanged.set(rd, changed)
    if (soft.leader !== this.#prevSoft.leader || soft.role !== this.#prevSoft.role) {
      rd.softState = soft
    }
    if (!hardStateEquals(hard, this.#prevHard)) rd.hardState = hard
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot
    r.msgs = []
    r.readStates = []
    this.#outstanding = rd
    return rd
  }

  /**
   * Acknowledges that `rd` was handled: its writes are durable, its messages sent, its committed
   * entries applied. The leader now counts its own newly durable entries, which may commit more.
   */
  advance(rd: Ready): void {
    if (this.#outstanding !== rd) {
      throw new ReadyContractError('advance() must be given the Ready returned by ready()')
    }
    this.#outstanding = undefined
    const r = this.#raft
    if (rd.softState) this.#prevSoft = rd.softState
    if (rd.hardState) this.#prevHard = rd.hardState
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.index)
      r.log.appliedTo(rd.snapshot.index)
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]
      r.log.stableTo(last.index, last.term)
    }
    if (rd.committedEntries.length > 0) {
      r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index)
      r.onApplied(rd.committedEntries)
    }
    r.onPersisted()
    r.foldConfHistory()
  }

  /**
   * Metadata for a snapshot of the state machine as of `index` (≤ the commit index): the
   * entry's term and the membership at that point. Use it with the storage's snapshot writer.
   * Throws `CompactedError` if the log no longer reaches back to `index` — which happens when a
   * newer snapshot from the leader was accepted meanwhile; skip this snapshot then.
   */
  snapshotMetaAt(index: number): SnapshotMeta {
    const r = this.#raft
    if (index > r.log.committed) {
      throw new RaftInvariantError(`cannot snapshot at ${index}: beyond commit ${r.log.committed}`)
    }
    return { index, term: r.log.term(index), confState: r.confAt(index) }
  }

  /** The term of the entry at `index` in this node's log, or undefined if not held. */
  termAt(index: number): number | undefined {
    const t = this.#raft.log.zeroTermOnErr(index)
    return t === 0 && index !== 0 ? undefined : t
  }

  /** Role, term and log positions, cheap enough to poll after every event. */
  basicStatus(): BasicStatus {
    const r = this.#raft
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      role: r.role,
      leader: r.lead,
      leadTransferee: r.leadTransferee,
    }
  }

  /** `basicStatus()` plus the membership and, on a leader, every member's progress. */
  status(): Status {
    const r = this.#raft
    const s: Status = { ...this.basicStatus(), confState: r.confState() }
    if (r.role === 'leader') {
      s.progress = {}
      for (const [id, pr] of r.prs.progress) {
        s.progress[id] = { match: pr.match, next: pr.next, state: pr.state }
      }
    }
    return s
  }
}

function hardStateEquals(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/** Forwarded requests travel with term 0; every other network message carries a real term. */
const TERMLESS: ReadonlySet<Message['type']> = new Set(['propose', 'readIndex', 'transferLeader'])

/**
 * Checks a message's shape before it reaches the state machine, so a buggy or hostile peer
 * cannot corrupt the log (e.g. non-contiguous entries) or crash the node with a TypeError.
 */
export function validateMessage(m: Message, self: NodeId): void {
  const bad = (what: string): never => {
    throw new InvalidMessageError(`invalid ${String(m?.type)} message: ${what}`)
  }
  if (typeof m !== 'object' || m === null) {
    throw new InvalidMessageError('message must be an object')
  }
  if (!MESSAGE_TYPES.includes(m.type)) bad('unknown type')
  if (m.to !== self) bad(`addressed to ${m.to}, not ${self}`)
  if (typeof m.from !== 'string' || m.from === '') bad('from')
  if (!isIndex(m.term)) bad('term')
  if (TERMLESS.has(m.type) ? m.term !== 0 : m.term === 0 && !LOCAL_MESSAGE_TYPES.includes(m.type)) {
    bad('term')
  }
  switch (m.type) {
    case 'append': {
      if (!isIndex(m.index) || !isIndex(m.logTerm) || !isIndex(m.commit)) {
        bad('index/logTerm/commit')
      }
      if (!Array.isArray(m.entries)) bad('entries')
      let prevTerm = m.logTerm
      for (const [i, e] of m.entries.entries()) {
        validateEntry(e, bad)
        if (e.index !== m.index + 1 + i) bad('entries are not contiguous')
        if (e.term < prevTerm || e.term > m.term) bad('entry terms out of order')
        prevTerm = e.term
      }
      break
    }
    case 'appendResp':
      if (!isIndex(m.index) || !isIndex(m.rejectHint) || !isIndex(m.logTerm)) bad('index')
      if (typeof m.reject !== 'boolean') bad('reject')
      break
    case 'vote':
    case 'preVote':
      if (!isIndex(m.index) || !isIndex(m.logTerm)) bad('index/logTerm')
      if (typeof m.transfer !== 'boolean') bad('transfer')
      break
    case 'voteResp':
    case 'preVoteResp':
      if (typeof m.reject !== 'boolean') bad('reject')
      break
    case 'heartbeat':
      if (!isIndex(m.commit)) bad('commit')
      if (m.ctx !== undefined && typeof m.ctx !== 'string') bad('ctx')
      break
    case 'heartbeatResp':
      if (m.ctx !== undefined && typeof m.ctx !== 'string') bad('ctx')
      break
    case 'snapshot': {
      const s = m.snapshot
      if (typeof s !== 'object' || s === null || !isIndex(s.index) || !isIndex(s.term)) {
        bad('snapshot')
      }
      if (!Array.isArray(s.confState?.voters) || !Array.isArray(s.confState?.learners)) {
        bad('snapshot.confState')
      }
      break
    }
    case 'propose':
      if (!Array.isArray(m.entries) || m.entries.length === 0) bad('entries')
      for (const e of m.entries) {
        if (e?.type !== 'normal' && e?.type !== 'confChange') bad('entry type')
        if (!(e.data instanceof Uint8Array)) bad('entry data')
      }
      break
    case 'readIndex':
      if (typeof m.ctx !== 'string') bad('ctx')
      break
    case 'readIndexResp':
      if (!isIndex(m.index) || typeof m.ctx !== 'string') bad('index/ctx')
      break
    case 'transferLeader':
      if (typeof m.transferee !== 'string' || m.transferee === '') bad('transferee')
      break
  }
}

function validateEntry(e: Entry, bad: (what: string) => never): void {
  if (typeof e !== 'object' || e === null) bad('entry')
  if (!isIndex(e.term) || e.term === 0 || !isIndex(e.index) || e.index === 0) {
    bad('entry term/index')
  }
  if (e.type !== 'normal' && e.type !== 'confChange') bad('entry type')
  if (!(e.data instanceof Uint8Array)) bad('entry data')
}
