/**
 * Peer identity reports: the cluster peer's ID and its IPFS daemon's, as `GET /id` returns them.
 *
 * @example
 * ```ts
 * const id: ID = { id: 'Qm…', addresses: [], …, ipfs: { id: '12D3…', addresses: [], error: '' } }
 * ```
 */
import { base58btc } from 'multiformats/bases/base58'
import * as Digest from 'multiformats/hashes/digest'
import { tryParseCid } from './cid.ts'

/** The multicodec of a peer ID written as a CID. */
const LIBP2P_KEY = 0x72

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

/**
 * Reads a libp2p peer ID the way go-libp2p's `peer.Decode` does: a base58btc multihash (`Qm…`,
 * `12D3…`) or a CID with the libp2p-key codec. Returns its canonical base58btc form (what Go
 * prints), or undefined when `s` is not a peer ID.
 */
export function parsePeerId(s: unknown): string | undefined {
  if (typeof s !== 'string' || s.length === 0) return undefined
  if (s.startsWith('Qm') || s.startsWith('1')) {
    try {
      Digest.decode(base58btc.baseDecode(s))
      return s
    } catch {
      return undefined
    }
  }
  const cid = tryParseCid(s)
  return cid?.code === LIBP2P_KEY ? base58btc.baseEncode(cid.multihash.bytes) : undefined
}

/** True when `s` is a libp2p peer ID (see parsePeerId). */
export function isPeerId(s: unknown): s is string {
  return parsePeerId(s) !== undefined
}
