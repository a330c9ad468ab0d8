/**
 * Peer identity reports: the cluster peer's ID and its IPFS daemon's, as `GET /id` returns them.
 *
 * @example
 * ```ts
 * const id: ID = { id: 'Qm…', addresses: [], …, ipfs: { id: '12D3…', addresses: [], error: '' } }
 * ```
 */
/** The IPFS daemon's identity as the connector sees it. */
export interface IPFSID {
  id?: string
  addresses: string[]
  error: string
}

/** A cluster peer's identity (`GET /id`, `GET /peers` items). */
export interface ID {
  id: string
  addresses: string[]
  cluster_peers: string[]
  cluster_peers_addresses: string[]
  version: string
  commit: string
  rpc_protocol_version: string
  error: string
  ipfs: IPFSID
  peername: string
}

/** The version this implementation reports; matches the reference release it follows. */
export const VERSION = '1.1.6'
/** The cluster RPC protocol id the reference uses. */
export const RPC_PROTOCOL = '/ipfscluster/1.0/rpc'
