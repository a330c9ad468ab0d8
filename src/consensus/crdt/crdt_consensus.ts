/**
 * The cluster's Consensus on a Merkle-CRDT (IPFS Cluster 1.1.6 `consensus/crdt/consensus.go`):
 * every peer holds a replica of the pinset (replica.ts, a port of go-ds-crdt); a pin is a CRDT
 * put of its `api.pb.Pin` bytes (pin_pb.ts) at `dsKey(cid)`, an unpin a CRDT delete. There is no
 * leader and no membership: the peerset is every peer whose latest `peerset_metric` ("ping")
 * is valid, plus this peer.
 *
 * The pinset view. The replica's merges tell this component, inside their own KV commit
 * (`ReplicaHooks.view`), which value now wins for a key; the view writes that pin's stored JSON
 * under `['pin', <cid>]` through the state's one writer (state/pinset_writer.ts), so every
 * listing path of the Raft peer (state/kv_state.ts) reads the CRDT pinset unchanged, and a crash
 * never leaves the view and the replica apart. The merge's last commit bumps the state's "applied
 * index" (a counter of merges that changed the view here, `ReplicaHooks.merged`): the pin
 * tracker's clean-stop mark and the Pinning Service index's mark hold for a pinset that did not
 * move, exactly as under Raft.
 *
 * After the commit, `onPut` tracks the pin (Go's PutHook → PinTracker.Track). `onDelete` fires for
 * every tombstoned key (Go's DeleteHook → Untrack), even when another version of the pin survived
 * the tombstone; Go then untracks a pin that is still in the pinset, here the survivor is tracked
 * instead (the view says which): see docs/compat.md.
 *
 * Batching (`consensus.crdt.batching`, on when both a size and an age are set): logPin/logUnpin
 * queue the operation (at most `max_queue_size` waiting: beyond that Go's error) and resolve once
 * queued, as Go's do; the queue commits as one delta at `max_batch_size` items, at
 * `max_batch_age` after its first item, and on stop. Until then reads do not see the operation.
 *
 * What CRDT consensus does not have: a leader (`leader()` rejects with Go's error), removing
 * peers (`rmPeer` rejects with Go's error), linearizable reads (`readBarrier` resolves at once:
 * a read sees what this replica merged so far).
 *
 * @example
 * ```ts
 * const consensus = crdtConsensus(cfg, {
 *   peerId, state, hooks,
 *   replica: (replicaHooks) => crdtReplica({ ...replicaDeps, hooks: replicaHooks }, opts),
 *   validPeers: (metric) => monitor.latestMetrics(metric).filter(isValid).map((m) => m.peer),
 * })
 * await consensus.ready()
 * await consensus.logPin(pin)
 * ```
 *
 * @module
 */
import type { ApplyHooks, Consensus, StateReader } from '../../components.ts'
import { ConsensusError, errorMessage, ShutdownError } from '../../errors.ts'
import type { PinState } from '../../state/kv_state.ts'
import { checkPinSize } from '../../state/pinset_writer.ts'
import type { Mutation } from '../../state/kv_batch.ts'
import { parseCid } from '../../types/cid.ts'
import { encodePin, newPin, type Pin, storedPin } from '../../types/pin.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { cidFromDsKey, dsKey } from './codec.ts'
import { batchingEnabled, type CrdtConfig, trustChecker } from './config.ts'
import { decodePinPb, encodePinPb } from './pin_pb.ts'
import type { Replica, ReplicaHooks } from './types.ts'

/** Go's `ErrNoLeader` text. */
export const NO_LEADER = 'crdt consensus component does not provide a leader'
/** Go's `ErrRmPeer` text. */
export const CANNOT_REMOVE = 'crdt consensus component cannot remove peers'
/** Go's `ErrMaxQueueSizeReached` text. */
export const QUEUE_FULL = 'batching max_queue_size reached. Too many operations are waiting to ' +
  'be batched. Try increasing the max_queue_size or adjusting the batching options'

const encoder = new TextEncoder()

/** What `crdtConsensus` needs. */
export interface CrdtConsensusDeps {
  /** This peer's ID (always trusted, always in the peerset). */
  peerId: string
  /** The pinset view; lives in the replica's KV database. */
  state: PinState
  /** Builds the replica with this component's hooks (the view and the apply hooks). */
  replica: (hooks: ReplicaHooks) => Replica
  /** What follows a merge here: the tracker, the Pinning Service index. */
  hooks: ApplyHooks
  /** Peers whose latest metric of this name is valid (the monitor's view). */
  validPeers: (metric: string) => string[]
  /** Peers trusted beyond `trusted_peers` (Go: the `--bootstrap` peers, unless `--no-trust`). */
  trusted?: Iterable<string>
  /** The batch age timer (default: the system clock). */
  clock?: Clock
  log?: Logger
}

/** The CRDT consensus: Consensus plus what the daemon and the `state crdt` tools ask. */
export interface CrdtConsensus extends Consensus {
  /** Resolves once the replica started; rejects if it could not. */
  readonly opened: Promise<void>
  /** The replica (heads, stats, repair). */
  readonly replica: Replica
  /** Operations waiting in the batch queue (0 without batching). */
  queued(): number
}

interface Op {
  key: string
  value?: Uint8Array
}

/** Builds the CRDT consensus of one peer and starts its replica. */
export function crdtConsensus(cfg: CrdtConfig, deps: CrdtConsensusDeps): CrdtConsensus {
  const log = deps.log ?? nullLogger
  const clock = deps.clock ?? systemClock
  const { state, hooks } = deps
  const isTrusted = trustChecker(cfg, deps.peerId, deps.trusted ?? [])
  let stopped = false
  let stopping: Promise<void> | undefined
  // The view's change counter, the state's applied index (see the module comment): loaded before
  // the replica merges anything.
  let applied = 0

  /** The pin's canonical CID of a replica key; undefined for keys that are no pin. */
  const cidOf = (key: string): string | undefined => {
    try {
      return cidFromDsKey(key).toString()
    } catch {
      return undefined
    }
  }
  const decode = (key: string, cid: string, value: Uint8Array): Pin | undefined => {
    try {
      return decodePinPb(value, cid)
    } catch (err) {
      log.error(
        `pin ${key} in the CRDT cannot be read, left out of the pinset: ${errorMessage(err)}`,
      )
      return undefined
    }
  }

  const replicaHooks: ReplicaHooks = {
    view(key, value): Mutation[] {
      const cid = cidOf(key)
      if (cid === undefined) return []
      const pin = value && decode(key, cid, value)
      if (!pin) return [state.writer.unpin(cid)]
      const json = encoder.encode(encodePin(pin))
      try {
        checkPinSize(cid, json.length)
      } catch (err) {
        // A peer of another implementation wrote a pin the state cannot hold: the merge goes on
        // without it rather than stopping every later merge.
        log.error(`${errorMessage(err)}: left out of the pinset here`)
        return [state.writer.unpin(cid)]
      }
      return [state.writer.pin(cid, json)]
    },
    // Once per merge, in its last commit (one mutation a merge, not one a pin): the tracker's
    // clean-stop mark holds only while nothing was merged since it was put.
    merged: () => [state.writer.applied(++applied)],
    onPut(key, value) {
      state.writer.written()
      const cid = cidOf(key)
      const pin = cid && decode(key, cid, value)
      if (!pin) return
      log.info(`new pin added: ${pin.cid}`)
      hooks.onPin(pin)
    },
    onDelete(key) {
      const cid = cidOf(key)
      if (cid === undefined) return
      log.info(`pin removed: ${cid}`)
      // Another version may have survived the tombstone: the view holds whatever won.
      void state.get(cid).then(
        (survivor) => survivor ? hooks.onPin(survivor) : hooks.onUnpin(newPin(cid)),
        (err) => {
          if (!stopped) log.warn(`pin ${cid} removed: reading the view: ${errorMessage(err)}`)
        },
      )
    },
  }
  const replica = deps.replica(replicaHooks)
  const batch = batchingEnabled(cfg)
    ? new BatchQueue(cfg.batching, (ops) => replica.commitBatch(ops), clock, log)
    : undefined

  const opened = (async () => {
    applied = await state.appliedIndex()
    await replica.start()
    if (cfg.trusted_peers.includes('*')) {
      log.info("'trust all' mode enabled. Any peer in the cluster can modify the pinset.")
    }
    if (batch) {
      log.info(
        `'crdt batching' enabled: ${cfg.batching.max_batch_size} items / ` +
          `${cfg.batching.max_batch_age / 1000}s`,
      )
    }
  })()
  opened.catch(() => {}) // reported by ready()

  /** The replica key and protobuf bytes of a pin, checked before anything is written. */
  const encode = (pin: Pin): Op => {
    const cid = parseCid(pin.cid)
    checkPinSize(pin.cid, encoder.encode(encodePin(storedPin(pin))).length)
    return { key: dsKey(cid), value: encodePinPb(pin) }
  }
  const live = async (signal?: AbortSignal) => {
    if (stopped) throw new ShutdownError('consensus is shut down')
    signal?.throwIfAborted()
    await opened
  }

  return {
    opened,
    replica,
    queued: () => batch?.size() ?? 0,

    async ready(signal) {
      signal?.throwIfAborted()
      await opened
    },

    async logPin(pin, signal) {
      const op = encode(pin)
      await live(signal)
      if (batch) return batch.add(op)
      await replica.put(op.key, op.value!, signal)
    },

    async logUnpin(pin, signal) {
      const key = dsKey(parseCid(pin.cid))
      await live(signal)
      if (batch) return batch.add({ key })
      await replica.delete(key, signal)
    },

    // Merkle-CRDTs have no peerset to manage: a peer is a member while its pings are valid.
    addPeer: () => Promise.resolve(),
    rmPeer: () => Promise.reject(new ConsensusError(CANNOT_REMOVE)),
    leader: () => Promise.reject(new ConsensusError(NO_LEADER)),

    state: (): StateReader => state,

    // No linearizable reads: a read sees what this replica merged so far.
    readBarrier: () => Promise.resolve(applied),

    peers(signal) {
      signal?.throwIfAborted()
      const peers = new Set(deps.validPeers(cfg.peerset_metric))
      peers.add(deps.peerId)
      return Promise.resolve([...peers].sort())
    },

    isTrustedPeer: isTrusted,

    stop() {
      stopping ??= (async () => {
        // The queue's last batch commits before the replica stops (Go: commit on shutdown).
        try {
          await batch?.close()
        } catch (err) {
          log.error(`error committing batch during shutdown: ${errorMessage(err)}`)
        }
        stopped = true
        await opened.catch(() => {})
        await replica.stop()
      })()
      return stopping
    },
  }
}

/**
 * Go's batching worker: operations wait in a queue of at most `max_queue_size`; a batch commits
 * at `max_batch_size` operations, `max_batch_age` after its first one, and on close. One commit
 * runs at a time; operations arriving meanwhile form the next batch.
 */
class BatchQueue {
  #waiting: Op[] = []
  #timer: CancelTimer | undefined
  #running: Promise<void> | undefined
  #closed = false

  constructor(
    readonly limits: { max_batch_size: number; max_batch_age: number; max_queue_size: number },
    readonly commit: (ops: Op[]) => Promise<void>,
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  size(): number {
    return this.#waiting.length
  }

  /** Queues an operation; resolves once queued (not committed), as Go's LogPin does. */
  add(op: Op): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new ShutdownError('shutting down. Pin could not be batched'))
    }
    if (this.#waiting.length >= this.limits.max_queue_size) {
      const err = new ConsensusError(`error batching item: ${QUEUE_FULL}`)
      this.log.error(err.message)
      return Promise.reject(err)
    }
    this.#waiting.push(op)
    this.#schedule()
    return Promise.resolve()
  }

  /** Starts the age timer for a new batch, or commits a full one. */
  #schedule(): void {
    if (this.#running) return // the commit in flight schedules what follows it
    if (this.#waiting.length >= this.limits.max_batch_size) this.#run('size')
    else if (this.#waiting.length > 0) this.#startTimer()
  }

  #startTimer(): void {
    this.#timer ??= this.clock.timeout(this.limits.max_batch_age, () => {
      this.#timer = undefined
      this.#run('max age')
    })
  }

  #run(why: string, all = false): Promise<void> {
    this.#timer?.()
    this.#timer = undefined
    const ops = this.#waiting.splice(0, all ? this.#waiting.length : this.limits.max_batch_size)
    const running = (async () => {
      let failed = false
      try {
        await this.commit(ops)
        this.log.info(`batch commit (${why}): ${ops.length} items`)
      } catch (err) {
        // Kept for the next commit, as Go keeps a failed batch pending; retried one batch age
        // later rather than at once (a failure that lasts must not spin).
        failed = true
        this.#waiting.unshift(...ops)
        this.log.error(`error committing batch after reaching ${why}: ${errorMessage(err)}`)
        if (all) throw err
      } finally {
        this.#running = undefined
      }
      if (this.#closed) return
      if (failed) this.#startTimer()
      else this.#schedule()
    })()
    this.#running = running
    return running
  }

  /** Refuses new operations and commits everything waiting, once the commit in flight is done. */
  async close(): Promise<void> {
    this.#closed = true
    this.#timer?.()
    this.#timer = undefined
    while (this.#running) await this.#running.catch(() => {})
    if (this.#waiting.length > 0) await this.#run('shutdown', true)
  }
}
