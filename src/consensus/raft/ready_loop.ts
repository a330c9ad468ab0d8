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
 * ## Held applications
 *
 * Applying committed entries as they come would cost a KV commit per Ready on the path of every
 * write — append, then apply, one fsync after the other — and write each B-tree page of the
 * pinset again and again. Their application is *held* instead: the entries are staged, their
 * callers acknowledged at once (`acked`: the entries are committed in the cluster and durable in
 * this peer's log), and the staged writes gather across Readys while the Readys' own writes (new
 * entries, a term or vote) go to disk without them. The hold is due after `holdMs` or at
 * `holdMaxOps` operations, and then rides along with the next Ready's commit (or commits on its
 * own if none comes within another `holdMs`); a read that needs it ends it at once (`flushHeld`).
 * The host fences its reads on that (`holds`, `heldThrough`), so an acknowledged pin is never
 * missing from a read here; the apply hooks run once the writes are durable, as always. Entries
 * not yet durable in this peer's log, a term or vote change, a snapshot or a membership change
 * are never held: such a Ready applies what is held with its own writes, in one commit. A crash
 * loses only what is held, which the log replays at the next start.
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
import type { Clock } from '../../util/clock.ts'
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
  /** Entries are committed and in the durable log, their application held: callers only. */
  acked(staged: StagedApply): void
  /** Entries were applied durably: callers (those not acked yet), hooks, membership. */
  applied(staged: StagedApply): void
  /** Read confirmations of this Ready (after `applied`). */
  reads(states: readonly ReadState[]): void
  /** A snapshot to stream to a follower (a leader's Ready). */
  sendSnapshot(m: SnapshotMessage): void
  /** After `advance`: compaction, waking waiters. */
  afterReady(): Promise<void>
}

/** Appends staging `b` to `into` (which the caller owns: a hold gathers many Readys). */
function appendStaged(into: StagedApply, b: StagedApply): StagedApply {
  if (b.lastIndex < 0) return into
  into.groups.push(...b.groups)
  into.batches.push(...b.batches)
  into.confChanges.push(...b.confChanges)
  into.lastIndex = b.lastIndex
  into.duplicates += b.duplicates
  return into
}

function emptyStaged(): StagedApply {
  return { groups: [], lastIndex: -1, batches: [], confChanges: [], duplicates: 0 }
}

/** What `ReadyLoop` needs from the host. */
export interface ReadyLoopDeps {
  self: string
  node: RaftNode
  storage: KvRaftStorage
  fsm: PinFsm
  transport: Pick<RaftTransport, 'send'>
  log: Logger
  clock: Pick<Clock, 'timeout'>
  /** Longest an application is held (0: never held). */
  holdMs: number
  /** Most operations held: a hold this large rides along with the next write. */
  holdMaxOps: number
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
  /** Staged applications acknowledged but not durable yet, oldest first. */
  #held: StagedApply | undefined
  /** The CIDs the held entries pin or unpin (a read of one of them waits for the flush). */
  readonly #heldCids = new Set<string>()
  /** Pin and unpin operations held. */
  #heldOps = 0
  #cancelHoldTimer: (() => void) | undefined
  #flushWanted = false
  /** Held for `holdMs`: the next write takes it along. */
  #overdue = false

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

  /** The index through which applications are held (not durable yet), or -1. */
  get heldThrough(): number {
    return this.#held?.lastIndex ?? -1
  }

  /** True if a held application touches `cid` (or, without one, if anything is held). */
  holds(cid?: string): boolean {
    if (!this.#held) return false
    return cid === undefined || this.#heldCids.has(cid)
  }

  /** Makes the held applications durable soon, without waiting for the next write. */
  flushHeld(): void {
    if (!this.#held) return
    this.#flushWanted = true
    this.schedule()
  }

  /**
   * At stop, once the loop ran its last pass: makes what is held durable, so that a clean stop
   * leaves every acknowledged pin applied here (a crash leaves it in the log, committed).
   */
  async drainHeld(): Promise<void> {
    while (this.running) await this.running
    if (this.#held) await this.#persistHeld()
  }

  async #run(): Promise<void> {
    const { node, handlers } = this.#d
    try {
      while (!this.#d.halted()) {
        this.#runner.looking()
        handlers.beforeReady()
        if (!node.hasReady()) {
          if (!this.#held || !this.#flushWanted) break
          await this.#persistHeld()
          await handlers.afterReady()
          continue
        }
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
    if (rd.snapshot) {
      // The held entries come before the snapshot that replaces the pinset.
      if (this.#held) await this.#persistHeld()
      await handlers.install(rd.snapshot)
    }
    // Entries applied ahead of their turn (see #soloCommit), or held, come back as committed.
    const committed = rd.committedEntries.filter((e) => e.index > fsm.staged)
    const solo = this.#soloCommit(rd, committed)
    const staged = fsm.stage(solo ? [...committed, ...rd.entries] : committed)
    if (this.#hold(rd, staged)) {
      // The callers hear at once (their entries are committed and durable here), before this
      // Ready's own writes — new entries, the commit index — go to disk without what it applies.
      handlers.acked(staged)
      const hs = this.#hardStateToWrite(rd, emptyStaged())
      if (rd.entries.length > 0 || hs) await storage.persist(rd.entries, hs, [])
      if (late.length > 0) transport.send(late)
      handlers.reads(rd.readStates)
      for (const m of snaps) handlers.sendSnapshot(m)
      return
    }
    // What was held goes first, in the same commit: always when this Ready applies entries of its
    // own — they come after the held ones, and the applied index it records must not pass writes
    // that are not on disk (a crash would skip them; a later unpin would be undone by the held
    // pin) — and else once due, if it writes anything (one that only sends messages leaves it).
    const applies = staged.groups.length > 0
    const own = rd.entries.length > 0 || applies ||
      this.#hardStateToWrite(rd, staged) !== undefined
    const all = applies || (own && this.#due()) ? this.#takeHeld(staged) : staged
    const hs = this.#hardStateToWrite(rd, all)
    if (rd.entries.length > 0 || hs || all.groups.length > 0) {
      await storage.persist(rd.entries, hs, all.groups)
    }
    if (late.length > 0) transport.send(late)
    fsm.applyDone(all)
    handlers.applied(all)
    handlers.reads(rd.readStates)
    for (const m of snaps) handlers.sendSnapshot(m)
  }

  /**
   * Holds the application of a commit-only Ready (see "Held applications"): nothing to append,
   * no snapshot, no term or vote to write, no membership change — only entries already durable
   * in the log to apply. True if held.
   */
  #hold(rd: Ready, staged: StagedApply): boolean {
    const d = this.#d
    if (d.holdMs <= 0 || staged.groups.length === 0 || staged.confChanges.length > 0) return false
    if (rd.snapshot || this.#due()) return false
    // Entries committed here but not yet durable in this peer's log (a follower behind) are not
    // acknowledged before they are.
    if (staged.lastIndex > d.storage.lastIndex()) return false
    if (rd.hardState) {
      const durable = d.storage.hardState()
      if (rd.hardState.term !== durable.term || rd.hardState.vote !== durable.vote) return false
    }
    this.#held = appendStaged(this.#held ?? emptyStaged(), staged)
    for (const b of staged.batches) {
      this.#heldOps += b.ops.length
      for (const op of b.ops) this.#heldCids.add(op.cid)
    }
    // Due after holdMs: it rides along with the next write's commit, or, if none comes within
    // another holdMs, commits on its own.
    this.#cancelHoldTimer ??= d.clock.timeout(d.holdMs, () => {
      this.#overdue = true
      this.#cancelHoldTimer = d.clock.timeout(d.holdMs, () => {
        this.#cancelHoldTimer = undefined
        this.flushHeld()
      })
    })
    return true
  }

  /** What is held has waited `holdMs`, is as large as a hold gets, or a read needs it. */
  #due(): boolean {
    return this.#held !== undefined &&
      (this.#flushWanted || this.#overdue || this.#heldOps >= this.#d.holdMaxOps)
  }

  /** `staged` after what is held, which is no longer held. */
  #takeHeld(staged: StagedApply): StagedApply {
    const held = this.#held
    if (!held) return staged
    this.#held = undefined
    this.#heldOps = 0
    this.#heldCids.clear()
    this.#flushWanted = false
    this.#overdue = false
    this.#cancelHoldTimer?.()
    this.#cancelHoldTimer = undefined
    return appendStaged(held, staged)
  }

  /** Commits what is held on its own (no Ready brought a write to ride along with). */
  async #persistHeld(): Promise<void> {
    const { storage, fsm, handlers } = this.#d
    const held = this.#takeHeld(emptyStaged())
    const durable = storage.hardState()
    const hs = { ...durable, commit: Math.max(durable.commit, held.lastIndex) }
    await storage.persist([], hs, held.groups)
    fsm.applyDone(held)
    handlers.applied(held)
    handlers.reads([])
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
