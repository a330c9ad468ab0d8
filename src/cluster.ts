/**
 * The Cluster: wires the components of one peer and owns the top-level operations (pin, unpin,
 * status, recover…). It implements ClusterRPC, the one surface the APIs call; the checks and
 * messages follow IPFS Cluster 1.x (reference §5).
 *
 * @example
 * ```ts
 * const cluster = new Cluster({ config, peerId, consensus, tracker, ipfs, monitor, … })
 * await cluster.start(signal)
 * const pin = await cluster.pin(cid, defaultPinOptions())
 * ```
 */
import type {
  BandwidthStats,
  ClusterRPC,
  ConnectGraph,
  Consensus,
  GlobalRepoGC,
  Informer,
  IPFSConnector,
  PeerMonitor,
  PinTracker,
  RepoGC,
} from './components.ts'
import type { ClusterConfig } from './cluster/config.ts'
import {
  type Alert,
  type GlobalPinInfo,
  type ID,
  type IPFSID,
  isPinEverywhere,
  type Metric,
  newMetric,
  normalizeCid,
  parseCid,
  type Pin,
  PIN_TYPE_BITS,
  type PinOptions,
  RPC_PROTOCOL,
  toGlobal,
  VERSION,
} from './types/mod.ts'
import { formatTime, parseTime } from './types/time.ts'
import { encodePin, newPin, storedPin } from './types/pin.ts'
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

/** What a Cluster is built from. */
export interface ClusterDeps {
  config: ClusterConfig
  peerId: string
  consensus: Consensus
  tracker: PinTracker
  ipfs: IPFSConnector
  monitor: PeerMonitor
  informers: Informer[]
  /** Chooses allocations for a pin (see allocator/allocate.ts); undefined = everywhere only. */
  allocate?: (req: AllocationRequest) => Promise<string[]>
  /** This peer's cluster swarm addresses (with /p2p/). */
  addresses?: () => string[]
  /** Time for timestamps, expiry and the loops' intervals (default: the system clock). */
  clock?: Clock
  log?: Logger
}

/** What the cluster asks the allocator. */
export interface AllocationRequest {
  cid: string
  rfMin: number
  rfMax: number
  current: string[]
  userAllocations: string[]
  blacklist: string[]
}

const FOLLOWER_ERROR =
  'this peer is configured to be in follower mode. Write operations are disabled'
/** Alerts kept for `alerts()`; the list starts over past this many, as the reference's does. */
const MAX_ALERTS = 1000

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
      this.#every(0, () => this.#pushInformers()),
      this.#every(c.monitor_ping_interval, () => this.#ping()),
      // First after one interval, as the reference's timer: at start the tracker's sync pass is
      // walking the pinset already, and a second walk doubled the start-up CPU.
      this.#every(c.state_sync_interval, () => this.stateSync(), c.state_sync_interval),
      this.#collectAlerts(),
    )
  }

  /** Stops loops (idempotent). Components are stopped by their owner, in order. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort()
      await Promise.allSettled(this.#loops)
    })()
    return this.#stopped
  }

  /** Runs `fn` after `firstMs`, then every `intervalMs` (0: the informers' interval) until stop. */
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
        await clock.sleep(intervalMs || this.#informerInterval(), signal)
      }
    })().catch((err) => {
      if (!signal.aborted) this.#log.error(`loop stopped: ${errorMessage(err)}`)
    })
  }

  #informerInterval(): number {
    // Informers refresh at half their shortest TTL, as the reference does.
    return this.#d.config.informer_push_interval || 15_000
  }

  async #pushInformers(): Promise<void> {
    for (const inf of this.#d.informers) {
      const metrics = await inf.getMetrics(this.#stop.signal).catch((err) => {
        this.#log.warn(`informer ${inf.name()}: ${errorMessage(err)}`)
        return [] as Metric[]
      })
      for (const m of metrics) if (m.valid) await this.#d.monitor.publishMetric(m)
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
        if (this.#alerts.length > MAX_ALERTS) this.#alerts.length = 0
        this.#alerts.unshift(a)
      }
    } catch (err) {
      if (!isAbortError(err)) this.#log.warn(`alerts: ${errorMessage(err)}`)
    }
  }

  /**
   * Unpins pins whose `expire_at` has passed (the reference's StateSync): strictly before now, and
   * never a pin whose `expire_at` is the zero time or the Unix epoch (both mean "no expiry").
   * Followers leave that to the peers that may write.
   */
  async stateSync(): Promise<void> {
    if (this.#d.config.follower_mode) return
    const now = this.#clock.now()
    for await (const pin of this.#d.consensus.state().list(this.#stop.signal)) {
      if (!expiredAt(pin, now)) continue
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
    return {
      id: this.peerId,
      addresses: (this.#d.addresses?.() ?? []).slice().sort(),
      cluster_peers: peers,
      cluster_peers_addresses: [],
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

  async *peers(signal?: AbortSignal): AsyncIterable<ID> {
    const peers = await this.#d.consensus.peers(signal)
    for (const p of peers.slice().sort()) {
      if (p === this.peerId) yield await this.id(signal)
      else yield bareID(p, 'peer unreachable: multi-peer RPC is not available')
    }
  }

  async peerAdd(id: string, signal?: AbortSignal): Promise<ID> {
    await this.#d.consensus.addPeer(id, signal)
    return bareID(id, '')
  }

  async peerRemove(id: string, signal?: AbortSignal): Promise<void> {
    await this.#d.consensus.rmPeer(id, signal)
  }

  // ---- pinning ----

  #checkWritable() {
    if (this.#d.config.follower_mode) throw new ClusterError(FOLLOWER_ERROR)
  }

  async pin(cid: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    const c = normalizeCid(cid)
    if (opts.pin_update && normalizeCid(opts.pin_update) !== c) {
      return await this.#pinUpdate(opts.pin_update, c, opts, signal)
    }
    const pin = newPin(c, opts)
    const existing = await this.#d.consensus.state().get(c)
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
    pin.timestamp = formatTime(this.#clock.now())
    if (!isPinEverywhere(pin)) {
      pin.allocations = await this.#allocate(pin, existing)
    }
    checkPinSize(pin)
    await this.#d.consensus.logPin(pin, signal)
    return pin
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

  async #allocate(pin: Pin, existing: Pin | undefined): Promise<string[]> {
    const req: AllocationRequest = {
      cid: pin.cid,
      rfMin: pin.replication_factor_min,
      rfMax: pin.replication_factor_max,
      current: existing?.allocations ?? [],
      userAllocations: pin.user_allocations ?? [],
      blacklist: [],
    }
    if (this.#d.allocate) return await this.#d.allocate(req)
    return [this.peerId]
  }

  async #pinUpdate(
    from: string,
    to: string,
    opts: PinOptions,
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
    return await this.pin(await this.#resolve(path, signal), opts, signal)
  }

  async unpin(cid: string, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    return await this.#unpinPin(await this.pinGet(cid, signal), signal)
  }

  /** The reference's rules per pin type (user unpins and expiry alike). */
  async #unpinPin(pin: Pin, signal?: AbortSignal): Promise<Pin> {
    switch (pin.type) {
      case 'pin':
      case 'meta-pin':
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

  async unpinPath(path: string, signal?: AbortSignal): Promise<Pin> {
    return await this.unpin(await this.#resolve(path, signal), signal)
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

  async *pins(typeMask: number, signal?: AbortSignal): AsyncIterable<Pin> {
    for await (const pin of this.#d.consensus.state().list(signal)) {
      if (typeMask === 0 || (PIN_TYPE_BITS[pin.type] & typeMask) !== 0) yield pin
    }
  }

  pinsNDJSON(signal?: AbortSignal): AsyncIterable<Uint8Array> {
    return this.#d.consensus.state().listNDJSON(signal)
  }

  // ---- status and recover ----

  async status(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    const g = await this.statusLocal(cid, signal)
    // Every consensus member appears; a CID outside the pinset is `unpinned` everywhere.
    return g
  }

  async statusLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return toGlobal(await this.#d.tracker.status(normalizeCid(cid), signal))
  }

  async *statusAll(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    yield* this.statusAllLocal(filter, signal)
  }

  async *statusAllLocal(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    for await (const pi of this.#d.tracker.statusAll(filter, signal)) yield toGlobal(pi)
  }

  async recover(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return await this.recoverLocal(cid, signal)
  }

  async recoverLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo> {
    return toGlobal(await this.#d.tracker.recover(normalizeCid(cid), signal))
  }

  async *recoverAll(signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    yield* this.recoverAllLocal(signal)
  }

  async *recoverAllLocal(signal?: AbortSignal): AsyncIterable<GlobalPinInfo> {
    for await (const pi of this.#d.tracker.recoverAll(signal)) yield toGlobal(pi)
  }

  // ---- IPFS maintenance and health ----

  async repoGC(signal?: AbortSignal): Promise<GlobalRepoGC> {
    return { peer_map: { [this.peerId]: await this.repoGCLocal(signal) } }
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
    return Promise.resolve({})
  }

  async connectGraph(signal?: AbortSignal): Promise<ConnectGraph> {
    const peers = await this.#d.consensus.peers(signal)
    const g: ConnectGraph = {
      cluster_id: this.peerId,
      id_to_peername: { [this.peerId]: this.#d.config.peername },
      ipfs_links: {},
      cluster_links: {},
      cluster_trust_links: {},
      cluster_to_ipfs: {},
    }
    for (const p of peers) {
      g.cluster_links[p] = peers.filter((q) => q !== p)
      g.cluster_trust_links[p] = this.#d.consensus.isTrustedPeer(p)
    }
    const ipfsId = this.#ipfsId.id
    if (ipfsId) {
      g.cluster_to_ipfs[this.peerId] = ipfsId
      g.ipfs_links[ipfsId] = await this.#d.ipfs.swarmPeers(signal).catch(() => [])
    }
    return g
  }
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
function checkPinSize(pin: Pin) {
  // Bytes, as the state counts them: a name in a non-Latin script takes 2–3 bytes a character.
  const size = new TextEncoder().encode(encodePin(storedPin(pin))).length
  if (size > MAX_PIN_BYTES) {
    throw new ValidationError(
      `pin is too large to store: ${size} bytes of JSON (name, metadata and allocations ` +
        `together must stay under ${MAX_PIN_BYTES} bytes)`,
    )
  }
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
