/**
 * The loop that drives the Raft core: it takes the node's Ready, makes it durable and sends it,
 * then advances, Ready after Ready until the node has nothing left. Work is never tied to the
 * timer: a proposal, an inbound message or a tick calls `schedule()`, which runs the loop on a
 * microtask (once, however many ask). For each Ready:
 *
 * 1. the leader's replication traffic goes out at once (it may be sent before the entries are
 *    durable: etcd's "append in parallel"),
 * 2. a snapshot is installed,
 * 3. entries, hard state *and the application of the committed entries* are made durable in one
 *    KV commit (the pinset lives in the same database),
 * 4. the rest of the messages go out, then callers, hooks and reads learn what was applied, and
 *    snapshot streams start.
 *
 * Operations that arrive while a commit is in flight wait for the next Ready and go into one log
 * entry together: this group commit turns 64 concurrent pins into one fsync instead of 64. A
 * single voter goes further (`soloCommit`). Apart from the host, which composes it with the
 * parts that handle what a Ready holds (`ReadyHandlers`), because the order above is the
 * durability contract of the whole consensus and reads best in one place.
 *
 * @example
 * ```ts
 * const loop = new ReadyLoop({ self, node, storage, fsm, transport, log, ... })
 * loop.schedule()     // after a proposal, a message, a tick
 * while (loop.running) await loop.running // between two Readys
 * ```
 *
 * @module
 */
import type { Logger } from '../../util/log.ts'
import {
  canSendBeforePersist,
  type Entry,
  type HardState,
  type Message,
  type RaftNode,
  type ReadState,
  type Ready,
  type SnapshotMessage,
  type SnapshotMeta,
} from './core/mod.ts'
import type { PinFsm, StagedApply } from './fsm.ts'
import type { KvRaftStorage } from './kv_storage.ts'
import type { RaftTransport } from './transport.ts'

/** What the host does with the parts of a Ready, in the loop's order. */
export interface ReadyHandlers {
  /** Before each look at the node: queued proposals become entries. */
  beforeReady(): void
  /** The Ready carries a snapshot: its staged bytes replace log and pinset. */
  install(meta: SnapshotMeta): Promise<void>
  /** Entries were applied durably: callers, hooks, membership. */
  applied(staged: StagedApply): void
  /** Read confirmations of this Ready (after `applied`). */
  reads(states: readonly ReadState[]): void
  /** A snapshot to stream to a follower (a leader's Ready). */
  sendSnapshot(m: SnapshotMessage): void
  /** After `advance`: compaction, waking waiters. */
  afterReady(): Promise<void>
}

/** What `ReadyLoop` needs from the host. */
export interface ReadyLoopDeps {
  self: string
  node: RaftNode
  storage: KvRaftStorage
  fsm: PinFsm
  transport: Pick<RaftTransport, 'send'>
  log: Logger
  handlers: ReadyHandlers
  /** True once the host stopped or failed: the loop runs no more. */
  halted(): boolean
  stopped(): boolean
  /** Storage or an invariant broke: the host stops taking part. */
  fail(err: unknown): void
}

/**
 * Runs `pass` on a microtask when asked: once however many ask before it starts, and once more
 * when asked while it runs (after its last look). How a Raft host's loop is woken, here and in
 * bench/raft_log_host.ts.
 */
export class MicrotaskRunner {
  readonly #pass: () => Promise<void>
  readonly #halted: () => boolean
  #scheduled = false
  #running: Promise<void> | undefined
  #again = false

  constructor(pass: () => Promise<void>, halted: () => boolean = () => false) {
    this.#pass = pass
    this.#halted = halted
  }

  /** Runs the pass soon (on a microtask), or once more after the running one. */
  schedule(): void {
    if (this.#halted()) return
    if (this.#running) {
      this.#again = true
      return
    }
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      if (this.#running) {
        this.#again = true
        return
      }
      this.#running = this.#pass().finally(() => {
        this.#running = undefined
        // Something asked after the pass's last look: look again.
        if (this.#again) {
          this.#again = false
          this.schedule()
        }
      })
    })
  }

  /** The running pass is about to look: what was asked so far needs no pass of its own. */
  looking(): void {
    this.#again = false
  }

  /** The pass running now, if any. */
  get running(): Promise<void> | undefined {
    return this.#running
  }
}

/** The Ready loop; see the module comment. */
export class ReadyLoop {
  readonly #d: ReadyLoopDeps
  readonly #runner: MicrotaskRunner

  constructor(deps: ReadyLoopDeps) {
    this.#d = deps
    this.#runner = new MicrotaskRunner(() => this.#run(), deps.halted)
  }

  /** Runs the loop soon (on a microtask), or once more after the running pass. */
  schedule(): void {
    this.#runner.schedule()
  }

  /** The pass of the loop running now, if any (it never rejects: a failure goes to `fail`). */
  get running(): Promise<void> | undefined {
    return this.#runner.running
  }

  async #run(): Promise<void> {
    const { node, handlers } = this.#d
    try {
      while (!this.#d.halted()) {
        this.#runner.looking()
        handlers.beforeReady()
        if (!node.hasReady()) break
        const rd = node.ready()
        await this.#handle(rd)
        node.advance(rd)
        await handlers.afterReady()
      }
    } catch (err) {
      if (!this.#d.stopped()) this.#d.fail(err)
    }
  }

  async #handle(rd: Ready): Promise<void> {
    const { fsm, storage, transport, handlers, log, self } = this.#d
    if (rd.softState) {
      const s = rd.softState
      // With the term, each peer's log shows which leader it followed in which term (the
      // fault-injection tests check there is never more than one per term).
      const term = this.#d.node.basicStatus().term
      log.debug(`raft: ${self} is ${s.role}, leader ${s.leader ?? 'unknown'}, term ${term}`)
      if (s.role === 'leader') log.info(`raft: ${self} is the leader`)
    }
    const early: Message[] = []
    const late: Message[] = []
    const snaps: SnapshotMessage[] = []
    for (const m of rd.messages) {
      if (m.type === 'snapshot') snaps.push(m)
      else if (canSendBeforePersist(rd, m)) early.push(m)
      else late.push(m)
    }
    if (early.length > 0) transport.send(early)
    if (rd.snapshot) await handlers.install(rd.snapshot)
    // Entries applied ahead of their turn (see #soloCommit) come back as committed: skip them.
    const committed = rd.committedEntries.filter((e) => e.index > fsm.staged)
    const solo = this.#soloCommit(rd, committed)
    const staged = fsm.stage(solo ? [...committed, ...rd.entries] : committed)
    const hs = this.#hardStateToWrite(rd, staged)
    if (rd.entries.length > 0 || hs || staged.groups.length > 0) {
      await storage.persist(rd.entries, hs, staged.groups)
    }
    if (late.length > 0) transport.send(late)
    fsm.applyDone(staged)
    handlers.applied(staged)
    handlers.reads(rd.readStates)
    for (const m of snaps) handlers.sendSnapshot(m)
  }

  /**
   * The hard state to write with this Ready, if any. Term and vote are written whenever they
   * change. The commit index is only an optimisation for restarts, so a change of it alone is not
   * worth a commit and rides along with the next write — except that it must never stay below the
   * applied index written with it (a restart refuses `applied > commit`).
   */
  #hardStateToWrite(rd: Ready, staged: StagedApply): HardState | undefined {
    const durable = this.#d.storage.hardState()
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
    if ((committed.at(-1)?.index ?? this.#d.fsm.staged) + 1 !== first) return false
    if (rd.entries.some((e) => e.type === 'confChange')) return false
    const st = this.#d.node.status()
    return st.role === 'leader' && st.confState.voters.length === 1 &&
      st.confState.voters[0] === this.#d.self && st.term === rd.entries[0].term
  }
}
