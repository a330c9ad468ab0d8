/**
 * When to trim the Raft log, and how far. The pinset in KV already is the applied state
 * (fsm.ts), so compacting needs no copy of it: a metadata-only snapshot at the applied index is
 * recorded, then the log is trimmed up to it, less `trailing_logs` entries kept for followers
 * slightly behind (bounded by `maxTrailingBytes`: they live in memory). It is due every
 * `snapshot_interval` once `snapshot_threshold` entries were applied since the last point, or at
 * once when the log outgrows `maxLogBytes`. A policy apart from the host and from snapshot
 * streams: it runs between Readys and never while a snapshot of the pinset is being taken (that
 * snapshot reads the entries after its scan began).
 *
 * @example
 * ```ts
 * const compaction = new Compaction({ cfg, tuning, clock, log, storage, fsm, node, busy })
 * await compaction.maybeCompact() // in the loop, after each Ready
 * ```
 *
 * @module
 */
import type { Logger } from '../../util/log.ts'
import type { Clock } from '../../util/clock.ts'
import type { RaftConfig } from './config.ts'
import type { RaftNode } from './core/mod.ts'
import type { PinFsm } from './fsm.ts'
import type { KvRaftStorage } from './kv_storage.ts'

/** What `Compaction` needs from the host. */
export interface CompactionDeps {
  cfg: Pick<RaftConfig, 'snapshot_interval' | 'snapshot_threshold' | 'trailing_logs'>
  tuning: { maxLogBytes: number; maxTrailingBytes: number }
  clock: Pick<Clock, 'now'>
  log: Logger
  storage: KvRaftStorage
  fsm: Pick<PinFsm, 'applied' | 'forgetBefore'>
  node: Pick<RaftNode, 'basicStatus' | 'snapshotMetaAt'>
  /** True while a snapshot of the pinset is being taken: no compaction then. */
  busy(): boolean
}

/** The log compaction policy; see the module comment. */
export class Compaction {
  readonly #d: CompactionDeps
  #lastCheck: number

  constructor(deps: CompactionDeps) {
    this.#d = deps
    this.#lastCheck = deps.clock.now()
  }

  /** Records a compaction point and trims the log when due (`force`: now). */
  async maybeCompact(force = false): Promise<void> {
    const { cfg, tuning, storage, fsm, node } = this.#d
    if (this.#d.busy()) return
    const applied = Math.min(fsm.applied, node.basicStatus().commit)
    const now = this.#d.clock.now()
    const byBytes = storage.logBytes() > tuning.maxLogBytes
    const byInterval = now - this.#lastCheck >= cfg.snapshot_interval
    if (byInterval) this.#lastCheck = now
    const due = force || byBytes ||
      (byInterval && applied - storage.snapshot().index >= cfg.snapshot_threshold)
    if (!due) return
    if (applied > storage.snapshot().index) {
      await storage.setSnapshot(node.snapshotMetaAt(applied), null)
    }
    let to = Math.min(storage.snapshot().index, applied - cfg.trailing_logs)
    // Bound what the trailing entries may hold: they live in memory.
    let kept = 0
    for (let i = Math.min(applied, storage.lastIndex()); i > to && i >= storage.firstIndex(); i--) {
      kept += storage.entries(i, i + 1, Infinity)[0].data.byteLength
      if (kept > tuning.maxTrailingBytes) {
        to = i
        break
      }
    }
    if (to >= storage.firstIndex()) {
      await storage.compact(to)
      fsm.forgetBefore(to + 1)
      this.#d.log.debug(`raft: compacted the log up to ${to}`)
    }
  }
}
