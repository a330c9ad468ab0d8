/**
 * The Raft protocol as a deterministic state machine: `tick()` advances time, `step(m)` consumes
 * a message, and every effect is either a change of in-memory state or a message appended to
 * `msgs`. Persistence and application are driven by `RaftNode` (node.ts) through the Ready
 * batches. The structure and most rules follow etcd-io/raft; the differences are noted where they
 * occur (membership from the log's latest entry, the leader counting itself only once durable,
 * snapshot data streamed by the host).
 *
 * @module
 */
import {
  applyConfChange,
  decodeConfChangeEntry,
  decodeConfChangeProposal,
  encodeConfChangeEntry,
} from './conf_change.ts'
import type { ResolvedConfig } from './config.ts'
import {
  CompactedError,
  ConfChangeInProgressError,
  LearnerBehindError,
  NoLeaderError,
  NotLeaderError,
  ProposalDroppedError,
  RaftConfigError,
  RaftInvariantError,
  TransferError,
} from './errors.ts'
import { RaftLog } from './log.ts'
import { Progress, ProgressTracker } from './progress.ts'
import { ReadOnly } from './read_only.ts'
import type {
  AppendMessage,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  Message,
  NodeId,
  ProposalEntry,
  ReadState,
  Role,
  SnapshotMessage,
  SnapshotMeta,
  SoftState,
  VoteMessage,
} from './types.ts'
import { cloneConfState, entriesSize } from './util.ts'

/**
 * What `propose` did: appended at (`index`, `term`) on the leader, or forwarded to the leader
 * (whose answer the host learns only by seeing the entry applied).
 */
export type ProposalResult = { index: number; term: number } | { forwardedTo: NodeId }

/** Distributive Omit, so partial messages keep their discriminated union. */
type Outgoing = Message extends infer M ? M extends Message ? Omit<M, 'from' | 'term'> & {
      term?: number
    }
  : never
  : never

const EMPTY = new Uint8Array()

/** The state machine. Hosts use it through `RaftNode`. */
export class Raft {
  readonly id: NodeId
  readonly #cfg: ResolvedConfig
  term = 0
  vote: NodeId | null = null
  readonly log: RaftLog
  readonly prs: ProgressTracker
  role: Role = 'follower'
  lead: NodeId | null = null
  /** The voter leadership is being handed to; proposals are refused meanwhile. */
  leadTransferee: NodeId | null = null
  /** Messages produced since the last Ready. */
  msgs: Message[] = []
  /** Confirmed reads since the last Ready. */
  readStates: ReadState[] = []
  #readOnly = new ReadOnly()
  /** Reads that arrived before this leader committed an entry of its term. */
  #pendingReads: { from: NodeId; ctx: string }[] = []
  #uncommittedSize = 0
  #electionElapsed = 0
  #heartbeatElapsed = 0
  #randomizedElectionTimeout = 0
  /** Membership as of `#baseIndex` (the snapshot the log starts after). */
  #baseConf: ConfState
  #baseIndex: number
  /** Every confChange entry in the log after `#baseIndex`, ascending. */
  #confLog: { index: number; conf: ConfState }[] = []

  constructor(cfg: ResolvedConfig) {
    this.#cfg = cfg
    this.id = cfg.id
    const storage = cfg.storage
    this.log = new RaftLog(storage, cfg.maxCommittedSizePerReady)
    this.prs = new ProgressTracker(cfg.maxInflightMsgs, cfg.maxInflightBytes)

    const snap = storage.snapshot()
    this.#baseConf = cloneConfState(snap.confState)
    this.#baseIndex = snap.index
    this.#scanConfEntries(Math.max(snap.index + 1, storage.firstIndex()), storage.lastIndex())

    const hs = storage.initialState()
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftInvariantError(
        `commit ${hs.commit} is out of range [${snap.index}, ${this.log.lastIndex()}]`,
      )
    }
    this.term = hs.term
    this.vote = hs.vote
    this.log.committed = Math.max(hs.commit, snap.index, this.log.committed)
    const applied = cfg.applied ?? snap.index
    if (applied > this.log.committed) {
      throw new RaftConfigError(`applied ${applied} is beyond commit ${this.log.committed}`)
    }
    if (applied + 1 < this.log.firstIndex()) {
      throw new RaftConfigError(
        `applied ${applied} is before the first log entry ${this.log.firstIndex()}; ` +
          'restore the snapshot first',
      )
    }
    this.log.applied = applied
    this.#switchConf(this.#currentConf())
    this.#becomeFollower(this.term, null)
  }

  // ---------------------------------------------------------------- membership

  /** Reads the log tail once at start-up to find the latest membership it holds. */
  #scanConfEntries(lo: number, hi: number): void {
    const storage = this.#cfg.storage
    while (lo <= hi) {
      const ents = storage.entries(lo, hi + 1, 1 << 20)
      for (const e of ents) {
        if (e.type === 'confChange') {
          this.#confLog.push({ index: e.index, conf: decodeConfChangeEntry(e.data).conf })
        }
      }
      lo += ents.length
    }
  }

  #currentConf(): ConfState {
    return this.#confLog.at(-1)?.conf ?? this.#baseConf
  }

  /** Index of the entry that produced the current membership. */
  #latestConfIndex(): number {
    return this.#confLog.at(-1)?.index ?? this.#baseIndex
  }

  /** The membership as of `index` (for snapshot metadata). */
  confAt(index: number): ConfState {
    for (let i = this.#confLog.length - 1; i >= 0; i--) {
      if (this.#confLog[i].index <= index) return cloneConfState(this.#confLog[i].conf)
    }
    if (index >= this.#baseIndex) return cloneConfState(this.#baseConf)
    throw new CompactedError(`membership at ${index} is older than the snapshot ${this.#baseIndex}`)
  }

  /** Forgets membership history that the storage's snapshot now covers. */
  foldConfHistory(): void {
    const snap = this.#cfg.storage.snapshot()
    if (snap.index <= this.#baseIndex || snap.index > this.log.committed) return
    this.#baseConf = cloneConfState(snap.confState)
    this.#baseIndex = snap.index
    this.#confLog = this.#confLog.filter((c) => c.index > snap.index)
  }

  /**
   * Keeps the membership equal to that of the latest confChange entry in the log. Called after
   * every append; a truncation removes the membership the overwritten entries introduced.
   */
  #onAppended(ents: readonly Entry[]): void {
    if (ents.length === 0) return
    const first = ents[0].index
    let changed = false
    while (this.#confLog.length > 0 && this.#confLog[this.#confLog.length - 1].index >= first) {
      this.#confLog.pop()
      changed = true
    }
    for (const e of ents) {
      if (e.type === 'confChange') {
        this.#confLog.push({ index: e.index, conf: decodeConfChangeEntry(e.data).conf })
        changed = true
      }
    }
    if (changed) this.#switchConf(this.#currentConf())
  }

  #switchConf(cs: ConfState): void {
    this.prs.applyConf(cs, this.log.lastIndex() + 1)
    this.#cfg.logger.debug(
      `${this.id} membership voters=[${cs.voters}] learners=[${cs.learners}]`,
    )
    if (
      this.role === 'leader' && this.leadTransferee && !this.prs.voters.has(this.leadTransferee)
    ) {
      this.#abortLeaderTransfer()
    }
  }

  /** Only voters may campaign. A removed node or a learner never disrupts elections. */
  promotable(): boolean {
    return this.prs.voters.has(this.id)
  }

  // ---------------------------------------------------------------- state transitions

  #resetRandomizedElectionTimeout(): void {
    const e = this.#cfg.electionTick
    this.#randomizedElectionTimeout = e + Math.floor(this.#cfg.rand() * e)
  }

  /** The last index the host has made durable (0 while a received snapshot is unpersisted). */
  stableLastIndex(): number {
    return this.log.unstable.snapshot ? 0 : this.log.unstable.offset - 1
  }

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = null
      // Acknowledgements still queued from the old term may cover entries the new term's leader
      // is about to overwrite; sent after that, they would vouch for entries we no longer hold.
      // Dropping them is always safe (the network may lose them anyway).
      this.msgs = this.msgs.filter((m) => m.type !== 'appendResp')
    }
    this.lead = null
    this.#electionElapsed = 0
    this.#heartbeatElapsed = 0
    this.#resetRandomizedElectionTimeout()
    this.#abortLeaderTransfer()
    this.prs.resetVotes()
    const next = this.log.lastIndex() + 1
    for (const [id, pr] of this.prs.progress) {
      const fresh = new Progress(
        next,
        this.prs.maxInflight,
        this.prs.maxInflightBytes,
        pr.isLearner,
      )
      if (id === this.id) fresh.match = this.stableLastIndex()
      this.prs.progress.set(id, fresh)
    }
    this.#uncommittedSize = 0
    this.#readOnly = new ReadOnly()
    this.#pendingReads = []
  }

  #becomeFollower(term: number, lead: NodeId | null): void {
    this.#reset(term)
    this.lead = lead
    this.role = 'follower'
    this.#cfg.logger.debug(`${this.id} became follower at term ${this.term}`)
  }

  #becomePreCandidate(): void {
    // A pre-candidate changes neither its term nor its vote: losing a pre-vote leaves no trace.
    this.prs.resetVotes()
    this.lead = null
    this.role = 'preCandidate'
    this.#cfg.logger.debug(`${this.id} became pre-candidate at term ${this.term}`)
  }

  #becomeCandidate(): void {
    this.#reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
    this.#cfg.logger.debug(`${this.id} became candidate at term ${this.term}`)
  }

  #becomeLeader(): void {
    this.#reset(this.term)
    this.lead = this.id
    this.role = 'leader'
    this.prs.progress.get(this.id)?.becomeReplicate()
    // An empty entry of the new term: entries of earlier terms only commit once an entry of
    // the current term does (§5.4.2), and ReadIndex needs that commit too. It also lets the
    // followers learn the new leader's log end quickly.
    this.#appendEntries([{ type: 'normal', data: EMPTY }])
    this.#cfg.logger.debug(`${this.id} became leader at term ${this.term}`)
  }

  // ---------------------------------------------------------------- time

  tick(): void {
    if (this.role === 'leader') this.#tickHeartbeat()
    else this.#tickElection()
  }

  #tickElection(): void {
    this.#electionElapsed++
    if (this.promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0
      this.campaign(false)
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++
    this.#electionElapsed++
    if (this.#electionElapsed >= this.#cfg.electionTick) {
      this.#electionElapsed = 0
      if (this.#cfg.checkQuorum) {
        // Without a quorum we may already be deposed; stepping down stops us from serving
        // proposals that can never commit, and lets the host redirect clients.
        if (!this.prs.quorumActive(this.id)) {
          this.#cfg.logger.warn(`${this.id} stepped down at term ${this.term}: quorum inactive`)
          this.#becomeFollower(this.term, null)
          return
        }
        for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.recentActive = false
      }
      // A transfer that did not complete within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.#abortLeaderTransfer()
    }
    if (this.#heartbeatElapsed >= this.#cfg.heartbeatTick) {
      this.#heartbeatElapsed = 0
      this.#bcastHeartbeat(this.#readOnly.lastPendingCtx())
    }
  }

  // ---------------------------------------------------------------- elections

  /** Starts an election now (after a pre-vote unless `transfer`). No-op for leaders. */
  campaign(transfer: boolean): void {
    if (this.role === 'leader') return
    if (!this.promotable()) {
      this.#cfg.logger.debug(`${this.id} is not a voter and cannot campaign`)
      return
    }
    this.#campaign(this.#cfg.preVote && !transfer ? 'preElection' : 'election', transfer)
  }

  #campaign(kind: 'preElection' | 'election', transfer: boolean): void {
    let type: 'preVote' | 'vote'
    let term: number
    if (kind === 'preElection') {
      this.#becomePreCandidate()
      type = 'preVote'
      // Ask for the term we would use, without moving to it yet.
      term = this.term + 1
    } else {
      this.#becomeCandidate()
      type = 'vote'
      term = this.term
    }
    this.prs.recordVote(this.id, true)
    if (this.prs.tallyVotes().result === 'won') {
      // A single voter wins on its own vote.
      if (kind === 'preElection') {
        this.#campaign('election', transfer)
      } else {
        this.#becomeLeader()
        this.#bcastAppend()
      }
      return
    }
    const index = this.log.lastIndex()
    const logTerm = this.log.lastTerm()
    for (const id of this.prs.voters) {
      if (id === this.id) continue
      this.#send({ type, to: id, term, index, logTerm, transfer })
    }
  }

  #handleVoteRequest(m: VoteMessage): void {
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp'
    // We may vote for whom we voted for already (a retransmission), or anybody if we have
    // neither voted nor seen a leader this term; a pre-vote for a future term is always
    // considered since it commits us to nothing.
    const canVote = this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      (m.type === 'preVote' && m.term > this.term)
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted (pre-)vote carries the candidate's term, not ours: a pre-candidate counts
      // only answers for the term it asked about.
      this.#send({ type: respType, to: m.from, term: m.term, reject: false })
      if (m.type === 'vote') {
        this.#electionElapsed = 0
        this.vote = m.from
      }
    } else {
      this.#send({ type: respType, to: m.from, term: this.term, reject: true })
    }
  }

  // ---------------------------------------------------------------- messages in

  /** Consumes one message (already validated by `RaftNode.step`). */
  step(m: Message): void {
    if (m.term === 0) {
      // Node-local or forwarded requests (propose, readIndex, transferLeader, reports).
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader lease (with check-quorum): while we hear from a leader we ignore candidates,
        // so a node that was cut off and bumped its term cannot depose a healthy leader.
        // A transfer-triggered election is exempt: the leader asked for it.
        const inLease = this.#cfg.checkQuorum && this.lead !== null &&
          this.#electionElapsed < this.#cfg.electionTick
        if (!m.transfer && inLease) {
          this.#cfg.logger.debug(
            `${this.id} ignored ${m.type} from ${m.from} at term ${m.term}: lease not expired`,
          )
          return
        }
      }
      if (m.type === 'preVote') {
        // Never change our term in answer to a pre-vote.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote names the future term; we move there only if we win.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.#becomeFollower(m.term, m.from)
      } else {
        this.#becomeFollower(m.term, null)
      }
    } else if (m.term < this.term) {
      if (
        (this.#cfg.checkQuorum || this.#cfg.preVote) &&
        (m.type === 'heartbeat' || m.type === 'append')
      ) {
        // A stale leader (say, back from a partition) would never learn the new term: with
        // pre-vote nobody sends it a higher-term vote request. Tell it, so it steps down.
        this.#send({
          type: 'appendResp',
          to: m.from,
          index: 0,
          reject: false,
          rejectHint: 0,
          logTerm: 0,
        })
      } else if (m.type === 'preVote') {
        // Tell the pre-candidate our term so it stops asking and catches up.
        this.#send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true })
      }
      return
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.#handleVoteRequest(m)
      return
    }
    switch (this.role) {
      case 'leader':
        this.#stepLeader(m)
        break
      case 'candidate':
      case 'preCandidate':
        this.#stepCandidate(m)
        break
      case 'follower':
        this.#stepFollower(m)
        break
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case 'propose':
        try {
          this.#proposeAsLeader(m.entries)
        } catch (err) {
          this.#cfg.logger.debug(`${this.id} dropped proposal forwarded by ${m.from}: ${err}`)
        }
        return
      case 'readIndex':
        this.#handleReadIndex(m.from, m.ctx)
        return
      case 'transferLeader':
        this.#handleTransfer(m.transferee)
        return
    }
    const pr = this.prs.progress.get(m.from)
    if (!pr) return // an answer from a node that is no longer a member
    switch (m.type) {
      case 'appendResp': {
        pr.recentActive = true
        if (m.reject) {
          // Fast back-tracking: jump to the follower's hint, and further back over our own
          // entries whose term is above the follower's term at the hint.
          let nextProbe = m.rejectHint
          if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0]
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === 'replicate') pr.becomeProbe()
            this.#sendAppend(m.from)
          }
          return
        }
        if (m.index > this.log.lastIndex()) {
          // Cannot happen in a correct cluster (a follower never holds more of our term than we
          // sent); refuse to let it push `next` past our log.
          this.#cfg.logger.warn(
            `${this.id} ignored ack of ${m.index} from ${m.from} beyond our log`,
          )
          return
        }
        const oldPaused = pr.isPaused()
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
          if (pr.state === 'probe') {
            pr.becomeReplicate()
          } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
            // The follower holds enough to be caught up from the log again.
            pr.becomeProbe()
            pr.becomeReplicate()
          } else if (pr.state === 'replicate') {
            pr.inflights.freeLE(m.index)
          }
          if (this.#commitAndBroadcast()) {
            if (this.role !== 'leader') return
          } else if (oldPaused) {
            this.#sendAppend(m.from)
          }
          // Freed flow-control room may allow several appends at once.
          while (this.#maybeSendAppend(m.from, false)) { /* keep sending */ }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
            this.#send({ type: 'timeoutNow', to: m.from })
          }
        }
        return
      }
      case 'heartbeatResp': {
        pr.recentActive = true
        pr.paused = false
        if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.#sendAppend(m.from)
        if (m.ctx === undefined || !this.prs.voters.has(m.from)) return
        const acks = this.#readOnly.recvAck(m.from, m.ctx)
        if (!acks || !this.#isQuorum(acks)) return
        for (const rs of this.#readOnly.advance(m.ctx)) this.#respondRead(rs.from, rs.ctx, rs.index)
        return
      }
      case 'snapStatus': {
        if (pr.state !== 'snapshot') return
        if (!m.ok) pr.pendingSnapshot = 0
        pr.becomeProbe()
        // Whatever happened, wait for the next heartbeat response before probing again.
        pr.paused = true
        return
      }
      case 'unreachable':
        if (pr.state === 'replicate') pr.becomeProbe()
        return
      default:
        return
    }
  }

  #stepCandidate(m: Message): void {
    const myResp = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp'
    switch (m.type) {
      case 'append':
        this.#becomeFollower(m.term, m.from)
        this.#handleAppend(m)
        return
      case 'heartbeat':
        this.#becomeFollower(m.term, m.from)
        this.#handleHeartbeat(m)
        return
      case 'snapshot':
        this.#becomeFollower(m.term, m.from)
        this.#handleSnapshot(m)
        return
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== myResp) return
        this.prs.recordVote(m.from, !m.reject)
        const { result } = this.prs.tallyVotes()
        if (result === 'won') {
          if (this.role === 'preCandidate') {
            this.#campaign('election', false)
          } else {
            this.#becomeLeader()
            this.#bcastAppend()
          }
        } else if (result === 'lost') {
          // A pre-candidate rejected by a quorum stays at its term; a candidate keeps its vote.
          this.#becomeFollower(this.term, null)
        }
        return
      }
      default:
        // Proposals, reads and transfers forwarded to a non-leader are dropped: re-forwarding
        // could bounce between nodes with stale views of the leader.
        return
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleAppend(m)
        return
      case 'heartbeat':
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleHeartbeat(m)
        return
      case 'snapshot':
        this.#electionElapsed = 0
        this.lead = m.from
        this.#handleSnapshot(m)
        return
      case 'timeoutNow':
        // The leader chose us: campaign now, without pre-vote (voters honour `transfer`).
        this.campaign(true)
        return
      case 'readIndexResp':
        this.readStates.push({ index: m.index, ctx: m.ctx })
        return
      default:
        return
    }
  }

  #handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      this.#send({
        type: 'appendResp',
        to: m.from,
        index: this.log.committed,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      })
      return
    }
    const res = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (res) {
      this.#onAppended(res.appended)
      this.#send({
        type: 'appendResp',
        to: m.from,
        index: res.lastNew,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      })
      return
    }
    // The consistency check failed. Hint the leader with the last entry that could still
    // match: at most our last index, and with a term no higher than the one it probed.
    const hintIndex = Math.min(m.index, this.log.lastIndex())
    const [rejectHint, logTerm] = this.log.findConflictByTerm(hintIndex, m.logTerm)
    this.#send({
      type: 'appendResp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint,
      logTerm,
    })
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit)
    this.#send({ type: 'heartbeatResp', to: m.from, ctx: m.ctx })
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const index = this.#restore(m.snapshot) ? this.log.lastIndex() : this.log.committed
    this.#send({ type: 'appendResp', to: m.from, index, reject: false, rejectHint: 0, logTerm: 0 })
  }

  /** Installs a snapshot from the leader. False if it brings nothing new. */
  #restore(s: SnapshotMeta): boolean {
    if (s.index <= this.log.committed) return false
    if (this.role !== 'follower') {
      // Defence in depth: only followers install snapshots.
      this.#becomeFollower(this.term + 1, null)
      return false
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // We hold the snapshot's last entry, hence everything before it: just commit.
      this.log.commitTo(s.index)
      return false
    }
    this.log.restore(s)
    this.#baseConf = cloneConfState(s.confState)
    this.#baseIndex = s.index
    this.#confLog = []
    this.#switchConf(this.#baseConf)
    this.#cfg.logger.debug(`${this.id} restored snapshot at ${s.index} (term ${s.term})`)
    return true
  }

  // ---------------------------------------------------------------- proposals

  /** A local proposal: appended if we lead, forwarded if we follow, refused otherwise. */
  propose(entries: ProposalEntry[]): ProposalResult {
    if (this.role === 'leader') return this.#proposeAsLeader(entries)
    if (this.role !== 'follower' || this.lead === null) throw new NoLeaderError()
    if (this.#cfg.disableProposalForwarding) throw new NotLeaderError(this.lead)
    this.#send({ type: 'propose', to: this.lead, term: 0, entries })
    return { forwardedTo: this.lead }
  }

  #proposeAsLeader(entries: ProposalEntry[]): { index: number; term: number } {
    if (!this.prs.voters.has(this.id)) {
      throw new ProposalDroppedError('the leader is being removed from the cluster')
    }
    if (this.leadTransferee !== null) {
      throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} in progress`)
    }
    const prepared: ProposalEntry[] = []
    let conf = this.#currentConf()
    let pending = this.#latestConfIndex() > this.log.committed
    for (const e of entries) {
      if (e.type !== 'confChange') {
        prepared.push(e)
        continue
      }
      const cc = decodeConfChangeProposal(e.data)
      if (pending) {
        throw new ConfChangeInProgressError(
          'a membership change is not yet committed; one change at a time',
        )
      }
      if (!this.#committedInTerm()) {
        throw new ConfChangeInProgressError(
          'the new leader has not committed an entry of its term yet',
        )
      }
      if (cc.type === 'addVoter' && this.prs.learners.has(cc.id)) {
        const match = this.prs.progress.get(cc.id)?.match ?? 0
        if (match < this.log.committed) {
          throw new LearnerBehindError(
            `learner ${cc.id} has not caught up (match ${match} < commit ${this.log.committed})`,
          )
        }
      }
      conf = applyConfChange(conf, cc)
      prepared.push({ type: 'confChange', data: encodeConfChangeEntry({ change: cc, conf }) })
      pending = true
    }
    const index = this.#appendEntries(prepared)
    // A membership change can move the quorum (removing a lagging voter may commit at once).
    if (!this.#commitAndBroadcast()) this.#bcastAppend()
    return { index, term: this.term }
  }

  /** Leader: appends with our term. The leader counts itself only once the host persisted them. */
  #appendEntries(ents: ProposalEntry[]): number {
    const li = this.log.lastIndex()
    const entries: Entry[] = ents.map((e, i) => ({
      term: this.term,
      index: li + 1 + i,
      type: e.type,
      data: e.data,
    }))
    const size = payloadSize(entries)
    const max = this.#cfg.maxUncommittedEntriesSize
    // Always admit one proposal when nothing is in flight, however large, so progress is made.
    if (max > 0 && this.#uncommittedSize > 0 && size > 0 && this.#uncommittedSize + size > max) {
      throw new ProposalDroppedError('too many uncommitted entries; retry later')
    }
    this.#uncommittedSize += size
    this.log.append(entries)
    this.#onAppended(entries)
    return li + 1
  }

  /** The host applied `ents`: they no longer count as uncommitted. */
  onApplied(ents: readonly Entry[]): void {
    this.#uncommittedSize = Math.max(0, this.#uncommittedSize - payloadSize(ents))
  }

  /**
   * The host made the log durable up to `stableLastIndex()`. Only now does the leader count its
   * own copy towards a quorum: counting it earlier would let an entry commit with fewer durable
   * copies than a quorum, and a leader crash could then lose a committed entry.
   */
  onPersisted(): void {
    if (this.role !== 'leader') return
    const pr = this.prs.progress.get(this.id)
    if (pr && pr.maybeUpdate(this.stableLastIndex())) this.#commitAndBroadcast()
  }

  #committedInTerm(): boolean {
    return this.log.zeroTermOnErr(this.log.committed) === this.term
  }

  #isQuorum(acks: Set<NodeId>): boolean {
    let n = 0
    for (const id of this.prs.voters) if (acks.has(id)) n++
    return n > this.prs.voters.size / 2
  }

  /**
   * Leader: advances the commit index to the quorum's match if that entry is of our term
   * (§5.4.2 — entries of earlier terms commit only indirectly), tells the followers, releases
   * reads waiting for a commit in our term, and steps down if our own removal just committed.
   */
  #commitAndBroadcast(): boolean {
    if (!this.log.maybeCommit(this.prs.committed(), this.term)) return false
    this.#bcastAppend()
    if (this.#pendingReads.length > 0 && this.#committedInTerm()) {
      const pending = this.#pendingReads
      this.#pendingReads = []
      for (const r of pending) this.#handleReadIndex(r.from, r.ctx)
    }
    if (!this.prs.voters.has(this.id) && this.#latestConfIndex() <= this.log.committed) {
      this.#stepDownRemoved()
    }
    return true
  }

  /**
   * Our removal is committed, so a quorum of the remaining voters holds it and can elect a
   * leader without us. Hand over at once to a fully caught-up voter instead of letting the
   * cluster wait an election timeout.
   */
  #stepDownRemoved(): void {
    const last = this.log.lastIndex()
    for (const id of this.prs.voters) {
      if (this.prs.progress.get(id)?.match === last) {
        this.#send({ type: 'timeoutNow', to: id })
        break
      }
    }
    this.#cfg.logger.debug(`${this.id} stepped down: removed from the cluster`)
    this.#becomeFollower(this.term, null)
  }

  // ---------------------------------------------------------------- replication out

  #send(m: Outgoing): void {
    this.msgs.push({ ...m, from: this.id, term: m.term ?? this.term } as Message)
  }

  #sendAppend(to: NodeId): void {
    this.#maybeSendAppend(to, true)
  }

  /**
   * Sends `to` the entries it lacks, as flow control allows; or, if they were compacted away,
   * asks the host to stream a snapshot. Returns whether a message was sent.
   */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to)
    if (!pr || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const last = this.log.lastIndex()
    let prevTerm: number
    let entries: Entry[]
    try {
      prevTerm = this.log.term(prevIndex)
      const hi = Math.min(last + 1, pr.next + this.#cfg.maxEntriesPerMsg)
      // With a full window, send an empty append: if everything in flight was lost, its
      // rejection (or acknowledgement) is what un-sticks replication.
      const full = pr.state === 'replicate' && pr.inflights.full()
      entries = pr.next <= last && !full ? this.log.slice(pr.next, hi, this.#cfg.maxSizePerMsg) : []
    } catch (err) {
      if (err instanceof CompactedError) return this.#maybeSendSnapshot(to, pr)
      throw err
    }
    if (entries.length === 0 && !sendIfEmpty) return false
    this.#send({
      type: 'append',
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    })
    pr.sentEntries(entries.length, prevIndex + entries.length, entriesSize(entries))
    return true
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // An unresponsive follower would make the host stream hundreds of MB into the void.
    if (!pr.recentActive) return false
    const snapshot = this.log.snapshot()
    if (snapshot.index === 0) throw new RaftInvariantError('need a snapshot but none is available')
    pr.becomeSnapshot(snapshot.index)
    this.#cfg.logger.debug(`${this.id} asks the host to send snapshot ${snapshot.index} to ${to}`)
    this.#send({ type: 'snapshot', to, snapshot })
    return true
  }

  #bcastAppend(): void {
    for (const id of this.prs.progress.keys()) if (id !== this.id) this.#sendAppend(id)
  }

  #bcastHeartbeat(ctx: string | undefined): void {
    for (const [id, pr] of this.prs.progress) {
      if (id === this.id) continue
      // Never more than the follower is known to hold, so it can always adopt it.
      const commit = Math.min(pr.match, this.log.committed)
      this.#send({ type: 'heartbeat', to: id, commit, ctx })
    }
  }

  // ---------------------------------------------------------------- reads

  /** A local linearizable read request. */
  readIndex(ctx: string): void {
    if (this.role === 'leader') {
      this.#handleReadIndex(this.id, ctx)
      return
    }
    if (this.role !== 'follower' || this.lead === null) throw new NoLeaderError()
    this.#send({ type: 'readIndex', to: this.lead, term: 0, ctx })
  }

  #handleReadIndex(from: NodeId, ctx: string): void {
    // Until an entry of our term commits, our commit index may lag behind entries that earlier
    // leaders committed; a read at it could miss acknowledged writes. Queue the read.
    if (!this.#committedInTerm()) {
      this.#pendingReads.push({ from, ctx })
      return
    }
    const index = this.log.committed
    if (this.prs.voters.size === 1 && this.prs.voters.has(this.id)) {
      // Nobody else could have been elected: no confirmation round needed.
      this.#respondRead(from, ctx, index)
      return
    }
    this.#readOnly.addRequest(index, from, ctx)
    if (this.prs.voters.has(this.id)) this.#readOnly.recvAck(this.id, ctx)
    this.#bcastHeartbeat(ctx)
  }

  #respondRead(from: NodeId, ctx: string, index: number): void {
    if (from === this.id) this.readStates.push({ index, ctx })
    else this.#send({ type: 'readIndexResp', to: from, index, ctx })
  }

  // ---------------------------------------------------------------- leadership transfer

  /** A local request to hand leadership to `to`. */
  transferLeadership(to: NodeId): void {
    if (this.role === 'leader') {
      if (!this.prs.voters.has(to)) throw new TransferError(`${to} is not a voter`)
      this.#handleTransfer(to)
      return
    }
    if (this.role !== 'follower' || this.lead === null) throw new NoLeaderError()
    this.#send({ type: 'transferLeader', to: this.lead, term: 0, transferee: to })
  }

  #handleTransfer(transferee: NodeId): void {
    const pr = this.prs.progress.get(transferee)
    if (!pr || pr.isLearner) return
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === transferee) return
      this.#abortLeaderTransfer()
    }
    if (transferee === this.id) return
    // The transfer must finish within an election timeout (checked in tickHeartbeat).
    this.#electionElapsed = 0
    this.leadTransferee = transferee
    if (pr.match === this.log.lastIndex()) this.#send({ type: 'timeoutNow', to: transferee })
    else this.#sendAppend(transferee)
  }

  #abortLeaderTransfer(): void {
    this.leadTransferee = null
  }

  // ---------------------------------------------------------------- views

  softState(): SoftState {
    return { leader: this.lead, role: this.role }
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed }
  }

  confState(): ConfState {
    return cloneConfState(this.#currentConf())
  }
}

function payloadSize(ents: readonly { data: Uint8Array }[]): number {
  let n = 0
  for (const e of ents) n += e.data.byteLength
  return n
}
