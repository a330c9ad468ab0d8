/**
 * The cluster's Consensus on Raft: the host that drives a `RaftNode` over Deno KV storage
 * (kv_storage.ts), the pinset state machine (fsm.ts) and a `RaftTransport`. A single-peer cluster
 * runs through the same path with one voter, which elects itself at start.
 *
 * The host opens storage, recovers an interrupted restore, feeds the core its inputs (ticks,
 * messages, proposals) and composes the parts that each own one concern:
 *
 * | module | owns |
 * |---|---|
 * | ready_loop.ts | the Ready loop and its durability order (one KV commit for log and apply) |
 * | proposals.ts | logPin/logUnpin from queue to applied: group commit, retries, deadlines |
 * | reads.ts | linearizable reads (ReadIndex) |
 * | util/waiters.ts | callers waiting for a condition of the node, woken after each Ready |
 * | membership.ts | the applied membership; addPeer, rmPeer, transferLeadership |
 * | snapshots.ts | snapshot streams both ways, staging, install, taking one |
 * | compaction.ts | when to trim the log and how far |
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
 * `logPin` / `logUnpin` resolve once the entry holding the operation is committed in the cluster
 * and durable in this peer's log; its application here may still be held (ready_loop.ts), and
 * `state()` reads wait for a held application they need, so a read here sees every pin
 * acknowledged here. Entries carry
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
 * and its parts take the ticker, their timers and `now()` from an injected `Clock`, so tests
 * drive time.
 *
 * @example
 * ```ts
 * const consensus = raftConsensus(raftSection.defaults(), { peerId, kv, state, hooks })
 * await consensus.ready()
 * await consensus.logPin(pin)       // resolves once committed, and readable here
 * await consensus.stop()
 * ```
 *
 * @module
 */
import { clusterMetrics } from '../../observations/metrics.ts'
import { tracedLeaf, tracingEnabled } from '../../observations/tracing.ts'
import type { ApplyHooks, Consensus, LogOp, StateReader } from '../../components.ts'
import { ConsensusError, errorMessage, ShutdownError } from '../../errors.ts'
import { openKvFile } from '../../state/kv_file.ts'
import type { PinState } from '../../state/kv_state.ts'
import { normalizeCid } from '../../types/cid.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import {
  type BasicStatus,
  InvalidMessageError,
  type Message,
  NoLeaderError,
  RaftInvariantError,
  RaftNode,
  type SnapshotMeta,
} from './core/mod.ts'
import { type EncodedOp, encodeOp, opPin } from './entry_codec.ts'
import { PinFsm, type StagedApply } from './fsm.ts'
import { KvRaftStorage } from './kv_storage.ts'
import { nullTransport, type RaftTransport } from './transport.ts'
import { Compaction } from './compaction.ts'
import { Membership } from './membership.ts'
import { Proposals } from './proposals.ts'
import { Reads } from './reads.ts'
import { ReadyLoop } from './ready_loop.ts'
import { Snapshots, WIRE_CHUNK_BYTES } from './snapshots.ts'
import { Waiters } from '../../util/waiters.ts'

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
  /** Most bytes of one snapshot chunk on the wire (default `WIRE_CHUNK_BYTES`, snapshots.ts). */
  snapshotChunkBytes?: number
  /**
   * Longest the application of committed entries is held before it rides along with the next
   * write's commit (default 50 ms; 0 = applied in the Ready that commits them). See "Held
   * applications" in ready_loop.ts.
   */
  applyHoldMs?: number
  /** Most pin and unpin operations held before the hold rides along with the next write (512). */
  applyHoldMaxOps?: number
  /** Most batches a follower keeps on their way to the leader (see proposals.ts; default 2). */
  maxForwardsInFlight?: number
  /** How long an unanswered forward holds a follower's window (default 500 ms). */
  forwardPatienceMs?: number
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
  /**
   * The voters of brand-new data, used exactly as given (the daemon takes them from the start
   * plan of data_folder.ts, which reads `init_peerset`): `[]` is a peer that joins, waiting for
   * a member to add it. Default: this peer alone. Ignored once state exists.
   */
  initialVoters?: string[]
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

const DEFAULT_TUNING: Required<RaftTuning> = {
  maxOpsPerEntry: 256,
  maxEntryBytes: 256 * 1024,
  maxLogBytes: 64 * 1024 * 1024,
  maxTrailingBytes: 16 * 1024 * 1024,
  snapshotChunkBytes: WIRE_CHUNK_BYTES,
  applyHoldMs: 50,
  applyHoldMaxOps: 512,
  maxForwardsInFlight: 2,
  forwardPatienceMs: 500,
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

/** Opens storage, feeds the core its inputs and composes the parts (see the module comment). */
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

  // The parts that hold callers exist from the start; those that drive the node once it runs.
  readonly #waiters: Waiters
  readonly #proposals: Proposals
  readonly #reads: Reads
  #loop: ReadyLoop | undefined
  /** Our operations acknowledged while their application was held, by entry index (hooks). */
  readonly #ackedOps = new Map<number, readonly EncodedOp[]>()
  #members!: Membership
  #snapshots: Snapshots | undefined
  #compaction!: Compaction

  constructor(config: RaftConfig, deps: RaftConsensusDeps) {
    this.#cfg = config
    this.#deps = deps
    this.#self = deps.peerId
    this.#log = deps.log ?? nullLogger
    this.#clock = deps.clock ?? systemClock
    this.#tuning = { ...DEFAULT_TUNING, ...deps.tuning }
    this.#transport = deps.transport ?? nullTransport
    this.#timing = raftTiming(config)
    this.#waiters = new Waiters(this.#clock, () => this.#stopped)
    this.#proposals = new Proposals({
      self: this.#self,
      cfg: config,
      tuning: this.#tuning,
      clock: this.#clock,
      log: this.#log,
      propose: (data) => this.#node.propose(data),
      leader: () => this.#node.basicStatus().leader,
      schedule: () => this.#schedule(),
      stopped: () => this.#stopped,
    })
    this.#reads = new Reads({
      self: this.#self,
      cfg: config,
      clock: this.#clock,
      readIndex: (ctx) => this.#node.readIndex(ctx),
      waitLeader: (ms, signal) => this.#waitLeader(ms, signal),
      sleep: (ms, signal) => this.#waiters.sleep(ms, signal),
      schedule: () => this.#schedule(),
      check: () => this.#check(),
      halted: () => this.#halted(),
    })
    this.opened = this.#open()
    this.opened.catch((err) => this.#log.error(`raft: cannot start: ${errorMessage(err)}`))
  }

  // ================================================================== start / stop

  async #open(): Promise<void> {
    const deps = this.#deps
    if (typeof deps.kv === 'string') {
      this.#kv = await openKvFile(deps.kv)
      this.#ownsKv = true
    } else {
      this.#kv = deps.kv
    }
    const voters = deps.initialVoters ? [...deps.initialVoters] : [this.#self]
    const storage = await KvRaftStorage.open(this.#kv, {
      initialConf: { voters, learners: [] },
      log: this.#log,
    })
    const fsm = await PinFsm.open(this.#kv, deps.state)
    this.#storage = storage
    this.#fsm = fsm
    await this.#recover()
    this.#proposals.resumeAfter(fsm.lastSeq(this.#self))

    const t = this.#timing
    const node = this.#node = new RaftNode({
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
    this.#compose()
    this.#members.reset(node.snapshotMetaAt(fsm.applied).confState)
    if (this.#stopped) return
    this.#unlisten = this.#transport.listen(this.#self, {
      message: (m) => this.#onMessage(m),
      snapshotChunk: async (c) => {
        await this.opened
        return this.#snapshots!.receive(c)
      },
      unreachable: (peer) => {
        if (this.#halted()) return
        node.reportUnreachable(peer)
        this.#schedule()
      },
    })
    this.#stopTicker = this.#clock.interval(t.tickMs, () => this.#tick())
    const cs = node.status().confState
    if (cs.voters.length === 1 && cs.voters[0] === this.#self) {
      // A single voter need not wait an election timeout to lead.
      node.campaign()
    }
    this.#log.info(
      `raft: ${this.#self} started at term ${node.basicStatus().term}, applied ` +
        `${fsm.applied}, voters [${cs.voters.join(', ')}]`,
    )
    this.#schedule()
  }

  /** The parts that drive the running node, wired to each other through the host. */
  #compose(): void {
    const node = this.#node
    const common = {
      self: this.#self,
      clock: this.#clock,
      log: this.#log,
      schedule: () => this.#schedule(),
      check: () => this.#check(),
      halted: () => this.#halted(),
      stopped: () => this.#stopped,
    }
    this.#members = new Membership({
      ...common,
      cfg: this.#cfg,
      tickMs: this.#timing.tickMs,
      electionTick: this.#timing.electionTick,
      node,
      waiters: this.#waiters,
    })
    const snapshots = this.#snapshots = new Snapshots({
      ...common,
      storage: this.#storage,
      fsm: this.#fsm,
      node,
      transport: this.#transport,
      signal: this.#stopAc.signal,
      wireChunkBytes: this.#tuning.snapshotChunkBytes,
    })
    this.#compaction = new Compaction({
      cfg: this.#cfg,
      tuning: this.#tuning,
      clock: this.#clock,
      log: this.#log,
      storage: this.#storage,
      fsm: this.#fsm,
      node,
      busy: () => snapshots.materializing,
    })
    this.#loop = new ReadyLoop({
      ...common,
      holdMs: this.#tuning.applyHoldMs,
      holdMaxOps: this.#tuning.applyHoldMaxOps,
      node,
      storage: this.#storage,
      fsm: this.#fsm,
      transport: this.#transport,
      fail: (err) => this.#fail(err),
      handlers: {
        beforeReady: () => this.#proposals.flush(),
        install: (meta) => this.#install(meta),
        acked: (staged) => this.#acked(staged),
        applied: (staged) => this.#afterApply(staged),
        reads: (states) => {
          this.#reads.confirmed(states)
          this.#reads.serve(this.#fsm.applied)
          // A confirmed read waits for held applications: they go now.
          if (this.#reads.waitingAbove(this.#fsm.applied)) this.#loop?.flushHeld()
        },
        sendSnapshot: (m) => snapshots.send(m),
        afterReady: async () => {
          if (clusterMetrics) this.#observeLeader()
          await this.#compaction.maybeCompact()
          this.#waiters.notify()
        },
      },
    })
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
    this.#proposals.cancelRetries()
    await this.opened.catch(() => {})
    this.#unlisten()
    this.#failAll(new ShutdownError('consensus is shut down'))
    await this.#loop?.running?.catch(() => {})
    if (this.#failed === undefined) {
      await this.#loop?.drainHeld().catch((err) => {
        this.#log.error(`raft: applying the held entries at stop: ${errorMessage(err)}`)
      })
    }
    await this.#snapshots?.stop()
    await this.#storage?.drain()
    this.#waiters.releaseAll()
    if (this.#ownsKv) this.#kv?.close()
  }

  #failAll(err: Error): void {
    this.#proposals.failAll(err)
    this.#reads.failAll(err)
  }

  /** Storage or an invariant broke: the node stops taking part, every caller gets the error. */
  #fail(err: unknown): void {
    if (this.#failed) return
    this.#failed = new ConsensusError(`raft stopped: ${errorMessage(err)}`)
    this.#log.error(`raft: ${errorMessage(err)}; this peer no longer takes part in consensus`)
    this.#stopTicker()
    this.#unlisten()
    this.#failAll(this.#failed)
    this.#waiters.notify()
  }

  #halted(): boolean {
    return this.#stopped || this.#failed !== undefined
  }

  #check(): void {
    if (this.#stopped) throw new ShutdownError('consensus is shut down')
    if (this.#failed) throw this.#failed
  }

  // ================================================================== inputs

  #schedule(): void {
    this.#loop?.schedule()
  }

  #tick(): void {
    if (this.#halted()) return
    this.#node.tick()
    // Deadlines: waiting for a leader, for a commit, for a read.
    const now = this.#clock.now()
    this.#proposals.expire(now)
    this.#reads.expire(now)
    this.#schedule()
  }

  #onMessage(m: Message): void {
    if (this.#halted()) return
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

  /** Counts leader changes for the metrics (called after each Ready while stats are on). */
  #observeLeader(): void {
    const leader = this.#node.basicStatus().leader
    if (leader !== null && leader !== this.#lastLeader) {
      if (this.#lastLeader !== undefined) clusterMetrics?.raftLeaderChanges.inc()
      this.#lastLeader = leader
    }
  }

  #propose(op: LogOp, signal?: AbortSignal): Promise<void> {
    const m = clusterMetrics
    if (!m && !tracingEnabled()) return this.#proposeNow(op, signal)
    const name = op.type === 'pin' ? 'consensus/LogPin' : 'consensus/LogUnpin'
    return tracedLeaf(name, op.pin.cid, () => this.#proposeNow(op, signal)).then(
      () => void m?.raftProposals.inc(1, 'ok'),
      (err) => {
        m?.raftProposals.inc(1, 'error')
        throw err
      },
    )
  }

  #proposeNow(op: LogOp, signal?: AbortSignal): Promise<void> {
    return this.opened.then(() => {
      this.#check()
      if (this.#members.removed) throw new ConsensusError('this peer was removed from the cluster')
      signal?.throwIfAborted()
      return this.#proposals.submit(encodeOp(op), signal)
    })
  }

  // ================================================================== what a Ready did

  /** Step 1 of a Ready that carries a snapshot: the staged bytes replace log and state. */
  async #install(meta: SnapshotMeta): Promise<void> {
    await this.#snapshots!.install(meta)
    this.#members.reset(meta.confState)
    this.#proposals.snapshotInstalled(meta.index, this.#fsm.lastSeq(this.#self))
    this.#log.info(`raft: installed snapshot ${meta.index} (term ${meta.term})`)
    // No apply hook ran for the snapshot's pins: the tracker walks the new pinset.
    try {
      this.#deps.hooks.onRestore()
    } catch (err) {
      this.#log.error(`raft: restore hook: ${errorMessage(err)}`)
    }
  }

  /** Entries committed and in the durable log, their application held: the callers go. */
  #acked(staged: StagedApply): void {
    for (const b of staged.batches) {
      const own = this.#proposals.applied(b)
      if (own) this.#ackedOps.set(b.index, own)
    }
    if (staged.lastIndex >= 0) this.#proposals.appliedThrough(staged.lastIndex)
  }

  /** After a durable apply: callers, hooks, membership. */
  #afterApply(staged: StagedApply): void {
    const hooks = this.#deps.hooks
    for (const b of staged.batches) {
      let own = this.#ackedOps.get(b.index)
      if (own) this.#ackedOps.delete(b.index)
      else own = this.#proposals.applied(b)
      for (let k = 0; k < b.ops.length; k++) {
        const op = b.ops[k]
        try {
          const pin = own?.[k]?.pin ?? opPin(op)
          if (op.kind === 'pin') hooks.onPin(pin)
          else hooks.onUnpin(pin)
        } catch (err) {
          this.#log.error(`raft: apply hook for ${op.cid}: ${errorMessage(err)}`)
        }
      }
    }
    // Entries we appended as leader that were replaced by another leader's.
    if (staged.lastIndex >= 0) this.#proposals.appliedThrough(staged.lastIndex)
    this.#members.confApplied(staged.confChanges)
  }

  // ================================================================== waits

  #waitLeader(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.waitFor(
      () => this.#node.basicStatus().leader !== null || this.#failed !== undefined,
      timeoutMs,
      signal,
      () => new NoLeaderError(),
    ).then(() => this.#check())
  }

  async readBarrier(signal?: AbortSignal): Promise<number> {
    await this.opened
    return this.#reads.barrier(signal)
  }

  waitApplied(index: number, signal?: AbortSignal): Promise<void> {
    return this.opened.then(() => {
      if (index > this.#fsm.applied) this.#loop?.flushHeld()
      return this.#waiters.waitFor(
        () => this.#fsm.applied >= index || this.#halted(),
        Infinity,
        signal,
        () => new ConsensusError('timed out'),
      ).then(() => this.#check())
    })
  }

  /**
   * Waits until no held application (ready_loop.ts) is one a read needs: one touching `cid`, or
   * any for a read of the whole pinset.
   */
  async #fence(cid?: string): Promise<void> {
    const loop = this.#loop
    if (!loop?.holds()) return
    if (cid !== undefined && !loop.holds(normalizeCid(cid))) return
    const through = loop.heldThrough
    loop.flushHeld()
    await this.#waiters.waitFor(
      () => this.#fsm.applied >= through || this.#halted(),
      Infinity,
      undefined,
      () => new ConsensusError('timed out'),
    )
    this.#check()
  }

  /** The pinset as this peer acknowledged it: each read waits for the held writes it needs. */
  #fencedState(): StateReader {
    const state = this.#deps.state
    const fence = (cid?: string) => this.#fence(cid)
    async function* after<T>(it: () => AsyncIterable<T>): AsyncIterable<T> {
      await fence()
      yield* it()
    }
    return {
      get: async (cid) => {
        await fence(cid)
        return state.get(cid)
      },
      has: async (cid) => {
        await fence(cid)
        return state.has(cid)
      },
      list: (signal) => after(() => state.list(signal)),
      listEncoded: (signal) => after(() => state.listEncoded(signal)),
      listNDJSON: (signal) => after(() => state.listNDJSON(signal)),
      scan: (opts) => after(() => state.scan(opts)),
    }
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
    await this.#waiters.waitFor(
      () => this.#node.status().confState.voters.includes(this.#self) || this.#halted(),
      Infinity,
      signal,
      () => new ConsensusError('timed out'),
    )
    this.#check()
    await this.readBarrier(signal)
  }

  async compactNow(): Promise<void> {
    await this.opened
    this.#check()
    await this.#fence()
    // Between two Readys, like the loop's own compaction.
    while (this.#loop!.running) await this.#loop!.running
    await this.#compaction.maybeCompact(true)
  }

  // ================================================================== the API

  /** The leader seen after the last Ready (leader changes metric); undefined before the first. */
  #lastLeader: string | undefined

  status(): RaftStatus {
    const s = this.#node.status()
    return {
      id: s.id,
      term: s.term,
      vote: s.vote,
      commit: s.commit,
      // What this peer's state holds: the core's applied index runs ahead by the held entries.
      applied: this.#fsm?.applied ?? s.applied,
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
    const state = this.#fencedState()
    const member = async <T>(run: () => Promise<T>): Promise<T> => {
      await this.opened
      return run()
    }
    return {
      id: this.#self,
      opened: this.opened,
      ready: (signal) => this.ready(signal),
      logPin: (pin, signal) => this.#propose({ type: 'pin', pin }, signal),
      logUnpin: (pin, signal) => this.#propose({ type: 'unpin', pin }, signal),
      addPeer: (id, signal) => member(() => this.#members.addPeer(id, signal)),
      rmPeer: (id, signal) => member(() => this.#members.rmPeer(id, signal)),
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
      // Members (voters and learners) are trusted, as every member is in the reference's Raft;
      // unlike it, a peer outside the peerset is not (issue 7: its trusted calls are refused).
      isTrustedPeer: (id) => {
        if (id === this.#self) return true
        if (!this.#node) return false
        const cs = this.#node.status().confState
        return cs.voters.includes(id) || cs.learners.includes(id)
      },
      status: () => this.status(),
      transferLeadership: (to, signal) =>
        member(() => this.#members.transferLeadership(to, signal)),
      waitApplied: (index, signal) => this.waitApplied(index, signal),
      compactNow: () => this.compactNow(),
      stop: () => this.stop(),
    }
  }
}
