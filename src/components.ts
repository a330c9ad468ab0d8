/**
 * The architecture on one page: every component of a cluster peer and how they meet.
 *
 * ```
 *   ctl ──> REST API ──> Cluster (cluster.ts) ─┬─> Consensus (Raft | CRDT) ──apply──> State (Deno KV)
 *                           │                   └─> PinAllocator <── PeerMonitor <── Informers
 *                           ├──> PinTracker ──> IPFSConnector (Kubo RPC | embedded Helia)
 *                           └──> RpcClient ──> a member's RpcHandlers (rpc/methods.ts)
 * ```
 *
 * Peers meet on the cluster host (net/host.ts): the RPC wire (rpc/wire.ts), the Raft transport
 * (consensus/raft/libp2p_transport.ts) or the CRDT's topic and bitswap (consensus/crdt/), and
 * the metrics topic ride on it.
 *
 * Components are built by factory functions that take their config section and a typed
 * `components` object of what they depend on; nothing reaches into a sibling's internals.
 * Another peer's components are reached only through the cluster RPC (`rpc/methods.ts`): the
 * Cluster asks every member, itself included, through its `RpcClient`, and `rpc/handlers.ts`
 * answers for this peer.
 * Every component has an idempotent `stop()`; every long call takes an AbortSignal.
 *
 * Metrics and traces (`observations/`) are not components: instrumentation points read one
 * process-wide handle each (`clusterMetrics`, `tracingEnabled()`), undefined while off, so that
 * off costs one variable read and no component takes them as a dependency.
 */
import type { Alert, ID, IPFSID, Metric, Pin, PinInfo, PinOptions } from './types/mod.ts'
import type { GlobalPinInfo } from './types/pininfo.ts'

/** Something with a lifetime. `stop()` is idempotent: a second call resolves at once. */
export interface Component {
  stop(): Promise<void>
}

/** How IPFS holds a CID locally. */
export type IPFSPinStatus = 'recursive' | 'direct' | 'indirect' | 'unpinned'

/** Options of a pin request to the IPFS daemon. */
export interface IPFSPinOptions {
  signal?: AbortSignal
  /** Called with the number of blocks fetched so far, when the daemon reports progress. */
  onProgress?: (blocks: number) => void
}

/** One result line of a repo GC. */
export interface IPFSRepoGCItem {
  key?: string
  error?: string
}

/** Repository usage, in bytes. */
export interface IPFSRepoStat {
  repoSize: number
  storageMax: number
}

/**
 * The peer's IPFS daemon. Two implementations: `ipfshttp` (Kubo RPC over HTTP) and `embedded`
 * (a Helia node inside the peer). CIDs are compared by multihash: daemons answer in other bases.
 */
export interface IPFSConnector extends Component {
  /** Resolves once the daemon has answered `id` once (retried until then or until aborted). */
  ready(signal?: AbortSignal): Promise<void>
  id(signal?: AbortSignal): Promise<IPFSID>
  /** Pins with the pin's mode/max_depth; resolves when pinned. Idempotent. */
  pin(pin: Pin, opts?: IPFSPinOptions): Promise<void>
  /**
   * Unpins; "not pinned" counts as success. `maxDepth` is the pin's `max_depth`: a
   * depth-limited pin (a shard) also drops whatever the connector pinned below its node for it.
   */
  unpin(cid: string, signal?: AbortSignal, maxDepth?: number): Promise<void>
  /** How the daemon holds this one CID (checked at the pin's depth). */
  pinLsCid(pin: Pin, signal?: AbortSignal): Promise<IPFSPinStatus>
  /** Streams the daemon's pins of the given type; CIDs are canonical strings. */
  pinLs(
    type: 'recursive' | 'direct' | 'all',
    signal?: AbortSignal,
  ): AsyncIterable<{ cid: string; type: IPFSPinStatus }>
  /**
   * Number of recursive and direct pins, when the connector can count them without decoding the
   * whole listing (the numpin informer asks every few seconds; a million pins is a lot of JSON).
   */
  pinCount?(signal?: AbortSignal): Promise<number>
  swarmPeers(signal?: AbortSignal): Promise<string[]>
  connectSwarms(addrs: string[], signal?: AbortSignal): Promise<void>
  configKey(path: string, signal?: AbortSignal): Promise<unknown>
  repoStat(signal?: AbortSignal): Promise<IPFSRepoStat>
  repoGC(signal?: AbortSignal): AsyncIterable<IPFSRepoGCItem>
  /** Resolves an /ipfs/, /ipns/ or /ipld/ path to a CID string. */
  resolve(path: string, signal?: AbortSignal): Promise<string>
  blockGet(cid: string, signal?: AbortSignal): Promise<Uint8Array>
  /** Stores blocks (already encoded) in one streaming request; used by /add. */
  blockStream(
    blocks: AsyncIterable<{ cid: string; bytes: Uint8Array }>,
    signal?: AbortSignal,
  ): Promise<void>
}

/** Read access to the shared pinset. Listing streams; nothing gathers the whole set. */
export interface StateReader {
  get(cid: string): Promise<Pin | undefined>
  has(cid: string): Promise<boolean>
  /** Streams every pin, ordered by key. */
  list(signal?: AbortSignal): AsyncIterable<Pin>
  /** Streams every pin as its stored JSON bytes (no trailing newline). */
  listEncoded(signal?: AbortSignal): AsyncIterable<Uint8Array>
  /**
   * Streams the pinset as NDJSON: chunks (~64 KiB) of whole lines, each a pin's stored JSON and
   * `\n`. The fast path for listings: no per-pin promise, parse or encode.
   */
  listNDJSON(signal?: AbortSignal): AsyncIterable<Uint8Array>
  /**
   * Streams the pinset in key order as (CID, stored JSON bytes), starting after the CID `after`
   * when given: a walk that can stop and resume, deciding from the CID before parsing a pin
   * (the tracker's sync).
   */
  scan(opts?: { after?: string; signal?: AbortSignal }): AsyncIterable<StateEntry>
}

/** One pin as stored: its canonical CID (the key) and its JSON bytes. */
export interface StateEntry {
  cid: string
  value: Uint8Array
}

/** One operation the consensus log carries and the state machine applies. */
export type LogOp =
  | { type: 'pin'; pin: Pin }
  | { type: 'unpin'; pin: Pin }

/** Hooks consensus calls after it applied committed operations (so the tracker follows). */
export interface ApplyHooks {
  onPin(pin: Pin): void
  onUnpin(pin: Pin): void
  /**
   * The pinset was replaced wholesale by an installed Raft snapshot (a follower that caught up
   * from one): no `onPin`/`onUnpin` ran for its pins, so the tracker must walk the state again.
   * (CRDT merges call `onPin`/`onUnpin` for every change and never this.)
   */
  onRestore(): void
}

/**
 * Agreement on the pinset among peers: Raft (consensus/raft/, the default; a single peer runs
 * the same path with one voter) or the Merkle-CRDT of IPFS Cluster's `crdt` consensus
 * (consensus/crdt/: no leader, writes accepted from trusted peers, peers = valid pings).
 */
export interface Consensus extends Component {
  /** Resolves when this peer can serve writes and reads (leader known, log applied). */
  ready(signal?: AbortSignal): Promise<void>
  /** Commits a pin; resolves once it is committed and `state()` here reads it. */
  logPin(pin: Pin, signal?: AbortSignal): Promise<void>
  logUnpin(pin: Pin, signal?: AbortSignal): Promise<void>
  addPeer(id: string, signal?: AbortSignal): Promise<void>
  rmPeer(id: string, signal?: AbortSignal): Promise<void>
  /** The state as acknowledged here (a read waits for what it needs to be applied). */
  state(): StateReader
  /**
   * Linearizable-read barrier (Raft ReadIndex): resolves once this peer has applied everything
   * committed when it was called, as confirmed by a quorum. Returns the index it waited for.
   * CRDT has no such read: it resolves at once.
   */
  readBarrier(signal?: AbortSignal): Promise<number>
  peers(signal?: AbortSignal): Promise<string[]>
  leader(signal?: AbortSignal): Promise<string>
  isTrustedPeer(id: string): boolean
}

/** Per-peer pin tracking: makes this peer's IPFS daemon follow the pinset. */
export interface PinTracker extends Component {
  /** Starts loops (start-up sync). Called once IPFS is ready. */
  start(signal?: AbortSignal): Promise<void>
  /** A pin was committed: pin it here if allocated here, else drop it from IPFS. */
  track(pin: Pin): Promise<void>
  /** A pin left the pinset: unpin it here. */
  untrack(pin: Pin): Promise<void>
  /**
   * The pinset was replaced wholesale (`ApplyHooks.onRestore`): check the whole state against
   * IPFS again, as the start-up sync does. Returns at once; the check runs in the background.
   */
  resync(): void
  status(cid: string, signal?: AbortSignal): Promise<PinInfo>
  /** Streams this peer's status of every tracked CID matching the filter mask (0 = all). */
  statusAll(filter: number, signal?: AbortSignal): AsyncIterable<PinInfo>
  recover(cid: string, signal?: AbortSignal): Promise<PinInfo>
  /** Re-queues failed items; streams only what it re-queued. */
  recoverAll(signal?: AbortSignal): AsyncIterable<PinInfo>
  pinQueueSize(): number
}

/** Produces this peer's metrics (freespace, numpin, tags…). */
export interface Informer extends Component {
  name(): string
  getMetrics(signal?: AbortSignal): Promise<Metric[]>
}

/** Chooses peers for a pin from their metrics. */
export interface PinAllocator extends Component {
  /** Metric names the allocator needs (`allocate_by`). */
  metrics(): string[]
  /**
   * Orders candidate peers best first. `current` holds peers already allocated, `priority` the
   * user's allocations; each map goes from peer ID to that peer's metrics (one per needed name).
   * With `limit`, only the first `limit` peers of that order.
   */
  allocate(
    cid: string,
    current: Map<string, Metric[]>,
    candidates: Map<string, Metric[]>,
    priority: Map<string, Metric[]>,
    limit?: number,
  ): Promise<string[]>
}

/** Collects peers' metrics and raises alerts when they expire. */
export interface PeerMonitor extends Component {
  publishMetric(m: Metric, signal?: AbortSignal): Promise<void>
  latestMetrics(name: string): Metric[]
  metricNames(): string[]
  /** Alerts as they happen, until stopped. */
  alerts(signal?: AbortSignal): AsyncIterable<Alert>
}

/** An API server (REST, IPFS proxy, Pinning Service API). */
export interface API extends Component {
  start(signal?: AbortSignal): Promise<void>
  /** Where it listens, as multiaddrs (resolved ports). */
  addresses(): string[]
}

/**
 * The one RPC surface: what APIs and other peers ask of a peer. Method names follow the
 * reference's `Cluster.*` RPC service; `rpc/methods.ts` lists the methods other peers may call and who may call each.
 */
export interface ClusterRPC {
  id(signal?: AbortSignal): Promise<ID>
  version(): string
  peers(signal?: AbortSignal): AsyncIterable<ID>
  peerAdd(id: string, signal?: AbortSignal): Promise<ID>
  peerRemove(id: string, signal?: AbortSignal): Promise<void>
  pin(cid: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin>
  pinPath(path: string, opts: PinOptions, signal?: AbortSignal): Promise<Pin>
  /**
   * Commits a prepared pin: type, reference and depth as given (shard, cluster DAG and meta pins
   * of a sharded add), allocations kept when set, allocated otherwise.
   */
  commitPin(pin: Pin, signal?: AbortSignal): Promise<Pin>
  /**
   * Where added content goes before its pin (allocation; every peer for replication -1).
   * `sent`: bytes this add already sent to each peer (a sharded add), taken off their freespace.
   */
  blockAllocate(
    opts: PinOptions,
    signal?: AbortSignal,
    sent?: ReadonlyMap<string, number>,
  ): Promise<string[]>
  unpin(cid: string, signal?: AbortSignal): Promise<Pin>
  unpinPath(path: string, signal?: AbortSignal): Promise<Pin>
  pinGet(cid: string, signal?: AbortSignal): Promise<Pin>
  /** Waits until reads on this peer are linearizable (see Consensus.readBarrier). */
  consistentRead(signal?: AbortSignal): Promise<void>
  /**
   * Streams the pinset in CID order, filtered by a pin-type mask (PIN_TYPE_BITS); with `after`,
   * only the pins whose CID sorts after it (a listing from a key: a page costs O(page)).
   */
  pins(typeMask: number, signal?: AbortSignal, after?: string): AsyncIterable<Pin>
  /** The pinset as NDJSON chunks of whole lines (the fast listing path of `GET /allocations`). */
  pinsNDJSON(signal?: AbortSignal): AsyncIterable<Uint8Array>
  status(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo>
  statusLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo>
  statusAll(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo>
  statusAllLocal(filter: number, signal?: AbortSignal): AsyncIterable<GlobalPinInfo>
  recover(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo>
  recoverLocal(cid: string, signal?: AbortSignal): Promise<GlobalPinInfo>
  recoverAll(signal?: AbortSignal): AsyncIterable<GlobalPinInfo>
  recoverAllLocal(signal?: AbortSignal): AsyncIterable<GlobalPinInfo>
  repoGC(signal?: AbortSignal): Promise<GlobalRepoGC>
  repoGCLocal(signal?: AbortSignal): Promise<RepoGC>
  /**
   * Every member's IPFS repo usage, summed (the IPFS proxy's `repo/stat`); a member that fails
   * or refuses is left out.
   */
  repoStat(signal?: AbortSignal): Promise<IPFSRepoStat>
  metricNames(signal?: AbortSignal): Promise<string[]>
  latestMetrics(name: string, signal?: AbortSignal): Promise<Metric[]>
  alerts(signal?: AbortSignal): Promise<Alert[]>
  bandwidthByProtocol(signal?: AbortSignal): Promise<Record<string, BandwidthStats>>
  connectGraph(signal?: AbortSignal): Promise<ConnectGraph>
}

/** One peer's GC result. */
export interface RepoGC {
  peer: string
  peername: string
  keys: IPFSRepoGCItem[]
  error?: string
}

/** GC results of every peer. */
export interface GlobalRepoGC {
  peer_map: Record<string, RepoGC>
}

/** Traffic per libp2p protocol. */
export interface BandwidthStats {
  total_in: number
  total_out: number
  rate_in: number
  rate_out: number
}

/** Who is connected to whom (`GET /health/graph`). */
export interface ConnectGraph {
  cluster_id: string
  id_to_peername: Record<string, string>
  ipfs_links: Record<string, string[]>
  cluster_links: Record<string, string[]>
  cluster_trust_links: Record<string, boolean>
  cluster_to_ipfs: Record<string, string>
}
