/**
 * Shapes the REST client returns besides the data model of `src/types/` (pins, statuses, IDs,
 * metrics), plus the client's error type. Field names and order are the reference's JSON.
 *
 * @example
 * ```ts
 * try { await client.pin(cid) } catch (e) { if (e instanceof ApiError) console.log(e.code) }
 * ```
 */
import type { PinOptions } from '../../types/mod.ts'

/**
 * An error answered by the API (`{"code","message"}`), or, with code 0, a request that never got
 * an answer (connection refused, timeout, TLS failure), exactly as the reference client reports it.
 */
export class ApiError extends Error {
  override name = 'ApiError'
  /** HTTP status of the answer; 0 when the request failed before any answer. */
  readonly code: number
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
  /** The reference's `Error()` text: `<message> (<code>)`. */
  override toString(): string {
    return `${this.message} (${this.code})`
  }
}

/** `GET /version`. */
export interface Version {
  version: string
}

/** One collected key of an IPFS repo GC (`key` is null when the entry is an error). */
export interface IPFSRepoGC {
  key: string | null
  error?: string
}

/** One peer's repo GC result. */
export interface RepoGC {
  peer: string
  peername: string
  keys: IPFSRepoGC[] | null
  error?: string
}

/** `POST /ipfs/gc`: results by cluster peer ID. */
export interface GlobalRepoGC {
  peer_map: Record<string, RepoGC> | null
}

/** `GET /health/graph`: the connectivity graph of the cluster and its IPFS daemons. */
export interface ConnectGraph {
  cluster_id: string
  id_to_peername: Record<string, string> | null
  ipfs_links: Record<string, string[] | null> | null
  cluster_links: Record<string, string[] | null> | null
  cluster_trust_links: Record<string, boolean> | null
  cluster_to_ipfs: Record<string, string> | null
}

/** Traffic counters of one libp2p protocol. */
export interface Bandwidth {
  total_in: number
  total_out: number
  rate_in: number
  rate_out: number
}

/** `GET /health/bandwidth`: counters by protocol ID. */
export type BandwidthByProtocol = Record<string, Bandwidth>

/** One line of `POST /add` output (src/types/added.ts). */
export type { AddedOutput } from '../../types/added.ts'

/** Parameters of `POST /add` besides the pin options (the reference's `AddParams`). */
export interface AddParams extends PinOptions {
  local: boolean
  recursive: boolean
  hidden: boolean
  wrap: boolean
  shard: boolean
  stream_channels: boolean
  format: 'unixfs' | 'car' | string
  no_pin: boolean
  layout: string
  chunker: string
  raw_leaves: boolean
  progress: boolean
  cid_version: number
  hash_fun: string
  no_copy: boolean
}
