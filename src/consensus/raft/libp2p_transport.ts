/**
 * Raft over libp2p: the `RaftTransport` of a cluster peer. Peers are addressed by their libp2p
 * peer ID string (a Raft `NodeId` is the cluster peer ID); their addresses come from the host's
 * peer store.
 *
 * ## Messages (`/ipfs-cluster-deno/raft/1.0.0`)
 *
 * Each peer keeps ONE long-lived outbound stream to every peer it talks to, opened on the first
 * message and reused, so the messages to a peer arrive in the order they were sent (pipelined
 * appends rarely need a retry). Messages wait in a bounded per-peer queue; one writer per peer
 * takes everything queued (up to `maxFrameBytes`) into one frame (libp2p_codec.ts). Inbound
 * streams are read frame by frame and every message goes to `handlers.message`, with `from` set
 * to the connection's authenticated remote peer.
 *
 * ## Backpressure, not unbounded queues
 *
 * A peer's queue holds at most `maxQueuedMessages` messages and `maxQueuedBytes` encoded bytes
 * (one message larger than that still goes alone into an empty queue, or it could never be sent);
 * the writer waits for the stream to drain before the next frame, so at most one frame sits in
 * the stream's buffer. Per peer, memory is therefore bounded by about
 * `maxQueuedBytes + maxFrameBytes`. When the queue is full (a slow or stalled peer) new messages
 * are dropped — Raft retransmits what matters — and `handlers.unreachable(peer)` tells the core to
 * fall back to probing that peer. A stream that does not drain within `stallTimeoutMs` is torn
 * down, as a broken one.
 *
 * ## Reconnecting
 *
 * A failed dial, or a stream that breaks while messages are being written, puts the peer in
 * backoff: `backoffMs(failures)` (capped exponential, `minBackoffMs` doubling up to
 * `maxBackoffMs`, measured on the injected clock). Messages to a peer in backoff are dropped at
 * once with an `unreachable` hint; the first message after it dials again, and a dial that works
 * resets the count. A stream that closes while idle (the remote's inactivity timeout) is simply
 * reopened on the next message.
 *
 * ## Snapshots (`/ipfs-cluster-deno/raft-snapshot/1.0.0`)
 *
 * `sendSnapshot` opens a stream of its own and sends the chunks in order; the receiver stages them
 * one by one and answers each with an acknowledgement once `handlers.snapshotChunk` resolved (the
 * chunk is staged durably), or with the reason it refused it. At most `snapshotWindow` chunks (4)
 * travel ahead of their acknowledgements, so sending overlaps staging while the receiver's buffer
 * stays bounded; each acknowledgement is awaited at most `ackTimeoutMs`. A refusal, a broken
 * stream or `signal` rejects `sendSnapshot`; an error of the chunk source is rethrown as it is.
 *
 * @example
 * ```ts
 * const transport = libp2pTransport({ libp2p: host.libp2p, log })
 * const consensus = raftConsensus(cfg, { peerId: host.peerId, kv, state, hooks, transport })
 * // …
 * await consensus.stop()
 * await transport.stop()
 * ```
 *
 * @module
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { errorMessage } from '../../errors.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { LOCAL_MESSAGE_TYPES, type Message, type NodeId, type SnapshotChunk } from './core/mod.ts'
import {
  decodeAck,
  decodeChunk,
  decodeFrame,
  encodeAck,
  encodeChunk,
  encodeFrame,
  encodeMessage,
  frameOf,
  FrameReader,
} from './libp2p_codec.ts'
import { type RaftTransport, type RaftTransportHandlers, UnreachableError } from './transport.ts'

/** The protocol of Raft messages (ours, not go-libp2p-raft's: the messages are not hashicorp's). */
export const RAFT_PROTOCOL = '/ipfs-cluster-deno/raft/1.0.0'
/** The protocol of snapshot streams. */
export const RAFT_SNAPSHOT_PROTOCOL = '/ipfs-cluster-deno/raft-snapshot/1.0.0'

/** A snapshot chunk the receiver refused (its reason is in the message). */
export class SnapshotRejectedError extends Error {
  override name = 'SnapshotRejectedError'
}

/** Wraps what the chunk source of `sendSnapshot` threw, to rethrow it unchanged. */
class SourceError extends Error {
  constructor(override readonly cause: unknown) {
    super('snapshot source failed')
  }
}

/** Options of `libp2pTransport`; every bound has a default. */
export interface Libp2pTransportOptions {
  libp2p: Libp2p
  log?: Logger
  /** Backoff and timeouts are measured on it (default: the system clock). */
  clock?: Clock
  /** Most messages waiting for one peer (default 4096). */
  maxQueuedMessages?: number
  /** Most encoded bytes waiting for one peer (default 16 MiB). */
  maxQueuedBytes?: number
  /** Most bytes of messages gathered into one frame (default 1 MiB). */
  maxFrameBytes?: number
  /** Largest inbound frame or chunk accepted (default 64 MiB; a larger one tears the stream). */
  maxInboundFrameBytes?: number
  /** First delay after a failure (default 100 ms). */
  minBackoffMs?: number
  /** Longest delay between two dials (default 2 s). */
  maxBackoffMs?: number
  /** How long a dial may take (default 5 s). */
  dialTimeoutMs?: number
  /** How long a stream may refuse to drain before it counts as broken (default 10 s). */
  stallTimeoutMs?: number
  /** How long the sender of a snapshot waits for one chunk's acknowledgement (default 60 s). */
  ackTimeoutMs?: number
  /** Snapshot chunks sent ahead of their acknowledgements (default 4; 1 = strictly one by one). */
  snapshotWindow?: number
}

/** Counts kept per peer. */
export interface PeerLinkCounts {
  /** Messages dropped so far (queue full, peer in backoff, dial failed, stream broken). */
  dropped: number
  /** Messages, frames and bytes (frames included) written so far. */
  sentMessages: number
  sentFrames: number
  sentBytes: number
  /** Dials attempted so far. */
  dials: number
  /** Failures in a row (0 once a dial works). */
  failures: number
  /** Until when (clock time) messages to this peer are dropped; 0 = not in backoff. */
  retryAt: number
}

/** One peer's outbound state, for tests and status. */
export interface PeerLinkStats extends PeerLinkCounts {
  /** Messages waiting in the queue. */
  queuedMessages: number
  /** Their encoded bytes. */
  queuedBytes: number
  /** True while an outbound stream is open. */
  connected: boolean
}

/** The libp2p `RaftTransport`, its stop and its per-peer figures. */
export interface Libp2pTransport extends RaftTransport {
  /** Closes every stream and unregisters both protocols; idempotent. */
  stop(): Promise<void>
  /** The outbound state towards `peer`, if anything was ever sent to it. */
  stats(peer: NodeId): PeerLinkStats | undefined
}

/**
 * The delay after `failures` failures in a row: `min` doubling per failure, capped at `max`.
 *
 * @example
 * ```ts
 * backoffMs(1, 100, 2000) // 100
 * backoffMs(3, 100, 2000) // 400
 * backoffMs(9, 100, 2000) // 2000
 * ```
 */
export function backoffMs(failures: number, min: number, max: number): number {
  if (failures <= 0) return 0
  return Math.min(max, min * 2 ** Math.min(failures - 1, 30))
}

/** Outbound state towards one peer. */
interface Link extends PeerLinkCounts {
  peer: NodeId
  queue: Uint8Array[]
  bytes: number
  stream?: Stream
  writing: boolean
}

const LOCAL = new Set<string>(LOCAL_MESSAGE_TYPES)

/** Builds the transport on a started libp2p node. */
export function libp2pTransport(opts: Libp2pTransportOptions): Libp2pTransport {
  return new Libp2pRaftTransport(opts)
}

class Libp2pRaftTransport implements Libp2pTransport {
  readonly #libp2p: Libp2p
  readonly #log: Logger
  readonly #clock: Clock
  readonly #maxMessages: number
  readonly #maxBytes: number
  readonly #maxFrame: number
  readonly #maxInbound: number
  readonly #minBackoff: number
  readonly #maxBackoff: number
  readonly #dialTimeout: number
  readonly #stallTimeout: number
  readonly #ackTimeout: number
  readonly #snapshotWindow: number
  readonly #links = new Map<NodeId, Link>()
  readonly #inbound = new Set<Stream>()
  readonly #stopAc = new AbortController()
  #self: NodeId | undefined
  #handlers: RaftTransportHandlers | undefined
  #registered: Promise<void> | undefined
  #stopped: Promise<void> | undefined
  /** Peers to hint as unreachable on the next microtask (hints never run inside `send`). */
  #hints = new Set<NodeId>()

  constructor(opts: Libp2pTransportOptions) {
    this.#libp2p = opts.libp2p
    this.#log = opts.log ?? nullLogger
    this.#clock = opts.clock ?? systemClock
    this.#maxMessages = opts.maxQueuedMessages ?? 4096
    this.#maxBytes = opts.maxQueuedBytes ?? 16 * 1024 * 1024
    this.#maxFrame = opts.maxFrameBytes ?? 1024 * 1024
    this.#maxInbound = opts.maxInboundFrameBytes ?? 64 * 1024 * 1024
    this.#minBackoff = opts.minBackoffMs ?? 100
    this.#maxBackoff = opts.maxBackoffMs ?? 2000
    this.#dialTimeout = opts.dialTimeoutMs ?? 5000
    this.#stallTimeout = opts.stallTimeoutMs ?? 10_000
    this.#ackTimeout = opts.ackTimeoutMs ?? 60_000
    this.#snapshotWindow = Math.max(1, opts.snapshotWindow ?? 4)
  }

  listen(self: NodeId, handlers: RaftTransportHandlers): () => void {
    if (this.#stopAc.signal.aborted) throw new Error('raft transport: stopped')
    if (this.#handlers) throw new Error('raft transport: already listening')
    // Inbound messages are addressed to the host's peer: a Raft node ID is the cluster peer ID.
    if (self !== this.#libp2p.peerId.toString()) {
      throw new Error(`raft transport: node ${self} is not this host's peer ID`)
    }
    this.#self = self
    this.#handlers = handlers
    // The protocols stay registered until stop(): a listener that comes back (a consensus
    // restarted on the same transport) reuses them.
    const opts = { maxInboundStreams: 64 }
    this.#registered ??= Promise.all([
      this.#libp2p.handle(RAFT_PROTOCOL, (s, c) => this.#readMessages(s, c), opts),
      this.#libp2p.handle(RAFT_SNAPSHOT_PROTOCOL, (s, c) => this.#readSnapshot(s, c), opts),
    ]).then(() => {}, (err) => {
      this.#log.error(`raft transport: cannot register its protocols: ${errorMessage(err)}`)
    })
    return () => {
      if (this.#handlers !== handlers) return
      this.#handlers = undefined
      this.#closeInbound()
    }
  }

  stats(peer: NodeId): PeerLinkStats | undefined {
    const l = this.#links.get(peer)
    if (!l) return undefined
    const { peer: _, queue, bytes, stream, writing: __, ...counts } = l
    return {
      ...counts,
      queuedMessages: queue.length,
      queuedBytes: bytes,
      connected: stream !== undefined,
    }
  }

  send(messages: readonly Message[]): void {
    if (this.#stopAc.signal.aborted) return
    const now = this.#clock.now()
    const touched = new Set<Link>()
    for (const m of messages) {
      // Local reports never cross the network, and a `snapshot` is sent by `sendSnapshot`.
      if (LOCAL.has(m.type) || m.type === 'snapshot' || m.to === this.#self) continue
      const l = this.#link(m.to)
      if (l.retryAt > now) {
        this.#drop(l, 1)
        continue
      }
      l.retryAt = 0
      const bytes = encodeMessage(m)
      const full = l.queue.length > 0 &&
        (l.queue.length >= this.#maxMessages || l.bytes + bytes.byteLength > this.#maxBytes)
      if (full) {
        this.#drop(l, 1)
        continue
      }
      l.queue.push(bytes)
      l.bytes += bytes.byteLength
      touched.add(l)
    }
    // Writers start once every message of this call is queued: a Ready's messages to one peer
    // leave in one frame.
    for (const l of touched) if (!l.writing) void this.#write(l)
  }

  #link(peer: NodeId): Link {
    let l = this.#links.get(peer)
    if (!l) {
      l = {
        peer,
        queue: [],
        bytes: 0,
        writing: false,
        dropped: 0,
        sentMessages: 0,
        sentFrames: 0,
        sentBytes: 0,
        dials: 0,
        failures: 0,
        retryAt: 0,
      }
      this.#links.set(peer, l)
    }
    return l
  }

  #drop(l: Link, n: number): void {
    l.dropped += n
    this.#hint(l.peer)
  }

  #hint(peer: NodeId): void {
    if (this.#hints.size === 0) {
      queueMicrotask(() => {
        const peers = [...this.#hints]
        this.#hints.clear()
        if (this.#stopAc.signal.aborted) return
        for (const p of peers) this.#handlers?.unreachable?.(p)
      })
    }
    this.#hints.add(peer)
  }

  /** A failed dial or a broken stream: drop what waits, back off, hint the core. */
  #fail(l: Link, why: string): void {
    l.failures++
    const delay = backoffMs(l.failures, this.#minBackoff, this.#maxBackoff)
    l.retryAt = this.#clock.now() + delay
    // Said once when a peer becomes unreachable (and again once it is back), not at every retry.
    const line = `raft transport: ${l.peer}: ${why}; retrying in ${delay} ms`
    if (l.failures === 1) this.#log.warn(line)
    else this.#log.debug(line)
    const n = l.queue.length
    l.queue = []
    l.bytes = 0
    this.#drop(l, n)
    const s = l.stream
    l.stream = undefined
    s?.abort(new Error(why))
  }

  /** The writer of one peer: runs while its queue has messages. */
  async #write(l: Link): Promise<void> {
    l.writing = true
    try {
      while (l.queue.length > 0 && !this.#stopAc.signal.aborted) {
        if (!l.stream) {
          if (!(await this.#dial(l))) return
          continue
        }
        const frame = this.#takeFrame(l)
        const s = l.stream
        try {
          if (!s.send(frame)) await this.#drained(s)
        } catch (err) {
          if (this.#stopAc.signal.aborted) return
          if (l.stream === s) this.#fail(l, `stream broke: ${errorMessage(err)}`)
          return
        }
      }
    } finally {
      l.writing = false
    }
  }

  /** Waits for `s` to drain, at most `stallTimeoutMs`. */
  async #drained(s: Stream): Promise<void> {
    const ac = new AbortController()
    const cancel = this.#clock.timeout(this.#stallTimeout, () => {
      ac.abort(new Error(`stalled for ${this.#stallTimeout} ms`))
    })
    try {
      await s.onDrain({ signal: AbortSignal.any([ac.signal, this.#stopAc.signal]) })
    } finally {
      cancel()
    }
  }

  /** Takes the queued messages that fit in one frame (at least one). */
  #takeFrame(l: Link): Uint8Array {
    let n = 0
    let bytes = 0
    while (n < l.queue.length && (n === 0 || bytes + l.queue[n].byteLength <= this.#maxFrame)) {
      bytes += l.queue[n].byteLength
      n++
    }
    const items = n === l.queue.length ? l.queue : l.queue.slice(0, n)
    l.queue = n === l.queue.length ? [] : l.queue.slice(n)
    l.bytes -= bytes
    const frame = encodeFrame(items)
    l.sentMessages += n
    l.sentFrames++
    l.sentBytes += frame.byteLength
    return frame
  }

  /** Opens the outbound stream of `l`; false (and backoff) if that failed. */
  async #dial(l: Link): Promise<boolean> {
    l.dials++
    let s: Stream
    try {
      s = await this.#open(l.peer, RAFT_PROTOCOL, this.#stopAc.signal)
    } catch (err) {
      if (!this.#stopAc.signal.aborted) this.#fail(l, `cannot dial: ${errorMessage(err)}`)
      return false
    }
    if (this.#stopAc.signal.aborted) {
      s.abort(new Error('raft transport stopped'))
      return false
    }
    if (l.failures > 0) this.#log.info(`raft transport: ${l.peer}: reachable again`)
    l.failures = 0
    l.retryAt = 0
    l.stream = s
    // An outbound stream carries nothing back; its end (remote reset, inactivity timeout, a
    // lost connection) means the next message needs a new one.
    s.addEventListener('close', () => {
      if (l.stream === s) l.stream = undefined
    }, { once: true })
    return true
  }

  /**
   * Opens a stream to `peer`, at most `dialTimeoutMs`. The deadline is a timer cancelled once the
   * stream is open, not a timeout signal: libp2p keeps the dial's signal for the stream's
   * protocol negotiation, which finishes lazily, so a signal that fires later would kill a
   * healthy stream.
   */
  async #open(peer: NodeId, protocol: string, signal: AbortSignal): Promise<Stream> {
    const ac = new AbortController()
    const cancel = this.#clock.timeout(this.#dialTimeout, () => {
      ac.abort(new Error(`dial timed out after ${this.#dialTimeout} ms`))
    })
    try {
      return await this.#libp2p.dialProtocol(peerIdFromString(peer), protocol, {
        signal: AbortSignal.any([ac.signal, signal]),
      })
    } finally {
      cancel()
    }
  }

  /** Reads one inbound message stream until it ends. */
  #readMessages(stream: Stream, connection: Connection): Promise<void> {
    return this.#serveInbound(stream, connection, 'inbound stream', (f, handlers, from, self) => {
      for (const m of decodeFrame(f, from, self)) {
        if (LOCAL.has(m.type) || m.type === 'snapshot') continue
        try {
          handlers.message(m)
        } catch (err) {
          this.#log.warn(`raft transport: message from ${from}: ${errorMessage(err)}`)
        }
      }
      return true
    })
  }

  /** Receives one snapshot stream: stages each chunk, then acknowledges it. */
  #readSnapshot(stream: Stream, connection: Connection): Promise<void> {
    return this.#serveInbound(
      stream,
      connection,
      'snapshot stream',
      async (f, handlers, from, self) => {
        const c = decodeChunk(f, from, self)
        try {
          await handlers.snapshotChunk(c)
        } catch (err) {
          stream.send(frameOf(encodeAck({ ok: false, error: errorMessage(err) })))
          await stream.close().catch(() => {})
          return false
        }
        if (!stream.send(frameOf(encodeAck({ ok: true })))) await this.#drained(stream)
        return true
      },
    )
  }

  /**
   * Serves one inbound stream of either protocol: each frame goes to `onFrame` until the stream
   * ends (then it is closed), the transport stops listening, or `onFrame` answers false (it has
   * closed the stream itself). A frame that does not decode, or a broken stream, aborts this
   * stream only.
   */
  async #serveInbound(
    stream: Stream,
    connection: Connection,
    what: string,
    onFrame: (
      f: Uint8Array,
      handlers: RaftTransportHandlers,
      from: string,
      self: string,
    ) => boolean | Promise<boolean>,
  ): Promise<void> {
    const from = connection.remotePeer.toString()
    const self = this.#self
    if (!this.#handlers || !self) return stream.abort(new Error('not listening'))
    this.#inbound.add(stream)
    try {
      const reader = new FrameReader(stream, this.#maxInbound)
      for (let f = await reader.next(); f; f = await reader.next()) {
        const handlers = this.#handlers
        if (!handlers) break
        // Message frames answer at once: no extra turn per frame on the replication path.
        let more = onFrame(f, handlers, from, self)
        if (typeof more !== 'boolean') more = await more
        if (!more) return
      }
      await stream.close().catch(() => {})
    } catch (err) {
      if (!this.#stopAc.signal.aborted && this.#handlers) {
        this.#log.debug(`raft transport: ${what} from ${from}: ${errorMessage(err)}`)
      }
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.#inbound.delete(stream)
    }
  }

  async sendSnapshot(
    to: NodeId,
    chunks: AsyncIterable<SnapshotChunk>,
    signal: AbortSignal,
  ): Promise<void> {
    const abort = AbortSignal.any([signal, this.#stopAc.signal])
    abort.throwIfAborted()
    let stream: Stream
    try {
      stream = await this.#open(to, RAFT_SNAPSHOT_PROTOCOL, abort)
    } catch (err) {
      abort.throwIfAborted()
      throw new UnreachableError(`${to} is unreachable: ${errorMessage(err)}`)
    }
    const onAbort = () => stream.abort(abort.reason)
    abort.addEventListener('abort', onAbort, { once: true })
    const source = chunks[Symbol.asyncIterator]()
    /** Chunk indexes sent and not yet acknowledged, oldest first. */
    const unacked: number[] = []
    let exhausted = false
    try {
      const reader = new FrameReader(stream, this.#maxInbound)
      while (true) {
        // Up to `snapshotWindow` chunks travel ahead of their acknowledgements, so the network
        // and the receiver's staging overlap; the receiver still stages them one by one in order.
        while (!exhausted && unacked.length < this.#snapshotWindow) {
          let r: IteratorResult<SnapshotChunk>
          try {
            r = await source.next()
          } catch (err) {
            // The snapshot's own failure (a torn stored snapshot): the caller must see it as is.
            throw new SourceError(err)
          }
          if (r.done) {
            exhausted = true
            break
          }
          abort.throwIfAborted()
          unacked.push(r.value.chunkIndex)
          if (!stream.send(frameOf(encodeChunk(r.value)))) await this.#drained(stream)
        }
        if (unacked.length === 0) break
        const ack = await this.#ack(stream, reader)
        if (!ack) throw new UnreachableError(`${to} closed the snapshot stream`)
        const a = decodeAck(ack)
        const index = unacked.shift()
        if (!a.ok) {
          throw new SnapshotRejectedError(`${to} refused snapshot chunk ${index}: ${a.error}`)
        }
      }
      await stream.close()
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof SourceError) throw err.cause
      abort.throwIfAborted()
      if (err instanceof SnapshotRejectedError || err instanceof UnreachableError) throw err
      throw new UnreachableError(`snapshot stream to ${to} broke: ${errorMessage(err)}`)
    } finally {
      abort.removeEventListener('abort', onAbort)
      if (!exhausted) await source.return?.(undefined).catch(() => {})
    }
  }

  /** The next acknowledgement, at most `ackTimeoutMs` away. */
  async #ack(stream: Stream, reader: FrameReader): Promise<Uint8Array | null> {
    const cancel = this.#clock.timeout(this.#ackTimeout, () => {
      stream.abort(new Error(`no acknowledgement within ${this.#ackTimeout} ms`))
    })
    try {
      return await reader.next()
    } finally {
      cancel()
    }
  }

  #closeInbound(): void {
    for (const s of this.#inbound) s.abort(new Error('raft transport stopped listening'))
    this.#inbound.clear()
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopAc.abort(new Error('raft transport stopped'))
      this.#handlers = undefined
      this.#closeInbound()
      for (const l of this.#links.values()) {
        l.stream?.abort(new Error('raft transport stopped'))
        l.stream = undefined
        l.queue = []
        l.bytes = 0
      }
      await this.#registered
      if (this.#registered && this.#libp2p.status === 'started') {
        await this.#libp2p.unhandle([RAFT_PROTOCOL, RAFT_SNAPSHOT_PROTOCOL]).catch((err) => {
          this.#log.debug(`raft transport: unhandle: ${errorMessage(err)}`)
        })
      }
    })()
    return this.#stopped
  }
}
