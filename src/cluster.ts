/**
 * The Cluster: wires the components of one peer and owns the top-level operations (pin, unpin,
 * status, recover…). It implements ClusterRPC, the one surface the APIs call; the checks and
 * messages follow IPFS Cluster 1.x (reference §5).
 *
 * The members are the consensus peerset. Whatever belongs to a member — its tracker, IPFS
 * daemon, identity, this peer's own included — is asked through `rpc` (rpc/methods.ts), never
 * through a component object: one code path for every member, and the receiving peer's policy
 * table decides who may ask.
 *
 * @example
 * ```ts
 * const cluster = new Cluster({ config, peerId, consensus, tracker, ipfs, monitor, rpc, … })
 * await cluster.start(signal)
 * const pin = await cluster.pin(cid, defaultPinOptions())
 * ```
 */
import { openSpan, rememberTrace, traced, tracedUnder } from './observations/tracing.ts'
import type { AllocationRequest } from './allocator/allocate.ts'
import type {
  BandwidthStats,
  ClusterRPC,
  ConnectGraph,
  Consensus,
  GlobalRepoGC,
  Informer,
  IPFSConnector,
  IPFSRepoStat,
  PeerMonitor,
  PinTracker,
  RepoGC,
} from './components.ts'
import type { ClusterConfig } from './cluster/config.ts'
import { mergeStatuses, type PeerStream } from './cluster/merge.ts'
import type { RpcClient } from './rpc/methods.ts'
import {
  type Alert,
  globalOf,
  type GlobalPinInfo,
  type ID,
  type IPFSID,
  isPinEverywhere,
  type Metric,
  metricTtlMs,
  newMetric,
  normalizeCid,
  parseCid,
  type Pin,
  PIN_TYPE_BITS,
  type PinInfo,
  type PinOptions,
  RPC_PROTOCOL,
  toGlobal,
  type TrackerStatus,
  VERSION,
} from './types/mod.ts'
import { formatTime, parseTime, ZERO_TIME } from './types/time.ts'
import { encodePin, newPin, RECORDS_PREFIX, storedPin } from './types/pin.ts'
import { MAX_PIN_BYTES } from './state/kv_state.ts'
import {
  ClusterError,
  errorMessage,
  isAbortError,
  NotFoundError,
  PIN_NOT_FOUND,
  ValidationError,
} from './errors.ts'
import type { Logger } from './util/log.ts'
import { nullLogger } from './util/log.ts'
import { type Clock, systemClock } from './util/clock.ts'
import { closestChecker } from './cluster/distance.ts'
import { decodeLinkMap } from './adder/sharding.ts'

/** What a Cluster is built from. */
export interface ClusterDeps {
  config: ClusterConfig
  peerId: string
  consensus: Consensus
  tracker: PinTracker
  ipfs: IPFSConnector
  monitor: PeerMonitor
  informers: Informer[]
  /**
   * Calls any member, this peer included (rpc/methods.ts): every cluster-wide operation goes
   * through it.
   */
  rpc: RpcClient
  /** Chooses allocations for a pin (see allocator/allocate.ts); undefined = everywhere only. */
  allocate?: (req: AllocationRequest) => Promise<string[]>
  /** This peer's cluster swarm addresses (with /p2p/). */
  addresses?: () => string[]
  /** The cluster addresses (with /p2p/) this peer knows for other peers. */
  peerAddresses?: (peers: string[]) => Promise<string[]>
  /** The cluster host's traffic by libp2p protocol (none: `{}`). */
  bandwidth?: () => Record<string, BandwidthStats>
  /** Time for timestamps, expiry and the loops' intervals (default: the system clock). */
  clock?: Clock
  log?: Logger
}

/** What the cluster asks the allocator (allocator/allocate.ts). */
export type { AllocationRequest }

/** The reference's errFollowerMode, word for word (clients match on it). */
export const FOLLOWER_ERROR =
  'this peer is configured to be in follower mode. Write operations are disabled'

/**
 * A write asked of a peer in follower mode (`cluster.follower_mode`, what ipfs-cluster-follow
 * runs). The reference answers it with a 500; it is a refusal by configuration, not a fault of
 * the peer, so the APIs answer 403 with the reference's message.
 */
export class FollowerModeError extends ClusterError {
  override name = 'FollowerModeError'
  override status = 403
  constructor() {
    super(FOLLOWER_ERROR)
  }
}
/** Alerts kept for `alerts()`; the list starts over past this many, as the reference's does. */
const MAX_ALERTS = 1000
/**
 * How long a member may take to answer a per-CID status or its ID (the reference's 15 s: one
 * unresponsive peer must not hold the answer).
 */
export const MEMBER_CALL_TIMEOUT_MS = 15_000
/** How often an informer whose metrics carry no TTL is asked again, halved (the reference's). */
const DEFAULT_INFORMER_TTL_MS = 30_000
/** Re-allocations of a dead or removed peer's pins committed at once. */
const REPINS_IN_FLIGHT = 64
/** The CID an allocation for content not yet added is asked for (the empty identity block). */
const NO_CID_YET = 'bafkqaaa'

/** One cluster peer. */
export class Cluster implements ClusterRPC {
  readonly peerId: string
  #d: ClusterDeps
  #clock: Clock
  #log: Logger
  #alerts: Alert[] = []
  #ipfsId: IPFSID = { addresses: [], error: '' }
  #stop = new AbortController()
  #stopped: Promise<void> | undefined
  #loops: Promise<void>[] = []
  /** When `publishMetricsNow` last published (epoch ms). */
  #lastPublishedNow = -Infinity
  /** Re-pin passes, one at a time, in alert order: a pass walks the whole pinset. */
  #repins: Promise<void> = Promise.resolve()

  constructor(deps: ClusterDeps) {
    this.#d = deps
    this.peerId = deps.peerId
    this.#clock = deps.clock ?? systemClock
    this.#log = deps.log ?? nullLogger
  }

  /** The cached IPFS identity (for status reports). */
  get ipfsId(): IPFSID {
    return this.#ipfsId
  }

  /**
   * Waits for consensus and IPFS, then starts the loops: tracker sync, informers and the ping
   * metric (at once, then periodically), state sync (expired pins; first after one
   * `state_sync_interval`, as the reference's timer, so a restart does not read the whole pinset
   * again) and alert collection. Resolves when the peer is ready.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const s = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal
    await this.#d.consensus.ready(s)
    await this.#d.ipfs.ready(s)
    try {
      this.#ipfsId = await this.#d.ipfs.id(s)
    } catch (err) {
      this.#ipfsId = { addresses: [], error: errorMessage(err) }
    }
    await this.#d.tracker.start(s)
    const c = this.#d.config
    this.#loops.push(
      ...this.#d.informers.map((inf) => this.#informerLoop(inf)),
      this.#every(c.monitor_ping_interval, () => this.#ping()),
      // First after one interval, as the reference's timer: at start the tracker's sync pass is
      // walking the pinset already, and a second walk doubled the start-up CPU.
      this.#every(c.state_sync_interval, () => this.stateSync(), c.state_sync_interval),
      this.#collectAlerts(),
      this.#connectSwarmsTwice(),
    )
  }

  /**
   * ConnectSwarms at start and once more one ping interval later (the reference's timer). Members
   * that start later connect to this one in turn, so every pair is linked; the second pass finds
   * the members a CRDT peer knows only from their pings, which have not arrived at start (its
   * peerset is then itself alone).
   */
  async #connectSwarmsTwice(): Promise<void> {
    const signal = this.#stop.signal
    try {
      await this.connectSwarms(signal)
      await this.#clock.sleep(this.#d.config.monitor_ping_interval, signal)
      await this.connectSwarms(signal)
    } catch (err) {
      if (!signal.aborted) this.#log.warn(`ConnectSwarms: ${errorMessage(err)}`)
    }
  }

  /** Stops loops (idempotent). Components are stopped by their owner, in order. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort()
      await Promise.allSettled(this.#loops)
    })()
    return this.#stopped
  }

  /** Runs `fn` after `firstMs`, then every `intervalMs` until stop. */
  #every(intervalMs: number, fn: () => Promise<void>, firstMs = 0): Promise<void> {
    const signal = this.#stop.signal
    const clock = this.#clock
    return (async () => {
      if (firstMs > 0) await clock.sleep(firstMs, signal)
      for (;;) {
        try {
          await fn()
        } catch (err) {
          if (!signal.aborted) this.#log.warn(`loop: ${errorMessage(err)}`)
        }
        await clock.sleep(intervalMs, signal)
      }
    })().catch((err) => {
      if (!signal.aborted) this.#log.error(`loop stopped: ${errorMessage(err)}`)
    })
  }

  /**
   * Publishes an informer's metrics at once, then again at half the shortest TTL among them (30 s
   * when none has one), or at a quarter of it after a failure — the reference's cadence, so a
   * metric is renewed well before it expires whatever its TTL. Invalid metrics (the tags
   * informer's when no tags are set) are not published.
   */
  #informerLoop(inf: Informer): Promise<void> {
    const signal = this.#stop.signal
    let failures = 0
    return (async () => {
      for (;;) {
        const { minTtlMs, failed } = await this.#pushInformer(inf)
        const ttl = minTtlMs > 0 ? minTtlMs : DEFAULT_INFORMER_TTL_MS
        if (failed) {
          // The first failure of a streak is an error, then every tenth (as the reference).
          if (failures++ % 10 === 0) this.#log.error(`informer ${inf.name()}: metrics not sent`)
        } else failures = 0
        await this.#clock.sleep(failed ? ttl / 4 : ttl / 2, signal)
      }
    })().catch((err) => {
      if (!signal.aborted) this.#log.error(`informer ${inf.name()} stopped: ${errorMessage(err)}`)
    })
  }

  /** Publishes one informer's valid metrics; the shortest TTL among them, and whether any failed. */
  async #pushInformer(inf: Informer): Promise<{ minTtlMs: number; failed: boolean }> {
    let minTtlMs = 0
    let failed = false
    let metrics: Metric[]
    try {
      metrics = await inf.getMetrics(this.#stop.signal)
    } catch (err) {
      if (this.#stop.signal.aborted) throw err
      this.#log.warn(`informer ${inf.name()}: ${errorMessage(err)}`)
      return { minTtlMs, failed: true }
    }
    const now = this.#clock.now()
    for (const m of metrics) {
      if (!m.valid) continue
      const ttl = metricTtlMs(m, now)
      if (ttl > 0 && (minTtlMs === 0 || ttl < minTtlMs)) minTtlMs = ttl
      try {
        await this.#d.monitor.publishMetric(m, this.#stop.signal)
      } catch (err) {
        if (this.#stop.signal.aborted) throw err
        this.#log.warn(`sending metric ${m.name}: ${errorMessage(err)}`)
        failed = true
      }
    }
    return { minTtlMs, failed }
  }

  /**
   * Publishes every informer's metrics and the ping now, at most once a second: another peer
   * started listening (a peer that starts, returns or joins) and would otherwise wait up to half
   * their TTL to hear them.
   */
  publishMetricsNow(): void {
    const now = this.#clock.now()
    // Not before start: the informers need IPFS, the ping its identity.
    if (!this.#loops.length || this.#stop.signal.aborted) return
    if (now - this.#lastPublishedNow < 1000) return
    this.#lastPublishedNow = now
    this.triggerInformers()
    this.#ping().catch(() => {})
  }

  /**
   * Publishes every informer's metrics now, beside their loops (the IPFS connector calls this
   * every `informer_trigger_interval` pins, so freespace and the queue stay fresh under load).
   */
  triggerInformers(): void {
    if (this.#stop.signal.aborted) return
    for (const inf of this.#d.informers) {
      this.#pushInformer(inf).catch(() => {})
    }
  }

  async #ping(): Promise<void> {
    const value = JSON.stringify({
      peer_name: this.#d.config.peername,
      ipfs_id: this.#ipfsId.id ?? '',
      ipfs_addresses: this.#ipfsId.addresses,
    })
    const ttl = this.#d.config.monitor_ping_interval * 2
    await this.#d.monitor.publishMetric(
      newMetric('ping', this.peerId, value, ttl, this.#clock.now()),
    )
  }

  async #collectAlerts(): Promise<void> {
    try {
      for await (const a of this.#d.monitor.alerts(this.#stop.signal)) {
        // A follower can do nothing about an alert, so it does not record them (reference).
        if (this.#d.config.follower_mode) continue
        this.#log.warn(`metric alert for ${a.name}: Peer: ${a.peer}.`)
        if (this.#alerts.length > MAX_ALERTS) this.#alerts.length = 0
        this.#alerts.unshift(a)
        if (a.name === 'ping' && !this.#d.config.disable_repinning) this.#repinLater(a.peer)
      }
    } catch (err) {
      if (!isAbortError(err)) this.#log.warn(`alerts: ${errorMessage(err)}`)
    }
  }

  #repinLater(dead: string): void {
    this.#repins = this.#repins.then(async () =>
      void await this.#repinAway(dead, { onlyClosest: true })
    )
      .catch((err) => {
        if (!this.#stop.signal.aborted) {
          this.#log.error(`re-allocating the pins of ${dead}: ${errorMessage(err)}`)
        }
      })
  }

  /**
   * Re-allocates the pins allocated to `from` (a peer whose ping expired, or one being removed)
   * with `from` excluded: a pin whose other holders still reach its `replication_factor_min`
   * keeps its allocations (and is not written again), others get new peers. After an alert, each
   * pin is handled by the one member closest to it (distance.ts), so that a dead peer's pins are
   * spread over the live ones and none is re-pinned twice. Streams the pinset.
   */
  async #repinAway(from: string, o: { onlyClosest: boolean }): Promise<number> {
    const signal = this.#stop.signal
    const members = await this.#d.consensus.peers(signal)
    const closest = closestChecker(this.peerId, members.filter((p) => p !== from))
    let moved = 0
    // Several at once, as many clients would: each waits for its commit, and commits group.
    const running = new Set<Promise<void>>()
    for await (const pin of this.#d.consensus.state().list(signal)) {
      if (!pin.allocations?.includes(from)) continue
      if (o.onlyClosest && !closest(pin.cid)) continue
      const one: Promise<void> = this.#reallocate(pin, from, signal).then((changed) => {
        if (changed) moved++
      }, (err) => {
        if (!signal.aborted) {
          this.#log.error(`re-allocating ${pin.cid} away from ${from}: ${errorMessage(err)}`)
        }
      }).finally(() => running.delete(one))
      running.add(one)
      if (running.size >= REPINS_IN_FLIGHT) await Promise.race(running)
    }
    await Promise.all(running)
    signal.throwIfAborted()
    if (moved > 0) this.#log.info(`re-allocated ${moved} pins away from ${from}`)
    return moved
  }

  /** Allocates `pin` again without `from`; true if its allocations changed and were committed. */
  async #reallocate(pin: Pin, from: string, signal: AbortSignal): Promise<boolean> {
    if (isPinEverywhere(pin) || !this.#d.allocate) return false
    const allocations = await this.#allocate(pin, pin, [from])
    const same = allocations.length === pin.allocations.length &&
      allocations.every((p, i) => p === pin.allocations[i])
    if (same) return false
    const repinned: Pin = { ...pin, allocations, timestamp: formatTime(this.#clock.now()) }
    await this.#d.consensus.logPin(repinned, signal)
    this.#log.info(`repinned ${pin.cid} out of ${from}`)
    return true
  }

  /**
   * Unpins pins whose `expire_at` has passed (the reference's StateSync): strictly before now, and
   * never a pin whose `expire_at` is the zero time or the Unix epoch (both mean "no expiry").
   * Each expired pin is unpinned by the one member closest to it (distance.ts). Followers leave
   * that to the peers that may write.
   */
  async stateSync(): Promise<void> {
    if (this.#d.config.follower_mode) return
    const now = this.#clock.now()
    // Only the member closest to an expired pin unpins it: one unpin, not one per peer.
    const closest = closestChecker(this.peerId, await this.#d.consensus.peers(this.#stop.signal))
    for await (const pin of this.#d.consensus.state().list(this.#stop.signal)) {
      if (!expiredAt(pin, now) || !closest(pin.cid)) continue
      this.#log.info(`unpinning ${pin.cid}: pin expired at ${pin.expire_at}`)
      await this.#unpinPin(pin, this.#stop.signal).catch((err) =>
        this.#log.error(`unpinning expired ${pin.cid}: ${errorMessage(err)}`)
      )
    }
  }

  // ---- identity and peers ----

  async id(signal?: AbortSignal): Promise<ID> {
    let ipfs: IPFSID
    try {
      ipfs = await this.#d.ipfs.id(signal)
      this.#ipfsId = ipfs
    } catch (err) {
      ipfs = { addresses: [], error: errorMessage(err) }
    }
    const peers = await this.#d.consensus.peers(signal).catch(() => [this.peerId])
    // As the reference's: a joining peer dials these to reach every member, the leader among
    // them, which has no other way to learn the joiner's address.
    const others = peers.filter((p) => p !== this.peerId)
    const peerAddrs = await this.#d.peerAddresses?.(others).catch(() => []) ?? []
    return {
      id: this.peerId,
      addresses: (this.#d.addresses?.() ?? []).slice().sort(),
      cluster_peers: peers,
      cluster_peers_addresses: peerAddrs,
      version: VERSION,
      commit: '',
      rpc_protocol_version: RPC_PROTOCOL,
      error: '',
      ipfs,
      peername: this.#d.config.peername,
    }
  }

  version(): string {
    return VERSION
  }

  /**
   * The ID of every member, asked concurrently (`Cluster.ID`, 15 s each) and emitted as the
   * answers arrive. A member that does not answer appears as its ID and the error, as the
   * reference's `peers ls` shows it; members that refuse the call are left out (reference).
   */
  async *peers(signal?: AbortSignal): AsyncIterable<ID> {
    const members = await this.#d.consensus.peers(signal)
    const rpc = this.#d.rpc
    const pending = new Map<string, Promise<{ peer: string; id?: ID; err?: unknown }>>()
    for (const peer of members) {
      pending.set(
        peer,
        rpc.call(peer, 'Cluster.ID', [], { signal, timeoutMs: MEMBER_CALL_TIMEOUT_MS }).then(
          (id) => ({ peer, id }),
          (err) => ({ peer, err }),
        ),
      )
    }
    while (pending.size > 0) {
      const r = await Promise.race(pending.values())
      pending.delete(r.peer)
      if (r.id) {
        yield r.id
      } else if (!isForbidden(r.err)) {
        signal?.throwIfAborted()
        this.#broadcastError(r.peer, r.err)
        yield bareID(r.peer, errorMessage(r.err))
      }
    }
  }

  /**
   * Adds a peer to the consensus peerset (the reference's PeerAdd, what a joining peer asks),
   * then returns the new member's ID with this peer among its cluster peers.
   */
  async peerAdd(id: string, signal?: AbortSignal): Promise<ID> {
    this.#checkWritable()
    await this.#d.consensus.addPeer(id, signal)
    this.#log.info(`Peer added ${id}`)
    const added = await this.#d.rpc.call(id, 'Cluster.ID', [], {
      signal,
      timeoutMs: MEMBER_CALL_TIMEOUT_MS,
    })
    if (!added.cluster_peers.includes(this.peerId)) {
      added.cluster_peers = [...added.cluster_peers, this.peerId]
    }
    return added
  }

  /**
   * Removes a member from the consensus peerset. The last member cannot go (the reference's
   * Raft refuses it with these words); a peer that is not a member is a no-op.
   */
  async peerRemove(id: string, signal?: AbortSignal): Promise<void> {
    this.#checkWritable()
    const members = await this.#d.consensus.peers(signal)
    if (members.length === 1 && members[0] === id) {
      throw new ClusterError('cannot remove ourselves from a 1-peer cluster')
    }
    // Its pins move first: once removed, it could no longer be told (reference: vacatePeer).
    if (!this.#d.config.disable_repinning) {
      this.#log.info(`re-allocating all CIDs directly associated to ${id}`)
      await this.#repinAway(id, { onlyClosest: false })
    }
    await this.#d.consensus.rmPeer(id, signal)
    this.#log.info(`Peer removed ${id}`)
  }

  /**
   * Connects this peer's IPFS daemon to the other members' daemons (the reference's
   * ConnectSwarms): their addresses come from their IDs. Best effort: members that do not
   * answer are skipped. Run once ready, and by the daemon after a join.
   */
  async connectSwarms(signal?: AbortSignal): Promise<void> {
    const others = (await this.#d.consensus.peers(signal)).filter((p) => p !== this.peerId)
    const ids = await Promise.all(
      others.map((p) =>
        this.#d.rpc.call(p, 'Cluster.ID', [], { signal, timeoutMs: MEMBER_CALL_TIMEOUT_MS }).catch(
          (err) => {
            // Quiet: a member that is not up yet connects to this one when it starts.
            this.#log.debug(`ConnectSwarms: ${p}: ${errorMessage(err)}`)
            return undefined
          },
        )
      ),
    )
    const addrs = ids.flatMap((id) => id && !id.ipfs.error ? id.ipfs.addresses : [])
    if (addrs.length > 0) await this.#d.ipfs.connectSwarms(addrs, signal)
  }

  /** Logs a member's failed answer to a cluster-wide call, in the reference's words. */
  #broadcastError(peer: string, err: unknown): void {
    this.#log.error(
      `${this.peerId}: error in broadcast response from ${peer}: ${errorMessage(err)}`,
    )
  }

  /** Who status and recover ask: the consensus peerset; a follower only itself (reference). */
  async #members(signal?: AbortSignal): Promise<string[]> {
    if (this.#d.config.follower_mode) return [this.peerId]
    return await this.#d.consensus.peers(signal)
  }

  /**
   * What this peer knows of a member without asking it: its name and IPFS daemon from its last
   * `ping` metric (for `remote` and failed members, as the reference fills them).
   */
  #known(
    peer: string,
  ): { peername: string; ipfs_peer_id?: string; ipfs_peer_addresses?: string[] } {
    if (peer === this.peerId) {
      return {
        peername: this.#d.config.peername,
        ipfs_peer_id: this.#ipfsId.id,
        ipfs_peer_addresses: this.#ipfsId.addresses,
      }
    }
    const m = this.#d.monitor.latestMetrics('ping').find((m) => m.peer === peer)
    try {
      const v = JSON.parse(m?.value ?? '{}') as {
        peer_name?: unknown
        ipfs_id?: unknown
        ipfs_addresses?: unknown
      }
      return {
        peername: typeof v.peer_name === 'string' ? v.peer_name : '',
        ipfs_peer_id: typeof v.ipfs_id === 'string' && v.ipfs_id ? v.ipfs_id : undefined,
        ipfs_peer_addresses: Array.isArray(v.ipfs_addresses)
          ? v.ipfs_addresses.filter((a): a is string => typeof a === 'string')
          : undefined,
      }
    } catch {
      return { peername: '' }
    }
  }

  /** A member's status of a CID that this peer states for it (remote, unpinned, cluster_error). */
  #statedInfo(
    peer: string,
    cid: string,
    pin: Pin | undefined,
    status: TrackerStatus,
    error = '',
  ): PinInfo {
    return {
      cid,
      name: pin?.name ?? '',
      peer,
      allocations: pin ? pin.allocations : null,
      origins: pin ? pin.origins : null,
      created: pin ? pin.timestamp : ZERO_TIME,
      metadata: pin ? pin.metadata : null,
      ...this.#known(peer),
      status,
      timestamp: formatTime(this.#clock.now()),
      error,
      attempt_count: 0,
      priority_pin: false,
    }
  }

  // ---- pinning ----

  /**
   * Refuses cluster-wide writes on a follower: pins, unpins, adds, pin updates and, unlike the
   * reference, peerset changes (a follower may not reshape the cluster it follows either).
   */
  #checkWritable() {
    if (this.#d.config.follower_mode) throw new FollowerModeError()
  }

  /** Pins by options; an existing pin's API records (`RECORDS_PREFIX`) stay unless set. */
  async pin(cid: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin> {
    return await traced('cluster/Pin', cid, () => this.#commit(newPin(cid, opts), true, signal))
  }

  /**
   * Commits a prepared pin (the reference's `Cluster.Pin` of a whole Pin): its type, reference
   * and depth as given, its allocations kept when set (the adder sends content to its
   * destinations first, then pins there), allocated otherwise.
   */
  async commitPin(given: Pin, signal?: AbortSignal): Promise<Pin> {
    return await this.#commit(given, false, signal)
  }

  async #commit(given: Pin, keepRecords: boolean, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    const pin: Pin = { ...given, cid: normalizeCid(given.cid) }
    if (pin.pin_update && normalizeCid(pin.pin_update) !== pin.cid) {
      return await this.#pinUpdate(pin.pin_update, pin.cid, pin, signal)
    }
    const existing = await this.#d.consensus.state().get(pin.cid)
    if (keepRecords && existing) pin.metadata = withRecords(pin.metadata, existing.metadata)
    this.#setupReplication(pin)
    if (!isZeroTime(pin.expire_at) && parseTime(pin.expire_at) < this.#clock.now()) {
      throw new ValidationError('pin.ExpireAt set before current time')
    }
    if (existing) {
      if (existing.type !== pin.type) {
        throw new ValidationError(
          'cannot repin CID with different tracking method, clear state with pin rm to proceed. ' +
            `New: ${pin.type}. Was: ${existing.type}`,
        )
      }
      if (existing.mode === 'recursive' && pin.mode !== 'recursive') {
        throw new ValidationError(
          'cannot repin a CID which is already pinned in recursive mode (new pin is pinned as ' +
            `${pin.mode}). Unpin it first.`,
        )
      }
    }
    // The reference checks a pin's type only when it re-pins; a bad first pin is as bad.
    checkPinType(pin)
    pin.timestamp = formatTime(this.#clock.now())
    if (pin.type !== 'meta-pin' && pin.allocations.length === 0 && !isPinEverywhere(pin)) {
      pin.allocations = await this.#allocate(pin, existing)
    }
    checkPinSize(pin)
    rememberTrace(pin.cid) // the tracker continues this trace once the pin is applied here
    await this.#d.consensus.logPin(pin, signal)
    return pin
  }

  /**
   * Where added content goes before it is pinned (the reference's BlockAllocate): the pin's
   * allocation, or every peer with a valid `ping` metric for replication -1.
   */
  async blockAllocate(
    opts: PinOptions,
    _signal?: AbortSignal,
    sent?: ReadonlyMap<string, number>,
  ): Promise<string[]> {
    this.#checkWritable()
    const pin = newPin(NO_CID_YET, opts)
    this.#setupReplication(pin)
    if (isPinEverywhere(pin)) {
      const peers = this.#d.monitor.latestMetrics('ping').map((m) => m.peer)
      return peers.includes(this.peerId) ? peers : [this.peerId, ...peers]
    }
    return await this.#allocate(pin, undefined, [], sent)
  }

  /** 0 means the configured factor; then the reference's checks, in its order and words. */
  #setupReplication(pin: Pin) {
    const cfg = this.#d.config
    if (pin.replication_factor_min === 0) pin.replication_factor_min = cfg.replication_factor_min
    if (pin.replication_factor_max === 0) pin.replication_factor_max = cfg.replication_factor_max
    const min = pin.replication_factor_min
    const max = pin.replication_factor_max
    if (isPinEverywhere(pin)) pin.allocations = []
    if (min === 0 || max === 0) {
      throw new ValidationError('cluster.replication_factor_min and max must be set')
    }
    if (min > max) throw new ValidationError('cluster.replication_factor_min is larger than max')
    if (min < -1) throw new ValidationError('cluster.replication_factor_min is wrong')
    if (max < -1) throw new ValidationError('cluster.replication_factor_max is wrong')
    if ((min === -1) !== (max === -1)) {
      throw new ValidationError(
        'cluster.replication_factor_min and max must be -1 when one of them is',
      )
    }
  }

  async #allocate(
    pin: Pin,
    existing: Pin | undefined,
    blacklist: string[] = [],
    sent?: ReadonlyMap<string, number>,
  ): Promise<string[]> {
    const req: AllocationRequest = {
      cid: pin.cid,
      rfMin: pin.replication_factor_min,
      rfMax: pin.replication_factor_max,
      current: existing?.allocations ?? [],
      userAllocations: pin.user_allocations ?? [],
      blacklist,
    }
    if (sent) req.sent = sent
    if (this.#d.allocate) return await this.#d.allocate(req)
    return [this.peerId]
  }

  async #pinUpdate(
    from: string,
    to: string,
    opts: Pick<PinOptions, 'name' | 'expire_at'>,
    signal?: AbortSignal,
  ): Promise<Pin> {
    const existing = await this.#d.consensus.state().get(from)
    if (!existing) throw new NotFoundError(PIN_NOT_FOUND)
    if (existing.type !== 'pin') throw new ValidationError('this pin type cannot be updated')
    const pin: Pin = { ...existing, cid: normalizeCid(to), pin_update: normalizeCid(from) }
    const now = this.#clock.now()
    pin.timestamp = formatTime(now)
    if (opts.name) pin.name = opts.name
    if (!isZeroTime(opts.expire_at) && parseTime(opts.expire_at) > now) {
      pin.expire_at = opts.expire_at
    }
    checkPinSize(pin)
    await this.#d.consensus.logPin(pin, signal)
    return pin
  }

  async pinPath(path: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable() // before IPFS is asked to resolve anything
    const cid = await this.#resolve(path, signal)
    // The request's span is filed under the path it named: the pin's steps go under it.
    return await tracedUnder(openSpan(path), cid, () => this.pin(cid, opts, signal))
  }

  async unpin(cid: string, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    return await traced('cluster/Unpin', cid, async () => {
      const pin = await this.pinGet(cid, signal)
      rememberTrace(pin.cid)
      return await this.#unpinPin(pin, signal)
    })
  }

  /** The reference's rules per pin type (user unpins and expiry alike). */
  async #unpinPin(pin: Pin, signal?: AbortSignal): Promise<Pin> {
    switch (pin.type) {
      case 'pin':
        await this.#d.consensus.logUnpin(pin, signal)
        return pin
      case 'meta-pin':
        await this.#unpinShardedDag(pin, signal)
        await this.#d.consensus.logUnpin(pin, signal)
        return pin
      case 'shard-pin':
        throw new ClusterError('cannot unpin a shard directly. Unpin content root CID instead')
      case 'clusterdag-pin':
        throw new ClusterError(
          'cannot unpin a Cluster DAG directly. Unpin content root CID instead',
        )
      default:
        throw new ClusterError('unrecognized pin type')
    }
  }

  /**
   * Unpins what a meta pin stands for (the reference's unpinClusterDag): every shard its cluster
   * DAG links (the node read through this peer's IPFS), then the cluster DAG. Parts already gone
   * from the pinset are skipped, so a retry after an interrupted unpin finishes it (the reference
   * then fails on the missing cluster DAG and the meta pin stays for good); a shard that another
   * cluster DAG links too is kept (the reference unpins it, breaking the other content).
   */
  async #unpinShardedDag(meta: Pin, signal?: AbortSignal): Promise<void> {
    // Nothing to walk (the reference fails, and such a pin, imported, could never be removed).
    if (!meta.reference) return this.#log.warn(`meta pin ${meta.cid} references no cluster DAG`)
    const state = this.#d.consensus.state()
    const dag = await state.get(meta.reference)
    if (!dag) return // unpinned before, after its shards
    if (dag.type !== 'clusterdag-pin') {
      throw new ClusterError(
        `could not get clusterDAG pin from state. Malformed pin?: ${dag.cid} is a ${dag.type}`,
      )
    }
    const shards = await this.#clusterDagLinks(dag.cid, signal)
    const shared = await this.#sharedShards(dag.cid, new Set(shards), signal)
    const unpinShard = async (cid: string) => {
      const shard = await state.get(cid)
      if (!shard || shard.type !== 'shard-pin') return
      if (shared.has(cid)) {
        return this.#log.info(`keeping shard ${cid}: another cluster DAG links it`)
      }
      await this.#d.consensus.logUnpin(shard, signal)
    }
    // Several at once: each waits for its commit, and commits group.
    for (let i = 0; i < shards.length; i += REPINS_IN_FLIGHT) {
      await Promise.all(shards.slice(i, i + REPINS_IN_FLIGHT).map(unpinShard))
    }
    await this.#d.consensus.logUnpin(dag, signal)
  }

  /** The shard CIDs a cluster DAG node links, in the reference's error words. */
  async #clusterDagLinks(cid: string, signal?: AbortSignal): Promise<string[]> {
    let block: Uint8Array
    try {
      block = await this.#d.ipfs.blockGet(cid, signal)
    } catch (err) {
      signal?.throwIfAborted()
      throw new ClusterError(`error reading clusterDAG block from ipfs: ${errorMessage(err)}`)
    }
    try {
      return decodeLinkMap(block).map(normalizeCid)
    } catch (err) {
      throw new ClusterError(`error parsing clusterDAG block: ${errorMessage(err)}`)
    }
  }

  /** Which of `shards` another cluster DAG of the pinset links too (one walk of the pinset). */
  async #sharedShards(
    except: string,
    shards: Set<string>,
    signal?: AbortSignal,
  ): Promise<Set<string>> {
    const shared = new Set<string>()
    for await (const other of this.pins(PIN_TYPE_BITS['clusterdag-pin'], signal)) {
      if (other.cid === except) continue
      let links: string[]
      try {
        links = await this.#clusterDagLinks(other.cid, signal)
      } catch (err) {
        signal?.throwIfAborted()
        // Unknown is not shared: the unpin goes on, as the reference's always does.
        this.#log.warn(`cannot tell the shards of ${other.cid}: ${errorMessage(err)}`)
        continue
      }
      for (const cid of links) if (shards.has(cid)) shared.add(cid)
    }
    return shared
  }

  async unpinPath(path: string, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    const cid = await this.#resolve(path, signal)
    return await tracedUnder(openSpan(path), cid, () => this.unpin(cid, signal))
  }

  async #resolve(path: string, signal?: AbortSignal): Promise<string> {
    const m = /^\/ipfs\/([^/]+)\/?$/.exec(path)
    if (m) return parseCid(m[1]).toString()
    return normalizeCid(await this.#d.ipfs.resolve(path, signal))
  }

  async consistentRead(signal?: AbortSignal): Promise<void> {
    await this.#d.consensus.readBarrier(signal)
  }

  async pinGet(cid: string, _signal?: AbortSignal): Promise<Pin> {
    const pin = await this.#d.consensus.state().get(cid)
    if (!pin) throw new NotFoundError(PIN_NOT_FOUND)
    return pin
  }

  async *pins(typeMask: number, signal?: AbortSignal, after?: string): AsyncIterable<Pin> {
    const state = this.#d.consensus.state()
    const decoder = new TextDecoder()
    for await (const e of state.scan({ after, signal })) {
      const pin = JSON.parse(decoder.decode(e.value)) as Pin
      if (typeMask === 0 || (PIN_TYPE_BITS[pin.type] & typeMask) !== 0) yield pin
    }
  }

  pinsNDJSON(signal?: AbortSignal): AsyncIterable<Uint8Array> {
    return this.#d.consensus.state().listNDJSON(signal)
  }

  // ---- status and recover ----

  /**
   * The status of a CID on every member (reference globalPinInfoCid): outside the pinset every
   * member is `unpinned`; a pin everywhere asks every member, another asks its allocations
   * (`PinTracker.Status`, 15 s each) and the other members are `remote`. A member that fails is
   * `cluster_error` with the message; one that refuses the call is left out.
   */
  async status(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return await this.#globalPinInfo(normalizeCid(cid), 'PinTracker.Status', signal)
  }

  async #globalPinInfo(
    cid: string,
    method: 'PinTracker.Status' | 'PinTracker.Recover',
    signal?: AbortSignal,
  ): Promise<GlobalPinInfo> {
    const pin = await this.#d.consensus.state().get(cid)
    const members = await this.#members(signal)
    const infos: PinInfo[] = []
    if (!pin) {
      for (const p of members) {
        // As the reference's PinCid: no allocations (`[]`), created now.
        const pi = this.#statedInfo(p, cid, undefined, 'unpinned')
        pi.allocations = []
        pi.created = pi.timestamp
        infos.push(pi)
      }
    } else {
      const asked = this.#d.config.follower_mode
        ? [this.peerId]
        : isPinEverywhere(pin) || pin.type === 'meta-pin'
        // A meta pin has no allocations: every member's tracker answers `sharded` (the
        // reference asks none and reports `remote` everywhere unless replication is -1).
        ? members
        : pin.allocations
      for (const p of members) {
        if (!asked.includes(p)) infos.push(this.#statedInfo(p, cid, pin, 'remote'))
      }
      const replies = await Promise.all(asked.map(async (p) => {
        try {
          return await this.#d.rpc.call(p, method, [cid], {
            signal,
            timeoutMs: MEMBER_CALL_TIMEOUT_MS,
          })
        } catch (err) {
          signal?.throwIfAborted()
          if (isForbidden(err)) return undefined
          this.#broadcastError(p, err)
          return this.#statedInfo(p, cid, pin, 'cluster_error', errorMessage(err))
        }
      }))
      for (const r of replies) if (r) infos.push(r)
    }
    return globalOf(cid, infos)
  }

  async statusLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return toGlobal(await this.#d.tracker.status(normalizeCid(cid), signal))
  }

  /**
   * Every member's status of every pin, merged per CID in key order (cluster/merge.ts): members
   * stream with no timeout (a pinset takes its time); with a filter, a CID lists the members
   * whose status matched.
   */
  async *statusAll(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    const members = await this.#members(signal)
    yield* this.#mergeMembers(
      members.map((peer) => ({
        peer,
        items: this.#d.rpc.stream(peer, 'PinTracker.StatusAll', [filter], { signal }),
      })),
    )
  }

  #mergeMembers(streams: PeerStream[]): AsyncIterable<GlobalPinInfo> {
    return mergeStatuses(streams, {
      failed: (peer, cid, error) => this.#statedInfo(peer, cid, undefined, 'cluster_error', error),
      skip: isForbidden,
      onError: (peer, err) => this.#broadcastError(peer, err),
    })
  }

  async *statusAllLocal(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    for await (const pi of this.#d.tracker.statusAll(filter, signal)) yield toGlobal(pi)
  }

  /** Recovers a CID on the members that track it (as `status` asks them), and reports. */
  async recover(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return await this.#globalPinInfo(normalizeCid(cid), 'PinTracker.Recover', signal)
  }

  async recoverLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return toGlobal(await this.#d.tracker.recover(normalizeCid(cid), signal))
  }

  /** Recovers on every member; streams what they re-queued, merged per CID as `statusAll`. */
  async *recoverAll(signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    const members = await this.#members(signal)
    yield* this.#mergeMembers(
      members.map((peer) => ({
        peer,
        items: this.#d.rpc.stream(peer, 'Cluster.RecoverAllLocal', [], { signal }),
      })),
    )
  }

  async *recoverAllLocal(signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    for await (const pi of this.#d.tracker.recoverAll(signal)) yield toGlobal(pi)
  }

  // ---- IPFS maintenance and health ----

  /**
   * A GC of every member's IPFS repo, one member after the other (reference): a member that
   * fails reports the error and no keys; one that refuses is left out.
   */
  async repoGC(signal?: AbortSignal): Promise<GlobalRepoGC> {
    const out: GlobalRepoGC = { peer_map: {} }
    for (const peer of (await this.#d.consensus.peers(signal)).slice().sort()) {
      try {
        out.peer_map[peer] = await this.#d.rpc.call(peer, 'Cluster.RepoGCLocal', [], { signal })
      } catch (err) {
        signal?.throwIfAborted()
        if (isForbidden(err)) continue
        this.#broadcastError(peer, err)
        out.peer_map[peer] = {
          peer,
          peername: this.#known(peer).peername,
          keys: [],
          error: errorMessage(err),
        }
      }
    }
    return out
  }

  async repoGCLocal(signal?: AbortSignal): Promise<RepoGC> {
    const out: RepoGC = { peer: this.peerId, peername: this.#d.config.peername, keys: [] }
    try {
      for await (const item of this.#d.ipfs.repoGC(signal)) out.keys.push(item)
    } catch (err) {
      out.error = errorMessage(err)
    }
    return out
  }

  /**
   * The repo usage of every member's IPFS, summed, as the reference's proxy `repo/stat` adds it
   * up: members are asked at once; one that fails is logged and left out, one that refuses the
   * call is left out silently.
   */
  async repoStat(signal?: AbortSignal): Promise<IPFSRepoStat> {
    const members = await this.#d.consensus.peers(signal)
    const stats = await Promise.all(members.map(async (peer) => {
      try {
        return await this.#d.rpc.call(peer, 'IPFSConnector.RepoStat', [], {
          signal,
          timeoutMs: MEMBER_CALL_TIMEOUT_MS,
        })
      } catch (err) {
        signal?.throwIfAborted()
        if (!isForbidden(err)) this.#log.error(`${peer} repo/stat errored: ${errorMessage(err)}`)
        return undefined
      }
    }))
    const total: IPFSRepoStat = { repoSize: 0, storageMax: 0 }
    for (const s of stats) {
      if (!s) continue
      total.repoSize += s.repoSize
      total.storageMax += s.storageMax
    }
    return total
  }

  metricNames(): Promise<string[]> {
    return Promise.resolve(this.#d.monitor.metricNames())
  }

  latestMetrics(name: string): Promise<Metric[]> {
    return Promise.resolve(this.#d.monitor.latestMetrics(name))
  }

  alerts(): Promise<Alert[]> {
    return Promise.resolve(this.#alerts.slice())
  }

  bandwidthByProtocol(): Promise<Record<string, BandwidthStats>> {
    return Promise.resolve(this.#d.bandwidth?.() ?? {})
  }

  /**
   * Who is connected to whom (reference ConnectGraph): for each member, the members its cluster
   * host is connected to (`Cluster.ConnectedPeers`), its name and IPFS daemon (`Cluster.ID`)
   * and that daemon's swarm peers (`IPFSConnector.SwarmPeers`). A member that does not answer
   * keeps an empty list of links and no IPFS node; one whose IPFS failed has no IPFS node.
   */
  async connectGraph(signal?: AbortSignal): Promise<ConnectGraph> {
    const members = await this.#d.consensus.peers(signal)
    const g: ConnectGraph = {
      cluster_id: this.peerId,
      id_to_peername: {},
      ipfs_links: {},
      cluster_links: {},
      cluster_trust_links: {},
      cluster_to_ipfs: {},
    }
    const rpc = this.#d.rpc
    const opts = { signal, timeoutMs: MEMBER_CALL_TIMEOUT_MS }
    const answers = await Promise.all(members.map(async (p) => {
      try {
        const [id, connected] = await Promise.all([
          rpc.call(p, 'Cluster.ID', [], opts),
          rpc.call(p, 'Cluster.ConnectedPeers', [], opts),
        ])
        const swarm = id.ipfs.id && !id.ipfs.error
          ? await rpc.call(p, 'IPFSConnector.SwarmPeers', [], opts).catch(() => [])
          : undefined
        return { p, id, connected, swarm }
      } catch (err) {
        signal?.throwIfAborted()
        this.#log.debug(`RPC error reaching cluster peer ${p}: ${errorMessage(err)}`)
        return { p }
      }
    }))
    for (const { p, id, connected, swarm } of answers) {
      g.cluster_trust_links[p] = this.#d.consensus.isTrustedPeer(p)
      g.cluster_links[p] = connected?.filter((q) => q !== p && members.includes(q)).sort() ?? []
      if (!id) continue
      g.id_to_peername[p] = id.peername
      if (swarm === undefined || !id.ipfs.id) continue
      g.cluster_to_ipfs[p] = id.ipfs.id
      g.ipfs_links[id.ipfs.id] = swarm
    }
    return g
  }
}

/**
 * A call the callee's policy refused (`RpcForbiddenError` of rpc/errors.ts, kept by name across
 * the wire): broadcasts leave such members out, as the reference does.
 */
function isForbidden(err: unknown): boolean {
  return err instanceof Error && err.name === 'RpcForbiddenError'
}

/** An ID that knows only the peer's ID (and why nothing more is known). */
function bareID(id: string, error: string): ID {
  return {
    id,
    addresses: [],
    cluster_peers: [],
    cluster_peers_addresses: [],
    version: '',
    commit: '',
    rpc_protocol_version: '',
    error,
    ipfs: { addresses: [], error: '' },
    peername: '',
  }
}

/** Rejects a pin the state could not store, before it reaches a batch it would fail whole. */
/** `metadata` with `previous`'s API records (`RECORDS_PREFIX`) when it sets none of its own. */
function withRecords(
  metadata: Record<string, string> | null,
  previous: Record<string, string> | null,
): Record<string, string> | null {
  const kept = Object.entries(previous ?? {}).filter(([k]) => k.startsWith(RECORDS_PREFIX))
  if (kept.length === 0) return metadata
  if (Object.keys(metadata ?? {}).some((k) => k.startsWith(RECORDS_PREFIX))) return metadata
  return { ...metadata, ...Object.fromEntries(kept) }
}

/** The reference's rules for each pin type (checkPinType), in its words. */
function checkPinType(pin: Pin): void {
  const fail = (msg: string) => {
    throw new ValidationError(msg)
  }
  switch (pin.type) {
    case 'pin':
      if (pin.reference) fail('data pins should not reference other pins')
      break
    case 'shard-pin':
      if (pin.max_depth !== 1) fail('must pin shards go depth 1')
      break
    case 'clusterdag-pin':
      if (pin.max_depth !== 0) fail('must pin roots directly')
      if (!pin.reference) fail('clusterDAG pins should reference a Meta pin')
      break
    case 'meta-pin':
      if (pin.allocations.length !== 0) fail('meta pin should not specify allocations')
      if (!pin.reference) fail('metaPins should reference a ClusterDAG')
      break
    default:
      fail('unrecognized pin type')
  }
}

function checkPinSize(pin: Pin) {
  // The entry encodes every pin anyway; here only one that might be too large is encoded.
  if (storedJsonBound(pin) <= MAX_PIN_BYTES) return
  // Bytes, as the state counts them: a name in a non-Latin script takes 2–3 bytes a character.
  const size = new TextEncoder().encode(encodePin(storedPin(pin))).length
  if (size > MAX_PIN_BYTES) {
    throw new ValidationError(
      `pin is too large to store: ${size} bytes of JSON (name, metadata and allocations ` +
        `together must stay under ${MAX_PIN_BYTES} bytes)`,
    )
  }
}

/**
 * An upper bound on the bytes of a pin's stored JSON (`encodePin(storedPin(pin))`), without
 * encoding it:
 * its fixed fields and their names stay under 1 KiB, and a string's UTF-16 unit takes at most 6
 * bytes of JSON (`\uXXXX`), plus its quotes and comma.
 */
function storedJsonBound(pin: Pin): number {
  let units = pin.name.length + pin.cid.length + (pin.pin_update?.length ?? 0) +
    (pin.reference?.length ?? 0) + pin.expire_at.length + pin.timestamp.length
  let strings = 6
  for (const a of pin.allocations ?? []) units += a.length
  for (const o of pin.origins ?? []) units += o.length
  strings += (pin.allocations?.length ?? 0) + (pin.origins?.length ?? 0)
  for (const [k, v] of Object.entries(pin.metadata ?? {})) {
    units += k.length + String(v).length
    strings += 2
  }
  return 1024 + 6 * units + 3 * strings
}

/** Go's `time.IsZero` on an `expire_at`: unset. */
function isZeroTime(t: string | undefined): boolean {
  return !t || t.startsWith('0001-01-01T00:00:00')
}

/**
 * The reference's `Pin.ExpiredAt(now)`: the zero time and the Unix epoch (what older versions
 * stored for "none") never expire. An `expire_at` that does not parse never expires either.
 */
function expiredAt(pin: Pin, now: number): boolean {
  if (isZeroTime(pin.expire_at)) return false
  try {
    const at = parseTime(pin.expire_at)
    return at !== 0 && at < now
  } catch {
    return false
  }
}
