/**
 * A small in-memory ClusterRPC for API tests: one peer, a pinset in a Map, statuses derived from
 * it (every pin `pinned` unless a test sets another status), recorded calls, and injected
 * failures per method. It is a test double of the orchestrator, not a model of it: no
 * allocation, no consensus, no IPFS.
 *
 * @example
 * ```ts
 * const cluster = fakeCluster()
 * await cluster.pin(cid, defaultPinOptions())
 * cluster.fail.set('unpin', new Error('boom')) // the next unpin calls throw
 * cluster.calls // [{ method: 'pin', args: [...] }, …]
 * ```
 */
import type {
  BandwidthStats,
  ClusterRPC,
  ConnectGraph,
  GlobalRepoGC,
  IPFSRepoStat,
  RepoGC,
} from '../../src/components.ts'
import { NotFoundError, PIN_NOT_FOUND, ValidationError } from '../../src/errors.ts'
import {
  type Alert,
  encodePin,
  formatTime,
  type GlobalPinInfo,
  type ID,
  type Metric,
  newMetric,
  newPin,
  normalizeCid,
  type Pin,
  PIN_TYPE_BITS,
  type PinOptions,
  statusMatches,
  type TrackerStatus,
  VERSION,
} from '../../src/types/mod.ts'

/** A valid peer ID for the fake peer. */
export const FAKE_PEER_ID = '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N'
/** The fake peer's IPFS daemon ID. */
export const FAKE_IPFS_ID = '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'

/** The fake: a ClusterRPC plus the knobs tests use. */
export interface FakeCluster extends ClusterRPC {
  /** The pinset, keyed by canonical CID. */
  readonly pinset: Map<string, Pin>
  /** Per-CID status override (default: `pinned` when in the pinset, else `unpinned`). */
  readonly statuses: Map<string, TrackerStatus>
  /** Every call, in order (method name and arguments without the signal). */
  readonly calls: { method: string; args: unknown[] }[]
  /** Methods that fail with the given error (synchronously for calls, at the first item for streams). */
  readonly fail: Map<keyof ClusterRPC, Error>
  /** For streams: fail after this many items were yielded (with `fail`'s error). */
  failAfter: number
  /** Extra peers reported by `peers()` (besides this one). */
  readonly otherPeers: ID[]
  /** Alerts returned by `alerts()`. */
  alertList: Alert[]
  /** What `repoStat()` answers (the sum over the cluster's IPFS daemons). */
  repoStatValue: IPFSRepoStat
}

/** Options of the fake. */
export interface FakeClusterOptions {
  peerId?: string
  peername?: string
  /** Clock for timestamps (epoch ms). */
  now?: () => number
  /** Record calls in `calls` (default true; benches turn it off to keep memory flat). */
  recordCalls?: boolean
}

/** Builds a fake cluster peer. */
export function fakeCluster(opts: FakeClusterOptions = {}): FakeCluster {
  const peerId = opts.peerId ?? FAKE_PEER_ID
  const peername = opts.peername ?? 'fake-peer'
  const now = opts.now ?? (() => Date.now())
  const pinset = new Map<string, Pin>()
  const encoded = new Map<string, Uint8Array>()
  const statuses = new Map<string, TrackerStatus>()
  const calls: { method: string; args: unknown[] }[] = []
  const fail = new Map<keyof ClusterRPC, Error>()
  const otherPeers: ID[] = []
  const enc = new TextEncoder()

  const record = opts.recordCalls ?? true
  const call = (method: keyof ClusterRPC, ...args: unknown[]) => {
    if (record) calls.push({ method, args })
    const err = fail.get(method)
    if (err) throw err
  }

  const id = (): ID => ({
    id: peerId,
    addresses: [`/ip4/127.0.0.1/tcp/9096/p2p/${peerId}`],
    cluster_peers: [peerId, ...otherPeers.map((p) => p.id)],
    cluster_peers_addresses: [],
    version: VERSION,
    commit: '',
    rpc_protocol_version: '/ipfscluster/1.0/rpc',
    error: '',
    ipfs: { id: FAKE_IPFS_ID, addresses: ['/ip4/127.0.0.1/tcp/4001'], error: '' },
    peername,
  })

  const statusOf = (cid: string): GlobalPinInfo => {
    const pin = pinset.get(cid)
    const status = statuses.get(cid) ?? (pin ? 'pinned' : 'unpinned')
    return {
      cid,
      name: pin?.name ?? '',
      allocations: pin?.allocations ?? [],
      origins: pin?.origins ?? [],
      created: pin?.timestamp ?? '0001-01-01T00:00:00Z',
      metadata: pin?.metadata ?? null,
      peer_map: {
        [peerId]: {
          peername,
          ipfs_peer_id: FAKE_IPFS_ID,
          status,
          timestamp: formatTime(now()),
          error: status.endsWith('error') ? 'fake error' : '',
          attempt_count: 0,
          priority_pin: false,
        },
      },
    }
  }

  /** A stream honouring `fail`/`failAfter` and the signal. */
  async function* stream<T>(method: keyof ClusterRPC, items: Iterable<T>, signal?: AbortSignal) {
    if (record) calls.push({ method, args: [] })
    let n = 0
    for (const item of items) {
      signal?.throwIfAborted()
      const err = fail.get(method)
      if (err && n >= fake.failAfter) throw err
      yield item
      n++
    }
    const err = fail.get(method)
    if (err && n >= fake.failAfter) throw err
  }

  const pinOf = (cid: string) => {
    const p = pinset.get(normalizeCid(cid))
    if (!p) throw new NotFoundError(PIN_NOT_FOUND)
    return p
  }

  const doPin = (cid: string, o: PinOptions): Pin => {
    const pin = newPin(cid, o)
    pin.timestamp = formatTime(Math.floor(now() / 1000) * 1000)
    pin.allocations = pin.replication_factor_min === -1 ? [] : [peerId]
    pinset.set(pin.cid, pin)
    encoded.set(pin.cid, enc.encode(encodePin(pin)))
    return pin
  }

  const unpinOne = (cid: string): Pin => {
    const p = pinOf(cid)
    pinset.delete(p.cid)
    encoded.delete(p.cid)
    return p
  }

  const pathCid = (path: string) => {
    const m = /^\/(ipfs|ipld)\/([^/]+)/.exec(path)
    if (!m) throw new ValidationError(`cannot resolve ${path} in the fake`)
    return m[2]
  }

  const gc = (): RepoGC => ({ peer: peerId, peername, keys: [], error: '' })

  const fake: FakeCluster = {
    pinset,
    statuses,
    calls,
    fail,
    failAfter: 0,
    otherPeers,
    alertList: [],
    repoStatValue: { repoSize: 1000, storageMax: 10_000 },
    id: (_s) => {
      call('id')
      return Promise.resolve(id())
    },
    version: () => VERSION,
    peers: (s) => stream('peers', [id(), ...otherPeers], s),
    peerAdd(pid) {
      call('peerAdd', pid)
      const p: ID = { ...id(), id: pid, addresses: [], peername: '' }
      otherPeers.push(p)
      return Promise.resolve(p)
    },
    peerRemove(pid) {
      call('peerRemove', pid)
      const i = otherPeers.findIndex((p) => p.id === pid)
      if (i < 0) return Promise.reject(new NotFoundError(`peer ${pid} is not part of the cluster`))
      otherPeers.splice(i, 1)
      return Promise.resolve()
    },
    pin(cid, o) {
      call('pin', cid, o)
      return Promise.resolve(doPin(cid, o))
    },
    commitPin(pin) {
      call('commitPin', pin)
      const p: Pin = { ...pin, cid: normalizeCid(pin.cid) }
      p.timestamp = formatTime(Math.floor(now() / 1000) * 1000)
      if (p.allocations.length === 0 && p.replication_factor_min !== -1) p.allocations = [peerId]
      pinset.set(p.cid, p)
      encoded.set(p.cid, enc.encode(encodePin(p)))
      return Promise.resolve(p)
    },
    blockAllocate(o) {
      call('blockAllocate', o)
      return Promise.resolve(
        o.replication_factor_min === -1 ? [peerId, ...otherPeers.map((p) => p.id)] : [peerId],
      )
    },
    pinPath(path, o) {
      call('pinPath', path, o)
      return Promise.resolve(doPin(pathCid(path), o))
    },
    unpin(cid) {
      call('unpin', cid)
      return Promise.resolve(unpinOne(cid))
    },
    unpinPath(path) {
      call('unpinPath', path)
      return Promise.resolve(unpinOne(pathCid(path)))
    },
    consistentRead() {
      call('consistentRead')
      return Promise.resolve()
    },
    pinGet(cid) {
      call('pinGet', cid)
      return Promise.resolve(pinOf(cid))
    },
    pins: (mask, s, after) =>
      stream(
        'pins',
        [...pinset.values()]
          .filter((p) => (PIN_TYPE_BITS[p.type] & mask) !== 0)
          .filter((p) => after === undefined || p.cid > after)
          .sort((a, b) => a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0),
        s,
      ),
    pinsNDJSON: (s) =>
      stream(
        'pinsNDJSON',
        [...encoded.values()].map((b) => {
          const line = new Uint8Array(b.length + 1)
          line.set(b)
          line[b.length] = 10
          return line
        }),
        s,
      ),
    status(cid) {
      call('status', cid)
      return Promise.resolve(statusOf(normalizeCid(cid)))
    },
    statusLocal(cid) {
      call('statusLocal', cid)
      return Promise.resolve(statusOf(normalizeCid(cid)))
    },
    statusAll: (filter, s) =>
      stream(
        'statusAll',
        [...pinset.keys()].map(statusOf).filter((g) =>
          statusMatches(g.peer_map[peerId].status, filter)
        ),
        s,
      ),
    statusAllLocal: (filter, s) =>
      stream(
        'statusAllLocal',
        [...pinset.keys()].map(statusOf).filter((g) =>
          statusMatches(g.peer_map[peerId].status, filter)
        ),
        s,
      ),
    recover(cid) {
      call('recover', cid)
      return Promise.resolve(statusOf(normalizeCid(cid)))
    },
    recoverLocal(cid) {
      call('recoverLocal', cid)
      return Promise.resolve(statusOf(normalizeCid(cid)))
    },
    recoverAll: (s) =>
      stream(
        'recoverAll',
        [...statuses.entries()].filter(([, st]) => st.endsWith('error')).map(([c]) => statusOf(c)),
        s,
      ),
    recoverAllLocal: (s) =>
      stream(
        'recoverAllLocal',
        [...statuses.entries()].filter(([, st]) => st.endsWith('error')).map(([c]) => statusOf(c)),
        s,
      ),
    repoGC() {
      call('repoGC')
      const out: GlobalRepoGC = { peer_map: { [peerId]: gc() } }
      return Promise.resolve(out)
    },
    repoGCLocal() {
      call('repoGCLocal')
      return Promise.resolve(gc())
    },
    repoStat() {
      call('repoStat')
      return Promise.resolve({ ...fake.repoStatValue })
    },
    metricNames() {
      call('metricNames')
      return Promise.resolve(['ping', 'freespace'])
    },
    latestMetrics(name) {
      call('latestMetrics', name)
      const ms: Metric[] = name === 'ping' || name === 'freespace'
        ? [newMetric(name, peerId, name === 'ping' ? '' : '1000000', 30_000, now())]
        : []
      return Promise.resolve(ms)
    },
    alerts() {
      call('alerts')
      return Promise.resolve(fake.alertList)
    },
    bandwidthByProtocol() {
      call('bandwidthByProtocol')
      const bw: Record<string, BandwidthStats> = {
        '/ipfscluster/1.0/rpc': { total_in: 10, total_out: 20, rate_in: 0.5, rate_out: 1 },
      }
      return Promise.resolve(bw)
    },
    connectGraph() {
      call('connectGraph')
      const g: ConnectGraph = {
        cluster_id: peerId,
        id_to_peername: { [peerId]: peername },
        ipfs_links: { [FAKE_IPFS_ID]: [] },
        cluster_links: { [peerId]: [] },
        cluster_trust_links: { [peerId]: true },
        cluster_to_ipfs: { [peerId]: FAKE_IPFS_ID },
      }
      return Promise.resolve(g)
    },
  }
  return fake
}
