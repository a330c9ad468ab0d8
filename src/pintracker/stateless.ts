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
 * - `start()` starts the workers and the start-up sync: a sync pass (`sync.ts`) that walks the
 *   state against a snapshot of the IPFS pin list and queues what is missing a window at a time,
 *   behind every other pin operation, then again every `recoverIntervalMs`. Pins it has not
 *   reached yet report `pin_queued`. Pins that expire are unpinned through consensus by the
 *   cluster's state-sync loop; the tracker sees them as `untrack`.
 * - Failures are logged rate-limited (`failure_log.ts`); a pass that queued anything ends with one
 *   summary line.
 * - A clean stop leaves a mark (`syncMark`): the digest of the IPFS pinset as the tracker knows
 *   it (the last pass's snapshot, with every pin and unpin that succeeded since; a few numbers,
 *   whatever the pinset's size), written only
 *   when that pass completed without failures, nothing failed since and no operation is left —
 *   IPFS then held every local pin. The next start takes the mark out; when the fresh snapshot
 *   has the same digest and the pinset is the one the mark was recorded with (the state checks
 *   its applied index, and drops the mark on any new pinset), the start-up pass walks nothing.
 *   A million-pin restart then costs the IPFS listing, not a walk of the state too. Anything
 *   else (a crash, a pin removed in IPFS meanwhile, an import) walks as usual.
 * - `resync()` (a Raft snapshot replaced the pinset) starts a new sync pass at once, replacing
 *   the running one: the snapshot's pins never went through `track`. Before start, it makes the
 *   start-up pass walk whatever the mark says. Either way the pins IPFS holds that the new
 *   pinset allocates elsewhere are unpinned, as `track` would have done for each.
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
import { clusterMetrics } from '../observations/metrics.ts'
import { takeTrace, traceOperation, tracingEnabled } from '../observations/tracing.ts'
import type { IPFSConnector, PinTracker, StateReader } from '../components.ts'
import { errorMessage, IPFSError, isAbortError, ShutdownError } from '../errors.ts'
import { compareCidKeys, multihashView, normalizeCid } from '../types/cid.ts'
import { DigestSet, type DigestSum } from '../util/digest_set.ts'
import { isPinEverywhere, newPin, type Pin } from '../types/pin.ts'
import type { PinInfo } from '../types/pininfo.ts'
import { filterCanMatch, statusMatches, type TrackerStatus } from '../types/status.ts'
import { formatDuration } from '../types/duration.ts'
import { formatTime, parseTime, ZERO_TIME } from '../types/time.ts'
import type { StatelessConfig } from './config.ts'
import { QueueFullError, UNEXPECTEDLY_UNPINNED } from './errors.ts'
import { FailureLog } from './failure_log.ts'
import type { Operation, OperationOrigin } from './operation.ts'
import { OperationTracker } from './optracker.ts'
import { BoundedQueue, Waiters } from './queue.ts'
import { SyncPass, type SyncSummary } from './sync.ts'
import { Pacer } from './pacer.ts'
import { type Clock, systemClock, yieldToLoop } from '../util/clock.ts'

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
  /** Time and sleeps (default systemClock); tests inject a manual one. */
  clock?: Pick<Clock, 'now' | 'sleep'>
  log?: (level: LogLevel, msg: string) => void
  /** How often one kind of failure is logged (default FAILURE_LOG_INTERVAL_MS). */
  failureLogIntervalMs?: number
  /**
   * Where the tracker keeps its mark across restarts (the state's KV; see the module comment):
   * `put` at a clean stop, `take` at start (which also removes it).
   */
  syncMark?: { put(mark: string): Promise<void>; take(): Promise<string | undefined> }
  /** The peer's foreground (API requests): background work steps aside while it is busy. */
  foreground?: { busy(): boolean }
}

/** The stateless PinTracker, plus introspection for tests and metrics. */
export interface StatelessTracker extends PinTracker {
  /** Number of operations held (queued, running or in error). */
  operationCount(): number
  /** True while a sync pass (start-up sync, recover) is walking or waiting for what it queued. */
  syncing(): boolean
  /** Live operations by status (the metrics' per-status gauges): O(operations), not pinset. */
  statusCounts(): Map<string, number>
  /** Operations waiting in each queue. */
  queueLengths(): [string, number][]
}

// Workers yield to the event loop this often: with an IPFS that answers at once (a double, a
// warm cache) a worker would otherwise chain microtasks through the whole queue and starve I/O.
const YIELD_EVERY = 128

// Pin operations a sync pass keeps queued at once (it queues more when half are taken): enough
// to keep every worker busy, few enough that a million-pin backlog costs nothing.
export const SYNC_WINDOW = 1024

/** The command that lists failed pins, for log lines. */
const LIST_ERRORS = 'ipfs-cluster-ctl status --filter pin_error'

/**
 * Builds the stateless tracker. Workers start with `start()`: pins tracked before then wait in
 * the queues (IPFS may not be up yet).
 */
export function statelessTracker(config: StatelessConfig, deps: StatelessDeps): StatelessTracker {
  const clock = deps.clock ?? systemClock
  const now = () => clock.now()
  const log = deps.log ?? (() => {})
  const ops = new OperationTracker(now)
  const capacity = config.max_pin_queue_size
  const priorityQueue = new BoundedQueue<Operation>(capacity)
  const pinQueue = new BoundedQueue<Operation>(capacity)
  const unpinQueue = new BoundedQueue<Operation>(capacity)
  // What sync passes queue: taken only when both pin queues are empty.
  const syncQueue = new BoundedQueue<Operation>(SYNC_WINDOW)
  const pinWaiters = new Waiters()
  const unpinWaiters = new Waiters()
  const syncRoom = new Waiters()
  // New pins must not wait behind a backlog: sync operations leave one worker to the pin queues.
  const maxSyncRunning = Math.max(1, config.concurrent_pins - 1)
  let syncRunning = 0
  const failures = new FailureLog(log, now, deps.failureLogIntervalMs)
  const pacer = new Pacer({ busy: () => deps.foreground?.busy() ?? false, clock })
  const running = new Set<Operation>()
  const stopController = new AbortController()
  const stopSignal = stopController.signal
  let started = false
  let stopping: Promise<void> | undefined
  const loops: Promise<void>[] = []
  /** The current (or last) sync pass; statuses of pins it has not reached come from it. */
  let pass: SyncPass | undefined
  /** A pass asked for by recoverAll, for the sync loop to run next. */
  let nextPass: SyncPass | undefined
  let wakeSyncLoop: (() => void) | undefined
  /** How many pins the last IPFS listing held. */
  let lastIpfsPins = 0
  /** failureCount when the current pass (`pass`) began. */
  let passStartFailures = 0
  /**
   * The IPFS pinset as the tracker knows it, as a digest in constant memory: the snapshot of the
   * last sync pass, with every pin and unpin that succeeded since. The mark of a clean stop. (A
   * CID pinned again while IPFS held it already counts twice: the next start then walks.)
   */
  let known: DigestSum | undefined
  /** The IPFS snapshot of the pass the sync loop runs, from its listing until the pass ends. */
  let passSnapshot: DigestSet | undefined
  /** Failed operations so far; a pass is verified only if none failed since it began. */
  let failureCount = 0
  /** failureCount when the last pass that completed without failures began; -1: none did. */
  let verifiedAt = -1
  /** The mark recorded at the last clean stop, taken out at start. */
  let markAtStart: Promise<string | undefined> | undefined
  /** resync() before start: the mark describes a pinset a restored snapshot replaced. */
  let restoredBeforeStart = false

  const isRemote = (pin: Pin) => !isPinEverywhere(pin) && !pin.allocations.includes(deps.peerId)
  const isLocal = (pin: Pin) => pin.type !== 'meta-pin' && !isRemote(pin)

  function pinTime(pin: Pin): number {
    try {
      return parseTime(pin.timestamp)
    } catch {
      return 0
    }
  }

  /** Queues an operation; `origin` (a sync pass) counts it in its summary. */
  function enqueue(pin: Pin, type: 'pin' | 'unpin', origin?: SyncPass): void {
    const op = ops.trackNew(pin, type, 'queued')
    if (!op) return // same operation already queued or running
    op.trace = takeTrace(pin.cid) // the API request's trace, when this peer committed it
    origin?.adopt(op)
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
      failureCount++
      failures.failed(type, pin.cid, err.message)
      throw err
    }
    if (type === 'pin') pinWaiters.notify()
    else unpinWaiters.notify()
  }

  /** A pin operation for a sync pass, behind every other pin operation. */
  function queueForSync(pin: Pin, origin: OperationOrigin): boolean {
    const op = ops.trackNew(pin, 'pin', 'queued')
    if (!op) return false
    op.origin = origin
    op.background = true
    if (!syncQueue.push(op)) {
      // The pass asks full() first, so this does not happen; never leave the op stuck if it does.
      op.cancel()
      ops.clean(op)
      return false
    }
    pinWaiters.notify()
    return true
  }

  /** A sync pass's operation, unless they hold every worker but one already. */
  function takeSync(): Operation | undefined {
    if (syncRunning >= maxSyncRunning) return undefined
    const op = syncQueue.shift()
    if (!op) return undefined
    syncRunning++ // from here until apply() ends, pacing wait included
    if (syncQueue.size <= SYNC_WINDOW / 2) syncRoom.notifyAll()
    return op
  }

  /**
   * A pin (or unpin) that succeeded, into what the tracker knows of IPFS. While a pass runs, its
   * snapshot is exact: it is kept current too (the pass then does not pin again what an API pin
   * just pinned), and `known` changes only when the snapshot did. Between passes `known` alone
   * changes (see its comment).
   */
  function recordDone(pinned: boolean, cid: string): void {
    if (!known) return
    const mh = multihashView(cid) // decoded once for both (valid until the next decode)
    if (!mh) return
    const snapshot = passSnapshot
    if (pinned) {
      if (snapshot?.has(mh)) return
      snapshot?.add(mh)
      known.add(mh)
    } else if (!snapshot || snapshot.delete(mh)) {
      known.delete(mh)
    }
  }

  /** Runs one operation; done operations leave the tracker, failed ones stay with the error. */
  async function apply(op: Operation, run: (op: Operation) => Promise<void>): Promise<void> {
    if (!op.origin) return applyOnce(op, run)
    try {
      await applyOnce(op, run)
    } finally {
      op.origin.settled(op)
      if (op.background) {
        syncRunning--
        // A worker may have parked because sync operations held every worker it could.
        pinWaiters.notify()
      }
    }
  }

  async function applyOnce(op: Operation, run: (op: Operation) => Promise<void>): Promise<void> {
    if (op.canceled) return
    op.setPhase('in_progress', now())
    op.attemptCount++
    running.add(op)
    const m = clusterMetrics
    const t0 = m ? performance.now() : 0
    try {
      if (!tracingEnabled()) await run(op)
      else {
        const name = op.type === 'pin' ? 'pintracker/Pin' : 'pintracker/Unpin'
        await traceOperation(op.trace, name, op.cid, () => run(op))
      }
    } catch (err) {
      if (op.canceled || stopSignal.aborted) return // replaced or stopping: not a failure
      m?.opDuration.observe((performance.now() - t0) / 1000, op.type, 'error')
      op.setError(errorMessage(err), now())
      op.cancel()
      failureCount++
      failures.failed(op.type, op.cid, op.error)
      return
    } finally {
      running.delete(op)
    }
    m?.opDuration.observe((performance.now() - t0) / 1000, op.type, 'ok')
    recordDone(op.type === 'pin', op.cid)
    op.setPhase('done', now())
    op.cancel()
    ops.clean(op)
  }

  const doPin = (op: Operation) => deps.ipfs.pin(op.pin, { signal: op.signal() })
  const doUnpin = (op: Operation) => unpinIgnoringNotPinned(op.cid, op.signal(), op.pin.max_depth)

  /** `maxDepth`: the pin's, so that a shard's connector also drops what it pinned below it. */
  async function unpinIgnoringNotPinned(
    cid: string,
    signal: AbortSignal,
    maxDepth: number,
  ): Promise<void> {
    try {
      await deps.ipfs.unpin(cid, signal, maxDepth)
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
      if (op.background) {
        // Catch-up work waits for its turn behind the API; the operation is already taken, so
        // it stays pin_queued meanwhile and no other worker runs it.
        try {
          await pacer.turn(stopSignal)
        } catch {
          return // stopping
        }
      }
      await apply(op, run)
      if (++n % YIELD_EVERY === 0) await yieldToLoop()
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

  /** A pin the current sync pass has not reached yet: queued, as far as anyone can tell. */
  function owedInfo(pin: Pin, p: SyncPass, ipfsid: { id?: string; addresses?: string[] }) {
    return info(pin.cid, pin, 'pin_queued', formatTime(p.started), ipfsid)
  }

  /** The running pass, if any (a finished or abandoned one owes nothing). */
  function activePass(): SyncPass | undefined {
    return pass && !pass.done ? pass : undefined
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
      const p = activePass()
      const owed = p?.owes(cid)
      if (p && owed) return owedInfo(pin, p, ipfsid)
      try {
        const held = await deps.ipfs.pinLsCid(pin, signal)
        if (held === 'recursive' || held === 'direct') {
          pi.status = 'pinned'
        } else if (p && owed === undefined && !p.done) {
          // The pass is still listing IPFS: it will find this pin missing and queue it.
          return owedInfo(pin, p, ipfsid)
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
  async function ipfsPinKeys(signal?: AbortSignal, pace?: boolean): Promise<DigestSet> {
    // Sized for the last listing: a set that grows while a million CIDs go in rehashes them.
    const keys = new DigestSet(lastIpfsPins)
    try {
      for (const type of ['recursive', 'direct'] as const) {
        let n = 0
        for await (const p of deps.ipfs.pinLs(type, signal)) {
          keys.addCid(p.cid)
          if (pace && ++n % 256 === 0) await pacer.turn(signal)
        }
      }
    } catch (err) {
      if (isAbortError(err)) throw err
      throw new IPFSError(`could not get pinset from IPFS: ${errorMessage(err)}`)
    }
    lastIpfsPins = keys.size
    return keys
  }

  /**
   * Status of every state pin (operations win), each with its state pin for recover and whether
   * the running sync pass still owes it (`pin_queued` without an operation).
   */
  async function* statusAllWithPins(
    filter: number,
    signal?: AbortSignal,
  ): AsyncGenerator<{ pi: PinInfo; pin: Pin | undefined; owed: boolean }> {
    const ipfsid = ipfsIdentity()
    const p = activePass()
    const owedCanMatch = p !== undefined && statusMatches('pin_queued', filter)
    if (
      !owedCanMatch &&
      !filterCanMatch(filter, 'pinned', 'unexpectedly_unpinned', 'sharded', 'remote')
    ) {
      // Every other status only exists as an operation. In key order, as the state walk below:
      // the cluster merges every peer's stream one CID at a time (cluster/merge.ts). The
      // operations are in memory already; the sort holds references to them.
      for (const op of [...ops.values()].sort((a, b) => compareCidKeys(a.cid, b.cid))) {
        if (stopSignal.aborted) return
        const pi = opInfo(op, ipfsid)
        if (statusMatches(pi.status, filter)) yield { pi, pin: op.pin, owed: false }
      }
      return
    }
    // The IPFS pin list: to tell pinned from unexpectedly_unpinned, and to stand in for the
    // pass's snapshot while the pass is still taking it.
    const heldCanMatch = filterCanMatch(filter, 'pinned', 'unexpectedly_unpinned')
    const inIpfs = heldCanMatch || (owedCanMatch && p.listing)
      ? await ipfsPinKeys(signal)
      : undefined
    for await (const e of deps.state().scan({ signal })) {
      if (stopSignal.aborted) return
      // Most walks meet no operation; an empty map still hashes every fresh key string (4 % of a
      // streaming peer's CPU in a profile of GET /pins).
      const op = ops.size === 0 ? undefined : ops.get(e.cid)
      if (op) {
        const pi = opInfo(op, ipfsid)
        if (statusMatches(pi.status, filter)) yield { pi, pin: op.pin, owed: false }
        continue
      }
      // Owed by the pass: its cursor has not reached the pin and its snapshot (or, while it is
      // still listing, the list just read) lacks it. Decided from the key, like `held`.
      const owed = p !== undefined &&
        (p.owes(e.cid) ?? (inIpfs !== undefined && !inIpfs.hasCid(e.cid)))
      const held = inIpfs?.hasCid(e.cid)
      // Skip unparsed what the filter cannot match: a pin not owed is pinned, remote or sharded
      // when held, and unexpectedly_unpinned, remote or sharded when not.
      if (!owed && !filterCanMatch(filter, 'remote', 'sharded')) {
        if (!inIpfs) continue
        if (held && !statusMatches('pinned', filter)) continue
        if (!held && !statusMatches('unexpectedly_unpinned', filter)) continue
      }
      const pin = parseStoredPin(e.value)
      if (!pin) continue
      let st: TrackerStatus
      if (pin.type === 'meta-pin') st = 'sharded'
      else if (isRemote(pin)) st = 'remote'
      else if (owed) st = 'pin_queued'
      else if (!inIpfs) continue // the filter matches neither pinned nor unexpectedly_unpinned
      else st = held ? 'pinned' : 'unexpectedly_unpinned'
      if (!statusMatches(st, filter)) continue
      if (st === 'pin_queued') {
        yield { pi: owedInfo(pin, p!, ipfsid), pin, owed: true }
        continue
      }
      const pi = info(pin.cid, pin, st, pin.timestamp, ipfsid)
      if (st === 'unexpectedly_unpinned') pi.error = UNEXPECTEDLY_UNPINNED
      yield { pi, pin, owed: false }
    }
  }

  /**
   * Re-queues a failed item; undefined when there was nothing to recover. Without `origin` (a
   * recover of one CID) the restart is logged, as the reference does; a RecoverAll counts the
   * item in its pass's summary instead.
   */
  async function recoverWith(
    pi: PinInfo,
    pin: Pin | undefined,
    signal: AbortSignal | undefined,
    origin?: SyncPass,
  ): Promise<PinInfo | undefined> {
    switch (pi.status) {
      case 'pin_error':
      case 'unexpectedly_unpinned': {
        // Re-read the pin when we have none: it may have changed or left the pinset meanwhile.
        const current = pin ?? await deps.state().get(pi.cid)
        if (!current) return status(pi.cid, signal)
        if (!origin) log('info', `Restarting pin operation for ${pi.cid}`)
        enqueue(current, 'pin', origin)
        break
      }
      case 'unpin_error':
        if (!origin) log('info', `Restarting unpin operation for ${pi.cid}`)
        enqueue(ops.get(pi.cid)?.pin ?? pin ?? newPin(pi.cid), 'unpin', origin)
        break
      default:
        return undefined
    }
    return status(pi.cid, signal)
  }

  /** A new sync pass, replacing the current one (whose queued operations stay queued). */
  function newPass(): SyncPass {
    pass?.abandon()
    nextPass?.abandon()
    syncRoom.notifyAll() // a pass waiting for room sees it was abandoned
    const first = pass === undefined
    passStartFailures = failureCount
    const p = new SyncPass({
      peerId: deps.peerId,
      state: deps.state,
      ipfsPins: async (signal) => {
        const snapshot = await ipfsPinKeys(signal, true)
        // From here on, operations that succeed keep both current.
        known = snapshot.sum()
        passSnapshot = snapshot
        verifiedAt = -1
        return snapshot
      },
      // Only the start-up pass may trust the mark: it describes the pinset of the last stop.
      unchanged: first
        ? async (snapshot) => {
          const mark = await markAtStart
          return !restoredBeforeStart && mark !== undefined && mark === snapshot.sum().digest()
        }
        : undefined,
      isLocal,
      // Hashing a fresh key string is most of a Map lookup: skip it when there is nothing to find.
      operation: (cid) => ops.size === 0 ? undefined : ops.get(cid),
      queue: queueForSync,
      full: () => syncQueue.size >= SYNC_WINDOW,
      room: (signal) => waitFor(syncRoom, signal),
      pace: (signal) => pacer.turn(signal),
      rest: (ms, signal) => clock.sleep(ms, signal),
      now,
    })
    pass = p
    return p
  }

  /**
   * Re-queues what failed and restarts the sync pass from the first pin; streams what it
   * re-queued, including the pins the pass will queue as it reaches them (`pin_queued`). The
   * new pass starts walking once this listing is done, so that the two never race for a pin.
   */
  async function* recoverAll(signal?: AbortSignal): AsyncGenerator<PinInfo> {
    const p = newPass()
    let n = 0
    // Unpins that failed for CIDs already gone from the pinset are not in the state listing;
    // they are retried too (the reference leaves them in error forever), each where its key
    // falls among the listing's, so the stream stays in key order (the cluster merges it).
    const gone = [...ops.values()]
      .filter((op) => op.type === 'unpin' && op.phase === 'error')
      .map((op) => op.cid)
      .sort(compareCidKeys)
    let g = 0
    async function* retryGone(before: string | undefined): AsyncGenerator<PinInfo> {
      for (
        ;
        g < gone.length && (before === undefined || compareCidKeys(gone[g], before) < 0);
        g++
      ) {
        if (stopSignal.aborted) return
        const op = ops.get(gone[g])
        if (op?.type !== 'unpin' || op.phase !== 'error') continue // recovered meanwhile
        if (await deps.state().has(op.cid)) continue // pinned again: the listing has it
        enqueue(op.pin, 'unpin', p)
        n++
        yield await status(op.cid, signal)
      }
    }
    try {
      await p.prepare()
      for await (const { pi, pin, owed } of statusAllWithPins(0, signal)) {
        if (stopSignal.aborted) throw new ShutdownError('RecoverAll aborted: tracker stopped')
        yield* retryGone(pi.cid)
        const rec = owed ? pi : await recoverWith(pi, pin, signal, p)
        if (!rec) continue
        n++
        yield rec
      }
      yield* retryGone(undefined)
    } finally {
      if (n) log('info', `recover: ${n} items re-queued`)
      if (pass === p) {
        nextPass = p
        wakeSyncLoop?.()
      }
    }
  }

  /** Re-queues every failed operation (a periodic pass, as the reference's RecoverAll does). */
  function retryFailed(origin: SyncPass): void {
    for (const op of [...ops.values()]) {
      if (op.phase !== 'error' || op.type === 'remote') continue
      try {
        enqueue(op.pin, op.type, origin)
      } catch {
        // Queue full: logged by enqueue; the operation stays in error for the next pass.
      }
    }
  }

  /** One line about a finished pass; silent when it had nothing to do after the first. */
  function logSummary(s: SyncSummary, first: boolean): void {
    failures.flush()
    const what = first ? 'start-up sync' : 'recover'
    const took = formatDuration(Math.round(s.ms))
    if (s.unchanged && s.queued === 0) {
      log(
        'info',
        `${what}: IPFS holds the same pins as at the last clean stop, when it held every pin ` +
          `allocated here: nothing to check (${took})`,
      )
      return
    }
    if (s.queued === 0) {
      // Once a start (the start-up pass says when the peer has checked its IPFS); periodic
      // passes with nothing to do stay quiet.
      log(
        first ? 'info' : 'debug',
        `${what}: IPFS holds every pin allocated here (${s.checked} checked in ${took})`,
      )
      return
    }
    const head = `${what}: ${s.queued} of ${s.checked} pins were not pinned in IPFS and were queued`
    if (s.failed === 0) {
      log('info', `${head}: ${s.pinned} pinned in ${took}`)
      return
    }
    log(
      'error',
      `${head}: ${s.pinned} pinned, ${s.failed} failed (first error: ${s.firstError}); ` +
        `list them with: ${LIST_ERRORS}`,
    )
  }

  /** Runs the start-up pass, then one every `recoverIntervalMs` or when recoverAll asks. */
  async function syncLoop(): Promise<void> {
    const interval = deps.recoverIntervalMs ?? 0
    let first = true
    while (!stopSignal.aborted) {
      const p = nextPass ?? (first ? newPass() : undefined)
      nextPass = undefined
      if (p) {
        try {
          const summary = await p.run()
          // Still the current pass: passStartFailures is the count when it began.
          if (summary.failed === 0 && pass === p) verifiedAt = passStartFailures
          logSummary(summary, first)
        } catch (err) {
          if (!stopSignal.aborted && !p.signal.aborted) log('error', `sync: ${errorMessage(err)}`)
        } finally {
          // 16 MiB a million pins: not kept past the pass (unless a newer pass listed since).
          if (pass === p || pass?.done) passSnapshot = undefined
        }
        first = false
      }
      if (stopSignal.aborted) return
      if (nextPass) continue
      // Wait for the interval (0: never) or for recoverAll.
      const wake = new Promise<void>((r) => (wakeSyncLoop = r))
      // A stop ends the sleep by rejecting it; the loop's condition then ends the loop.
      const slept = interval > 0 ? clock.sleep(interval, stopSignal).catch(() => {}) : undefined
      await (slept ? Promise.race([slept, wake]) : wake)
      wakeSyncLoop = undefined
      if (!nextPass && !stopSignal.aborted) {
        nextPass = newPass()
        retryFailed(nextPass)
      }
    }
  }

  /**
   * After a restored snapshot: unpins from IPFS what it holds and the new pinset allocates to
   * other peers. Log entries tell `track` of every re-allocation; a snapshot replaces the pinset
   * at once, so a peer that was down while the log moved on (and was compacted) learns of them
   * only here. One walk of the state, parsing only the pins IPFS holds.
   */
  async function dropRemoteHeld(): Promise<void> {
    const signal = stopSignal
    try {
      const held = await ipfsPinKeys(signal, true)
      let dropped = 0
      for await (const { cid, value } of deps.state().scan({ signal })) {
        if (!held.hasCid(cid)) continue
        const pin = parseStoredPin(value)
        if (!pin || pin.type === 'meta-pin' || !isRemote(pin)) continue
        await tracker.track(pin)
        dropped++
      }
      if (dropped > 0) {
        log('info', `after a restored pinset: ${dropped} pins allocated elsewhere unpinned`)
      }
    } catch (err) {
      if (!stopSignal.aborted) {
        log('warn', `dropping pins allocated elsewhere: ${errorMessage(err)}`)
      }
    }
  }

  const tracker: StatelessTracker = {
    start(_signal?: AbortSignal): Promise<void> {
      if (started || stopSignal.aborted) return Promise.resolve()
      started = true
      // Taken out at once: a crash from here on must leave no mark behind.
      markAtStart = deps.syncMark?.take().catch((err) => {
        log('warn', `sync mark: ${errorMessage(err)}`)
        return undefined
      })
      const take = () => priorityQueue.shift() ?? pinQueue.shift() ?? takeSync()
      for (let i = 0; i < config.concurrent_pins; i++) {
        loops.push(worker(take, pinWaiters, doPin))
      }
      loops.push(worker(() => unpinQueue.shift(), unpinWaiters, doUnpin))
      loops.push(syncLoop())
      // A snapshot restored before start (a follower back behind a compacted log).
      if (restoredBeforeStart) loops.push(dropRemoteHeld())
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
        await unpinIgnoringNotPinned(pin.cid, op.signal(), pin.max_depth)
      } catch (err) {
        op.cancel()
        op.setError(errorMessage(err), now())
        failureCount++
        log('error', `unpin of remote ${pin.cid}: ${errorMessage(err)}`)
        return
      } finally {
        running.delete(op)
      }
      recordDone(false, pin.cid)
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
      for await (const { pi } of statusAllWithPins(filter, signal)) yield pi
    },

    async recover(cid: string, signal?: AbortSignal): Promise<PinInfo> {
      const pi = await status(cid, signal)
      return (await recoverWith(pi, undefined, signal)) ?? pi
    },

    recoverAll,

    resync(): void {
      // Before start the start-up pass walks the new pinset, provided it does not trust the mark
      // (a follower restarted behind a compacted log installs a snapshot before the tracker
      // starts; the mark was taken before that). After stop nothing walks.
      if (!started) restoredBeforeStart = true
      if (!started || stopSignal.aborted) return
      loops.push(dropRemoteHeld())
      // A fresh pass (never the start-up one: the mark described the pinset before the restore)
      // replaces the one walking the old pinset; a pass already waiting to run walks the new one.
      if (nextPass && !nextPass.done) return
      nextPass = newPass()
      wakeSyncLoop?.()
    },

    // Queued operations, and the pins the sync pass will queue when it reaches them.
    pinQueueSize: () => ops.pinQueueSize() + (activePass()?.remaining ?? 0),
    statusCounts() {
      const counts = new Map<string, number>()
      for (const op of ops.values()) {
        if (op.canceled && op.phase !== 'error') continue
        const st = op.status()
        counts.set(st, (counts.get(st) ?? 0) + 1)
      }
      return counts
    },
    queueLengths: () => [
      ['priority', priorityQueue.size],
      ['pin', pinQueue.size],
      ['unpin', unpinQueue.size],
      ['sync', syncQueue.size],
    ],

    operationCount: () => ops.size,

    syncing: () => activePass() !== undefined || nextPass !== undefined,

    stop(): Promise<void> {
      stopping ??= (async () => {
        // A clean stop: the last pass completed without failures, nothing failed since, and no
        // operation is left. IPFS then holds every local pin, and `known` is its pinset.
        const mark = started && verifiedAt >= 0 && verifiedAt === failureCount && ops.size === 0 &&
            activePass() === undefined && nextPass === undefined
          ? known?.digest()
          : undefined
        stopController.abort()
        pass?.abandon()
        nextPass?.abandon()
        for (const op of running) op.cancel()
        pinWaiters.notifyAll()
        unpinWaiters.notifyAll()
        syncRoom.notifyAll()
        wakeSyncLoop?.()
        await Promise.allSettled(loops)
        failures.flush()
        if (mark !== undefined) {
          await deps.syncMark?.put(mark).catch((err) =>
            log('warn', `sync mark: ${errorMessage(err)}`)
          )
        }
      })()
      return stopping
    },
  }
  return tracker
}

const decoder = new TextDecoder()

/** A pin as the state stores it; undefined for bytes that are no pin (a listing goes on). */
function parseStoredPin(bytes: Uint8Array): Pin | undefined {
  try {
    return JSON.parse(decoder.decode(bytes)) as Pin
  } catch {
    return undefined
  }
}

/** Parks on `waiters` until notified, or until the signal aborts (then rejects). */
function waitFor(waiters: Waiters, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  return waiters.wait().then(() => signal.throwIfAborted())
}
