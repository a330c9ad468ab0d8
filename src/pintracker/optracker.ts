/**
 * The operation tracker: at most one operation per CID. A new operation of the same type as a
 * queued or running one only refreshes its pin; any other new operation cancels and replaces the
 * current one, carrying the attempt count over when the type is the same (a retry).
 *
 * @example
 * ```ts
 * const ops = new OperationTracker(Date.now)
 * const op = ops.trackNew(pin, 'pin', 'queued') // Operation
 * ops.trackNew(pin, 'pin', 'queued') // undefined: already queued
 * ```
 */
import type { Pin } from '../types/pin.ts'
import { Operation, type OperationCounters, type OperationType, type Phase } from './operation.ts'

/** Operations by canonical CID string. */
export class OperationTracker {
  #ops = new Map<string, Operation>()
  #counters: OperationCounters = { pinQueued: 0 }

  constructor(private readonly now: () => number) {}

  /**
   * Starts tracking a new operation, or returns undefined when an operation of the same type is
   * already queued or running (its pin is updated: options may have changed).
   */
  trackNew(pin: Pin, type: OperationType, phase: Phase): Operation | undefined {
    const old = this.#ops.get(pin.cid)
    if (old) {
      if (old.type === type && old.phase !== 'error' && old.phase !== 'done') {
        old.pin = pin
        return undefined
      }
      old.cancel()
    }
    const op = new Operation(pin, type, phase, this.now(), this.#counters)
    if (old && old.type === type) op.attemptCount = old.attemptCount
    this.#ops.set(pin.cid, op)
    return op
  }

  /** Forgets the operation if it is still the CID's current one (a newer one stays). */
  clean(op: Operation): void {
    if (this.#ops.get(op.cid) === op) this.#ops.delete(op.cid)
  }

  /** The CID's current operation. */
  get(cid: string): Operation | undefined {
    return this.#ops.get(cid)
  }

  /** Every current operation; live iteration, safe while operations come and go. */
  values(): IterableIterator<Operation> {
    return this.#ops.values()
  }

  /** Number of tracked operations. */
  get size(): number {
    return this.#ops.size
  }

  /** Pin operations waiting in a queue. */
  pinQueueSize(): number {
    return this.#counters.pinQueued
  }
}
