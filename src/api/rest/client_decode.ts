/**
 * Decoders for the REST client: each turns a parsed JSON value into the shape the reference's Go
 * structs give it after decoding, in their field order, with Go's zero values for missing fields
 * and map keys sorted. So `ipfs-cluster-ctl --enc=json` output can be reproduced byte for byte,
 * and callers never meet `undefined` where the API promises a field.
 *
 * @example
 * ```ts
 * const pin = decodePin(JSON.parse(body))
 * pin.timestamp // '0001-01-01T00:00:00Z' when the server sent none
 * ```
 */
import type {
  Alert,
  GlobalPinInfo,
  ID,
  IPFSID,
  Metric,
  Pin,
  PinInfoShort,
  PinMode,
  PinType,
  TrackerStatus,
} from '../../types/mod.ts'
import { normalizeCid, STATUS_BITS, ZERO_TIME } from '../../types/mod.ts'
import { carryExactInts } from './client_json.ts'
import type {
  AddedOutput,
  Bandwidth,
  BandwidthByProtocol,
  ConnectGraph,
  GlobalRepoGC,
  IPFSRepoGC,
  RepoGC,
  Version,
} from './client_types.ts'

type Obj = Record<string, unknown>

function obj(v: unknown): Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Obj : {}
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function int(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0
}

function bool(v: unknown): boolean {
  return v === true
}

/** A Go slice of strings: null stays null (a nil slice), anything else becomes a list. */
function strList(v: unknown): string[] | null {
  return Array.isArray(v) ? v.map(str) : null
}

/** A Go map: null when absent, keys sorted as encoding/json writes them. */
function sortedMap<T>(v: unknown, conv: (x: unknown) => T): Record<string, T> | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null
  const out: Record<string, T> = {}
  for (const k of Object.keys(v).sort()) out[k] = conv((v as Obj)[k])
  return out
}

/** A CID as Go re-encodes it (canonical base), or null for an undefined CID. */
function cid(v: unknown): string | null {
  if (typeof v !== 'string' || v === '') return null
  try {
    return normalizeCid(v)
  } catch {
    return v
  }
}

const TIME_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/

/**
 * A time as Go's time.Time marshals it after a round trip: RFC3339 with at most nine fraction
 * digits and no trailing zeros, a zero offset written `Z`, the zero time when missing.
 */
export function goTime(v: unknown): string {
  if (typeof v !== 'string') return ZERO_TIME
  const m = TIME_RE.exec(v)
  if (!m) return ZERO_TIME
  const frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '')
  const zone = m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]
  return `${m[1]}${frac ? '.' + frac : ''}${zone}`
}

/** True for Go's zero time (unset timestamps). */
export function isZeroTime(t: string): boolean {
  return t.startsWith('0001-01-01T00:00:00') && goTime(t) === ZERO_TIME
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(STATUS_BITS).map(([name, bit]) => [bit, name]),
)

/** A TrackerStatus as Go reads it: comma lists are OR-ed, unknown names are ignored. */
export function goStatus(v: unknown): TrackerStatus {
  let mask = 0
  for (const part of str(v).replaceAll(' ', '').split(',')) mask |= STATUS_BITS[part] ?? 0
  const known = STATUS_NAMES.get(mask)
  if (known !== undefined) return known as TrackerStatus
  const names: string[] = []
  for (const [bit, name] of STATUS_NAMES) {
    if (bit !== 0 && (bit & (bit - 1)) === 0 && (mask & bit) !== 0) names.push(name)
  }
  return names.join(',') as TrackerStatus
}

function pinType(v: unknown): PinType {
  switch (v) {
    case 'pin':
    case 'meta-pin':
    case 'clusterdag-pin':
    case 'shard-pin':
      return v
    case '':
      return 'all' as PinType // Go reads "" as the all-types filter
    default:
      return 'bad-type'
  }
}

function pinMode(v: unknown): PinMode {
  return v === 'direct' ? 'direct' : 'recursive'
}

/** Decodes an IPFS daemon identity (`id` is omitted when empty, as in Go). */
export function decodeIPFSID(v: unknown): IPFSID {
  const o = obj(v)
  const out: IPFSID = { id: str(o.id), addresses: strList(o.addresses) as string[], error: '' }
  out.error = str(o.error)
  if (!out.id) delete out.id
  return out
}

/** Decodes a cluster peer identity (`GET /id`, `/peers` items). */
export function decodeID(v: unknown): ID {
  const o = obj(v)
  return {
    id: str(o.id),
    addresses: strList(o.addresses) as string[],
    cluster_peers: strList(o.cluster_peers) as string[],
    cluster_peers_addresses: strList(o.cluster_peers_addresses) as string[],
    version: str(o.version),
    commit: str(o.commit),
    rpc_protocol_version: str(o.rpc_protocol_version),
    error: str(o.error),
    ipfs: decodeIPFSID(o.ipfs),
    peername: str(o.peername),
  }
}

/** Decodes a pin (`GET /allocations`, pin/unpin answers). */
export function decodePin(v: unknown): Pin {
  const o = obj(v)
  const ref = cid(o.reference)
  return {
    replication_factor_min: int(o.replication_factor_min),
    replication_factor_max: int(o.replication_factor_max),
    name: str(o.name),
    mode: pinMode(o.mode),
    shard_size: int(o.shard_size),
    user_allocations: strList(o.user_allocations),
    expire_at: goTime(o.expire_at),
    metadata: sortedMap(o.metadata, str),
    // Go's Cid is a struct, so `omitempty` never drops it: an unset pin_update prints as null.
    pin_update: cid(o.pin_update),
    origins: strList(o.origins),
    cid: cid(o.cid) as string,
    type: o.type === undefined ? 'bad-type' : pinType(o.type),
    allocations: strList(o.allocations) as string[],
    max_depth: int(o.max_depth),
    reference: ref,
    timestamp: goTime(o.timestamp),
  }
}

/** Decodes one peer's entry of a GlobalPinInfo peer_map. */
export function decodePinInfoShort(v: unknown): PinInfoShort {
  const o = obj(v)
  const out: PinInfoShort = {
    peername: str(o.peername),
    ipfs_peer_id: str(o.ipfs_peer_id),
    ipfs_peer_addresses: strList(o.ipfs_peer_addresses) ?? undefined,
    status: goStatus(o.status),
    timestamp: goTime(o.timestamp),
    error: str(o.error),
    attempt_count: int(o.attempt_count),
    priority_pin: bool(o.priority_pin),
  }
  if (!out.ipfs_peer_id) delete out.ipfs_peer_id
  if (!out.ipfs_peer_addresses?.length) delete out.ipfs_peer_addresses
  return out
}

/** Decodes a cluster-wide status (`GET /pins…`, recover answers). */
export function decodeGlobalPinInfo(v: unknown): GlobalPinInfo {
  const o = obj(v)
  return {
    cid: cid(o.cid) as string,
    name: str(o.name),
    allocations: strList(o.allocations),
    origins: strList(o.origins),
    created: goTime(o.created),
    metadata: sortedMap(o.metadata, str),
    peer_map: sortedMap(o.peer_map, decodePinInfoShort) as Record<string, PinInfoShort>,
  }
}

const METRIC_INTS = ['expire', 'weight', 'received_at'] as const

/** Decodes a metric; nanosecond timestamps keep their exact digits (see client_json.ts). */
export function decodeMetric(v: unknown): Metric {
  const o = obj(v)
  const out: Metric = {
    name: str(o.name),
    peer: str(o.peer),
    value: str(o.value),
    expire: int(o.expire),
    valid: bool(o.valid),
    weight: int(o.weight),
    partitionable: bool(o.partitionable),
    received_at: int(o.received_at),
  }
  carryExactInts(o, out, METRIC_INTS)
  return out
}

/** Decodes an alert (a metric plus when it triggered). */
export function decodeAlert(v: unknown): Alert {
  const o = obj(v)
  const out: Alert = { ...decodeMetric(o), triggered_at: goTime(o.triggered_at) }
  carryExactInts(o, out, METRIC_INTS)
  return out
}

/** Decodes `GET /version`. */
export function decodeVersion(v: unknown): Version {
  return { version: str(obj(v).version) }
}

function decodeIPFSRepoGC(v: unknown): IPFSRepoGC {
  const o = obj(v)
  const out: IPFSRepoGC = { key: cid(o.key) }
  if (str(o.error)) out.error = str(o.error)
  return out
}

/** Decodes one peer's GC report. */
export function decodeRepoGC(v: unknown): RepoGC {
  const o = obj(v)
  const out: RepoGC = {
    peer: str(o.peer),
    peername: str(o.peername),
    keys: Array.isArray(o.keys) ? o.keys.map(decodeIPFSRepoGC) : null,
  }
  if (str(o.error)) out.error = str(o.error)
  return out
}

/** Decodes `POST /ipfs/gc`. */
export function decodeGlobalRepoGC(v: unknown): GlobalRepoGC {
  return { peer_map: sortedMap(obj(v).peer_map, decodeRepoGC) }
}

/** Decodes `GET /health/graph`. */
export function decodeConnectGraph(v: unknown): ConnectGraph {
  const o = obj(v)
  return {
    cluster_id: str(o.cluster_id),
    id_to_peername: sortedMap(o.id_to_peername, str),
    ipfs_links: sortedMap(o.ipfs_links, strList),
    cluster_links: sortedMap(o.cluster_links, strList),
    cluster_trust_links: sortedMap(o.cluster_trust_links, bool),
    cluster_to_ipfs: sortedMap(o.cluster_to_ipfs, str),
  }
}

function decodeBandwidth(v: unknown): Bandwidth {
  const o = obj(v)
  return {
    total_in: int(o.total_in),
    total_out: int(o.total_out),
    rate_in: num(o.rate_in),
    rate_out: num(o.rate_out),
  }
}

/** Decodes `GET /health/bandwidth` (a Go map, so null when the server sent null). */
export function decodeBandwidthByProtocol(v: unknown): BandwidthByProtocol | null {
  return sortedMap(v, decodeBandwidth)
}

/** Decodes one `POST /add` output line. */
export function decodeAddedOutput(v: unknown): AddedOutput {
  const o = obj(v)
  const out: AddedOutput = { name: str(o.name), cid: cid(o.cid) }
  if (int(o.bytes)) out.bytes = int(o.bytes)
  if (int(o.size)) out.size = int(o.size)
  const allocs = strList(o.allocations)
  if (allocs?.length) out.allocations = allocs
  return out
}

/** Decodes a JSON list (a Go slice: null stays null). */
export function decodeList<T>(v: unknown, each: (x: unknown) => T): T[] | null {
  return Array.isArray(v) ? v.map(each) : null
}

/** Decodes a list of strings (metric names). */
export function decodeStringList(v: unknown): string[] | null {
  return strList(v)
}
