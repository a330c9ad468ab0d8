/**
 * A deterministic Raft core modelled on etcd-io/raft: no I/O, no timers, no randomness of its
 * own. Drive a `RaftNode` with `tick()` and `step(msg)`, collect `Ready` batches, persist, send,
 * apply, `advance()`. Storage and transport are adapters around it; see `docs/raft.md`.
 *
 * @example
 * ```ts
 * import { MemoryStorage, RaftNode, seededRandom } from './mod.ts'
 * const node = new RaftNode({ id: 'a', storage: MemoryStorage.bootstrap(['a']), rand: seededRandom(1) })
 * node.campaign()
 * ```
 *
 * @module
 */
export * from './types.ts'
export * from './errors.ts'
export type { PersistedState, Storage } from './storage.ts'
export { MemoryStorage } from './storage.ts'
export type { RaftNodeConfig } from './config.ts'
export { canSendBeforePersist, RaftNode, validateMessage } from './node.ts'
export type { BasicStatus, Ready, Status } from './node.ts'
export type { ProposalResult } from './raft.ts'
export type { ProgressState } from './progress.ts'
export { decodeConfChangeEntry } from './conf_change.ts'
export type { ConfChangeRecord } from './conf_change.ts'
export { MemorySnapshotAssembler, snapshotChunks, SnapshotReceiver } from './snapshot_stream.ts'
export type { ChunkVerdict, SnapshotChunk } from './snapshot_stream.ts'
export { seededRandom } from './prng.ts'
export { entrySize } from './util.ts'
