/**
 * Streaming InstallSnapshot. A pinset snapshot can be hundreds of MB, so its bytes never pass
 * through the core and never travel as one message.
 *
 * ## Protocol
 *
 * 1. The leader's core emits a `snapshot` message (metadata only) in a Ready: "send snapshot
 *    `msg.snapshot` to `msg.to`".
 * 2. The leader's host reads that snapshot's bytes from its snapshot store and sends them as a
 *    sequence of `SnapshotChunk`s: `chunkIndex` 0, 1, 2…, `offset` the byte position, `done` on
 *    the last one. If its store no longer holds that snapshot, the stream fails.
 * 3. The follower's host feeds every chunk to a `SnapshotReceiver`, which checks the sequence and
 *    says what to do with each chunk: stage it, drop it, or discard the torn stream. Data is
 *    staged outside the state machine (e.g. separate KV keys) and durably.
 * 4. Once the receiver says `complete`, the follower's host steps the reconstructed `snapshot`
 *    message into its core. If the core accepts it, the next Ready carries it as
 *    `ready.snapshot`, and the host installs the staged data then. A snapshot whose stream did
 *    not complete is never stepped, so torn data is never installed.
 * 5. The follower's host acknowledges the stream at the transport level; the leader's host calls
 *    `node.reportSnapshot(to, true)`, or `false` on any failure or timeout. The core then resumes
 *    normal replication (or retries) — it sends nothing else to that follower meanwhile.
 *
 * @example
 * ```ts
 * // sender
 * for (const c of snapshotChunks(msg, streamId++, bytes, 64 * 1024)) await stream.write(encode(c))
 * // receiver
 * const v = receiver.accept(chunk)
 * if (v.action === 'store') await staging.write(chunk, v.restart)
 * if (v.complete) node.step(v.complete)
 * ```
 *
 * @module
 */
import type { NodeId, SnapshotMessage, SnapshotMeta } from './types.ts'

/** One piece of a snapshot stream. */
export interface SnapshotChunk {
  from: NodeId
  to: NodeId
  /** The leader's term when its core asked for the snapshot to be sent. */
  term: number
  snapshot: SnapshotMeta
  /**
   * Chosen by the sender, different for every attempt, so the receiver can tell a duplicate or a
   * late chunk of an earlier attempt from the start of a new one.
   */
  streamId: number
  chunkIndex: number
  /** Byte offset of `data` in the snapshot. */
  offset: number
  data: Uint8Array
  /** True on the last chunk. */
  done: boolean
}

/**
 * What to do with a received chunk:
 * - `store`: stage `data` at `offset`; if `restart`, first discard whatever was staged from this
 *   sender (a new stream began). If `complete` is set, the staged snapshot is now whole:
 *   step `complete` into the core.
 * - `ignore`: a duplicate, or a late chunk of an abandoned or finished stream; drop it.
 * - `reject`: the stream from this sender is torn; discard what was staged from it.
 */
export type ChunkVerdict =
  | { action: 'store'; restart: boolean; complete?: SnapshotMessage }
  | { action: 'ignore' }
  | { action: 'reject'; reason: string }

/**
 * Splits a snapshot held in memory into chunks of at most `chunkSize` bytes (at least one
 * chunk, even for an empty snapshot).
 */
export function* snapshotChunks(
  msg: SnapshotMessage,
  streamId: number,
  data: Uint8Array,
  chunkSize: number,
): Generator<SnapshotChunk> {
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`)
  }
  let chunkIndex = 0
  let offset = 0
  do {
    const end = Math.min(data.byteLength, offset + chunkSize)
    yield {
      from: msg.from,
      to: msg.to,
      term: msg.term,
      snapshot: msg.snapshot,
      streamId,
      chunkIndex,
      offset,
      data: data.subarray(offset, end),
      done: end === data.byteLength,
    }
    chunkIndex++
    offset = end
  } while (offset < data.byteLength)
}

interface StreamState {
  streamId: number
  term: number
  index: number
  snapTerm: number
  nextChunk: number
  nextOffset: number
  finished: boolean
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/**
 * Follower side: validates chunk sequences, one stream per sender (a new stream from the same
 * sender supersedes the previous one). Pure bookkeeping — the caller stores the bytes.
 */
export class SnapshotReceiver {
  readonly #self: NodeId
  #streams = new Map<NodeId, StreamState>()

  constructor(self: NodeId) {
    this.#self = self
  }

  accept(c: SnapshotChunk): ChunkVerdict {
    if (
      typeof c !== 'object' || c === null || c.to !== this.#self || typeof c.from !== 'string' ||
      !isIndex(c.term) || !isIndex(c.streamId) || !isIndex(c.chunkIndex) || !isIndex(c.offset) ||
      !(c.data instanceof Uint8Array) || typeof c.done !== 'boolean' ||
      !isIndex(c.snapshot?.index) || !isIndex(c.snapshot?.term) ||
      !Array.isArray(c.snapshot?.confState?.voters) ||
      !Array.isArray(c.snapshot?.confState?.learners)
    ) {
      if (typeof c?.from === 'string') this.#streams.delete(c.from)
      return { action: 'reject', reason: 'malformed chunk' }
    }
    let s = this.#streams.get(c.from)
    let restart = false
    if (s && s.streamId === c.streamId) {
      if (s.finished || c.chunkIndex < s.nextChunk) return { action: 'ignore' }
      if (s.term !== c.term || s.index !== c.snapshot.index || s.snapTerm !== c.snapshot.term) {
        return this.#tear(c.from, 'chunk does not belong to the snapshot of its stream')
      }
      if (c.chunkIndex !== s.nextChunk || c.offset !== s.nextOffset) {
        // A chunk is missing: what is staged can never become a whole snapshot.
        return this.#tear(c.from, `chunk ${c.chunkIndex} at ${c.offset} out of sequence`)
      }
    } else if (c.chunkIndex === 0) {
      if (c.offset !== 0) return this.#tear(c.from, 'first chunk must be at offset 0')
      s = {
        streamId: c.streamId,
        term: c.term,
        index: c.snapshot.index,
        snapTerm: c.snapshot.term,
        nextChunk: 0,
        nextOffset: 0,
        finished: false,
      }
      this.#streams.set(c.from, s)
      restart = true
    } else {
      // A chunk of a stream we never saw start (its first chunk was lost) or already replaced.
      return { action: 'ignore' }
    }
    s.nextChunk++
    s.nextOffset += c.data.byteLength
    if (!c.done) return { action: 'store', restart }
    s.finished = true
    return {
      action: 'store',
      restart,
      complete: { type: 'snapshot', from: c.from, to: c.to, term: c.term, snapshot: c.snapshot },
    }
  }

  /** The transport lost the stream from `from` (closed, reset, timed out). */
  abort(from: NodeId): void {
    this.#streams.delete(from)
  }

  #tear(from: NodeId, reason: string): ChunkVerdict {
    this.#streams.delete(from)
    return { action: 'reject', reason }
  }
}

/**
 * A `SnapshotReceiver` that stages data in memory — for tests and the simulator, where
 * snapshots are small. `receive` returns the completed message and its bytes, or undefined.
 */
export class MemorySnapshotAssembler {
  readonly #receiver: SnapshotReceiver
  #parts = new Map<NodeId, Uint8Array[]>()

  constructor(self: NodeId) {
    this.#receiver = new SnapshotReceiver(self)
  }

  receive(c: SnapshotChunk): { message: SnapshotMessage; data: Uint8Array } | undefined {
    const v = this.#receiver.accept(c)
    if (v.action === 'reject') {
      this.#parts.delete(c.from)
      return undefined
    }
    if (v.action === 'ignore') return undefined
    if (v.restart) this.#parts.set(c.from, [])
    const parts = this.#parts.get(c.from)
    if (!parts) return undefined
    parts.push(c.data)
    if (!v.complete) return undefined
    this.#parts.delete(c.from)
    const size = parts.reduce((n, p) => n + p.byteLength, 0)
    const data = new Uint8Array(size)
    let off = 0
    for (const p of parts) {
      data.set(p, off)
      off += p.byteLength
    }
    return { message: v.complete, data }
  }

  abort(from: NodeId): void {
    this.#receiver.abort(from)
    this.#parts.delete(from)
  }
}
