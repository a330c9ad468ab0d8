/**
 * The life of a pin or unpin proposed on this peer, from the caller's `logPin` to its applied
 * batch: queued while no leader is known (up to `wait_for_leader_timeout`), grouped into one log
 * entry with whatever else is queued when the loop next looks (group commit, up to
 * `maxOpsPerEntry` operations and `maxEntryBytes`), in flight until the entry is applied here,
 * and proposed again — `commit_retries` times, `commit_retry_delay` apart — when it timed out
 * (`network_timeout`), was dropped, was overwritten by another leader or was overtaken. It is
 * apart from the host because this is the one part that holds callers' promises: every path out
 * of it settles each of them exactly once.
 *
 * Entries carry (peer, seq). Seqs grow with time (`resumeAfter`), so the state machine's dedupe
 * table (fsm.ts) drops a batch the network delivered twice, and a batch of ours applied after a
 * later one can no longer apply: what is still in flight below an applied seq is retried.
 *
 * @example
 * ```ts
 * const proposals = new Proposals({ self, cfg, tuning, clock, log, propose, leader, schedule, stopped })
 * proposals.resumeAfter(fsm.lastSeq(self))
 * const done = proposals.submit(encodeOp(op)) // resolves once committed and in the log here
 * proposals.flush()                           // in the loop, before each Ready
 * ```
 *
 * @module
 */
import { errorMessage } from '../../errors.ts'
import { formatDuration } from '../../types/duration.ts'
import type { Logger } from '../../util/log.ts'
import type { CancelTimer, Clock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import {
  CommitTimeoutError,
  NoLeaderError,
  ProposalDroppedError,
  type ProposalResult,
} from './core/mod.ts'
import { encodeBatch, type EncodedOp, encodedOpSize } from './entry_codec.ts'
import type { AppliedBatch } from './fsm.ts'

/** What `Proposals` needs from the host. */
export interface ProposalsDeps {
  self: string
  cfg: Pick<
    RaftConfig,
    'commit_retries' | 'commit_retry_delay' | 'wait_for_leader_timeout' | 'network_timeout'
  >
  tuning: {
    maxOpsPerEntry: number
    maxEntryBytes: number
    maxForwardsInFlight: number
    forwardPatienceMs: number
  }
  clock: Clock
  log: Logger
  /** Proposes one entry to the core (appended here when leading, else forwarded). */
  propose(data: Uint8Array): ProposalResult
  /** The leader as this peer knows it (itself when leading), or null. */
  leader(): string | null
  /** Asks the loop for a look (a retry queued an operation again). */
  schedule(): void
  stopped(): boolean
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
  /** The leader it was forwarded to, if forwarded. */
  forwardedTo?: string
}

/** This peer's proposals; see the module comment. */
export class Proposals {
  readonly #d: ProposalsDeps
  #queue: Request[] = []
  readonly #inflight = new Map<number, InFlight>()
  /** Log index → seq, for entries this peer appended as leader. */
  readonly #localIndex = new Map<number, number>()
  #seq = 0
  readonly #retryTimers = new Set<CancelTimer>()
  /** Batches forwarded to `#window.leader`, not settled yet, and when (seq → time). */
  #window = { leader: '', sent: new Map<number, number>() }

  constructor(deps: ProposalsDeps) {
    this.#d = deps
  }

  /** Numbers the next batches above `lastSeq` and above any seq an earlier run may have used. */
  resumeAfter(lastSeq: number): void {
    this.#seq = Math.max(lastSeq, this.#d.clock.now() * 1000)
  }

  /** Queues an operation; resolves once the entry holding it is acknowledged (`applied`). */
  submit(op: EncodedOp, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    return new Promise<void>((resolve, reject) => {
      const r: Request = {
        op,
        resolve,
        reject,
        retriesLeft: this.#d.cfg.commit_retries,
        leaderDeadline: this.#d.clock.now() + this.#d.cfg.wait_for_leader_timeout,
        done: false,
      }
      if (signal) {
        const onAbort = () => settle(r, signal.reason)
        signal.addEventListener('abort', onAbort, { once: true })
        const done = () => signal.removeEventListener('abort', onAbort)
        r.resolve = () => (done(), resolve())
        r.reject = (e) => (done(), reject(e))
      }
      this.#queue.push(r)
      this.#d.schedule()
    })
  }

  /**
   * Turns queued operations into log entries (forwarded by the core when we follow). A follower
   * keeps at most `maxForwardsInFlight` batches on their way to its leader: what arrives
   * meanwhile waits for one of them to settle and goes in one batch. Without the window a busy
   * follower forwarded nearly every operation on its own (each inbound message runs the loop),
   * and the leader appended and replicated each as an entry: ~7× the Raft messages of the same
   * load through the leader. A forward unanswered after `forwardPatienceMs` stops holding the
   * window (it stays in flight until its own deadline): one the network or a busy leader dropped
   * delays the others by that, not by `network_timeout`.
   */
  flush(): void {
    if (this.#queue.length === 0) return
    const leader = this.#d.leader()
    if (leader === null) return
    // The leader this peer forwards to, if it follows one.
    const followed = leader === this.#d.self ? null : leader
    if (followed !== null && this.#windowFull(followed)) return
    const { maxOpsPerEntry, maxEntryBytes } = this.#d.tuning
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
      const data = encodeBatch(this.#d.self, seq, reqs.map((r) => r.op))
      let res
      try {
        res = this.#d.propose(data)
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
        deadline: this.#d.clock.now() + this.#d.cfg.network_timeout,
      }
      if ('index' in res) {
        f.index = res.index
        this.#localIndex.set(res.index, seq)
      } else if (followed !== null) {
        f.forwardedTo = followed
        this.#window.sent.set(seq, this.#d.clock.now())
      }
      this.#inflight.set(seq, f)
      if (f.forwardedTo !== undefined && this.#windowFull(f.forwardedTo)) {
        this.#queue = q.slice(i)
        return
      }
    }
    this.#queue = []
  }

  /** Deadlines of the queue (no leader) and of entries in flight (no commit). Every tick. */
  expire(now: number): void {
    if (this.#queue.length > 0) {
      const keep: Request[] = []
      for (const r of this.#queue) {
        if (r.done) continue
        if (now >= r.leaderDeadline) settle(r, noLeader(this.#d.cfg.wait_for_leader_timeout))
        else keep.push(r)
      }
      this.#queue = keep
    }
    for (const [seq, f] of this.#inflight) {
      if (now < f.deadline) continue
      this.#drop(seq)
      this.#retry(f.reqs, commitTimeout(this.#d.cfg.network_timeout))
    }
  }

  /**
   * A batch was applied here, or committed with its application held (ready_loop.ts): either
   * way its order among the batches is decided. When it is ours, settles its callers and retries our
   * earlier batches still in flight (overtaken: their seq is now too low to apply). Returns the
   * operations as our callers submitted them (their `pin` saves the hooks a parse), if ours.
   */
  applied(b: AppliedBatch): readonly EncodedOp[] | undefined {
    if (b.origin !== this.#d.self) return undefined
    const f = this.#drop(b.seq)
    if (f) { for (const r of f.reqs) settle(r) }
    for (const [seq] of this.#inflight) {
      if (seq >= b.seq) break
      const lost = this.#drop(seq)
      if (lost) this.#retry(lost.reqs, new ProposalDroppedError('the entry was overtaken'))
    }
    return f?.reqs.map((r) => r.op)
  }

  /** Entries we appended as leader up to `index` that were not applied: another leader's won. */
  appliedThrough(index: number): void {
    for (const [i, seq] of this.#localIndex) {
      if (i > index) continue
      const f = this.#drop(seq)
      if (f) this.#retry(f.reqs, new ProposalDroppedError('the entry was lost in a leader change'))
    }
  }

  /**
   * A snapshot up to `index` replaced the log. Our batches inside it (seq ≤ `lastSeq`, from its
   * dedupe table): the last surely applied; earlier ones are ambiguous and go again.
   */
  snapshotInstalled(index: number, lastSeq: number): void {
    for (const [seq, f] of [...this.#inflight]) {
      if (seq > lastSeq) break
      this.#drop(seq)
      if (seq === lastSeq) { for (const r of f.reqs) settle(r) }
      else this.#retry(f.reqs, new ProposalDroppedError('the entry was replaced by a snapshot'))
    }
    this.appliedThrough(index)
  }

  /** Rejects every caller with `err` (stop, or the node failed). */
  failAll(err: Error): void {
    const reqs = [...this.#queue]
    this.#queue = []
    for (const f of this.#inflight.values()) reqs.push(...f.reqs)
    this.#inflight.clear()
    this.#localIndex.clear()
    for (const r of reqs) settle(r, err)
  }

  /** Cancels the retry timers (stop). */
  cancelRetries(): void {
    for (const cancel of this.#retryTimers) cancel()
    this.#retryTimers.clear()
  }

  #drop(seq: number): InFlight | undefined {
    const f = this.#inflight.get(seq)
    if (!f) return undefined
    this.#inflight.delete(seq)
    if (f.index !== undefined && this.#localIndex.get(f.index) === seq) {
      this.#localIndex.delete(f.index)
    }
    if (this.#window.sent.delete(seq) && this.#queue.length > 0) {
      // What waited for the window goes now.
      this.#d.schedule()
    }
    return f
  }

  /**
   * True if `leader`'s window holds `maxForwardsInFlight` forwards still within their patience.
   * Forwards to an earlier leader no longer count: they settle by their own deadline.
   */
  #windowFull(leader: string): boolean {
    if (this.#window.leader !== leader) this.#window = { leader, sent: new Map() }
    const { maxForwardsInFlight, forwardPatienceMs } = this.#d.tuning
    if (this.#window.sent.size < maxForwardsInFlight) return false
    const since = this.#d.clock.now() - forwardPatienceMs
    for (const [seq, at] of this.#window.sent) if (at <= since) this.#window.sent.delete(seq)
    return this.#window.sent.size >= maxForwardsInFlight
  }

  /** A proposal failed in a way worth retrying: again after `commit_retry_delay`, or give up. */
  #retry(reqs: Request[], err: unknown): void {
    const { cfg, clock, log } = this.#d
    for (const r of reqs) {
      if (r.done) continue
      if (r.retriesLeft <= 0 || this.#d.stopped()) {
        settle(r, err)
        continue
      }
      r.retriesLeft--
      log.warn(`raft: retrying a commit: ${errorMessage(err)}`)
      const cancel = clock.timeout(cfg.commit_retry_delay, () => {
        this.#retryTimers.delete(cancel)
        if (this.#d.stopped() || r.done) return
        r.leaderDeadline = clock.now() + cfg.wait_for_leader_timeout
        this.#queue.push(r)
        this.#d.schedule()
      })
      this.#retryTimers.add(cancel)
    }
  }
}

/** What a caller reads when no leader came in time: the wait, the key, and what it needs. */
function noLeader(waitedMs: number): NoLeaderError {
  return new NoLeaderError(
    `no leader after waiting ${formatDuration(waitedMs)} (wait_for_leader_timeout): a write ` +
      "needs a majority of the cluster's peers running and reachable",
  )
}

/** What a caller reads when the last attempt was not applied in time. */
function commitTimeout(waitedMs: number): CommitTimeoutError {
  return new CommitTimeoutError(
    `timed out waiting for the operation to commit within network_timeout ` +
      `(${formatDuration(waitedMs)}): a write needs a majority of the cluster's peers running ` +
      'and reachable',
  )
}

function settle(r: Request, err?: unknown): void {
  if (r.done) return
  r.done = true
  if (err === undefined) r.resolve()
  else r.reject(err)
}
