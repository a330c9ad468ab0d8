/**
 * Bookkeeping for linearizable reads (ReadIndex, Raft thesis §6.4). A leader records its commit
 * index when a read arrives, then proves it is still the leader by a heartbeat round that a
 * quorum acknowledges; only then may the read be served at that index. Without the round, a
 * deposed leader that does not know it yet could serve stale data.
 *
 * @module
 */
import type { NodeId } from './types.ts'

/** One read waiting for its heartbeat round. */
export interface ReadIndexStatus {
  /** The leader's commit index when the read arrived. */
  index: number
  /** Who asked (the leader itself or a follower that forwarded the read). */
  from: NodeId
  ctx: string
  /** Voters that acknowledged a heartbeat carrying this (or a later) ctx. */
  acks: Set<NodeId>
}

/** The queue of reads awaiting leadership confirmation, in arrival order. */
export class ReadOnly {
  #pending = new Map<string, ReadIndexStatus>()
  #queue: string[] = []

  /** Queues a read; a duplicate `ctx` is ignored (hosts must use unique contexts). */
  addRequest(index: number, from: NodeId, ctx: string): void {
    if (this.#pending.has(ctx)) return
    this.#pending.set(ctx, { index, from, ctx, acks: new Set() })
    this.#queue.push(ctx)
  }

  /** Records `id`'s acknowledgement of the heartbeat tagged `ctx`; returns the acks so far. */
  recvAck(id: NodeId, ctx: string): Set<NodeId> | undefined {
    const rs = this.#pending.get(ctx)
    if (!rs) return undefined
    rs.acks.add(id)
    return rs.acks
  }

  /**
   * `ctx` reached a quorum: it and every read queued before it are confirmed (a heartbeat
   * acknowledged after a later read was queued also proves leadership for the earlier ones).
   * Returns them, oldest first, and forgets them.
   */
  advance(ctx: string): ReadIndexStatus[] {
    const i = this.#queue.indexOf(ctx)
    if (i < 0) return []
    const done = this.#queue.splice(0, i + 1)
    return done.map((c) => {
      const rs = this.#pending.get(c)!
      this.#pending.delete(c)
      return rs
    })
  }

  /** The newest pending read's ctx: heartbeats carry it so one round serves every queued read. */
  lastPendingCtx(): string | undefined {
    return this.#queue.at(-1)
  }

  size(): number {
    return this.#queue.length
  }
}
