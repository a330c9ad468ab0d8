/**
 * How Raft nodes reach each other. The host (raft_consensus.ts) hands outgoing messages and
 * snapshot streams to a `RaftTransport` and receives inbound traffic through the handlers it
 * registers with `listen`. The in-process `MemoryNetwork` (memory_transport.ts) serves tests and
 * benches; `libp2pTransport` (libp2p_transport.ts) carries it between cluster peers.
 *
 * Delivery is best effort: messages may be lost, duplicated or reordered and Raft copes. Two
 * things a transport must do:
 * - a snapshot stream is acknowledged chunk by chunk: `sendSnapshot` resolves only once the
 *   receiver's `snapshotChunk` handler resolved for every chunk (each chunk staged durably
 *   there), and rejects if any chunk failed or the peer went away;
 * - messages between two nodes should keep their order where the medium allows (one stream),
 *   so that pipelined appends rarely need a retry.
 *
 * @example
 * ```ts
 * const stop = transport.listen('a', { message: (m) => node.step(m), snapshotChunk: stage })
 * transport.send(ready.messages)
 * await transport.sendSnapshot('b', chunks, signal)
 * stop()
 * ```
 *
 * @module
 */
import type { Message, NodeId, SnapshotChunk } from './core/mod.ts'

/** Thrown by a snapshot stream to a peer that cannot be reached or went away mid-stream. */
export class UnreachableError extends Error {
  override name = 'UnreachableError'
}

/** What a node does with inbound traffic. */
export interface RaftTransportHandlers {
  /** A message from a peer. */
  message(m: Message): void
  /** One chunk of a snapshot stream; resolves once staged, rejects to tear the stream. */
  snapshotChunk(c: SnapshotChunk): Promise<void>
  /** The transport could not deliver to `peer` (optional hint; Raft probes it again). */
  unreachable?(peer: NodeId): void
}

/** Carries Raft traffic between the members of a cluster. */
export interface RaftTransport {
  /** Starts delivering traffic addressed to `self`; the returned function stops it. */
  listen(self: NodeId, handlers: RaftTransportHandlers): () => void
  /** Sends messages (each to its `to`), best effort, without waiting. */
  send(messages: readonly Message[]): void
  /** Streams snapshot chunks to `to`; resolves when every chunk was staged there. */
  sendSnapshot(to: NodeId, chunks: AsyncIterable<SnapshotChunk>, signal: AbortSignal): Promise<void>
}

/** A transport that reaches no one: for a single voter that never sends anything. */
export const nullTransport: RaftTransport = {
  listen: () => () => {},
  send: () => {},
  sendSnapshot: () => Promise.reject(new Error('no transport: cannot reach other peers')),
}
