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
 * Items are encoded one by one into a batch (`ItemBatch`), so a batch knows its size in bytes
 * without a second pass and the frame is their concatenation behind a CBOR array header.
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

export const CALL = 0
export const ITEMS = 1
export const DONE = 2
export const END = 3
export const ERROR = 4
export const CANCEL = 5
export const CREDIT = 6

/** Bytes ready for `stream.send` (libp2p's Uint8ArrayList). */
export type Framed = ReturnType<typeof lp.encode.single>

/** One frame, as decoded. */
export type Frame =
  | [typeof CALL, method: string, args: unknown[], timeoutMs: number | null, credit: number]
  | [typeof ITEMS, items: unknown[]]
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

/** A batch of items being gathered into one ITEMS frame. */
export class ItemBatch {
  #parts: Uint8Array[] = []
  /** Encoded bytes so far. */
  bytes = 0

  constructor(readonly maxItems: number, readonly maxBytes: number) {}

  get count(): number {
    return this.#parts.length
  }
  get full(): boolean {
    return this.#parts.length >= this.maxItems || this.bytes >= this.maxBytes
  }

  add(item: unknown): void {
    const b = cborg.encode(item, ENCODE_OPTIONS)
    this.#parts.push(b)
    this.bytes += b.length
  }

  /** The ITEMS frame of what was added (with its length prefix); the batch starts again empty. */
  take(): Framed {
    const head = arrayHeader(this.#parts.length)
    const frame = new Uint8Array(2 + head.length + this.bytes)
    frame[0] = 0x82 // array of 2: [ITEMS, items]
    frame[1] = ITEMS
    frame.set(head, 2)
    let at = 2 + head.length
    for (const p of this.#parts) {
      frame.set(p, at)
      at += p.length
    }
    this.#parts = []
    this.bytes = 0
    return lp.encode.single(frame)
  }
}

/** The CBOR head of an array of `n` elements (major type 4). */
function arrayHeader(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x80 | n)
  if (n < 0x100) return Uint8Array.of(0x98, n)
  if (n < 0x10000) return Uint8Array.of(0x99, n >> 8, n & 0xff)
  return Uint8Array.of(0x9a, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}
