/**
 * The cluster's Consensus on Raft: the host loop that drives a `RaftNode` over Deno KV storage
 * (kv_storage.ts), the pinset state machine (fsm.ts) and a `RaftTransport`. A single-peer cluster
 * runs through the same path with one voter, which elects itself at start.
 *
 * ## The loop
 *
 * Work is never tied to the timer: a proposal, an inbound message or a tick schedules the loop
 * on a microtask, and the loop runs Ready after Ready until the node has nothing left. For each
 * Ready it sends the leader's replication traffic at once, then makes the snapshot, entries, hard
 * state *and the application of the committed entries* durable — in one KV commit when they fit
 * (the state lives in the same database) — then sends the rest, then resolves waiters and runs
 * the apply hooks, then advances. Operations that arrive while a commit is in flight wait for the
 * next Ready and go into one log entry together (up to `maxOpsPerEntry`): this group commit is
 * what turns 64 concurrent pins into one fsync instead of 64.
 *
 * ## Proposals
 *
 * `logPin` / `logUnpin` resolve once the entry holding the operation is applied here, so an
 * acknowledged pin is durable on this peer and committed in the cluster. Entries carry
 * (peer, seq); on a follower they are forwarded by the core to the leader. While no leader is
 * known, operations wait up to `wait_for_leader_timeout`, then fail with `NoLeaderError`. An
 * entry that is not applied within `network_timeout`, or that a new leader overwrote, is proposed
 * again (`commit_retries` times, `commit_retry_delay` apart) — the only case where an operation
 * can be applied twice, which pin and unpin tolerate.
 *
 * ## Timing
 *
 * One tick is a tenth of the shorter of `heartbeat_timeout` and `election_timeout` (100 ms by
 * default): the leader heartbeats every tick, and a follower campaigns after `[e, 2e)` ticks
 * without a leader, `e` = the longer timeout in ticks. The core itself stays time-free; the host
 * takes the ticker, its timers and `now()` from an injected `Clock`, so tests drive time.
 *
 * @example
 * ```ts
 * const consensus = raftConsensus(raftSection.defaults(), { peerId, kv, state, hooks })
 * await consensus.ready()
 * await consensus.logPin(pin)       // resolves once applied (durable) here
 * await consensus.stop()
 * ```
 *
 * @module
 */
import type { ApplyHooks, Consensus, LogOp, StateReader } from '../../components.ts'
import { ConsensusError, errorMessage, ShutdownError } from '../../errors.ts'
import type { PinState } from '../../state/kv_state.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import {
  type BasicStatus,
  canSendBeforePersist,
  CompactedError,
  type ConfChange,
  ConfChangeInProgressError,
  type ConfState,
  type Entry,
  type HardState,
  InvalidMessageError,
  LearnerBehindError,
  type Message,
  NoLeaderError,
  ProposalDroppedError,
  RaftInvariantError,
  RaftNode,
  type Ready,
  type SnapshotChunk,
  type SnapshotMessage,
  SnapshotReceiver,
  type SoftState,
} from './core/mod.ts'
import { encodeBatch, type EncodedOp, encodedOpSize, encodeOp, opPin } from './entry_codec.ts'
import { type AppliedBatch, PinFsm, type StagedApply } from './fsm.ts'
import { MAX_VALUE_BYTES } from './kv_batch.ts'
import { KvRaftStorage, type SnapshotData } from './kv_storage.ts'
import { SnapshotVerifier, TornSnapshotError } from './snapshot_format.ts'
import { nullTransport, type RaftTransport } from './transport.ts'

/** Knobs beyond the config section, for tests and benches. */
export interface RaftTuning {
  /** Most operations in one log entry (default 256; 1 = one entry per operation). */
  maxOpsPerEntry?: number
  /** Most bytes of operations in one log entry (default 256 KiB). */
  maxEntryBytes?: number
  /** Compact at once when the log holds more bytes than this (default 64 MiB). */
  maxLogBytes?: number
  /** Keep at most this many bytes of trailing entries when compacting (default 16 MiB). */
  maxTrailingBytes?: number
}

/** What `raftConsensus` needs. */
export interface RaftConsensusDeps {
  /** This peer's ID: its Raft node ID. */
  peerId: string
  /** The KV database of `state` (or its path, then opened and closed here). */
  kv: Deno.Kv | string
  /** The pinset; must live in `kv`. */
  state: PinState
  hooks: ApplyHooks
  /** How to reach other peers; none for a single peer. */
  transport?: RaftTransport
  /** Voters of a brand-new cluster (default: this peer alone). Ignored once state exists. */
  initPeers?: string[]
  /** The ticker, timeouts and `now()` (default: the system clock). */
  clock?: Clock
  rand?: () => number
  log?: Logger
  tuning?: RaftTuning
}

/** Raft's view, for status pages and tests. */
export interface RaftStatus extends BasicStatus {
  voters: string[]
  learners: string[]
  snapshotIndex: number
  logBytes: number
}

/** The Raft consensus: Consensus plus the Raft-specific calls. */
export interface RaftConsensus extends Consensus {
  readonly id: string
  /** Resolves once storage is open and the node runs; rejects if the stored state is unusable. */
  readonly opened: Promise<void>
  /**
   * A linearizable read: waits until this peer has applied everything committed when the call
   * began (confirmed by the leader with a quorum), then returns the state.
   */
  consistentState(signal?: AbortSignal): Promise<StateReader>
  /** The applied index a linearizable read may be served at (see `consistentState`). */
  readBarrier(signal?: AbortSignal): Promise<number>
  status(): RaftStatus
  /** Hands leadership to voter `to`; resolves when `to` leads. */
  transferLeadership(to: string, signal?: AbortSignal): Promise<void>
  /** Resolves once this peer applied `index`. */
  waitApplied(index: number, signal?: AbortSignal): Promise<void>
  /** Records a compaction point at the applied index and trims the log now (tests, operators). */
  compactNow(): Promise<void>
}

interface Request {
  op: EncodedOp
  resolve: () => void
  reject: (err: unknown) => void
  retriesLeft: number
  leaderDeadline: number
  done: boolean
}

interface InFlight {
  seq: number
  reqs: Request[]
  deadline: number
  /** Where the leader appended it (undefined when forwarded). */
  index?: number
}

interface PendingRead {
  resolve: (index: number) => void
  reject: (err: unknown) => void
  deadline: number
  index?: number
}

interface Waiter {
  check: () => boolean
  resolve: () => void
}

const DEFAULT_TUNING: Required<RaftTuning> = {
  maxOpsPerEntry: 256,
  maxEntryBytes: 256 * 1024,
  maxLogBytes: 64 * 1024 * 1024,
  maxTrailingBytes: 16 * 1024 * 1024,
}

/** Ticks and tick length derived from the config section (see the module comment). */
export function raftTiming(config: RaftConfig): {
  tickMs: number
  electionTick: number
  heartbeatTick: number
} {
  const hb = config.heartbeat_timeout
  const et = config.election_timeout
  const tickMs = Math.max(1, Math.round(Math.min(hb, et) / 10))
  const electionTick = Math.max(3, Math.round(Math.max(hb, et) / tickMs))
  const heartbeatTick = Math.max(1, Math.min(electionTick - 1, Math.round(hb / 10 / tickMs)))
  return { tickMs, electionTick, heartbeatTick }
}

/**
 * Builds the Raft consensus of one peer. Opening storage is asynchronous: every method waits for
 * it, and `opened` reports whether it worked.
 */
export function raftConsensus(config: RaftConfig, deps: RaftConsensusDeps): RaftConsensus {
  return new RaftHost(config, deps).api()
}

class RaftHost {
  readonly #cfg: RaftConfig
  readonly #deps: RaftConsensusDeps
  readonly #self: string
  readonly #log: Logger
  readonly #clock: Clock
  readonly #tuning: Required<RaftTuning>
  readonly #transport: RaftTransport
  readonly #timing: ReturnType<typeof raftTiming>
  readonly #stopAc = new AbortController()
  readonly opened: Promise<void>

  #kv!: Deno.Kv
  #ownsKv = false
  #storage!: KvRaftStorage
  #fsm!: PinFsm
  #node!: RaftNode
  #unlisten: () => void = () => {}
  #stopTicker: CancelTimer = () => {}
  #stopped = false
  #stopping: Promise<void> | undefined
  #failed: Error | undefined

  // loop
  #loopScheduled = false
  #loopRunning: Promise<void> | undefined
  #again = false
  // proposals
  #queue: Request[] = []
  #inflight = new Map<number, InFlight>()
  #localIndex = new Map<number, number>()
  #seq = 0
  #retryTimers = new Set<CancelTimer>()
  // reads
  #reads = new Map<string, PendingRead>()
  #readSeq = 0
  // observers
  #waiters = new Set<Waiter>()
  #appliedConf: ConfState = { voters: [], learners: [] }
  #removed = false
  // snapshots
  #receiver: SnapshotReceiver
  #staging = new Map<string, { id: string; stored: number; verifier: SnapshotVerifier }>()
  #staged = new Map<string, SnapshotData>()
  #sending = new Set<string>()
  #materializing: Promise<void> | undefined
  #materializeAc: AbortController | undefined
  #streamSeq = 0
  #tasks = new Set<Promise<unknown>>()
  #lastSnapshotCheck = 0

  constructor(config: RaftConfig, deps: RaftConsensusDeps) {
    this.#cfg = config
    this.#deps = deps
    this.#self = deps.peerId
    this.#log = deps.log ?? nullLogger
    this.#clock = deps.clock ?? systemClock
    this.#tuning = { ...DEFAULT_TUNING, ...deps.tuning }
    this.#transport = deps.transport ?? nullTransport
    this.#timing = raftTiming(config)
    this.#receiver = new SnapshotReceiver(deps.peerId)
    this.opened = this.#open()
    this.opened.catch((err) => this.#log.error(`raft: cannot start: ${errorMessage(err)}`))
  }

  // ================================================================== start / stop

  async #open(): Promise<void> {
    const deps = this.#deps
    if (typeof deps.kv === 'string') {
      this.#kv = await Deno.openKv(deps.kv)
      this.#ownsKv = true
    } else {
      this.#kv = deps.kv
    }
    const init = deps.initPeers?.length ? deps.initPeers : this.#cfg.init_peerset ?? []
    const voters = init.length === 0 ? [this.#self] : init.includes(this.#self) ? [...init] : []
    const storage = await KvRaftStorage.open(this.#kv, {
      initialConf: { voters, learners: [] },
      log: this.#log,
    })
    const fsm = await PinFsm.open(this.#kv, deps.state)
    this.#storage = storage
    this.#fsm = fsm
    await this.#recover()
    this.#seq = Math.max(fsm.lastSeq(this.#self), this.#now() * 1000)
    this.#streamSeq = this.#now() * 1000

    const t = this.#timing
    this.#node = new RaftNode({
      id: this.#self,
      storage,
      rand: deps.rand ?? Math.random,
      applied: fsm.applied,
      electionTick: t.electionTick,
      heartbeatTick: t.heartbeatTick,
      maxEntriesPerMsg: Math.max(this.#cfg.max_append_entries, 1),
      checkQuorum: true,
      preVote: true,
      logger: this.#log,
    })
    this.#appliedConf = this.#node.snapshotMetaAt(fsm.applied).confState
    this.#lastSnapshotCheck = this.#now()
    if (this.#stopped) return
    this.#unlisten = this.#transport.listen(this.#self, {
      message: (m) => this.#onMessage(m),
      snapshotChunk: (c) => this.#onSnapshotChunk(c),
      unreachable: (peer) => {
        if (this.#stopped || this.#failed) return
        this.#node.reportUnreachable(peer)
        this.#schedule()
      },
    })
    this.#stopTicker = this.#clock.interval(t.tickMs, () => this.#tick())
    const cs = this.#node.status().confState
    if (cs.voters.length === 1 && cs.voters[0] === this.#self) {
      // A single voter need not wait an election timeout to lead.
      this.#node.campaign()
    }
    this.#log.info(
      `raft: ${this.#self} started at term ${this.#node.basicStatus().term}, applied ` +
        `${fsm.applied}, voters [${cs.voters.join(', ')}]`,
    )
    this.#schedule()
  }

  /** Finishes an interrupted restore, or adopts a state that Raft did not write. */
  async #recover(): Promise<void> {
    const storage = this.#storage
    const fsm = this.#fsm
    if (storage.restorePending) {
      const data = storage.snapshotData()
      if (!data) throw new RaftInvariantError('a snapshot restore is pending without its data')
      this.#log.warn(`raft: finishing the restore of snapshot ${storage.snapshot().index}`)
      await fsm.restore(storage, data, storage.snapshot().index, [storage.restoreDoneMutation()])
      storage.restoreDone()
      return
    }
    const hasPins = await fsm.hasPins()
    if (storage.fresh && !hasPins && fsm.applied === 0) {
      if (!fsm.appliedKnown) await fsm.setApplied(0)
      return
    }
    if (fsm.appliedKnown && !storage.fresh) return
    const at = Math.max(
      storage.lastIndex(),
      storage.snapshot().index,
      fsm.applied,
      hasPins ? 1 : 0,
    )
    if (at === 0) {
      await fsm.setApplied(0)
      return
    }
    this.#log.warn(
      `raft: the pinset was written outside consensus (state import/cleanup, or an older ` +
        `version); it becomes the snapshot at index ${at} and the Raft log restarts after it`,
    )
    await storage.adopt(at)
    await fsm.setApplied(at)
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#doStop()
    return this.#stopping
  }

  async #doStop(): Promise<void> {
    this.#stopped = true
    this.#stopAc.abort(new ShutdownError('consensus is shut down'))
    this.#stopTicker()
    for (const cancel of this.#retryTimers) cancel()
    this.#retryTimers.clear()
    await this.opened.catch(() => {})
    this.#unlisten()
    this.#failAll(new ShutdownError('consensus is shut down'))
    await this.#loopRunning?.catch(() => {})
    this.#materializeAc?.abort()
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks])
    await this.#storage?.drain()
    for (const w of this.#waiters) w.resolve()
    this.#waiters.clear()
    if (this.#ownsKv) this.#kv?.close()
  }

  #failAll(err: Error): void {
    const reqs = [...this.#queue]
    this.#queue = []
    for (const f of this.#inflight.values()) reqs.push(...f.reqs)
    this.#inflight.clear()
    this.#localIndex.clear()
    for (const r of reqs) this.#settle(r, err)
    for (const r of this.#reads.values()) r.reject(err)
    this.#reads.clear()
  }

  /** Storage or an invariant broke: the node stops taking part, every caller gets the error. */
  #fail(err: unknown): void {
    if (this.#failed) return
    this.#failed = new ConsensusError(`raft stopped: ${errorMessage(err)}`)
    this.#log.error(`raft: ${errorMessage(err)}; this peer no longer takes part in consensus`)
    this.#stopTicker()
    this.#unlisten()
    this.#failAll(this.#failed)
    this.#notify()
  }

  #now(): number {
    return this.#clock.now()
  }

  #check(): void {
    if (this.#stopped) throw new ShutdownError('consensus is shut down')
    if (this.#failed) throw this.#failed
  }

  // ================================================================== the loop

  #schedule(): void {
    if (this.#stopped || this.#failed) return
    if (this.#loopRunning) {
      this.#again = true
      return
    }
    if (this.#loopScheduled) return
    this.#loopScheduled = true
    queueMicrotask(() => {
      this.#loopScheduled = false
      if (this.#loopRunning) {
        this.#again = true
        return
      }
      this.#loopRunning = this.#runLoop().finally(() => {
        this.#loopRunning = undefined
        // Something asked for the loop after its last look: look again.
        if (this.#again) {
          this.#again = false
          this.#schedule()
        }
      })
    })
  }

  async #runLoop(): Promise<void> {
    try {
      while (!this.#stopped && !this.#failed) {
        this.#again = false
        this.#flushProposals()
        if (!this.#node.hasReady()) break
        const rd = this.#node.ready()
        await this.#handleReady(rd)
        this.#node.advance(rd)
        await this.#maybeCompact()
        this.#notify()
      }
    } catch (err) {
      if (!this.#stopped) this.#fail(err)
    }
  }

  #tick(): void {
    if (this.#stopped || this.#failed) return
    this.#node.tick()
    this.#expire()
    this.#schedule()
  }

  #onMessage(m: Message): void {
    if (this.#stopped || this.#failed) return
    try {
      this.#node.step(m)
    } catch (err) {
      if (err instanceof InvalidMessageError) {
        this.#log.debug(`raft: dropped a message from ${m?.from}: ${err.message}`)
        return
      }
      this.#fail(err)
      return
    }
    this.#schedule()
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.#onSoftState(rd.softState)
    const early: Message[] = []
    const late: Message[] = []
    const snaps: SnapshotMessage[] = []
    for (const m of rd.messages) {
      if (m.type === 'snapshot') snaps.push(m)
      else if (canSendBeforePersist(rd, m)) early.push(m)
      else late.push(m)
    }
    if (early.length > 0) this.#transport.send(early)
    if (rd.snapshot) await this.#install(rd)
    // Entries applied ahead of their turn (see #soloCommit) come back as committed: skip them.
    const committed = rd.committedEntries.filter((e) => e.index > this.#fsm.staged)
    const solo = this.#soloCommit(rd, committed)
    const staged = this.#fsm.stage(solo ? [...committed, ...rd.entries] : committed)
    const hs = this.#hardStateToWrite(rd, staged)
    if (rd.entries.length > 0 || hs || staged.groups.length > 0) {
      await this.#storage.persist(rd.entries, hs, staged.groups)
    }
    if (late.length > 0) this.#transport.send(late)
    this.#fsm.applyDone(staged)
    this.#afterApply(staged)
    for (const rs of rd.readStates) {
      const r = this.#reads.get(rs.ctx)
      if (r) r.index = rs.index
    }
    this.#serveReads()
    for (const m of snaps) this.#sendSnapshot(m)
  }

  /**
   * The hard state to write with this Ready, if any. Term and vote are written whenever they
   * change. The commit index is only an optimisation for restarts, so a change of it alone is not
   * worth a commit and rides along with the next write — except that it must never stay below the
   * applied index written with it (a restart refuses `applied > commit`).
   */
  #hardStateToWrite(rd: Ready, staged: StagedApply): HardState | undefined {
    const durable = this.#storage.hardState()
    const next = rd.hardState ?? durable
    const commit = Math.max(next.commit, durable.commit, staged.lastIndex)
    const termOrVote = next.term !== durable.term || next.vote !== durable.vote
    if (!termOrVote && commit === durable.commit) return undefined
    if (!termOrVote && rd.entries.length === 0 && staged.groups.length === 0) {
      // Commit-only: written later with the next write (the in-memory copy still moves on).
      return undefined
    }
    return { term: next.term, vote: next.vote, commit }
  }

  /**
   * A leader that is the only voter commits an entry by making it durable, so the entries it
   * appends in this Ready can be applied in the same atomic commit as their append (with the
   * commit index): one fsync per batch instead of two. Not when the Ready holds a membership
   * change (it may add a voter whose acknowledgement then counts), nor when earlier committed
   * entries are still waiting (application must stay in order).
   */
  #soloCommit(rd: Ready, committed: readonly Entry[]): boolean {
    if (rd.entries.length === 0 || rd.snapshot) return false
    const first = rd.entries[0].index
    if ((committed.at(-1)?.index ?? this.#fsm.staged) + 1 !== first) return false
    if (rd.entries.some((e) => e.type === 'confChange')) return false
    const st = this.#node.status()
    return st.role === 'leader' && st.confState.voters.length === 1 &&
      st.confState.voters[0] === this.#self && st.term === rd.entries[0].term
  }

  #onSoftState(s: SoftState): void {
    this.#log.debug(`raft: ${this.#self} is ${s.role}, leader ${s.leader ?? 'unknown'}`)
    if (s.role === 'leader') this.#log.info(`raft: ${this.#self} is the leader`)
  }

  // ================================================================== proposals

  #propose(op: LogOp, signal?: AbortSignal): Promise<void> {
    return this.opened.then(() => {
      this.#check()
      if (this.#removed) throw new ConsensusError('this peer was removed from the cluster')
      signal?.throwIfAborted()
      const encoded = encodeOp(op)
      return new Promise<void>((resolve, reject) => {
        const r: Request = {
          op: encoded,
          resolve,
          reject,
          retriesLeft: this.#cfg.commit_retries,
          leaderDeadline: this.#now() + this.#cfg.wait_for_leader_timeout,
          done: false,
        }
        if (signal) {
          const onAbort = () => this.#settle(r, signal.reason)
          signal.addEventListener('abort', onAbort, { once: true })
          const done = () => signal.removeEventListener('abort', onAbort)
          r.resolve = () => (done(), resolve())
          r.reject = (e) => (done(), reject(e))
        }
        this.#queue.push(r)
        this.#schedule()
      })
    })
  }

  #settle(r: Request, err?: unknown): void {
    if (r.done) return
    r.done = true
    if (err === undefined) r.resolve()
    else r.reject(err)
  }

  /** Turns queued operations into log entries (forwarded by the core when we follow). */
  #flushProposals(): void {
    if (this.#queue.length === 0) return
    if (this.#node.basicStatus().leader === null) return
    const { maxOpsPerEntry, maxEntryBytes } = this.#tuning
    let i = 0
    const q = this.#queue
    while (i < q.length) {
      const start = i
      const reqs: Request[] = []
      let bytes = 0
      for (; i < q.length && reqs.length < maxOpsPerEntry; i++) {
        const r = q[i]
        if (r.done) continue
        const size = encodedOpSize(r.op)
        if (reqs.length > 0 && bytes + size > maxEntryBytes) break
        reqs.push(r)
        bytes += size
      }
      if (reqs.length === 0) continue
      const seq = ++this.#seq
      const data = encodeBatch(this.#self, seq, reqs.map((r) => r.op))
      let res
      try {
        res = this.#node.propose(data)
      } catch (err) {
        if (err instanceof NoLeaderError) {
          this.#queue = q.slice(start)
          return
        }
        this.#retry(reqs, err)
        continue
      }
      const f: InFlight = {
        seq,
        reqs,
        deadline: this.#now() + this.#cfg.network_timeout,
      }
      if ('index' in res) {
        f.index = res.index
        this.#localIndex.set(res.index, seq)
      }
      this.#inflight.set(seq, f)
    }
    this.#queue = []
  }

  /** A proposal failed in a way worth retrying: again after `commit_retry_delay`, or give up. */
  #retry(reqs: Request[], err: unknown): void {
    for (const r of reqs) {
      if (r.done) continue
      if (r.retriesLeft <= 0 || this.#stopped) {
        this.#settle(r, err)
        continue
      }
      r.retriesLeft--
      this.#log.warn(`raft: retrying a commit: ${errorMessage(err)}`)
      const cancel = this.#clock.timeout(this.#cfg.commit_retry_delay, () => {
        this.#retryTimers.delete(cancel)
        if (this.#stopped || r.done) return
        r.leaderDeadline = this.#now() + this.#cfg.wait_for_leader_timeout
        this.#queue.push(r)
        this.#schedule()
      })
      this.#retryTimers.add(cancel)
    }
  }

  /** Deadlines: waiting for a leader, for a commit, for a read. Checked every tick. */
  #expire(): void {
    const now = this.#now()
    if (this.#queue.length > 0) {
      const keep: Request[] = []
      for (const r of this.#queue) {
        if (r.done) continue
        if (now >= r.leaderDeadline) this.#settle(r, new NoLeaderError())
        else keep.push(r)
      }
      this.#queue = keep
    }
    for (const [seq, f] of this.#inflight) {
      if (now < f.deadline) continue
      this.#dropInFlight(seq)
      this.#retry(f.reqs, new ConsensusError('timed out waiting for the operation to commit'))
    }
    for (const [ctx, r] of this.#reads) {
      if (now < r.deadline) continue
      this.#reads.delete(ctx)
      r.reject(new ConsensusError('timed out waiting for a read confirmation from the leader'))
    }
  }

  #dropInFlight(seq: number): InFlight | undefined {
    const f = this.#inflight.get(seq)
    if (!f) return undefined
    this.#inflight.delete(seq)
    if (f.index !== undefined && this.#localIndex.get(f.index) === seq) {
      this.#localIndex.delete(f.index)
    }
    return f
  }

  /** After a durable apply: hooks, waiters, membership. */
  #afterApply(staged: StagedApply): void {
    for (const b of staged.batches) this.#applied(b)
    if (staged.lastIndex >= 0) {
      // Entries we appended as leader that were replaced by another leader's.
      for (const [index, seq] of this.#localIndex) {
        if (index > staged.lastIndex) continue
        const f = this.#dropInFlight(seq)
        if (f) {
          this.#retry(f.reqs, new ProposalDroppedError('the entry was lost in a leader change'))
        }
      }
    }
    for (const { record } of staged.confChanges) {
      this.#appliedConf = record.conf
      const { type, id } = record.change
      this.#log.info(`raft: membership change applied: ${type} ${id}`)
      if (type === 'removeNode' && id === this.#self) {
        this.#removed = true
        this.#log.warn('raft: this peer was removed from the cluster')
      }
    }
  }

  #applied(b: AppliedBatch): void {
    const f = b.origin === this.#self ? this.#dropInFlight(b.seq) : undefined
    const hooks = this.#deps.hooks
    for (let k = 0; k < b.ops.length; k++) {
      const op = b.ops[k]
      try {
        const pin = f?.reqs[k]?.op.pin ?? opPin(op)
        if (op.kind === 'pin') hooks.onPin(pin)
        else hooks.onUnpin(pin)
      } catch (err) {
        this.#log.error(`raft: apply hook for ${op.cid}: ${errorMessage(err)}`)
      }
    }
    if (b.origin !== this.#self) return
    if (f) { for (const r of f.reqs) this.#settle(r) }
    // Our earlier batches still in flight can no longer apply (their seq is now too low).
    for (const [seq] of this.#inflight) {
      if (seq >= b.seq) break
      const lost = this.#dropInFlight(seq)
      if (lost) this.#retry(lost.reqs, new ProposalDroppedError('the entry was overtaken'))
    }
  }

  // ================================================================== reads and waits

  #serveReads(): void {
    const applied = this.#fsm.applied
    for (const [ctx, r] of this.#reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.#reads.delete(ctx)
        r.resolve(r.index)
      }
    }
  }

  async readBarrier(signal?: AbortSignal): Promise<number> {
    await this.opened
    let lastErr: unknown
    for (let attempt = 0; attempt <= this.#cfg.commit_retries; attempt++) {
      this.#check()
      await this.#waitLeader(this.#cfg.wait_for_leader_timeout, signal)
      const ctx = `${this.#self}/${++this.#readSeq}`
      try {
        this.#node.readIndex(ctx)
      } catch (err) {
        lastErr = err
        await this.#sleep(this.#cfg.commit_retry_delay, signal)
        continue
      }
      const p = new Promise<number>((resolve, reject) => {
        this.#reads.set(ctx, {
          resolve,
          reject,
          deadline: this.#now() + this.#cfg.network_timeout,
        })
      })
      this.#schedule()
      try {
        return await abortable(p, signal)
      } catch (err) {
        this.#reads.delete(ctx)
        if (signal?.aborted || this.#stopped || this.#failed) throw err
        lastErr = err
      }
    }
    throw lastErr
  }

  /** Resolves when `check()` holds (re-checked after every Ready), or rejects at `timeoutMs`. */
  #waitFor(
    check: () => boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onTimeout: () => Error,
  ): Promise<void> {
    if (check()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: unknown) => {
        cancelTimer()
        signal?.removeEventListener('abort', onAbort)
        this.#waiters.delete(w)
        if (err) reject(err)
        else resolve()
      }
      const w: Waiter = {
        check,
        resolve: () =>
          finish(this.#stopped ? new ShutdownError('consensus is shut down') : undefined),
      }
      const onAbort = () => finish(signal!.reason)
      // No timer for a wait without a bound.
      const cancelTimer = timeoutMs === Infinity
        ? () => {}
        : this.#clock.timeout(timeoutMs, () => finish(onTimeout()))
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.add(w)
    })
  }

  #notify(): void {
    for (const w of [...this.#waiters]) if (w.check()) w.resolve()
  }

  #waitLeader(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#waitFor(
      () => this.#node.basicStatus().leader !== null || this.#failed !== undefined,
      timeoutMs,
      signal,
      () => new NoLeaderError(),
    ).then(() => this.#check())
  }

  #sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.#waitFor(() => this.#stopped, ms, signal, () => new Error('timeout')).catch(
      (err) => {
        if (signal?.aborted) throw err
      },
    )
  }

  waitApplied(index: number, signal?: AbortSignal): Promise<void> {
    return this.opened.then(() =>
      this.#waitFor(
        () => this.#fsm.applied >= index || this.#stopped || this.#failed !== undefined,
        Infinity,
        signal,
        () => new ConsensusError('timed out'),
      ).then(() => this.#check())
    )
  }

  async ready(signal?: AbortSignal): Promise<void> {
    await this.opened
    try {
      await this.#waitLeader(this.#cfg.wait_for_leader_timeout, signal)
    } catch (err) {
      if (err instanceof NoLeaderError) {
        throw new NoLeaderError(`error waiting for leader: ${err.message}`)
      }
      throw err
    }
    await this.#waitFor(
      () =>
        this.#node.status().confState.voters.includes(this.#self) || this.#stopped ||
        this.#failed !== undefined,
      Infinity,
      signal,
      () => new ConsensusError('timed out'),
    )
    this.#check()
    await this.readBarrier(signal)
  }

  // ================================================================== membership

  async #changeConf(
    cc: ConfChange,
    done: (cs: ConfState) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const deadline = this.#now() + timeoutMs
    const pause = Math.max(this.#cfg.commit_retry_delay, this.#timing.tickMs * 2)
    for (;;) {
      this.#check()
      if (done(this.#appliedConf)) return
      if (this.#now() >= deadline) {
        throw new ConsensusError(`timed out applying the membership change ${cc.type} ${cc.id}`)
      }
      const inLog = done(this.#node.status().confState)
      if (!inLog) {
        try {
          this.#node.proposeConfChange(cc)
          this.#schedule()
        } catch (err) {
          const transient = err instanceof ConfChangeInProgressError ||
            err instanceof LearnerBehindError || err instanceof ProposalDroppedError ||
            err instanceof NoLeaderError
          if (!transient) throw err
        }
      }
      await this.#waitFor(
        () => done(this.#appliedConf) || this.#stopped || this.#failed !== undefined,
        Math.min(pause, Math.max(1, deadline - this.#now())),
        signal,
        () => new Error('pause'),
      ).catch((err) => {
        if (signal?.aborted) throw err
      })
    }
  }

  async addPeer(id: string, signal?: AbortSignal): Promise<void> {
    await this.opened
    this.#check()
    if (this.#appliedConf.voters.includes(id)) return
    // A learner first: it catches up without counting toward quorums, then it is promoted.
    const timeout = Math.max(this.#cfg.network_timeout * 6, 60_000)
    await this.#changeConf(
      { type: 'addLearner', id },
      (cs) => cs.voters.includes(id) || cs.learners.includes(id),
      timeout,
      signal,
    )
    await this.#changeConf(
      { type: 'addVoter', id },
      (cs) => cs.voters.includes(id),
      timeout,
      signal,
    )
  }

  async rmPeer(id: string, signal?: AbortSignal): Promise<void> {
    await this.opened
    this.#check()
    const member = (cs: ConfState) => cs.voters.includes(id) || cs.learners.includes(id)
    if (!member(this.#appliedConf) && !member(this.#node.status().confState)) return
    await this.#changeConf(
      { type: 'removeNode', id },
      (cs) => !member(cs),
      this.#cfg.network_timeout,
      signal,
    )
  }

  async transferLeadership(to: string, signal?: AbortSignal): Promise<void> {
    await this.opened
    this.#check()
    this.#node.transferLeadership(to)
    this.#schedule()
    await this.#waitFor(
      () => this.#node.basicStatus().leader === to,
      this.#timing.tickMs * this.#timing.electionTick * 3,
      signal,
      () => new ConsensusError(`leadership transfer to ${to} did not complete`),
    )
  }

  // ================================================================== snapshots

  /** A follower's host: stage a chunk durably; step the snapshot once the stream is whole. */
  async #onSnapshotChunk(c: SnapshotChunk): Promise<void> {
    await this.opened
    this.#check()
    const v = this.#receiver.accept(c)
    if (v.action === 'ignore') return
    if (v.action === 'reject') {
      this.#dropStaging(c.from)
      throw new TornSnapshotError(`snapshot stream from ${c.from} torn: ${v.reason}`)
    }
    if (v.restart) {
      this.#dropStaging(c.from)
      this.#staging.set(c.from, {
        id: this.#storage.newDataId(),
        stored: 0,
        verifier: new SnapshotVerifier(),
      })
    }
    const s = this.#staging.get(c.from)
    if (!s) throw new TornSnapshotError('snapshot chunk of an unknown stream')
    const pieces: Uint8Array[] = []
    for (let off = 0; off < c.data.byteLength; off += MAX_VALUE_BYTES) {
      pieces.push(c.data.subarray(off, off + MAX_VALUE_BYTES))
    }
    await this.#storage.writeChunks(s.id, s.stored, pieces)
    s.stored += pieces.length
    s.verifier.push(c.data)
    if (!v.complete) return
    this.#staging.delete(c.from)
    let check
    try {
      check = s.verifier.end()
    } catch (err) {
      this.#storage.discardChunks(s.id)
      this.#receiver.abort(c.from)
      throw err
    }
    for (const d of this.#staged.values()) this.#storage.discardChunks(d.id)
    this.#staged.clear()
    const meta = v.complete.snapshot
    this.#staged.set(`${meta.index}:${meta.term}`, {
      id: s.id,
      chunks: s.stored,
      bytes: check.bytes,
      crc: check.crc,
    })
    this.#log.info(`raft: received snapshot ${meta.index} from ${c.from} (${check.bytes} bytes)`)
    this.#check()
    this.#node.step(v.complete)
    this.#schedule()
  }

  #dropStaging(from: string): void {
    const s = this.#staging.get(from)
    if (!s) return
    this.#staging.delete(from)
    this.#storage.discardChunks(s.id)
  }

  /** Step 1 of a Ready that carries a snapshot: the staged bytes replace log and state. */
  async #install(rd: Ready): Promise<void> {
    const meta = rd.snapshot!
    const key = `${meta.index}:${meta.term}`
    const data = this.#staged.get(key)
    if (!data) throw new RaftInvariantError(`no staged data for snapshot ${key}`)
    this.#staged.delete(key)
    // A snapshot of our own in progress reads the state we are about to replace.
    this.#materializeAc?.abort()
    await this.#materializing?.catch(() => {})
    await this.#storage.beginInstall(meta, data)
    await this.#fsm.restore(this.#storage, data, meta.index, [this.#storage.restoreDoneMutation()])
    this.#storage.restoreDone()
    this.#appliedConf = meta.confState
    if (
      meta.confState.voters.includes(this.#self) || meta.confState.learners.includes(this.#self)
    ) {
      this.#removed = false
    }
    // Our batches inside the snapshot: the last one surely applied; earlier ones are ambiguous.
    const last = this.#fsm.lastSeq(this.#self)
    for (const [seq, f] of [...this.#inflight]) {
      if (seq > last) break
      this.#dropInFlight(seq)
      if (seq === last) { for (const r of f.reqs) this.#settle(r) }
      else this.#retry(f.reqs, new ProposalDroppedError('the entry was replaced by a snapshot'))
    }
    for (const [index, seq] of this.#localIndex) {
      if (index > meta.index) continue
      const f = this.#dropInFlight(seq)
      if (f) this.#retry(f.reqs, new ProposalDroppedError('the entry was lost in a leader change'))
    }
    this.#log.info(`raft: installed snapshot ${meta.index} (term ${meta.term})`)
    // No apply hook ran for the snapshot's pins: the tracker walks the new pinset.
    try {
      this.#deps.hooks.onRestore()
    } catch (err) {
      this.#log.error(`raft: restore hook: ${errorMessage(err)}`)
    }
  }

  /** A leader's host: stream the stored snapshot to `m.to`, or take one first. */
  #sendSnapshot(m: SnapshotMessage): void {
    if (this.#sending.has(m.to)) return
    this.#sending.add(m.to)
    this.#track((async () => {
      let ok = false
      try {
        const data = this.#storage.snapshotData()
        const cur = this.#storage.snapshot()
        if (!data || cur.index !== m.snapshot.index || cur.term !== m.snapshot.term) {
          // Only metadata is stored (a compaction point), or a newer snapshot exists: take one
          // now; the core asks again with it once told this attempt failed.
          if (!data || cur.index <= m.snapshot.index) await this.#materialize()
          return
        }
        this.#storage.retain(data.id)
        try {
          await this.#transport.sendSnapshot(m.to, this.#chunksOf(m, data), this.#stopAc.signal)
          ok = true
          this.#log.info(`raft: sent snapshot ${cur.index} to ${m.to} (${data.bytes} bytes)`)
        } finally {
          this.#storage.release(data.id)
        }
      } catch (err) {
        if (!this.#stopped) this.#log.warn(`raft: snapshot to ${m.to}: ${errorMessage(err)}`)
        if (err instanceof TornSnapshotError) await this.#storage.discardSnapshotData()
      } finally {
        this.#sending.delete(m.to)
        if (!this.#stopped && !this.#failed) {
          this.#node.reportSnapshot(m.to, ok)
          this.#schedule()
        }
      }
    })())
  }

  async *#chunksOf(m: SnapshotMessage, data: SnapshotData): AsyncIterable<SnapshotChunk> {
    const streamId = ++this.#streamSeq
    const verifier = new SnapshotVerifier()
    let prev: Uint8Array | undefined
    let chunkIndex = 0
    let offset = 0
    const chunk = (d: Uint8Array, done: boolean): SnapshotChunk => ({
      from: this.#self,
      to: m.to,
      term: m.term,
      snapshot: m.snapshot,
      streamId,
      chunkIndex,
      offset,
      data: d,
      done,
    })
    for await (const c of this.#storage.readChunks(data, this.#stopAc.signal)) {
      verifier.push(c)
      if (prev) {
        yield chunk(prev, false)
        chunkIndex++
        offset += prev.byteLength
      }
      prev = c
    }
    // The last chunk goes only once the bytes proved whole: a follower never completes a torn one.
    const r = verifier.end()
    if (r.bytes !== data.bytes || r.crc !== data.crc) {
      throw new TornSnapshotError('stored snapshot does not match its manifest')
    }
    yield chunk(prev!, true)
  }

  /** Takes a snapshot of the pinset into KV chunks (one at a time). */
  #materialize(): Promise<void> {
    this.#materializing ??= (async () => {
      const ac = new AbortController()
      this.#materializeAc = ac
      try {
        const signal = AbortSignal.any([ac.signal, this.#stopAc.signal])
        const started = this.#now()
        const { index, data } = await this.#fsm.takeSnapshot(this.#storage, signal)
        const cur = this.#storage.snapshot()
        let meta
        try {
          if (signal.aborted || index < cur.index) throw new CompactedError()
          meta = index === cur.index ? cur : this.#node.snapshotMetaAt(index)
        } catch (err) {
          this.#storage.discardChunks(data.id)
          if (err instanceof CompactedError) return
          throw err
        }
        await this.#storage.setSnapshot(meta, data)
        this.#log.info(
          `raft: took snapshot ${index} (${data.bytes} bytes in ${this.#now() - started} ms)`,
        )
      } finally {
        this.#materializing = undefined
        this.#materializeAc = undefined
      }
    })()
    return this.#materializing
  }

  /** Log compaction: a metadata-only snapshot at the applied index, then trim the log. */
  async #maybeCompact(force = false): Promise<void> {
    if (this.#materializing) return
    const storage = this.#storage
    const applied = Math.min(this.#fsm.applied, this.#node.basicStatus().commit)
    const now = this.#now()
    const byBytes = storage.logBytes() > this.#tuning.maxLogBytes
    const byInterval = now - this.#lastSnapshotCheck >= this.#cfg.snapshot_interval
    if (byInterval) this.#lastSnapshotCheck = now
    const due = force || byBytes ||
      (byInterval && applied - storage.snapshot().index >= this.#cfg.snapshot_threshold)
    if (!due) return
    if (applied > storage.snapshot().index) {
      await storage.setSnapshot(this.#node.snapshotMetaAt(applied), null)
    }
    let to = Math.min(storage.snapshot().index, applied - this.#cfg.trailing_logs)
    // Bound what the trailing entries may hold: they live in memory.
    let kept = 0
    for (let i = Math.min(applied, storage.lastIndex()); i > to && i >= storage.firstIndex(); i--) {
      kept += storage.entries(i, i + 1, Infinity)[0].data.byteLength
      if (kept > this.#tuning.maxTrailingBytes) {
        to = i
        break
      }
    }
    if (to >= storage.firstIndex()) {
      await storage.compact(to)
      this.#fsm.forgetBefore(to + 1)
      this.#log.debug(`raft: compacted the log up to ${to}`)
    }
  }

  async compactNow(): Promise<void> {
    await this.opened
    this.#check()
    // Between two Readys, like the loop's own compaction.
    while (this.#loopRunning) await this.#loopRunning
    await this.#maybeCompact(true)
  }

  #track<T>(p: Promise<T>): void {
    this.#tasks.add(p)
    p.finally(() => this.#tasks.delete(p)).catch(() => {})
  }

  // ================================================================== the API

  status(): RaftStatus {
    const s = this.#node.status()
    return {
      id: s.id,
      term: s.term,
      vote: s.vote,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      firstIndex: s.firstIndex,
      role: s.role,
      leader: s.leader,
      leadTransferee: s.leadTransferee,
      voters: [...s.confState.voters],
      learners: [...s.confState.learners],
      snapshotIndex: this.#storage.snapshot().index,
      logBytes: this.#storage.logBytes(),
    }
  }

  api(): RaftConsensus {
    const state = this.#deps.state
    return {
      id: this.#self,
      opened: this.opened,
      ready: (signal) => this.ready(signal),
      logPin: (pin, signal) => this.#propose({ type: 'pin', pin }, signal),
      logUnpin: (pin, signal) => this.#propose({ type: 'unpin', pin }, signal),
      addPeer: (id, signal) => this.addPeer(id, signal),
      rmPeer: (id, signal) => this.rmPeer(id, signal),
      state: () => state,
      consistentState: async (signal) => {
        await this.readBarrier(signal)
        return state
      },
      readBarrier: (signal) => this.readBarrier(signal),
      peers: async () => {
        await this.opened
        this.#check()
        return [...this.#node.status().confState.voters].sort()
      },
      leader: async () => {
        await this.opened
        this.#check()
        const l = this.#node.basicStatus().leader
        if (l === null) throw new NoLeaderError()
        return l
      },
      // As in the reference's Raft consensus: every member is trusted.
      isTrustedPeer: () => true,
      status: () => this.status(),
      transferLeadership: (to, signal) => this.transferLeadership(to, signal),
      waitApplied: (index, signal) => this.waitApplied(index, signal),
      compactNow: () => this.compactNow(),
      stop: () => this.stop(),
    }
  }
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
