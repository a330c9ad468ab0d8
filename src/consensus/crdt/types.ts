/**
 * The interfaces between the parts of CRDT consensus (a port of go-ds-crdt v0.6.8 as IPFS Cluster
 * 1.1.6 uses it): the replica (replica.ts) merges deltas into Deno KV; the network edges
 * (broadcaster.ts over gossipsub, block_exchange.ts over bitswap) move heads and blocks; the
 * consensus component (crdt_consensus.ts) owns the pinset view through {@linkcode ReplicaHooks}.
 *
 * @example
 * ```ts
 * const replica: Replica = crdtReplica(
 *   { kv, blocks: kvBlockstore(kv), broadcaster, fetcher, hooks, clock: systemClock, log },
 *   { rebroadcastIntervalMs: 60_000, repairIntervalMs: 3_600_000, dagSyncerTimeoutMs: 120_000,
 *     workers: 50, maxBatchBytes: 1 << 20 },
 * )
 * await replica.start()
 * await replica.put(dsKey(cid), pinBytes)
 * ```
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import type { Mutation } from '../../state/kv_batch.ts'
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../util/log.ts'

/**
 * Announces and receives heads (go-ds-crdt's Broadcaster). Implemented over gossipsub.
 *
 * @example
 * ```ts
 * await broadcaster.broadcast(encodeBroadcast([head]))
 * for await (const { from, data } of broadcaster.messages(signal)) handle(from, data)
 * ```
 */
export interface Broadcaster {
  /** Publishes a payload (a CRDTBroadcast protobuf) on the cluster's CRDT topic. */
  broadcast(data: Uint8Array, signal?: AbortSignal): Promise<void>
  /** Payloads from trusted authors only (the validator drops the rest), until the signal aborts. */
  messages(signal: AbortSignal): AsyncIterable<{ from: string; data: Uint8Array }>
}

/**
 * The replica's DAG blocks (on KV: blockstore.ts; served to other peers over bitswap).
 *
 * @example
 * ```ts
 * if (!await blocks.has(cid)) await blocks.put(cid, bytes)
 * ```
 */
export interface CrdtBlockstore {
  has(cid: CID): Promise<boolean>
  get(cid: CID): Promise<Uint8Array | undefined>
  put(cid: CID, bytes: Uint8Array): Promise<void>
}

/**
 * Fetches blocks the replica lacks from connected peers (bitswap). Rejects on abort.
 *
 * @example
 * ```ts
 * const bytes = await fetcher.fetch(cid, AbortSignal.timeout(120_000))
 * ```
 */
export interface BlockFetcher {
  fetch(cid: CID, signal: AbortSignal): Promise<Uint8Array>
}

/**
 * What a merge tells its owner. `view` runs inside the merge's KV commit; the hooks after it.
 *
 * @example
 * ```ts
 * const hooks: ReplicaHooks = {
 *   view: (key, value) => value ? [setMutation(['pin', key], json(value), 200)] : [deleteMutation(['pin', key])],
 *   onPut: (key) => tracker.track(key),
 *   onDelete: (key) => tracker.untrack(key),
 * }
 * ```
 */
export interface ReplicaHooks {
  /** Extra mutations committed atomically with the merge that made `value` win for `key` (undefined: the key has no value any more). */
  view?(key: string, value: Uint8Array | undefined): Mutation[]
  /**
   * Extra mutations committed once with a merge that changed at least one key, after every
   * `view` mutation (in the merge's last commit when it splits): a counter of merges, say.
   */
  merged?(): Mutation[]
  /** After commit: `value` won for `key` (go-ds-crdt PutHook). */
  onPut?(key: string, value: Uint8Array): void
  /** After commit: `key` was tombstoned (DeleteHook; fires even if another version survives). */
  onDelete?(key: string): void
}

/**
 * The replica's tunables, from `consensus.crdt` in service.json.
 *
 * @example
 * ```ts
 * const opts: ReplicaOptions = { rebroadcastIntervalMs: 60_000, repairIntervalMs: 3_600_000,
 *   dagSyncerTimeoutMs: 120_000, workers: 50, maxBatchBytes: 1 << 20 }
 * ```
 */
export interface ReplicaOptions {
  /** consensus.crdt.rebroadcast_interval (60 s). */
  rebroadcastIntervalMs: number
  /** consensus.crdt.repair_interval (1 h); 0 = off. */
  repairIntervalMs: number
  /** 2 min per batch of children. */
  dagSyncerTimeoutMs: number
  /** 50 in Go; concurrency of fetches in a walk. */
  workers: number
  /** 1 MiB: a batch delta above this commits early. */
  maxBatchBytes: number
}

/**
 * What the replica is built from: its storage, its network edges, its owner's hooks, time.
 *
 * @example
 * ```ts
 * const deps: ReplicaDeps = { kv, blocks: kvBlockstore(kv), broadcaster, fetcher, hooks: {},
 *   clock: systemClock, log: nullLogger }
 * ```
 */
export interface ReplicaDeps {
  kv: Deno.Kv
  blocks: CrdtBlockstore
  broadcaster: Broadcaster
  fetcher: BlockFetcher
  hooks: ReplicaHooks
  /** src/util/clock.ts (inject in tests). */
  clock: Clock
  /** Uniform in [0, 1) (the rebroadcast jitter); Math.random by default. */
  random?: () => number
  /** src/util/log.ts */
  log: Logger
}

/**
 * A go-ds-crdt Datastore: an Add-Wins OR-set of `key → value` replicated by deltas in a Merkle DAG.
 *
 * @example
 * ```ts
 * await replica.start()
 * await replica.put('/K', value)
 * for await (const { key, value } of replica.list()) console.log(key, value)
 * await replica.stop()
 * ```
 */
export interface Replica {
  /** Loads heads, starts receiving, the rebroadcast and repair loops. */
  start(): Promise<void>
  /** Publishes one delta putting `value` at `key` (one element). */
  put(key: string, value: Uint8Array, signal?: AbortSignal): Promise<void>
  /** Publishes one delta tombstoning every version of `key` seen here; no-op if none. */
  delete(key: string, signal?: AbortSignal): Promise<void>
  /**
   * One delta with all of these (removing a key drops its pending puts first), then one broadcast;
   * a delta closes early past `maxBatchBytes` of encoded delta, as Go's. `ops` may stream (an
   * import of millions of pins): only the open delta is held.
   */
  commitBatch(
    ops:
      | Iterable<{ key: string; value?: Uint8Array }>
      | AsyncIterable<{ key: string; value?: Uint8Array }>,
    signal?: AbortSignal,
  ): Promise<void>
  get(key: string): Promise<Uint8Array | undefined>
  /** Live keys and values, in key order, streamed. */
  list(signal?: AbortSignal): AsyncIterable<{ key: string; value: Uint8Array }>
  heads(): Promise<{ cid: CID; height: number }[]>
  /** Resolves when no received broadcast is being processed (tests and `ready`). */
  idle(signal?: AbortSignal): Promise<void>
  /** Walks the DAG from the heads re-fetching and re-merging what is missing. */
  repair(signal?: AbortSignal): Promise<void>
  stats(): { blocksFetched: number; blocksProcessed: number; dirty: boolean }
  stop(): Promise<void>
}
