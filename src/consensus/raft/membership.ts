/**
 * Who is in the cluster, as this peer has applied it, and the operations that change it:
 * `addPeer` (a learner first, promoted to voter once it caught up, so a new peer never counts
 * toward a quorum it cannot serve), `rmPeer`, `transferLeadership`. A change is one Raft
 * configuration change at a time; while another is in flight, the leader unknown or the learner
 * behind, the change is proposed again every `commit_retry_delay` until its deadline. Kept apart
 * from the host because the applied configuration (what callers see and wait for) differs from
 * the core's latest (what is in the log), and only applied entries and installed snapshots move
 * it.
 *
 * @example
 * ```ts
 * const members = new Membership({ self, cfg, tickMs, electionTick, clock, log, node, waiters, ... })
 * members.reset(node.snapshotMetaAt(fsm.applied).confState)
 * await members.addPeer('12D3KooW…')
 * ```
 *
 * @module
 */
import { ConsensusError } from '../../errors.ts'
import type { Logger } from '../../util/log.ts'
import type { Clock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import {
  type ConfChange,
  ConfChangeInProgressError,
  type ConfChangeRecord,
  type ConfState,
  LearnerBehindError,
  NoLeaderError,
  ProposalDroppedError,
  type RaftNode,
} from './core/mod.ts'
import type { Waiters } from '../../util/waiters.ts'

/** What `Membership` needs from the host. */
export interface MembershipDeps {
  self: string
  cfg: Pick<RaftConfig, 'network_timeout' | 'commit_retry_delay'>
  tickMs: number
  electionTick: number
  clock: Pick<Clock, 'now'>
  log: Logger
  node: Pick<RaftNode, 'proposeConfChange' | 'status' | 'basicStatus' | 'transferLeadership'>
  waiters: Waiters
  schedule(): void
  /** Throws when the host stopped or failed. */
  check(): void
  halted(): boolean
}

/** The applied membership and its changes; see the module comment. */
export class Membership {
  readonly #d: MembershipDeps
  #applied: ConfState = { voters: [], learners: [] }
  #removed = false

  constructor(deps: MembershipDeps) {
    this.#d = deps
  }

  /** The membership this peer applied. */
  get applied(): ConfState {
    return this.#applied
  }

  /** True once this peer applied its own removal (it then proposes nothing). */
  get removed(): boolean {
    return this.#removed
  }

  /** The membership of a snapshot (at start, or installed): it replaces what was applied. */
  reset(cs: ConfState): void {
    this.#applied = cs
    if (cs.voters.includes(this.#d.self) || cs.learners.includes(this.#d.self)) {
      this.#removed = false
    }
  }

  /** Configuration changes applied (durably) by a Ready. */
  confApplied(records: readonly { record: ConfChangeRecord }[]): void {
    for (const { record } of records) {
      this.#applied = record.conf
      const { type, id } = record.change
      this.#d.log.info(`raft: membership change applied: ${type} ${id}`)
      if (type === 'removeNode' && id === this.#d.self) {
        this.#removed = true
        this.#d.log.warn('raft: this peer was removed from the cluster')
      }
    }
  }

  async addPeer(id: string, signal?: AbortSignal): Promise<void> {
    this.#d.check()
    if (this.#applied.voters.includes(id)) return
    // A learner first: it catches up without counting toward quorums, then it is promoted.
    const timeout = Math.max(this.#d.cfg.network_timeout * 6, 60_000)
    await this.#change(
      { type: 'addLearner', id },
      (cs) => cs.voters.includes(id) || cs.learners.includes(id),
      timeout,
      signal,
    )
    await this.#change({ type: 'addVoter', id }, (cs) => cs.voters.includes(id), timeout, signal)
  }

  async rmPeer(id: string, signal?: AbortSignal): Promise<void> {
    this.#d.check()
    const member = (cs: ConfState) => cs.voters.includes(id) || cs.learners.includes(id)
    if (!member(this.#applied) && !member(this.#d.node.status().confState)) return
    await this.#change(
      { type: 'removeNode', id },
      (cs) => !member(cs),
      this.#d.cfg.network_timeout,
      signal,
    )
  }

  async transferLeadership(to: string, signal?: AbortSignal): Promise<void> {
    const d = this.#d
    d.check()
    d.node.transferLeadership(to)
    d.schedule()
    await d.waiters.waitFor(
      () => d.node.basicStatus().leader === to,
      d.tickMs * d.electionTick * 3,
      signal,
      () => new ConsensusError(`leadership transfer to ${to} did not complete`),
    )
  }

  /** Proposes `cc` until `done` holds for the applied membership, or its deadline passes. */
  async #change(
    cc: ConfChange,
    done: (cs: ConfState) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const d = this.#d
    const deadline = d.clock.now() + timeoutMs
    const pause = Math.max(d.cfg.commit_retry_delay, d.tickMs * 2)
    for (;;) {
      d.check()
      if (done(this.#applied)) return
      if (d.clock.now() >= deadline) {
        throw new ConsensusError(`timed out applying the membership change ${cc.type} ${cc.id}`)
      }
      const inLog = done(d.node.status().confState)
      if (!inLog) {
        try {
          d.node.proposeConfChange(cc)
          d.schedule()
        } catch (err) {
          const transient = err instanceof ConfChangeInProgressError ||
            err instanceof LearnerBehindError || err instanceof ProposalDroppedError ||
            err instanceof NoLeaderError
          if (!transient) throw err
        }
      }
      await d.waiters.waitFor(
        () => done(this.#applied) || d.halted(),
        Math.min(pause, Math.max(1, deadline - d.clock.now())),
        signal,
        () => new Error('pause'),
      ).catch((err) => {
        if (signal?.aborted) throw err
      })
    }
  }
}
