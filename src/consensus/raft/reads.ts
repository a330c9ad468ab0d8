/**
 * Linearizable reads by ReadIndex (Raft thesis §6.4): a read asks the leader for its commit
 * index, the leader confirms it still leads with a heartbeat round, and the read is served from
 * the local state once this peer applied that index — no log entry, no disk write. Kept apart
 * from the host because a read's life (asked, confirmed, served, timed out, retried) is its own
 * and holds callers' promises: every path settles each exactly once.
 *
 * @example
 * ```ts
 * const reads = new Reads({ self, cfg, clock, readIndex: (ctx) => node.readIndex(ctx), ... })
 * const index = await reads.barrier(signal)
 * reads.confirmed(rd.readStates); reads.serve(fsm.applied) // in the loop
 * ```
 *
 * @module
 */
import { ConsensusError } from '../../errors.ts'
import type { Clock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import type { ReadState } from './core/mod.ts'

/** What `Reads` needs from the host. */
export interface ReadsDeps {
  self: string
  cfg: Pick<
    RaftConfig,
    'commit_retries' | 'commit_retry_delay' | 'wait_for_leader_timeout' | 'network_timeout'
  >
  clock: Pick<Clock, 'now'>
  /** Asks the core for a read index under `ctx` (throws when it cannot, e.g. no leader). */
  readIndex(ctx: string): void
  /** Resolves once a leader is known (rejects after `timeoutMs`, or when the host stopped). */
  waitLeader(timeoutMs: number, signal?: AbortSignal): Promise<void>
  /** Waits `ms` (cut short by a stop). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
  schedule(): void
  /** Throws when the host stopped or failed. */
  check(): void
  /** True once the host stopped or failed: a failed read is not retried. */
  halted(): boolean
}

interface PendingRead {
  resolve: (index: number) => void
  reject: (err: unknown) => void
  deadline: number
  index?: number
}

/** Pending ReadIndex reads; see the module comment. */
export class Reads {
  readonly #d: ReadsDeps
  readonly #pending = new Map<string, PendingRead>()
  #seq = 0

  constructor(deps: ReadsDeps) {
    this.#d = deps
  }

  /**
   * Resolves with the index a linearizable read may be served at, once this peer applied it.
   * Retried `commit_retries` times when the leader did not confirm (`network_timeout`).
   */
  async barrier(signal?: AbortSignal): Promise<number> {
    const d = this.#d
    let lastErr: unknown
    for (let attempt = 0; attempt <= d.cfg.commit_retries; attempt++) {
      d.check()
      await d.waitLeader(d.cfg.wait_for_leader_timeout, signal)
      const ctx = `${d.self}/${++this.#seq}`
      try {
        d.readIndex(ctx)
      } catch (err) {
        lastErr = err
        await d.sleep(d.cfg.commit_retry_delay, signal)
        continue
      }
      const p = new Promise<number>((resolve, reject) => {
        this.#pending.set(ctx, {
          resolve,
          reject,
          deadline: d.clock.now() + d.cfg.network_timeout,
        })
      })
      d.schedule()
      try {
        return await abortable(p, signal)
      } catch (err) {
        this.#pending.delete(ctx)
        if (signal?.aborted || d.halted()) throw err
        lastErr = err
      }
    }
    throw lastErr
  }

  /** The leader confirmed these reads at these indexes. */
  confirmed(states: readonly ReadState[]): void {
    for (const rs of states) {
      const r = this.#pending.get(rs.ctx)
      if (r) r.index = rs.index
    }
  }

  /** True if a confirmed read waits for an index above `applied`. */
  waitingAbove(applied: number): boolean {
    for (const r of this.#pending.values()) {
      if (r.index !== undefined && r.index > applied) return true
    }
    return false
  }

  /** Serves the confirmed reads whose index is applied. */
  serve(applied: number): void {
    for (const [ctx, r] of this.#pending) {
      if (r.index !== undefined && r.index <= applied) {
        this.#pending.delete(ctx)
        r.resolve(r.index)
      }
    }
  }

  /** Reads the leader did not confirm in time fail (and are retried by `barrier`). Every tick. */
  expire(now: number): void {
    for (const [ctx, r] of this.#pending) {
      if (now < r.deadline) continue
      this.#pending.delete(ctx)
      r.reject(new ConsensusError('timed out waiting for a read confirmation from the leader'))
    }
  }

  /** Rejects every pending read with `err` (stop, or the node failed). */
  failAll(err: Error): void {
    for (const r of this.#pending.values()) r.reject(err)
    this.#pending.clear()
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
