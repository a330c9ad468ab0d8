/**
 * The frames of the RPC wire: CBOR arrays (cborg), each behind an unsigned-varint length. One libp2p
 * stream carries one call at a time; a call is a CALL frame from the caller, then frames both ways
 * until DONE or ERROR from the callee.
 *
 * | frame | fields | from |
 * |---|---|---|
 * | CALL | method, args, timeoutMs or null, credit (batches the caller can take) | caller |
 * | ITEMS | the items of a batch | callee (stream), caller (upload) |
 * | DONE | the result (undefined for a stream) | callee |
 * | END | — (the upload's inputs are over) | caller |
 * | ERROR | class name, message | callee |
 * | CANCEL | — | caller |
 * | CREDIT | how many more batches the sender may send | whoever receives ITEMS |
 *
 * Items are encoded one by one into a batch (`ItemBatch`), so a batch knows its size without a
 * second pass. A batch of CBOR items is their concatenation behind a CBOR array header; a batch
 * of JSON items (methods whose items are plain JSON values: `JSON_ITEMS` in methods.ts) is its
 * JSON text (rpc/json_batch.ts: columns for items of one shape) as one CBOR text string, which
 * the consumer parses back into the items when it reaches them (`itemsOf`): `JSON.stringify`/`JSON.parse` of a PinInfo take
 * ~0.6/0.7 µs against cborg's ~6/3 µs.
 *
 * @example
 * ```ts
 * stream.send(encodeFrame([CALL, 'PinTracker.Status', [cid], 10_000, 0]))
 * const decoder = new FrameDecoder()
 * stream.addEventListener('message', (e) => {
 *   for (const frame of decoder.push(e.data)) onFrame(frame)
 * })
 * ```
 *
 * @module
 */
import * as cborg from 'cborg'
import * as lp from 'it-length-prefixed'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { JsonBatch, parseJsonBatch } from './json_batch.ts'
import { writeAll } from '../util/bytes.ts'

export const CALL = 0
export const ITEMS = 1
export const DONE = 2
export const END = 3
export const ERROR = 4
export const CANCEL = 5
export const CREDIT = 6

/** Bytes ready for `stream.send` (libp2p's Uint8ArrayList). */
export type Framed = ReturnType<typeof lp.encode.single>

/** How the items of a batch are encoded. */
export type ItemCodec = 'cbor' | 'json'

/**
 * A batch as received: its items, or the text of a JSON batch, which `itemsOf` parses when the
 * consumer reaches it (so a receiver holding its window of batches holds text, not objects).
 */
export type Batch = unknown[] | string

/** One frame, as decoded. */
export type Frame =
  | [typeof CALL, method: string, args: unknown[], timeoutMs: number | null, credit: number]
  | [typeof ITEMS, items: Batch]
  | [typeof DONE, result: unknown]
  | [typeof END]
  | [typeof ERROR, name: string, message: string]
  | [typeof CANCEL]
  | [typeof CREDIT, batches: number]

/** The largest frame accepted (a batch holds at least one item, and a block can be large). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024

// Insertion order of object keys is kept (no sorting): the reference's JSON key order of a PinInfo
// must survive the hop, and not sorting is also the faster path of cborg.
const ENCODE_OPTIONS = { mapSorter: undefined } as unknown as cborg.EncodeOptions

/** Encodes a frame with its length prefix. */
export function encodeFrame(frame: Frame): Framed {
  return lp.encode.single(cborg.encode(frame, ENCODE_OPTIONS))
}

/** Splits received bytes into frames. */
export class FrameDecoder {
  #lp: LengthPrefixedDecoder

  constructor() {
    this.#lp = new LengthPrefixedDecoder({
      maxDataLength: MAX_FRAME_BYTES,
      maxBufferSize: MAX_FRAME_BYTES + 16,
    })
  }

  /** The frames completed by `chunk`; throws on a malformed or oversized frame. */
  *push(chunk: Uint8Array | Framed): Generator<Frame> {
    for (const bytes of this.#lp.decode(chunk)) {
      const frame = cborg.decode(bytes.subarray())
      if (!Array.isArray(frame) || typeof frame[0] !== 'number') {
        throw new TypeError('malformed RPC frame')
      }
      yield frame as Frame
    }
  }
}

/** The items of a received batch; throws a SyntaxError for a JSON batch that does not parse. */
export function itemsOf(batch: Batch): unknown[] {
  return typeof batch === 'string' ? parseJsonBatch(batch) : batch
}

/** A batch of items being gathered into one ITEMS frame. */
export class ItemBatch {
  #parts: Uint8Array[] = []
  #json?: JsonBatch
  #bytes = 0

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
    readonly codec: ItemCodec = 'cbor',
  ) {
    if (codec === 'json') this.#json = new JsonBatch()
  }

  get count(): number {
    return this.#json ? this.#json.count : this.#parts.length
  }
  /** Encoded size so far: bytes of CBOR, or characters of JSON (at most 3 bytes each). */
  get bytes(): number {
    return this.#json ? this.#json.chars : this.#bytes
  }
  get full(): boolean {
    return this.count >= this.maxItems || this.bytes >= this.maxBytes
  }

  add(item: unknown): void {
    if (this.#json) return this.#json.add(item)
    const b = cborg.encode(item, ENCODE_OPTIONS)
    this.#parts.push(b)
    this.#bytes += b.length
  }

  /** The ITEMS frame of what was added (with its length prefix); the batch starts again empty. */
  take(): Framed {
    if (this.#json) return lp.encode.single(jsonItemsFrame(this.#json.take()))
    const frame = cborItemsFrame(this.#parts, this.#bytes)
    this.#parts = []
    this.#bytes = 0
    return lp.encode.single(frame)
  }
}

/** `[ITEMS, [items…]]`: the items' CBOR behind an array head. */
function cborItemsFrame(parts: Uint8Array[], bytes: number): Uint8Array {
  const head = cborHead(4, parts.length)
  const frame = new Uint8Array(2 + head.length + bytes)
  frame[0] = 0x82 // array of 2: [ITEMS, items]
  frame[1] = ITEMS
  frame.set(head, 2)
  writeAll(frame, 2 + head.length, parts)
  return frame
}

const utf8 = new TextEncoder()

/** `[ITEMS, text]`: a JSON batch's text (rpc/json_batch.ts) as a CBOR text string. */
function jsonItemsFrame(text: string): Uint8Array {
  // Room for the longest head (5 bytes) and UTF-8 at 3 bytes a UTF-16 unit; the text goes right
  // after the head of its encoded length, so it is written once and the head moved to meet it.
  const room = new Uint8Array(2 + 5 + text.length * 3)
  const { written } = utf8.encodeInto(text, room.subarray(7))
  const head = cborHead(3, written)
  const start = 7 - 2 - head.length
  room[start] = 0x82 // array of 2: [ITEMS, text]
  room[start + 1] = ITEMS
  room.set(head, start + 2)
  return room.subarray(start, 7 + written)
}

/** The CBOR head of major type `major` (3 text, 4 array) with length `n`. */
function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5
  if (n < 24) return Uint8Array.of(m | n)
  if (n < 0x100) return Uint8Array.of(m | 24, n)
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff)
  return Uint8Array.of(m | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}
