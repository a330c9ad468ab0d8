/**
 * One pin-tracker operation on one CID: its type, phase, attempts and error. The status the
 * tracker reports for a CID with an operation comes from here.
 *
 * @example
 * ```ts
 * const op = new Operation(pin, 'pin', 'queued', Date.now(), counters)
 * op.status() // 'pin_queued'
 * ```
 */
import type { Pin } from '../types/pin.ts'
import type { TrackerStatus } from '../types/status.ts'

/** What an operation does: pin, unpin, or drop a pin allocated elsewhere (`remote`). */
export type OperationType = 'pin' | 'unpin' | 'remote'

/** Where an operation stands. Done operations leave the tracker; errored ones stay. */
export type Phase = 'error' | 'queued' | 'in_progress' | 'done'

/** Counters the tracker keeps across its operations (the `pinqueue` informer reads one). */
export interface OperationCounters {
  /** Pin operations in the queued phase that are still the CID's current operation. */
  pinQueued: number
}

const STATUS: Record<OperationType, Record<Phase, TrackerStatus>> = {
  pin: { error: 'pin_error', queued: 'pin_queued', in_progress: 'pinning', done: 'pinned' },
  unpin: {
    error: 'unpin_error',
    queued: 'unpin_queued',
    in_progress: 'unpinning',
    done: 'unpinned',
  },
  remote: { error: 'remote', queued: 'remote', in_progress: 'remote', done: 'remote' },
}

/** Whoever queued an operation and wants to know when it ends (a sync pass counts its own). */
export interface OperationOrigin {
  /** Called once, when the operation is done, failed, or was replaced before it ended. */
  settled(op: Operation): void
}

/** An operation. Mutated only by the tracker and its workers. */
export class Operation {
  phase: Phase
  attemptCount = 0
  priority = false
  error = ''
  /** The sync pass that queued (or retried) this operation, to be told when it ends. */
  origin: OperationOrigin | undefined
  /** Queued by a sync pass behind every other pin operation (never on the last free worker). */
  background = false
  /** The trace context of the request that queued it, when tracing is on (tracing.ts). */
  trace: unknown = undefined
  /** Epoch ms of the last phase change (the PinInfo timestamp). */
  ts: number
  #canceled = false
  // Created only when the operation runs: a million queued operations need no AbortControllers.
  #controller: AbortController | undefined

  constructor(
    public pin: Pin,
    readonly type: OperationType,
    phase: Phase,
    now: number,
    private readonly counters: OperationCounters,
  ) {
    this.phase = phase
    this.ts = now
    if (type === 'pin' && phase === 'queued') counters.pinQueued++
  }

  /** The CID (canonical string) this operation is about. */
  get cid(): string {
    return this.pin.cid
  }

  /** True once replaced, finished, failed or stopped; a queued canceled operation is skipped. */
  get canceled(): boolean {
    return this.#canceled
  }

  /** The signal the running IPFS call listens to; aborted by `cancel`. */
  signal(): AbortSignal {
    this.#controller ??= new AbortController()
    if (this.#canceled) this.#controller.abort()
    return this.#controller.signal
  }

  /** Moves to a phase, stamping the time. A canceled operation no longer counts as queued. */
  setPhase(phase: Phase, now: number): void {
    if (this.type === 'pin' && !this.#canceled) {
      if (this.phase === 'queued') this.counters.pinQueued--
      if (phase === 'queued') this.counters.pinQueued++
    }
    this.phase = phase
    this.ts = now
  }

  /** Moves to the error phase with a message. */
  setError(message: string, now: number): void {
    this.setPhase('error', now)
    this.error = message
  }

  /** Cancels: aborts a running IPFS call and makes a queued operation a no-op. Idempotent. */
  cancel(): void {
    if (this.#canceled) return
    if (this.type === 'pin' && this.phase === 'queued') this.counters.pinQueued--
    this.#canceled = true
    // A finished call listens no more; abort() would only build a DOMException (ingest profile).
    if (this.phase === 'queued' || this.phase === 'in_progress') this.#controller?.abort()
  }

  /** The tracker status this type and phase stand for. */
  status(): TrackerStatus {
    return STATUS[this.type][this.phase]
  }
}
