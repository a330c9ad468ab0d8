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
  now?: () => number
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

/** One cluster peer. */
export class Cluster implements ClusterRPC {
  readonly peerId: string
  #d: ClusterDeps
  #now: () => number
  #log: Logger
  #alerts: Alert[] = []
  #ipfsId: IPFSID = { addresses: [], error: '' }
  #stop = new AbortController()
  #stopped: Promise<void> | undefined
  #loops: Promise<void>[] = []

  constructor(deps: ClusterDeps) {
    this.#d = deps
    this.peerId = deps.peerId
    this.#now = deps.now ?? Date.now
    this.#log = deps.log ?? nullLogger
  }

  /** The cached IPFS identity (for status reports). */
  get ipfsId(): IPFSID {
    return this.#ipfsId
  }

  /**
   * Waits for consensus and IPFS, then starts the loops: tracker sync, informers, ping metric,
   * state sync (expired pins) and alert collection. Resolves when the peer is ready.
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

  #every(intervalMs: number, fn: () => Promise<void>, firstAfterMs = 0): Promise<void> {
    const signal = this.#stop.signal
    return (async () => {
      if (firstAfterMs > 0) await sleep(firstAfterMs, signal)
      while (!signal.aborted) {
        try {
          await fn()
        } catch (err) {
          if (!signal.aborted) this.#log.warn(`loop: ${errorMessage(err)}`)
        }
        const wait = intervalMs || this.#informerInterval()
        await sleep(wait, signal)
      }
    })()
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
    await this.#d.monitor.publishMetric(newMetric('ping', this.peerId, value, ttl, this.#now()))
  }

  async #collectAlerts(): Promise<void> {
    try {
      for await (const a of this.#d.monitor.alerts(this.#stop.signal)) {
        this.#alerts.unshift(a)
        if (this.#alerts.length > 1000) this.#alerts.length = 0
      }
    } catch (err) {
      if (!isAbortError(err)) this.#log.warn(`alerts: ${errorMessage(err)}`)
    }
  }

  /** Unpins pins whose expire_at has passed (the reference's StateSync). */
  async stateSync(): Promise<void> {
    if (this.#d.config.follower_mode) return
    const now = this.#now()
    for await (const pin of this.#d.consensus.state().list(this.#stop.signal)) {
      if (!pin.expire_at || pin.expire_at.startsWith('0001-')) continue
      if (parseTime(pin.expire_at) <= now) {
        this.#log.info(`unpinning ${pin.cid}: expired at ${pin.expire_at}`)
        await this.#d.consensus.logUnpin(pin, this.#stop.signal).catch((err) =>
          this.#log.warn(`unpinning expired ${pin.cid}: ${errorMessage(err)}`)
        )
      }
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
    if (pin.expire_at && !pin.expire_at.startsWith('0001-')) {
      if (parseTime(pin.expire_at) < this.#now()) {
        throw new ValidationError('pin.ExpireAt set before current time')
      }
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
    pin.timestamp = formatTime(this.#now())
    if (!isPinEverywhere(pin)) {
      pin.allocations = await this.#allocate(pin, existing)
    }
    checkPinSize(pin)
    await this.#d.consensus.logPin(pin, signal)
    return pin
  }

  #setupReplication(pin: Pin) {
    const cfg = this.#d.config
    if (pin.replication_factor_min === 0) pin.replication_factor_min = cfg.replication_factor_min
    if (pin.replication_factor_max === 0) pin.replication_factor_max = cfg.replication_factor_max
    const min = pin.replication_factor_min
    const max = pin.replication_factor_max
    if (isPinEverywhere(pin)) {
      pin.allocations = []
      return
    }
    if (min < -1 || max < -1) throw new ValidationError('replication factors must be >= -1')
    if ((min === -1) !== (max === -1)) {
      throw new ValidationError(
        'cluster.replication_factor_min and max must be -1 together (pin everywhere)',
      )
    }
    if (max < min) throw new ValidationError('cluster.replication_factor_min is larger than max')
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
    pin.timestamp = formatTime(this.#now())
    if (opts.name) pin.name = opts.name
    if (opts.expire_at && !opts.expire_at.startsWith('0001-')) {
      if (parseTime(opts.expire_at) > this.#now()) pin.expire_at = opts.expire_at
    }
    await this.#d.consensus.logPin(pin, signal)
    return pin
  }

  async pinPath(path: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin> {
    return await this.pin(await this.#resolve(path, signal), opts, signal)
  }

  async unpin(cid: string, signal?: AbortSignal): Promise<Pin> {
    this.#checkWritable()
    const pin = await this.pinGet(cid, signal)
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
  const size = encodePin(storedPin(pin)).length
  if (size > MAX_PIN_BYTES) {
    throw new ValidationError(
      `pin is too large to store: ${size} bytes of JSON (name, metadata and allocations ` +
        `together must stay under ${MAX_PIN_BYTES} bytes)`,
    )
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })
}
