/**
 * The bytes of Raft over libp2p (libp2p_transport.ts): messages, snapshot chunks and chunk
 * acknowledgements as CBOR arrays, and the varint length-prefixed frames that carry them.
 *
 * A message is a CBOR array whose first item is its type's position in `MESSAGE_TYPES`, then its
 * term, then the fields of its type in a fixed order (see `encodeMessage`). Entries travel flat
 * (`[term, index, type, data, term, index, …]`) and their data as CBOR byte strings. `from` and
 * `to` never travel: the receiver takes `from` from the connection's authenticated remote peer
 * and `to` is itself, so a peer cannot speak for another and 100 bytes of peer IDs are saved per
 * message. A frame holds one CBOR array of messages, so the messages of one Ready to one peer
 * cost one length prefix and one decode.
 *
 * Decoding checks every field and throws `RaftCodecError` on anything malformed: a peer that sends
 * garbage loses its stream, never crashes this one.
 *
 * @example
 * ```ts
 * const frame = encodeFrame([encodeMessage(m1), encodeMessage(m2)])
 * const reader = new FrameReader(stream, MAX_FRAME_BYTES)
 * for (let f = await reader.next(); f; f = await reader.next()) decodeFrame(f, remote, self)
 * ```
 *
 * @module
 */
import * as cborg from 'cborg'
import {
  type ConfState,
  type Entry,
  type EntryType,
  type Message,
  MESSAGE_TYPES,
  type MessageType,
  type NodeId,
  type ProposalEntry,
  type SnapshotChunk,
  type SnapshotMeta,
} from './core/mod.ts'
import { writeAll } from '../../util/bytes.ts'

/** A malformed frame, message, chunk or acknowledgement. */
export class RaftCodecError extends Error {
  override name = 'RaftCodecError'
}

const TYPE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]))
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange']
const ENTRY_CODE = new Map<EntryType, number>(ENTRY_TYPES.map((t, i) => [t, i]))

function entryCode(t: EntryType): number {
  const c = ENTRY_CODE.get(t)
  if (c === undefined) throw new RaftCodecError(`unknown entry type ${String(t)}`)
  return c
}

function flatEntries(entries: readonly Entry[]): unknown[] {
  const out = new Array(entries.length * 4)
  let i = 0
  for (const e of entries) {
    out[i++] = e.term
    out[i++] = e.index
    out[i++] = entryCode(e.type)
    out[i++] = e.data
  }
  return out
}

function flatProposals(entries: readonly ProposalEntry[]): unknown[] {
  const out = new Array(entries.length * 2)
  let i = 0
  for (const e of entries) {
    out[i++] = entryCode(e.type)
    out[i++] = e.data
  }
  return out
}

function metaItems(s: SnapshotMeta): unknown[] {
  return [s.index, s.term, s.confState.voters, s.confState.learners]
}

/** The CBOR items of a message, `from` and `to` left out (see the module comment). */
function messageItems(m: Message): unknown[] {
  const code = TYPE_CODE.get(m.type)
  if (code === undefined) throw new RaftCodecError(`unknown message type ${String(m.type)}`)
  switch (m.type) {
    case 'append':
      return [code, m.term, m.index, m.logTerm, m.commit, flatEntries(m.entries)]
    case 'appendResp':
      return [code, m.term, m.index, m.reject, m.rejectHint, m.logTerm]
    case 'vote':
    case 'preVote':
      return [code, m.term, m.index, m.logTerm, m.transfer]
    case 'voteResp':
    case 'preVoteResp':
      return [code, m.term, m.reject]
    case 'heartbeat':
      return [code, m.term, m.commit, m.ctx ?? null]
    case 'heartbeatResp':
      return [code, m.term, m.ctx ?? null]
    case 'snapshot':
      return [code, m.term, ...metaItems(m.snapshot)]
    case 'propose':
      return [code, m.term, flatProposals(m.entries)]
    case 'readIndex':
      return [code, m.term, m.ctx]
    case 'readIndexResp':
      return [code, m.term, m.index, m.ctx]
    case 'transferLeader':
      return [code, m.term, m.transferee]
    case 'timeoutNow':
    case 'unreachable':
      return [code, m.term]
    case 'snapStatus':
      return [code, m.term, m.ok]
  }
}

/** Encodes one message (without `from` and `to`) as one CBOR item. */
export function encodeMessage(m: Message): Uint8Array {
  return cborg.encode(messageItems(m))
}

/** A CBOR array header for `n` items (major type 4). */
function arrayHeader(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x80 | n)
  if (n < 0x100) return Uint8Array.of(0x98, n)
  if (n < 0x10000) return Uint8Array.of(0x99, n >>> 8, n & 0xff)
  return Uint8Array.of(0x9a, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    len++
  }
  return len
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  out[pos++] = n
  return pos
}

/**
 * One length-prefixed frame holding the already encoded messages `items` as one CBOR array: what
 * `decodeFrame` reads back.
 */
export function encodeFrame(items: readonly Uint8Array[]): Uint8Array {
  const head = arrayHeader(items.length)
  let len = head.byteLength
  for (const it of items) len += it.byteLength
  const out = new Uint8Array(varintLength(len) + len)
  const pos = writeVarint(out, 0, len)
  out.set(head, pos)
  writeAll(out, pos + head.byteLength, items)
  return out
}

/** One length-prefixed frame holding one CBOR item (a snapshot chunk or an acknowledgement). */
export function frameOf(item: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(item.byteLength) + item.byteLength)
  out.set(item, writeVarint(out, 0, item.byteLength))
  return out
}

// --- decoding -----------------------------------------------------------------------------------

function fail(what: string): never {
  throw new RaftCodecError(`malformed raft ${what}`)
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(what)
  return v
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(what)
  return v
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(what)
  return v
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(what)
  return v
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(what)
  return v
}

function entryType(v: unknown): EntryType {
  const t = ENTRY_TYPES[int(v, 'entry type')]
  if (!t) fail('entry type')
  return t
}

function ids(v: unknown, what: string): NodeId[] {
  return list(v, what).map((x) => str(x, what))
}

function decodeMeta(a: unknown[], at: number): SnapshotMeta {
  const confState: ConfState = {
    voters: ids(a[at + 2], 'snapshot voters'),
    learners: ids(a[at + 3], 'snapshot learners'),
  }
  return { index: int(a[at], 'snapshot index'), term: int(a[at + 1], 'snapshot term'), confState }
}

function decodeEntries(v: unknown): Entry[] {
  const flat = list(v, 'entries')
  if (flat.length % 4 !== 0) fail('entries')
  const out = new Array<Entry>(flat.length / 4)
  for (let i = 0, j = 0; i < flat.length; i += 4, j++) {
    out[j] = {
      term: int(flat[i], 'entry term'),
      index: int(flat[i + 1], 'entry index'),
      type: entryType(flat[i + 2]),
      data: bytes(flat[i + 3], 'entry data'),
    }
  }
  return out
}

function decodeProposals(v: unknown): ProposalEntry[] {
  const flat = list(v, 'proposal')
  if (flat.length % 2 !== 0) fail('proposal')
  const out = new Array<ProposalEntry>(flat.length / 2)
  for (let i = 0, j = 0; i < flat.length; i += 2, j++) {
    out[j] = { type: entryType(flat[i]), data: bytes(flat[i + 1], 'proposal data') }
  }
  return out
}

function optCtx(v: unknown): { ctx?: string } {
  return v === null ? {} : { ctx: str(v, 'ctx') }
}

/** Builds a message from its CBOR items, with `from` and `to` given by the receiver. */
function messageOf(v: unknown, from: NodeId, to: NodeId): Message {
  const a = list(v, 'message')
  const type = MESSAGE_TYPES[int(a[0], 'message type')]
  if (!type) fail('message type')
  const term = int(a[1], `${type} term`)
  const base = { from, to, term }
  const want = (n: number) => {
    if (a.length !== n) fail(`${type} message`)
  }
  switch (type) {
    case 'append':
      want(6)
      return {
        type,
        ...base,
        index: int(a[2], 'append index'),
        logTerm: int(a[3], 'append logTerm'),
        commit: int(a[4], 'append commit'),
        entries: decodeEntries(a[5]),
      }
    case 'appendResp':
      want(6)
      return {
        type,
        ...base,
        index: int(a[2], 'appendResp index'),
        reject: bool(a[3], 'appendResp reject'),
        rejectHint: int(a[4], 'appendResp rejectHint'),
        logTerm: int(a[5], 'appendResp logTerm'),
      }
    case 'vote':
    case 'preVote':
      want(5)
      return {
        type,
        ...base,
        index: int(a[2], 'vote index'),
        logTerm: int(a[3], 'vote logTerm'),
        transfer: bool(a[4], 'vote transfer'),
      }
    case 'voteResp':
    case 'preVoteResp':
      want(3)
      return { type, ...base, reject: bool(a[2], 'vote reject') }
    case 'heartbeat':
      want(4)
      return { type, ...base, commit: int(a[2], 'heartbeat commit'), ...optCtx(a[3]) }
    case 'heartbeatResp':
      want(3)
      return { type, ...base, ...optCtx(a[2]) }
    case 'snapshot':
      want(6)
      return { type, ...base, snapshot: decodeMeta(a, 2) }
    case 'propose':
      want(3)
      return { type, ...base, entries: decodeProposals(a[2]) }
    case 'readIndex':
      want(3)
      return { type, ...base, ctx: str(a[2], 'readIndex ctx') }
    case 'readIndexResp':
      want(4)
      return { type, ...base, index: int(a[2], 'readIndexResp index'), ctx: str(a[3], 'ctx') }
    case 'transferLeader':
      want(3)
      return { type, ...base, transferee: str(a[2], 'transferee') }
    case 'timeoutNow':
    case 'unreachable':
      want(2)
      return { type, ...base }
    case 'snapStatus':
      want(3)
      return { type, ...base, ok: bool(a[2], 'snapStatus ok') }
  }
}

function cbor(payload: Uint8Array, what: string): unknown {
  try {
    return cborg.decode(payload)
  } catch (err) {
    throw new RaftCodecError(`malformed raft ${what}: ${(err as Error).message}`)
  }
}

/** Decodes one message encoded by `encodeMessage`, addressed `from` → `to`. */
export function decodeMessage(payload: Uint8Array, from: NodeId, to: NodeId): Message {
  return messageOf(cbor(payload, 'message'), from, to)
}

/** Decodes the payload of a frame made by `encodeFrame` (without its length prefix). */
export function decodeFrame(payload: Uint8Array, from: NodeId, to: NodeId): Message[] {
  return list(cbor(payload, 'frame'), 'frame').map((v) => messageOf(v, from, to))
}

/** Encodes a snapshot chunk (without `from` and `to`, as messages). */
export function encodeChunk(c: SnapshotChunk): Uint8Array {
  return cborg.encode([
    c.term,
    c.streamId,
    c.chunkIndex,
    c.offset,
    c.done,
    c.data,
    ...metaItems(c.snapshot),
  ])
}

/** Decodes a chunk encoded by `encodeChunk`, addressed `from` → `to`. */
export function decodeChunk(payload: Uint8Array, from: NodeId, to: NodeId): SnapshotChunk {
  const a = list(cbor(payload, 'snapshot chunk'), 'snapshot chunk')
  if (a.length !== 10) fail('snapshot chunk')
  return {
    from,
    to,
    term: int(a[0], 'chunk term'),
    streamId: int(a[1], 'chunk streamId'),
    chunkIndex: int(a[2], 'chunk index'),
    offset: int(a[3], 'chunk offset'),
    done: bool(a[4], 'chunk done'),
    data: bytes(a[5], 'chunk data'),
    snapshot: decodeMeta(a, 6),
  }
}

/** The receiver's answer to one chunk: staged, or refused with the reason. */
export type ChunkAck = { ok: true } | { ok: false; error: string }

/** Encodes a chunk acknowledgement. */
export function encodeAck(ack: ChunkAck): Uint8Array {
  return cborg.encode(ack.ok ? [0] : [1, ack.error])
}

/** Decodes a chunk acknowledgement. */
export function decodeAck(payload: Uint8Array): ChunkAck {
  const a = list(cbor(payload, 'snapshot ack'), 'snapshot ack')
  if (a[0] === 0 && a.length === 1) return { ok: true }
  if (a[0] === 1 && a.length === 2) return { ok: false, error: str(a[1], 'snapshot ack') }
  fail('snapshot ack')
}

// --- frames -------------------------------------------------------------------------------------

/** What libp2p streams yield besides Uint8Array (a Uint8ArrayList), as far as reading goes. */
export interface ByteList {
  subarray(): Uint8Array
}

/**
 * Reads varint length-prefixed frames from a libp2p stream (or any async iterable of bytes),
 * refusing a frame longer than `maxBytes` before reading it.
 */
export class FrameReader {
  readonly #it: AsyncIterator<Uint8Array | ByteList>
  readonly #max: number
  /** Unread reads: #chunks[#head] from #pos on, then the rest. */
  #chunks: Uint8Array[] = []
  #head = 0
  #pos = 0
  /** Bytes held in #chunks past #pos of the first one. */
  #held = 0

  constructor(source: AsyncIterable<Uint8Array | ByteList>, maxBytes: number) {
    this.#it = source[Symbol.asyncIterator]()
    this.#max = maxBytes
  }

  async #more(): Promise<boolean> {
    const r = await this.#it.next()
    if (r.done) return false
    const b = r.value instanceof Uint8Array ? r.value : r.value.subarray()
    if (b.byteLength > 0) {
      if (this.#head > 0 && this.#head === this.#chunks.length) {
        this.#chunks = []
        this.#head = 0
      }
      this.#chunks.push(b)
      this.#held += b.byteLength
    }
    return true
  }

  /** Moves past the first chunk once it is read (no `shift`: many small reads stay linear). */
  #consumed(c: Uint8Array): void {
    if (this.#pos < c.byteLength) return
    this.#pos = 0
    this.#head++
    if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head)
      this.#head = 0
    }
  }

  #byte(): number {
    const first = this.#chunks[this.#head]
    const b = first[this.#pos++]
    this.#held--
    this.#consumed(first)
    return b
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[this.#head]
    if (first.byteLength - this.#pos >= n) {
      // The common case: the frame lies within one read; no copy.
      const out = first.subarray(this.#pos, this.#pos + n)
      this.#pos += n
      this.#held -= n
      this.#consumed(first)
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = this.#chunks[this.#head]
      const k = Math.min(n - filled, c.byteLength - this.#pos)
      out.set(c.subarray(this.#pos, this.#pos + k), filled)
      filled += k
      this.#pos += k
      this.#consumed(c)
    }
    this.#held -= n
    return out
  }

  /** The next frame's payload, or null when the stream ended cleanly between frames. */
  async next(): Promise<Uint8Array | null> {
    let len = 0
    let shift = 0
    for (let i = 0;; i++) {
      while (this.#held === 0) {
        if (!(await this.#more())) {
          if (i === 0) return null
          throw new RaftCodecError('stream ended inside a frame length')
        }
      }
      const b = this.#byte()
      len += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) break
      shift += 7
      if (shift > 49) throw new RaftCodecError('frame length varint too long')
    }
    if (len > this.#max) {
      throw new RaftCodecError(`frame of ${len} bytes exceeds the limit of ${this.#max}`)
    }
    while (this.#held < len) {
      if (!(await this.#more())) throw new RaftCodecError('stream ended inside a frame')
    }
    return len === 0 ? new Uint8Array(0) : this.#take(len)
  }
}
