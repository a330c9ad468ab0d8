/**
 * The byte format of a pinset snapshot: a stream of records, cut into chunks at any byte
 * (a record may straddle two chunks), ending with a trailer that states the length and CRC-32 of
 * everything before it. A stream without its trailer, or whose trailer disagrees with its bytes,
 * is torn and is never applied.
 *
 * ```
 * stream  := header (record | block)* trailer
 * record  := u8 kind | u32 length | payload
 * header  := kind 0, payload "ipfs-cluster-deno raft snapshot 2"
 * pin     := kind 1, payload u16 cidLen | cid | pin JSON        (set the pin)
 * unpin   := kind 2, payload cid                                 (delete the pin)
 * seq     := kind 3, payload u16 originLen | origin | f64 seq    (dedupe table row)
 * block   := kind 4, payload deflate-raw(pin | unpin | seq …)    (whole records, in order)
 * trailer := kind 127, payload f64 length | u32 crc32            (of the bytes before it)
 * ```
 *
 * The encoder writes blocks of about `BLOCK_BYTES` of records, deflated at level 1: pins are JSON
 * that differ mostly in their CID, so a snapshot shrinks about 7× for a few seconds of CPU per
 * 1,000,000 pins, which is less than writing, sending, staging and reading the bytes saved. The
 * trailer covers the stored bytes (blocks as they are), so checking a stream inflates nothing.
 * Version 1 streams (header "… snapshot 1", no blocks) still decode.
 *
 * Unpin records exist because a snapshot is the state scanned while writes go on, followed by
 * the writes of that period replayed (see fsm.ts): set and delete are idempotent per key, so the
 * result is exactly the state at the last replayed index.
 *
 * @example
 * ```ts
 * const w = new SnapshotEncoder((chunk) => sink.push(chunk))
 * w.pin(cid, json)
 * const { length, crc } = w.finish()
 * const r = new SnapshotDecoder()
 * for (const c of chunks) for (const rec of r.push(c)) apply(rec)
 * r.end()                                 // throws TornSnapshotError if incomplete
 * ```
 *
 * @module
 */

import { deflateRawSync, inflateRawSync } from 'node:zlib'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const MAGIC = encoder.encode('ipfs-cluster-deno raft snapshot 2')
const MAGIC_V1 = 'ipfs-cluster-deno raft snapshot 1'
const K_HEADER = 0
const K_PIN = 1
const K_UNPIN = 2
const K_SEQ = 3
const K_BLOCK = 4
const K_TRAILER = 127

/** Records gathered into one deflated block (a block inflates to at most about this). */
const BLOCK_BYTES = 256 * 1024
/** The most a block may inflate to (a corrupt or hostile block stops there). */
const MAX_BLOCK_RAW = 4 * BLOCK_BYTES

/** Size of the chunks snapshots are stored and streamed in (one KV value each). */
export const SNAPSHOT_CHUNK_BYTES = 60_000

/** A snapshot stream that is incomplete or whose bytes do not match its trailer. */
export class TornSnapshotError extends Error {
  override name = 'TornSnapshotError'
}

// ------------------------------------------------------------------------------------ crc32

const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 8)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[i] = c
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff]
    }
  }
  return t
})()

/**
 * CRC-32 (IEEE) of `b`, continuing from `crc` (0 to start). Slice-by-8: about 1 GB/s here, so
 * checking a snapshot costs far less than reading it from KV.
 */
export function crc32(crc: number, b: Uint8Array): number {
  const T = CRC_TABLE
  let c = ~crc
  let i = 0
  const n = b.length
  for (; i + 8 <= n; i += 8) {
    const a = c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))
    c = T[1792 + (a & 0xff)] ^ T[1536 + ((a >>> 8) & 0xff)] ^ T[1280 + ((a >>> 16) & 0xff)] ^
      T[1024 + (a >>> 24)] ^ T[768 + b[i + 4]] ^ T[512 + b[i + 5]] ^ T[256 + b[i + 6]] ^
      T[b[i + 7]]
  }
  for (; i < n; i++) c = T[(c ^ b[i]) & 0xff] ^ (c >>> 8)
  return ~c >>> 0
}

// ------------------------------------------------------------------------------------ records

/** A decoded record. `json` is a view into the decoder's buffer: copy it to keep it. */
export type SnapshotRecord =
  | { kind: 'pin'; cid: string; json: Uint8Array }
  | { kind: 'unpin'; cid: string }
  | { kind: 'seq'; origin: string; seq: number }

/**
 * Writes records into deflated blocks, handing out chunks of `chunkBytes` of the stream as they
 * fill (the last one at `finish`).
 */
export class SnapshotEncoder {
  readonly #emit: (chunk: Uint8Array) => void
  readonly #chunkBytes: number
  #buf: Uint8Array
  #fill = 0
  #length = 0
  #crc = 0
  #finished = false
  /** Records of the block being gathered. */
  #block = new Uint8Array(BLOCK_BYTES + 1024)
  #blockDv = new DataView(this.#block.buffer)
  #blockFill = 0

  constructor(emit: (chunk: Uint8Array) => void, chunkBytes = SNAPSHOT_CHUNK_BYTES) {
    this.#emit = emit
    this.#chunkBytes = chunkBytes
    this.#buf = new Uint8Array(chunkBytes)
    const rec = new Uint8Array(5 + MAGIC.byteLength)
    rec[0] = K_HEADER
    new DataView(rec.buffer).setUint32(1, MAGIC.byteLength)
    rec.set(MAGIC, 5)
    this.#out(rec, true)
  }

  /** Bytes of the stream so far (header and blocks, not the trailer nor the open block). */
  get length(): number {
    return this.#length
  }

  pin(cid: string, json: Uint8Array): void {
    // CIDs are ASCII: one byte per character (encodeInto says how many it wrote, whatever).
    const p = this.#reserve(5 + 2 + cid.length * 3 + json.byteLength)
    const b = this.#block
    const n = encoder.encodeInto(cid, b.subarray(p + 7)).written
    b.set(json, p + 7 + n)
    this.#blockDv.setUint16(p + 5, n)
    this.#close(p, K_PIN, 2 + n + json.byteLength)
  }

  unpin(cid: string): void {
    const p = this.#reserve(5 + cid.length * 3)
    const n = encoder.encodeInto(cid, this.#block.subarray(p + 5)).written
    this.#close(p, K_UNPIN, n)
  }

  seq(origin: string, seq: number): void {
    const p = this.#reserve(5 + 2 + origin.length * 3 + 8)
    const n = encoder.encodeInto(origin, this.#block.subarray(p + 7)).written
    this.#blockDv.setUint16(p + 5, n)
    this.#blockDv.setFloat64(p + 7 + n, seq)
    this.#close(p, K_SEQ, 2 + n + 8)
  }

  /** Writes the trailer and emits the last chunk. Returns the length and CRC of the stream. */
  finish(): { length: number; crc: number } {
    if (this.#finished) throw new Error('snapshot encoder already finished')
    this.#deflate()
    const length = this.#length
    const crc = this.#crc
    const rec = new Uint8Array(5 + 12)
    const dv = new DataView(rec.buffer)
    rec[0] = K_TRAILER
    dv.setUint32(1, 12)
    dv.setFloat64(5, length)
    dv.setUint32(13, crc)
    this.#out(rec, false)
    this.#finished = true
    if (this.#fill > 0) this.#emit(this.#buf.slice(0, this.#fill))
    this.#fill = 0
    return { length, crc }
  }

  /** Room for a record of at most `max` bytes in the block; returns where it starts. */
  #reserve(max: number): number {
    if (this.#finished) throw new Error('snapshot encoder already finished')
    if (this.#blockFill > 0 && this.#blockFill + max > BLOCK_BYTES) this.#deflate()
    if (max > this.#block.byteLength - this.#blockFill) {
      // A record larger than a block (a pin is at most 64 KiB of JSON, so only a huge one).
      const grown = new Uint8Array(this.#blockFill + max)
      grown.set(this.#block.subarray(0, this.#blockFill))
      this.#block = grown
      this.#blockDv = new DataView(grown.buffer)
    }
    return this.#blockFill
  }

  /** Ends the record started at `p`: its kind and payload length. */
  #close(p: number, kind: number, len: number): void {
    this.#block[p] = kind
    this.#blockDv.setUint32(p + 1, len)
    this.#blockFill = p + 5 + len
  }

  /** The gathered records become one deflated block record of the stream. */
  #deflate(): void {
    if (this.#blockFill === 0) return
    const z = deflateRawSync(this.#block.subarray(0, this.#blockFill), { level: 1 })
    this.#blockFill = 0
    const rec = new Uint8Array(5 + z.byteLength)
    rec[0] = K_BLOCK
    new DataView(rec.buffer).setUint32(1, z.byteLength)
    rec.set(z, 5)
    this.#out(rec, true)
  }

  /** Appends a whole record to the stream (counted in length and CRC unless the trailer). */
  #out(rec: Uint8Array, counted: boolean): void {
    if (counted) {
      this.#crc = crc32(this.#crc, rec)
      this.#length += rec.byteLength
    }
    let p = 0
    while (p < rec.byteLength) {
      const n = Math.min(rec.byteLength - p, this.#chunkBytes - this.#fill)
      this.#buf.set(rec.subarray(p, p + n), this.#fill)
      this.#fill += n
      p += n
      if (this.#fill === this.#chunkBytes) {
        this.#emit(this.#buf)
        this.#buf = new Uint8Array(this.#chunkBytes)
        this.#fill = 0
      }
    }
  }
}

/**
 * Reassembles records from chunks and checks the trailer. `push` returns the records completed
 * by a chunk; `end` throws `TornSnapshotError` unless a valid trailer ended the stream.
 */
export class SnapshotDecoder {
  #pending: Uint8Array = new Uint8Array(0)
  #length = 0
  #crc = 0
  #sawHeader = false
  #done = false

  /** True once a valid trailer was read. */
  get complete(): boolean {
    return this.#done
  }

  push(chunk: Uint8Array): SnapshotRecord[] {
    if (this.#done) {
      if (chunk.byteLength === 0) return []
      throw new TornSnapshotError('bytes after the snapshot trailer')
    }
    let buf = chunk
    if (this.#pending.byteLength > 0) {
      buf = new Uint8Array(this.#pending.byteLength + chunk.byteLength)
      buf.set(this.#pending)
      buf.set(chunk, this.#pending.byteLength)
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    const out: SnapshotRecord[] = []
    let p = 0
    while (p + 5 <= buf.byteLength) {
      const kind = buf[p]
      const len = dv.getUint32(p + 1)
      if (p + 5 + len > buf.byteLength) break
      const body = buf.subarray(p + 5, p + 5 + len)
      const rec = buf.subarray(p, p + 5 + len)
      if (kind === K_TRAILER) {
        if (len !== 12) throw new TornSnapshotError('malformed trailer')
        const bdv = new DataView(body.buffer, body.byteOffset, 12)
        if (bdv.getFloat64(0) !== this.#length || bdv.getUint32(8) !== this.#crc) {
          throw new TornSnapshotError('snapshot bytes do not match their trailer (length or CRC)')
        }
        if (p + 5 + len !== buf.byteLength) {
          throw new TornSnapshotError('bytes after the snapshot trailer')
        }
        this.#done = true
        this.#pending = new Uint8Array(0)
        return out
      }
      this.#crc = crc32(this.#crc, rec)
      this.#length += rec.byteLength
      p += 5 + len
      if (!this.#sawHeader) {
        const magic = kind === K_HEADER ? decoder.decode(body) : ''
        if (magic !== decoder.decode(MAGIC) && magic !== MAGIC_V1) {
          throw new TornSnapshotError('not a pinset snapshot (bad header)')
        }
        this.#sawHeader = true
        continue
      }
      if (kind === K_BLOCK) {
        let raw: Uint8Array
        try {
          const z = inflateRawSync(body, { maxOutputLength: MAX_BLOCK_RAW })
          // A plain Uint8Array view of node's Buffer: what KV stores and tests compare.
          raw = new Uint8Array(z.buffer, z.byteOffset, z.byteLength)
        } catch (err) {
          throw new TornSnapshotError(
            `a snapshot block does not inflate: ${(err as Error).message}`,
          )
        }
        const rdv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
        let q = 0
        while (q < raw.byteLength) {
          if (q + 5 > raw.byteLength) throw new TornSnapshotError('a record cut inside a block')
          const len = rdv.getUint32(q + 1)
          if (q + 5 + len > raw.byteLength) {
            throw new TornSnapshotError('a record cut inside a block')
          }
          if (raw[q] === K_BLOCK) throw new TornSnapshotError('a block inside a block')
          out.push(recordOf(raw[q], raw.subarray(q + 5, q + 5 + len)))
          q += 5 + len
        }
        continue
      }
      out.push(recordOf(kind, body))
    }
    this.#pending = buf.slice(p)
    return out
  }

  /** Throws unless the stream ended with a valid trailer. */
  end(): void {
    if (!this.#done) throw new TornSnapshotError('snapshot stream ended without its trailer')
  }
}

/** A pin, unpin or seq record from its kind and payload. */
function recordOf(kind: number, body: Uint8Array): SnapshotRecord {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength)
  switch (kind) {
    case K_PIN: {
      const cl = dv.getUint16(0)
      return {
        kind: 'pin',
        cid: decoder.decode(body.subarray(2, 2 + cl)),
        json: body.subarray(2 + cl),
      }
    }
    case K_UNPIN:
      return { kind: 'unpin', cid: decoder.decode(body) }
    case K_SEQ: {
      const ol = dv.getUint16(0)
      return {
        kind: 'seq',
        origin: decoder.decode(body.subarray(2, 2 + ol)),
        seq: dv.getFloat64(2 + ol),
      }
    }
    default:
      throw new TornSnapshotError(`unknown snapshot record kind ${kind}`)
  }
}

/** Size of the trailer record at the end of every snapshot stream. */
const TRAILER_BYTES = 5 + 12

/**
 * Checks a snapshot stream as raw bytes, without decoding its records: the stream must end with
 * a trailer whose length and CRC match the bytes before it. Also computes the CRC of the whole
 * stream, which a stored snapshot's manifest records. Used where bytes are only moved (a follower
 * staging a stream, a leader sending its stored snapshot).
 */
export class SnapshotVerifier {
  #held = new Uint8Array(0)
  #bodyCrc = 0
  #bodyBytes = 0
  #crc = 0
  #bytes = 0

  push(chunk: Uint8Array): void {
    this.#crc = crc32(this.#crc, chunk)
    this.#bytes += chunk.byteLength
    if (chunk.byteLength >= TRAILER_BYTES) {
      // The held bytes and all but the last TRAILER_BYTES of the chunk are body: no copy of it.
      const cut = chunk.byteLength - TRAILER_BYTES
      this.#bodyCrc = crc32(crc32(this.#bodyCrc, this.#held), chunk.subarray(0, cut))
      this.#bodyBytes += this.#held.byteLength + cut
      this.#held = chunk.slice(cut)
      return
    }
    let all = chunk
    if (this.#held.byteLength > 0) {
      all = new Uint8Array(this.#held.byteLength + chunk.byteLength)
      all.set(this.#held)
      all.set(chunk, this.#held.byteLength)
    }
    const cut = Math.max(0, all.byteLength - TRAILER_BYTES)
    if (cut > 0) {
      this.#bodyCrc = crc32(this.#bodyCrc, all.subarray(0, cut))
      this.#bodyBytes += cut
    }
    this.#held = all.slice(cut)
  }

  /** Total bytes and CRC-32 of the stream; throws `TornSnapshotError` if it is not whole. */
  end(): { bytes: number; crc: number } {
    const t = this.#held
    if (t.byteLength !== TRAILER_BYTES || t[0] !== K_TRAILER) {
      throw new TornSnapshotError('snapshot stream ended without its trailer')
    }
    const dv = new DataView(t.buffer, t.byteOffset, t.byteLength)
    if (
      dv.getUint32(1) !== 12 || dv.getFloat64(5) !== this.#bodyBytes ||
      dv.getUint32(13) !== this.#bodyCrc
    ) {
      throw new TornSnapshotError('snapshot bytes do not match their trailer (length or CRC)')
    }
    return { bytes: this.#bytes, crc: this.#crc }
  }
}
