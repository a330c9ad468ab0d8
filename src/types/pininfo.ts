/**
 * Status reports: PinInfo (one peer's view of one CID) and GlobalPinInfo (all peers' views merged),
 * in the JSON shapes of IPFS Cluster 1.x.
 *
 * @example
 * ```ts
 * const g = toGlobal(info)
 * mergeInto(g, otherPeersInfo)
 * globalOf(cid, [infoOfA, infoOfB]) // one CID's reports, peers in order
 * ```
 */
import type { TrackerStatus } from './status.ts'
import { statusMatches } from './status.ts'
import { ZERO_TIME } from './time.ts'

/** One peer's status for a CID, without the CID-wide fields (the `peer_map` values). */
export interface PinInfoShort {
  peername: string
  ipfs_peer_id?: string
  ipfs_peer_addresses?: string[]
  status: TrackerStatus
  timestamp: string
  error: string
  attempt_count: number
  priority_pin: boolean
}

/** One peer's full status for a CID (the RPC form). */
export interface PinInfo extends PinInfoShort {
  cid: string
  name: string
  peer: string
  allocations: string[] | null
  origins: string[] | null
  created: string
  metadata: Record<string, string> | null
}

/** The cluster-wide status of a CID. */
export interface GlobalPinInfo {
  cid: string
  name: string
  allocations: string[] | null
  origins: string[] | null
  created: string
  metadata: Record<string, string> | null
  peer_map: Record<string, PinInfoShort>
}

/** The peer_map value of a PinInfo, keys in the reference's order. */
export function shortOf(pi: PinInfo): PinInfoShort {
  const s: PinInfoShort = {
    peername: pi.peername,
    ipfs_peer_id: pi.ipfs_peer_id,
    ipfs_peer_addresses: pi.ipfs_peer_addresses,
    status: pi.status,
    timestamp: pi.timestamp,
    error: pi.error,
    attempt_count: pi.attempt_count,
    priority_pin: pi.priority_pin,
  }
  if (!s.ipfs_peer_id) delete s.ipfs_peer_id
  if (!s.ipfs_peer_addresses?.length) delete s.ipfs_peer_addresses
  return s
}

/** Wraps one peer's PinInfo as a GlobalPinInfo. */
export function toGlobal(pi: PinInfo): GlobalPinInfo {
  const g: GlobalPinInfo = {
    cid: pi.cid,
    name: pi.name,
    allocations: pi.allocations,
    origins: pi.origins,
    created: pi.created,
    metadata: pi.metadata,
    peer_map: {},
  }
  g.peer_map[pi.peer] = shortOf(pi)
  return g
}

/**
 * Adds a peer's PinInfo to a GlobalPinInfo. The CID-wide fields are taken from any report that is
 * not a cluster_error (a failing peer knows nothing about the pin), as the reference does.
 */
export function mergeInto(g: GlobalPinInfo, pi: PinInfo): GlobalPinInfo {
  if (!g.cid || pi.status !== 'cluster_error') {
    g.cid = pi.cid
    g.name = pi.name
    g.allocations = pi.allocations
    g.origins = pi.origins
    g.created = pi.created
    g.metadata = pi.metadata
  }
  g.peer_map[pi.peer] = shortOf(pi)
  return g
}

/**
 * The GlobalPinInfo of one CID from the peers' reports: merged in peer order, so that the peer
 * map's keys come sorted, as Go's encoding/json writes a map. The CID-wide fields come from the
 * reports (see mergeInto); with none, the CID alone.
 */
export function globalOf(cid: string, infos: PinInfo[]): GlobalPinInfo {
  const g: GlobalPinInfo = {
    cid: '',
    name: '',
    allocations: null,
    origins: null,
    created: ZERO_TIME,
    metadata: null,
    peer_map: {},
  }
  for (const pi of infos.slice().sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))) {
    mergeInto(g, pi)
  }
  g.cid ||= cid
  return g
}

/** True when any peer's status matches the filter mask. */
export function globalMatches(g: GlobalPinInfo, filter: number): boolean {
  return Object.values(g.peer_map).some((p) => statusMatches(p.status, filter))
}
