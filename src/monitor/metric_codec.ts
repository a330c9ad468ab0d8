/**
 * A metric as it travels on the `monitor.metrics` gossipsub topic: the msgpack form IPFS Cluster
 * 1.1.6 gives `api.Metric` (ugorji codec, `MsgpackHandle{}` defaults), so a Go peer and this one
 * read each other's metrics (../shared/reference/crdt-interop.md §5).
 *
 * A map of the non-empty fields in struct order — `n` name, `p` peer, `v` value, `e` expire (Unix
 * ns), `d` valid, `w` weight, `o` partitionable, `t` received_at — strings in msgpack's raw form
 * (fixstr, else str16/str32), the peer as its binary ID bytes in that same form, integers in the
 * smallest signed encoding that holds them. The decoder takes what ugorji's does: str8 and bin
 * for strings and bytes, unsigned integers, unknown keys skipped, and the `\x09/msgpack\n` prefix
 * peers before 0.13.3 put in front.
 *
 * @example
 * ```ts
 * const bytes = encodeMetric(newMetric('ping', self, '{}', 30_000, Date.now()))
 * const m = decodeMetric(bytes) // the same metric (ns rounded to what a double holds)
 * ```
 *
 * @module
 */
import { base58btc } from 'multiformats/bases/base58'
import { ValidationError } from '../errors.ts'
import type { Metric } from '../types/metric.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const LEGACY_PREFIX = encoder.encode('\x09/msgpack\n')

/** A metric payload that is not a msgpack `api.Metric`. */
export class MetricDecodeError extends ValidationError {
  override name = 'MetricDecodeError'
}

class Writer {
  #buf = new Uint8Array(256)
  #dv = new DataView(this.#buf.buffer)
  length = 0

  #room(n: number) {
    if (this.length + n <= this.#buf.length) return
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n))
    next.set(this.#buf.subarray(0, this.length))
    this.#buf = next
    this.#dv = new DataView(next.buffer)
  }

  byte(b: number) {
    this.#room(1)
    this.#buf[this.length++] = b
  }

  /** Raw string form (ugorji's legacy `str`): fixstr, str16 or str32, never str8 or bin. */
  raw(bytes: Uint8Array) {
    const n = bytes.length
    this.#room(5 + n)
    if (n <= 31) this.#buf[this.length++] = 0xa0 | n
    else if (n <= 0xffff) {
      this.#buf[this.length++] = 0xda
      this.#dv.setUint16(this.length, n)
      this.length += 2
    } else {
      this.#buf[this.length++] = 0xdb
      this.#dv.setUint32(this.length, n)
      this.length += 4
    }
    this.#buf.set(bytes, this.length)
    this.length += n
  }

  /** A signed integer in the smallest form: fixint, int8, int16, int32 or int64. */
  int(v: number) {
    const i = Math.trunc(v)
    this.#room(9)
    if (i >= 0 && i <= 127) return void (this.#buf[this.length++] = i)
    if (i < 0 && i >= -32) return void (this.#buf[this.length++] = i & 0xff)
    if (i >= -128 && i <= 127) {
      this.#buf[this.length++] = 0xd0
      this.#dv.setInt8(this.length++, i)
    } else if (i >= -32768 && i <= 32767) {
      this.#buf[this.length++] = 0xd1
      this.#dv.setInt16(this.length, i)
      this.length += 2
    } else if (i >= -2147483648 && i <= 2147483647) {
      this.#buf[this.length++] = 0xd2
      this.#dv.setInt32(this.length, i)
      this.length += 4
    } else {
      this.#buf[this.length++] = 0xd3
      this.#dv.setBigInt64(this.length, BigInt(i))
      this.length += 8
    }
  }

  bytes(): Uint8Array {
    return this.#buf.slice(0, this.length)
  }
}

/** The binary form of a peer ID string (its multihash bytes). */
function peerBytes(peer: string): Uint8Array {
  try {
    return base58btc.baseDecode(peer)
  } catch {
    throw new ValidationError(`metric peer ${JSON.stringify(peer)} is not a peer ID`)
  }
}

/** Encodes a metric as a Go peer publishes it. */
export function encodeMetric(m: Metric): Uint8Array {
  const fields: [string, (w: Writer) => void][] = []
  if (m.name) fields.push(['n', (w) => w.raw(encoder.encode(m.name))])
  if (m.peer) fields.push(['p', (w) => w.raw(peerBytes(m.peer))])
  if (m.value) fields.push(['v', (w) => w.raw(encoder.encode(m.value))])
  if (m.expire) fields.push(['e', (w) => w.int(m.expire)])
  if (m.valid) fields.push(['d', (w) => w.byte(0xc3)])
  if (m.weight) fields.push(['w', (w) => w.int(m.weight)])
  if (m.partitionable) fields.push(['o', (w) => w.byte(0xc3)])
  if (m.received_at) fields.push(['t', (w) => w.int(m.received_at)])
  const w = new Writer()
  w.byte(0x80 | fields.length)
  for (const [k, put] of fields) {
    w.raw(encoder.encode(k))
    put(w)
  }
  return w.bytes()
}

class Reader {
  p = 0
  readonly dv: DataView

  constructor(readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  }

  need(n: number) {
    if (this.p + n > this.b.length) throw new MetricDecodeError('metric message is truncated')
  }

  u8(): number {
    this.need(1)
    return this.b[this.p++]
  }

  take(n: number): Uint8Array {
    this.need(n)
    const out = this.b.subarray(this.p, this.p + n)
    this.p += n
    return out
  }

  len(size: 1 | 2 | 4): number {
    this.need(size)
    const v = size === 1
      ? this.dv.getUint8(this.p)
      : size === 2
      ? this.dv.getUint16(this.p)
      : this.dv.getUint32(this.p)
    this.p += size
    return v
  }

  /** A string or byte string in any of msgpack's forms. */
  rawBytes(): Uint8Array {
    const t = this.u8()
    if ((t & 0xe0) === 0xa0) return this.take(t & 0x1f)
    if (t === 0xd9 || t === 0xc4) return this.take(this.len(1))
    if (t === 0xda || t === 0xc5) return this.take(this.len(2))
    if (t === 0xdb || t === 0xc6) return this.take(this.len(4))
    if (t === 0xc0) return new Uint8Array()
    throw new MetricDecodeError(`expected a string, found msgpack type 0x${t.toString(16)}`)
  }

  int(): number {
    const t = this.u8()
    if (t <= 0x7f) return t
    if (t >= 0xe0) return t - 0x100
    const at = this.p
    const sizes: Record<number, number> = {
      0xcc: 1,
      0xcd: 2,
      0xce: 4,
      0xcf: 8,
      0xd0: 1,
      0xd1: 2,
      0xd2: 4,
      0xd3: 8,
    }
    const n = sizes[t]
    if (n === undefined) {
      if (t === 0xc0) return 0
      throw new MetricDecodeError(`expected an integer, found msgpack type 0x${t.toString(16)}`)
    }
    this.need(n)
    this.p += n
    switch (t) {
      case 0xcc:
        return this.dv.getUint8(at)
      case 0xcd:
        return this.dv.getUint16(at)
      case 0xce:
        return this.dv.getUint32(at)
      case 0xcf:
        return Number(this.dv.getBigUint64(at))
      case 0xd0:
        return this.dv.getInt8(at)
      case 0xd1:
        return this.dv.getInt16(at)
      case 0xd2:
        return this.dv.getInt32(at)
      default:
        return Number(this.dv.getBigInt64(at))
    }
  }

  bool(): boolean {
    const t = this.u8()
    if (t === 0xc3) return true
    if (t === 0xc2 || t === 0xc0) return false
    throw new MetricDecodeError(`expected a boolean, found msgpack type 0x${t.toString(16)}`)
  }

  /** Skips one value of any type (an unknown key's). */
  skip(depth = 0): void {
    if (depth > 16) throw new MetricDecodeError('metric message nests too deep')
    const t = this.u8()
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return
    if ((t & 0xe0) === 0xa0) return void this.take(t & 0x1f)
    if ((t & 0xf0) === 0x90) return this.#skipN(t & 0x0f, depth)
    if ((t & 0xf0) === 0x80) return this.#skipN(2 * (t & 0x0f), depth)
    switch (t) {
      case 0xc4:
      case 0xd9:
        return void this.take(this.len(1))
      case 0xc5:
      case 0xda:
        return void this.take(this.len(2))
      case 0xc6:
      case 0xdb:
        return void this.take(this.len(4))
      case 0xcc:
      case 0xd0:
        return void this.take(1)
      case 0xcd:
      case 0xd1:
        return void this.take(2)
      case 0xca:
      case 0xce:
      case 0xd2:
        return void this.take(4)
      case 0xcb:
      case 0xcf:
      case 0xd3:
        return void this.take(8)
      case 0xdc:
        return this.#skipN(this.len(2), depth)
      case 0xdd:
        return this.#skipN(this.len(4), depth)
      case 0xde:
        return this.#skipN(2 * this.len(2), depth)
      case 0xdf:
        return this.#skipN(2 * this.len(4), depth)
      case 0xd4:
        return void this.take(2)
      case 0xd5:
        return void this.take(3)
      case 0xd6:
        return void this.take(5)
      case 0xd7:
        return void this.take(9)
      case 0xd8:
        return void this.take(17)
      case 0xc7:
        return void this.take(this.len(1) + 1)
      case 0xc8:
        return void this.take(this.len(2) + 1)
      case 0xc9:
        return void this.take(this.len(4) + 1)
    }
    throw new MetricDecodeError(`unknown msgpack type 0x${t.toString(16)}`)
  }

  #skipN(n: number, depth: number) {
    for (let i = 0; i < n; i++) this.skip(depth + 1)
  }
}

/** Decodes a metric a peer published; `MetricDecodeError` for anything else. */
export function decodeMetric(data: Uint8Array): Metric {
  let b = data
  if (
    b.length >= LEGACY_PREFIX.length &&
    LEGACY_PREFIX.every((x, i) => b[i] === x)
  ) b = b.subarray(LEGACY_PREFIX.length)
  const r = new Reader(b)
  const t = r.u8()
  let n: number
  if ((t & 0xf0) === 0x80) n = t & 0x0f
  else if (t === 0xde) n = r.len(2)
  else if (t === 0xdf) n = r.len(4)
  else throw new MetricDecodeError('a metric message is a msgpack map')
  const m: Metric = {
    name: '',
    peer: '',
    value: '',
    expire: 0,
    valid: false,
    weight: 0,
    partitionable: false,
    received_at: 0,
  }
  for (let i = 0; i < n; i++) {
    const key = decoder.decode(r.rawBytes())
    switch (key) {
      case 'n':
        m.name = decoder.decode(r.rawBytes())
        break
      case 'p': {
        const id = r.rawBytes()
        m.peer = id.length ? base58btc.baseEncode(id) : ''
        break
      }
      case 'v':
        m.value = decoder.decode(r.rawBytes())
        break
      case 'e':
        m.expire = r.int()
        break
      case 'd':
        m.valid = r.bool()
        break
      case 'w':
        m.weight = r.int()
        break
      case 'o':
        m.partitionable = r.bool()
        break
      case 't':
        m.received_at = r.int()
        break
      default:
        r.skip()
    }
  }
  if (r.p !== b.length) throw new MetricDecodeError('trailing bytes after the metric')
  if (!m.name) throw new MetricDecodeError('a metric without a name')
  if (!m.peer) throw new MetricDecodeError(`metric ${m.name} without a peer`)
  return m
}
