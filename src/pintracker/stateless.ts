/**
 * The stateless pin tracker (reference §5.5): makes this peer's IPFS daemon follow the shared
 * pinset without keeping a copy of it. Only operations in flight or in error are held in memory;
 * every status is derived from the state, the operation tracker and IPFS when asked.
 *
 * - `track` of a pin allocated here (or everywhere) queues a pin: O(1), IPFS is never awaited
 *   on this path. A pin allocated elsewhere is dropped from IPFS at once.
 * - Pin operations go to a priority queue while the pin is young and has not failed too often,
 *   else to the normal queue; `concurrent_pins` workers drain the priority queue first. One
 *   worker drains the unpin queue.
 * - `start()` starts the workers and the start-up sync (a recover of everything, then again every
 *   `recoverIntervalMs`). Pins that expire are unpinned through consensus by the cluster's
 *   state-sync loop; the tracker sees them as `untrack`.
 *
 * @example
 * ```ts
 * const tracker = statelessTracker(statelessSection.defaults(), {
 *   peerId, peername: () => 'peer0', ipfs, state: () => consensus.state(),
 *   recoverIntervalMs: 12 * 60_000,
 * })
 * await tracker.start()
 * await tracker.track(pin)
 * for await (const info of tracker.statusAll(0)) console.log(info.status)
 * await tracker.stop()
 * ```
 */
import type { IPFSConnector, PinTracker, StateReader } from '../components.ts'
import { errorMessage, IPFSError, isAbortError, ShutdownError } from '../errors.ts'
import { normalizeCid, parseCid, tryParseCid } from '../types/cid.ts'
import { DigestSet } from '../util/digest_set.ts'
import { isPinEverywhere, newPin, type Pin } from '../types/pin.ts'
import type { PinInfo } from '../types/pininfo.ts'
import { filterCanMatch, statusMatches, type TrackerStatus } from '../types/status.ts'
import { formatTime, parseTime, ZERO_TIME } from '../types/time.ts'
import type { StatelessConfig } from './config.ts'
import { QueueFullError, UNEXPECTEDLY_UNPINNED } from './errors.ts'
import type { Operation } from './operation.ts'
import { OperationTracker } from './optracker.ts'
import { BoundedQueue, Waiters } from './queue.ts'

/** Log levels the tracker reports at. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** What the stateless tracker needs from the peer. */
export interface StatelessDeps {
  /** This cluster peer's ID: pins whose allocations hold it are pinned here. */
  peerId: string
  peername: () => string
  ipfs: IPFSConnector
  /** The current pinset (read at each use: consensus may swap it on snapshot restore). */
  state: () => StateReader
  /** The IPFS daemon's identity for PinInfo (a cached value: called on every status). */
  ipfsId?: () => { id?: string; addresses?: string[] }
  /** How often `start()` re-runs the recover of everything (`pin_recover_interval`); 0 = never. */
  recoverIntervalMs?: number
  /** Epoch ms; injected by tests. */
  now?: () => number
  log?: (level: LogLevel, msg: string) => void
}

/** The stateless PinTracker, plus introspection for tests and metrics. */
export interface StatelessTracker extends PinTracker {
  /** Number of operations held (queued, running or in error). */
  operationCount(): number
}

// Workers yield to the event loop this often: with an IPFS that answers at once (a double, a
// warm cache) a worker would otherwise chain microtasks through the whole queue and starve I/O.
const YIELD_EVERY = 128

/**
 * Builds the stateless tracker. Workers start with `start()`: pins tracked before then wait in
 * the queues (IPFS may not be up yet).
 */
export function statelessTracker(config: StatelessConfig, deps: StatelessDeps): StatelessTracker {
  const now = deps.now ?? Date.now
  const log = deps.log ?? (() => {})
  const ops = new OperationTracker(now)
  const capacity = config.max_pin_queue_size
  const priorityQueue = new BoundedQueue<Operation>(capacity)
  const pinQueue = new BoundedQueue<Operation>(capacity)
  const unpinQueue = new BoundedQueue<Operation>(capacity)
  const pinWaiters = new Waiters()
  const unpinWaiters = new Waiters()
  const running = new Set<Operation>()
  const stopController = new AbortController()
  const stopSignal = stopController.signal
  let started = false
  let stopping: Promise<void> | undefined
  const loops: Promise<void>[] = []

  const isRemote = (pin: Pin) => !isPinEverywhere(pin) && !pin.allocations.includes(deps.peerId)

  function pinTime(pin: Pin): number {
    try {
      return parseTime(pin.timestamp)
    } catch {
      return 0
    }
  }

  function enqueue(pin: Pin, type: 'pin' | 'unpin'): void {
    const op = ops.trackNew(pin, type, 'queued')
    if (!op) return // same operation already queued or running
    let queue = unpinQueue
    if (type === 'pin') {
      op.priority = now() < pinTime(pin) + config.priority_pin_max_age &&
        op.attemptCount <= config.priority_pin_max_retries
      queue = op.priority ? priorityQueue : pinQueue
    }
    if (!queue.push(op)) {
      const err = new QueueFullError()
      op.setError(err.message, now())
      op.cancel()
      log('error', err.message)
      throw err
    }
    if (type === 'pin') pinWaiters.notify()
    else unpinWaiters.notify()
  }

  /** Runs one operation; done operations leave the tracker, failed ones stay with the error. */
  async function apply(op: Operation, run: (op: Operation) => Promise<void>): Promise<void> {
    if (op.canceled) return
    op.setPhase('in_progress', now())
    op.attemptCount++
    running.add(op)
    try {
      await run(op)
    } catch (err) {
      if (op.canceled || stopSignal.aborted) return // replaced or stopping: not a failure
      op.setError(errorMessage(err), now())
      op.cancel()
      log('error', `${op.type} ${op.cid}: ${errorMessage(err)}`)
      return
    } finally {
      running.delete(op)
    }
    op.setPhase('done', now())
    op.cancel()
    ops.clean(op)
  }

  const doPin = (op: Operation) => deps.ipfs.pin(op.pin, { signal: op.signal() })
  const doUnpin = (op: Operation) => unpinIgnoringNotPinned(op.cid, op.signal())

  async function unpinIgnoringNotPinned(cid: string, signal: AbortSignal): Promise<void> {
    try {
      await deps.ipfs.unpin(cid, signal)
    } catch (err) {
      // Connectors already treat "not pinned" as success; this guards one that does not.
      if (!/not pinned/i.test(errorMessage(err))) throw err
    }
  }

  async function worker(
    take: () => Operation | undefined,
    waiters: Waiters,
    run: (op: Operation) => Promise<void>,
  ): Promise<void> {
    let n = 0
    while (!stopSignal.aborted) {
      const op = take()
      if (!op) {
        await waiters.wait()
        continue
      }
      await apply(op, run)
      if (++n % YIELD_EVERY === 0) await new Promise((r) => setTimeout(r, 0))
    }
  }

  function ipfsIdentity(): { id?: string; addresses?: string[] } {
    try {
      return deps.ipfsId?.() ?? {}
    } catch {
      return {}
    }
  }

  function info(
    cid: string,
    pin: Pin | undefined,
    status: TrackerStatus,
    timestamp: string,
    ipfsid: { id?: string; addresses?: string[] },
  ): PinInfo {
    return {
      cid,
      name: pin?.name ?? '',
      peer: deps.peerId,
      allocations: pin ? pin.allocations : null,
      origins: pin ? pin.origins : null,
      created: pin ? pin.timestamp : ZERO_TIME,
      metadata: pin ? pin.metadata : null,
      peername: deps.peername(),
      ipfs_peer_id: ipfsid.id,
      ipfs_peer_addresses: ipfsid.addresses,
      status,
      timestamp,
      error: '',
      attempt_count: 0,
      priority_pin: false,
    }
  }

  function opInfo(op: Operation, ipfsid: { id?: string; addresses?: string[] }): PinInfo {
    const pi = info(op.cid, op.pin, op.status(), formatTime(op.ts), ipfsid)
    pi.error = op.error
    pi.attempt_count = op.attemptCount
    pi.priority_pin = op.priority
    return pi
  }

  async function status(cidArg: string, signal?: AbortSignal): Promise<PinInfo> {
    const cid = normalizeCid(cidArg)
    const ipfsid = ipfsIdentity()
    const op = ops.get(cid)
    if (op) return opInfo(op, ipfsid)
    const pi = info(cid, undefined, 'unpinned', formatTime(now()), ipfsid)
    const fail = (err: unknown) => {
      pi.status = 'cluster_error'
      pi.error = errorMessage(err)
      return pi
    }
    let pin: Pin | undefined
    try {
      pin = await deps.state().get(cid)
    } catch (err) {
      return fail(err)
    }
    if (!pin) return pi
    Object.assign(pi, info(cid, pin, 'unpinned', pin.timestamp, ipfsid))
    if (pin.type === 'meta-pin') {
      pi.status = 'sharded'
    } else if (isRemote(pin)) {
      pi.status = 'remote'
    } else {
      try {
        const held = await deps.ipfs.pinLsCid(pin, signal)
        if (held === 'recursive' || held === 'direct') {
          pi.status = 'pinned'
        } else {
          pi.status = 'unexpectedly_unpinned'
          pi.error = UNEXPECTEDLY_UNPINNED
        }
      } catch (err) {
        return fail(err)
      }
    }
    return pi
  }

  /**
   * The daemon's recursive and direct pins as multihash keys: the one IPFS pinset the tracker
   * holds, and only while a status listing that can report pinned/unexpectedly_unpinned runs.
   * Keys are multihashes because daemons list CIDs in other versions than they were pinned with.
   */
  async function ipfsPinKeys(signal?: AbortSignal): Promise<DigestSet> {
    const keys = new DigestSet()
    try {
      for (const type of ['recursive', 'direct'] as const) {
        for await (const p of deps.ipfs.pinLs(type, signal)) {
          const c = tryParseCid(p.cid)
          if (c) keys.add(c.multihash.bytes)
        }
      }
    } catch (err) {
      if (isAbortError(err)) throw err
      throw new IPFSError(`could not get pinset from IPFS: ${errorMessage(err)}`)
    }
    return keys
  }

  /** Status of every state pin (operations win), each with its state pin for recover. */
  async function* statusAllWithPins(
    filter: number,
    signal?: AbortSignal,
  ): AsyncGenerator<[PinInfo, Pin | undefined]> {
    const ipfsid = ipfsIdentity()
    if (!filterCanMatch(filter, 'pinned', 'unexpectedly_unpinned', 'sharded', 'remote')) {
      // Every other status only exists as an operation.
      for (const op of ops.values()) {
        if (stopSignal.aborted) return
        const pi = opInfo(op, ipfsid)
        if (statusMatches(pi.status, filter)) yield [pi, op.pin]
      }
      return
    }
    const inIpfs = filterCanMatch(filter, 'pinned', 'unexpectedly_unpinned')
      ? await ipfsPinKeys(signal)
      : undefined
    for await (const pin of deps.state().list(signal)) {
      if (stopSignal.aborted) return
      const op = ops.get(pin.cid)
      if (op) {
        const pi = opInfo(op, ipfsid)
        if (statusMatches(pi.status, filter)) yield [pi, pin]
        continue
      }
      let st: TrackerStatus
      if (pin.type === 'meta-pin') st = 'sharded'
      else if (isRemote(pin)) st = 'remote'
      else if (!inIpfs) continue // the filter matches neither pinned nor unexpectedly_unpinned
      else st = inIpfs.has(parseCid(pin.cid).multihash.bytes) ? 'pinned' : 'unexpectedly_unpinned'
      if (!statusMatches(st, filter)) continue
      const pi = info(pin.cid, pin, st, pin.timestamp, ipfsid)
      if (st === 'unexpectedly_unpinned') pi.error = UNEXPECTEDLY_UNPINNED
      yield [pi, pin]
    }
  }

  /** Re-queues a failed item; undefined when there was nothing to recover. */
  async function recoverWith(
    pi: PinInfo,
    pin: Pin | undefined,
    signal?: AbortSignal,
  ): Promise<PinInfo | undefined> {
    switch (pi.status) {
      case 'pin_error':
      case 'unexpectedly_unpinned': {
        // Re-read the pin when we have none: it may have changed or left the pinset meanwhile.
        const current = pin ?? await deps.state().get(pi.cid)
        if (!current) return status(pi.cid, signal)
        log('info', `Restarting pin operation for ${pi.cid}`)
        enqueue(current, 'pin')
        break
      }
      case 'unpin_error':
        log('info', `Restarting unpin operation for ${pi.cid}`)
        enqueue(ops.get(pi.cid)?.pin ?? pin ?? newPin(pi.cid), 'unpin')
        break
      default:
        return undefined
    }
    return status(pi.cid, signal)
  }

  async function* recoverAll(signal?: AbortSignal): AsyncGenerator<PinInfo> {
    for await (const [pi, pin] of statusAllWithPins(0, signal)) {
      if (stopSignal.aborted) throw new ShutdownError('RecoverAll aborted: tracker stopped')
      const rec = await recoverWith(pi, pin, signal)
      if (rec) yield rec
    }
    // Unpins that failed for CIDs already gone from the pinset are not in the state listing;
    // retry them too (the reference leaves them in error forever).
    for (const op of ops.values()) {
      if (stopSignal.aborted) return
      if (op.type !== 'unpin' || op.phase !== 'error') continue
      if (await deps.state().has(op.cid)) continue
      enqueue(op.pin, 'unpin')
      yield await status(op.cid, signal)
    }
  }

  async function recoverLoop(): Promise<void> {
    const interval = deps.recoverIntervalMs ?? 0
    while (!stopSignal.aborted) {
      let n = 0
      try {
        for await (const _ of recoverAll(stopSignal)) n++
        if (n) log('info', `recover: re-queued ${n} items`)
      } catch (err) {
        if (!stopSignal.aborted) log('error', `recover: ${errorMessage(err)}`)
      }
      if (interval <= 0 || stopSignal.aborted) return
      await sleep(interval, stopSignal)
    }
  }

  return {
    start(_signal?: AbortSignal): Promise<void> {
      if (started || stopSignal.aborted) return Promise.resolve()
      started = true
      const take = () => priorityQueue.shift() ?? pinQueue.shift()
      for (let i = 0; i < config.concurrent_pins; i++) {
        loops.push(worker(take, pinWaiters, doPin))
      }
      loops.push(worker(() => unpinQueue.shift(), unpinWaiters, doUnpin))
      loops.push(recoverLoop())
      return Promise.resolve()
    },

    async track(pin: Pin): Promise<void> {
      if (stopSignal.aborted) throw new ShutdownError('pin tracker is shut down')
      // Meta pins are never pinned and never turn into anything else.
      if (pin.type === 'meta-pin') return
      if (!isRemote(pin)) return enqueue(pin, 'pin')
      // Allocated elsewhere: drop it from this daemon now, as the reference does.
      const op = ops.trackNew(pin, 'remote', 'in_progress')
      if (!op) return
      running.add(op)
      try {
        await unpinIgnoringNotPinned(pin.cid, op.signal())
      } catch (err) {
        op.cancel()
        op.setError(errorMessage(err), now())
        log('error', `unpin of remote ${pin.cid}: ${errorMessage(err)}`)
        return
      } finally {
        running.delete(op)
      }
      op.setPhase('done', now())
      op.cancel()
      ops.clean(op)
    },

    untrack(pin: Pin): Promise<void> {
      if (stopSignal.aborted) return Promise.reject(new ShutdownError('pin tracker is shut down'))
      try {
        enqueue(pin, 'unpin')
        return Promise.resolve()
      } catch (err) {
        return Promise.reject(err)
      }
    },

    status,

    async *statusAll(filter: number, signal?: AbortSignal): AsyncIterable<PinInfo> {
      for await (const [pi] of statusAllWithPins(filter, signal)) yield pi
    },

    async recover(cid: string, signal?: AbortSignal): Promise<PinInfo> {
      const pi = await status(cid, signal)
      return (await recoverWith(pi, undefined, signal)) ?? pi
    },

    recoverAll,

    pinQueueSize: () => ops.pinQueueSize(),

    operationCount: () => ops.size,

    stop(): Promise<void> {
      stopping ??= (async () => {
        stopController.abort()
        for (const op of running) op.cancel()
        pinWaiters.notifyAll()
        unpinWaiters.notifyAll()
        await Promise.allSettled(loops)
      })()
      return stopping
    },
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const t = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
