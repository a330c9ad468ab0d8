/**
 * An in-process `RaftTransport` for tests and benches: every node of a `MemoryNetwork` gets an
 * endpoint; messages are delivered asynchronously (a microtask later, in order per link), and
 * links can be cut to partition the network or isolate a node.
 *
 * Messages are passed by reference, not copied: the core never mutates a message or entry it
 * sent or received, and copying would only slow the benches.
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork()
 * const a = raftConsensus(cfg, { peerId: 'a', kv, state, hooks, transport: net.endpoint() })
 * net.isolate('a')   // nothing in or out
 * net.heal()
 * ```
 *
 * @module
 */
import type { Message, NodeId, SnapshotChunk } from './core/mod.ts'
import { type RaftTransport, type RaftTransportHandlers, UnreachableError } from './transport.ts'

export { UnreachableError }

/** A set of in-process nodes and the links between them. */
export class MemoryNetwork {
  readonly #nodes = new Map<NodeId, RaftTransportHandlers>()
  readonly #cut = new Set<string>()
  readonly #isolated = new Set<NodeId>()
  #queue: Message[] = []
  #flushing = false
  /** Messages delivered so far (for assertions on traffic). */
  delivered = 0
  /** Return false to drop a message in flight (on top of cut links). */
  filter: (m: Message) => boolean = () => true

  /** An endpoint for one node; any number of endpoints may share the network. */
  endpoint(): RaftTransport {
    return {
      listen: (self, handlers) => {
        this.#nodes.set(self, handlers)
        return () => {
          if (this.#nodes.get(self) === handlers) this.#nodes.delete(self)
        }
      },
      send: (messages) => {
        for (const m of messages) this.#queue.push(m)
        if (!this.#flushing && this.#queue.length > 0) {
          this.#flushing = true
          queueMicrotask(() => this.#flush())
        }
      },
      sendSnapshot: (to, chunks, signal) => this.#stream(to, chunks, signal),
    }
  }

  /** True if traffic from `a` reaches `b`. */
  linked(a: NodeId, b: NodeId): boolean {
    return !this.#isolated.has(a) && !this.#isolated.has(b) && !this.#cut.has(`${a}\0${b}`)
  }

  /** Cuts both directions between `a` and `b`. */
  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}\0${b}`)
    this.#cut.add(`${b}\0${a}`)
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId): void {
    this.#isolated.add(id)
  }

  /** Restores every link. */
  heal(): void {
    this.#cut.clear()
    this.#isolated.clear()
  }

  #flush(): void {
    const batch = this.#queue
    this.#queue = []
    this.#flushing = false
    for (const m of batch) {
      if (!this.linked(m.from, m.to) || !this.filter(m)) continue
      const h = this.#nodes.get(m.to)
      if (!h) continue
      this.delivered++
      h.message(m)
    }
  }

  async #stream(
    to: NodeId,
    chunks: AsyncIterable<SnapshotChunk>,
    signal: AbortSignal,
  ): Promise<void> {
    for await (const c of chunks) {
      signal.throwIfAborted()
      const h = this.#nodes.get(to)
      if (!h || !this.linked(c.from, to)) throw new UnreachableError(`${to} is unreachable`)
      await h.snapshotChunk(c)
    }
  }
}
