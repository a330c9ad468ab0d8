/**
 * A streaming CAR v1 reader (for `POST /add?format=car`): the header's roots, then one block at a
 * time, read straight from the upload. Blocks are checked against their CID when it uses a hash
 * function content can be added with (`src/types/multihash.ts`: sha2-256, sha3, blake2b, …).
 *
 * @example
 * ```ts
 * const car = new CarReader(part.body())
 * const roots = await car.roots()
 * for (let b = await car.next(); b; b = await car.next()) …
 * ```
 */
import * as cborg from 'cborg'
import { CID } from 'multiformats/cid'
import { ValidationError } from '../errors.ts'
import { loadHasher } from '../types/multihash.ts'

const MAX_HEADER = 1 << 20
/** Kubo's largest block (2 MiB) plus room for its CID. */
const MAX_SECTION = 2 * 1024 * 1024 + 1024

/** A malformed CAR file. */
export class CarError extends ValidationError {
  override name = 'CarError'
}

/** Reads a CAR v1 stream. */
export class CarReader {
  readonly #it: AsyncIterator<Uint8Array>
  #buf = new Uint8Array(0)
  #pos = 0
  #roots: CID[] | undefined

  constructor(body: AsyncIterable<Uint8Array>) {
    this.#it = body[Symbol.asyncIterator]()
  }

  async #more(): Promise<boolean> {
    const r = await this.#it.next()
    if (r.done) return false
    const rest = this.#buf.subarray(this.#pos)
    const next = new Uint8Array(rest.length + r.value.length)
    next.set(rest)
    next.set(r.value, rest.length)
    this.#buf = next
    this.#pos = 0
    return true
  }

  /** Reads an unsigned varint; undefined at a clean end of input. */
  async #varint(): Promise<number | undefined> {
    let value = 0
    let shift = 0
    for (let i = 0;; i++) {
      if (this.#pos >= this.#buf.length && !(await this.#more())) {
        if (i === 0) return undefined
        throw new CarError('invalid CAR: truncated varint')
      }
      const b = this.#buf[this.#pos++]
      value += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return value
      shift += 7
      if (shift > 49) throw new CarError('invalid CAR: varint too long')
    }
  }

  async #bytes(n: number): Promise<Uint8Array> {
    while (this.#buf.length - this.#pos < n) {
      if (!(await this.#more())) throw new CarError('invalid CAR: unexpected end of data')
    }
    const out = this.#buf.slice(this.#pos, this.#pos + n)
    this.#pos += n
    return out
  }

  /** The header's roots (reads the header on first call). */
  async roots(): Promise<CID[]> {
    if (this.#roots) return this.#roots
    const len = await this.#varint()
    if (len === undefined || len === 0 || len > MAX_HEADER) {
      throw new CarError('invalid CAR header length')
    }
    let header: unknown
    try {
      const tags: cborg.TagDecoder[] = []
      tags[42] = (decode) => CID.decode((decode() as Uint8Array).subarray(1))
      header = cborg.decode(await this.#bytes(len), { tags })
    } catch (err) {
      if (err instanceof CarError) throw err
      throw new CarError(`invalid CAR header: ${(err as Error).message}`)
    }
    const h = header as { version?: unknown; roots?: unknown }
    if (h?.version !== 1) throw new CarError(`invalid car version: ${String(h?.version)}`)
    if (!Array.isArray(h.roots) || h.roots.some((r) => !(r instanceof CID))) {
      throw new CarError('invalid CAR header: roots must be a list of CIDs')
    }
    this.#roots = h.roots as CID[]
    return this.#roots
  }

  /** The next block, or null at the end. */
  async next(): Promise<{ cid: CID; bytes: Uint8Array } | null> {
    await this.roots()
    const len = await this.#varint()
    if (len === undefined) return null
    if (len === 0 || len > MAX_SECTION) throw new CarError(`invalid CAR section length ${len}`)
    const section = await this.#bytes(len)
    let cid: CID
    let rest: Uint8Array
    try {
      ;[cid, rest] = CID.decodeFirst(section)
    } catch (err) {
      throw new CarError(`invalid CID in CAR section: ${(err as Error).message}`)
    }
    const hasher = await loadHasher(cid.multihash.code)
    if (hasher) {
      const digest = await hasher.digest(rest)
      if (!equalBytes(digest.digest, cid.multihash.digest)) {
        throw new CarError(`block ${cid} does not match its hash`)
      }
    }
    return { cid, bytes: rest }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The UnixFS file size recorded in a dag-pb node (PBNode.Data → UnixFS.filesize), or 0 when the
 * node is not UnixFS or records none — what the reference reports as `size` for a CAR root.
 */
export function unixfsFileSize(block: Uint8Array): number {
  try {
    const data = protoField(block, 1)
    if (!data) return 0
    let size = 0
    forEachField(data, (field, wire, value) => {
      if (field === 3 && wire === 0) size = value as number
    })
    return size
  } catch {
    return 0
  }
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let value = 0
  let shift = 0
  while (true) {
    if (pos >= b.length) throw new Error('truncated varint')
    const x = b[pos++]
    value += (x & 0x7f) * 2 ** shift
    if ((x & 0x80) === 0) return [value, pos]
    shift += 7
    if (shift > 63) throw new Error('varint too long')
  }
}

function forEachField(
  b: Uint8Array,
  fn: (field: number, wire: number, value: number | Uint8Array) => void,
): void {
  let pos = 0
  while (pos < b.length) {
    const [key, p1] = readVarint(b, pos)
    const field = Math.floor(key / 8)
    const wire = key & 7
    if (wire === 0) {
      const [v, p2] = readVarint(b, p1)
      fn(field, wire, v)
      pos = p2
    } else if (wire === 2) {
      const [len, p2] = readVarint(b, p1)
      if (p2 + len > b.length) throw new Error('truncated field')
      fn(field, wire, b.subarray(p2, p2 + len))
      pos = p2 + len
    } else {
      throw new Error(`unsupported wire type ${wire}`)
    }
  }
}

function protoField(b: Uint8Array, want: number): Uint8Array | undefined {
  let found: Uint8Array | undefined
  forEachField(b, (field, wire, value) => {
    if (field === want && wire === 2) found = value as Uint8Array
  })
  return found
}
