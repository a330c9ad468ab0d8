/**
 * A pin as IPFS Cluster 1.1.6 stores it in the CRDT: the `api.pb.Pin` protobuf (proto3,
 * `api/pb/types.proto`; Go's `Pin.ProtoMarshal`/`ProtoUnmarshal`, `api/types.go:1082-1243`). The
 * bytes must be what Go writes, field for field: two replicas that put one pin at one priority keep
 * the byte-wise greater value (go-ds-crdt's tie rule), so any difference in encoding picks a
 * different winner on Go and TypeScript peers.
 *
 * What Go does, and so what this does:
 * - `Type` is the log2 of Go's PinType bit (Data 1, Meta 2, ClusterDAG 3, Shard 4, Bad 0), and
 *   is decoded as `1 << n`, so an absent field reads as BadType;
 * - `MaxDepth` is zig-zag `sint32`: -1 recursive, 0 direct (absent: direct); the mode is derived
 *   from it, and `user_allocations` is not stored;
 * - times are whole Unix seconds, 0 (absent) for unset; `PinUpdate` and `Reference` are binary
 *   CIDs; `Allocations` binary peer IDs; `Origins` binary multiaddrs;
 * - metadata goes in `SortedMetadata` (field 10) sorted by key; the deprecated map (field 6) is
 *   read and then overlaid by field 10, never written;
 * - `Options` is always written, even empty (Go marshals a non-nil sub-message);
 * - the pin's CID comes from the key on read (`state/dsstate/datastore.go:301-319`), not from
 *   field 1: callers pass it to `decodePinPb`.
 *
 * @example
 * ```ts
 * const bytes = encodePinPb(pin)        // what Go's Pin.ProtoMarshal writes
 * const back = decodePinPb(bytes, cid)  // the pin as the state stores it (storedPin form)
 * ```
 *
 * @module
 */
import { reader, writer } from 'protons-runtime'
import { base58btc } from 'multiformats/bases/base58'
import * as Digest from 'multiformats/hashes/digest'
import { multiaddr } from '@multiformats/multiaddr'
import { ValidationError } from '../../errors.ts'
import { CID, normalizeCid, parseCid } from '../../types/cid.ts'
import { orderPin, type Pin, type PinType } from '../../types/pin.ts'
import { formatTime, parseTime, ZERO_TIME } from '../../types/time.ts'
import { compareBytes } from './codec.ts'

/** The protobuf enum value of each pin type (log2 of Go's PinType bit). */
const TYPE_TO_PB: Readonly<Record<PinType, number>> = {
  'bad-type': 0,
  pin: 1,
  'meta-pin': 2,
  'clusterdag-pin': 3,
  'shard-pin': 4,
}
const PB_TO_TYPE: readonly PinType[] = [
  'bad-type',
  'pin',
  'meta-pin',
  'clusterdag-pin',
  'shard-pin',
]

// Wire types.
const VARINT = 0
const LEN = 2

/** Whole Unix seconds of an RFC 3339 time; 0 for the zero time and the epoch (Go omits both). */
function seconds(t: string): number {
  const ms = parseTime(t)
  return ms > 0 ? Math.floor(ms / 1000) : 0
}

function peerIdBytes(id: string): Uint8Array {
  try {
    const bytes = base58btc.baseDecode(id)
    Digest.decode(bytes)
    return bytes
  } catch {
    throw new ValidationError(`pin allocation is not a peer ID: ${id}`)
  }
}

function cidBytes(s: string, field: string): Uint8Array {
  try {
    return parseCid(s).bytes
  } catch {
    throw new ValidationError(`pin field ${field} is not a valid CID: ${s}`)
  }
}

/**
 * Encodes a pin as Go's `Pin.ProtoMarshal` does.
 *
 * @example
 * ```ts
 * await replica.put(dsKey(parseCid(pin.cid)), encodePinPb(pin))
 * ```
 */
export function encodePinPb(pin: Pin): Uint8Array {
  const opts = writer()
  if (pin.replication_factor_min !== 0) {
    opts.uint32(1 << 3 | VARINT).sint32(pin.replication_factor_min)
  }
  if (pin.replication_factor_max !== 0) {
    opts.uint32(2 << 3 | VARINT).sint32(pin.replication_factor_max)
  }
  if (pin.name !== '') opts.uint32(3 << 3 | LEN).string(pin.name)
  if (pin.shard_size > 0) opts.uint32(4 << 3 | VARINT).uint64Number(pin.shard_size)
  if (pin.pin_update) opts.uint32(7 << 3 | LEN).bytes(cidBytes(pin.pin_update, 'pin_update'))
  const expire = seconds(pin.expire_at || ZERO_TIME)
  if (expire > 0) opts.uint32(8 << 3 | VARINT).uint64Number(expire)
  for (const o of pin.origins ?? []) {
    let bytes: Uint8Array
    try {
      bytes = multiaddr(o).bytes
    } catch {
      throw new ValidationError(`pin origin is not a multiaddress: ${o}`)
    }
    opts.uint32(9 << 3 | LEN).bytes(bytes)
  }
  // Sorted by key as Go's sort.Strings (byte order of UTF-8; code-unit order differs only
  // beyond the BMP, so compare the encoded bytes).
  const meta = Object.entries(pin.metadata ?? {}).map(([k, v]) => ({
    k,
    v,
    kb: new TextEncoder().encode(k),
  }))
  meta.sort((a, b) => compareBytes(a.kb, b.kb))
  for (const { k, v } of meta) {
    const m = writer()
    if (k !== '') m.uint32(1 << 3 | LEN).string(k)
    if (v !== '') m.uint32(2 << 3 | LEN).string(v)
    opts.uint32(10 << 3 | LEN).bytes(m.finish())
  }

  const w = writer()
  w.uint32(1 << 3 | LEN).bytes(cidBytes(pin.cid, 'cid'))
  const type = TYPE_TO_PB[pin.type] ?? 0
  if (type !== 0) w.uint32(2 << 3 | VARINT).uint32(type)
  for (const a of pin.allocations ?? []) w.uint32(3 << 3 | LEN).bytes(peerIdBytes(a))
  if (pin.max_depth !== 0) w.uint32(4 << 3 | VARINT).sint32(pin.max_depth)
  if (pin.reference) w.uint32(5 << 3 | LEN).bytes(cidBytes(pin.reference, 'reference'))
  w.uint32(6 << 3 | LEN).bytes(opts.finish())
  const ts = seconds(pin.timestamp || ZERO_TIME)
  if (ts > 0) w.uint32(7 << 3 | VARINT).uint64Number(ts)
  return w.finish()
}

/** A CID's canonical string from its bytes, or null when the bytes are no CID (Go: CastCid). */
function castCid(bytes: Uint8Array | undefined): string | null {
  if (!bytes || bytes.length === 0) return null
  try {
    return CID.decode(bytes).toString()
  } catch {
    return null
  }
}

interface PbOptions {
  rfMin: number
  rfMax: number
  name: string
  shardSize: number
  metadata: Map<string, string> | undefined
  sorted: [string, string][]
  pinUpdate?: Uint8Array
  expireAt: number
  origins: Uint8Array[]
}

function decodeKeyValue(bytes: Uint8Array): [string, string] {
  const r = reader(bytes)
  let k = ''
  let v = ''
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        k = r.string()
        break
      case 2:
        v = r.string()
        break
      default:
        r.skipType(tag & 7)
    }
  }
  return [k, v]
}

function decodeOptions(bytes: Uint8Array): PbOptions {
  const o: PbOptions = {
    rfMin: 0,
    rfMax: 0,
    name: '',
    shardSize: 0,
    metadata: undefined,
    sorted: [],
    expireAt: 0,
    origins: [],
  }
  const r = reader(bytes)
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        o.rfMin = r.sint32()
        break
      case 2:
        o.rfMax = r.sint32()
        break
      case 3:
        o.name = r.string()
        break
      case 4:
        o.shardSize = r.uint64Number()
        break
      case 6: {
        const [k, v] = decodeKeyValue(r.bytes())
        ;(o.metadata ??= new Map()).set(k, v)
        break
      }
      case 7:
        o.pinUpdate = r.bytes()
        break
      case 8:
        o.expireAt = r.uint64Number()
        break
      case 9:
        o.origins.push(r.bytes())
        break
      case 10:
        o.sorted.push(decodeKeyValue(r.bytes()))
        break
      default:
        r.skipType(tag & 7)
    }
  }
  return o
}

/** Thrown for bytes that are not an `api.pb.Pin` (a peer's bug, or a foreign key's value). */
export class PinPbError extends Error {
  override name = 'PinPbError'
}

/**
 * Decodes an `api.pb.Pin` as Go's `Pin.ProtoUnmarshal` does, into the form the state stores
 * (`storedPin`: no user allocations, times in whole seconds). `cid` is the CID of the pin's key,
 * which wins over field 1 (as Go's state reads it).
 *
 * @example
 * ```ts
 * const pin = decodePinPb(value, cidFromDsKey(key).toString())
 * ```
 */
export function decodePinPb(bytes: Uint8Array, cid?: string): Pin {
  try {
    return decode(bytes, cid)
  } catch (err) {
    if (err instanceof PinPbError) throw err
    throw new PinPbError(`not a protobuf pin: ${(err as Error).message}`)
  }
}

function decode(bytes: Uint8Array, keyCid: string | undefined): Pin {
  const r = reader(bytes)
  let cidField: Uint8Array | undefined
  let type = 0
  const allocations: string[] = []
  let maxDepth = 0
  let reference: Uint8Array | undefined
  let opts: PbOptions | undefined
  let timestamp = 0
  while (r.pos < r.len) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        cidField = r.bytes()
        break
      case 2:
        type = r.int32()
        break
      case 3: {
        const b = r.bytes()
        try {
          Digest.decode(b)
        } catch {
          throw new PinPbError('an allocation is not a peer ID')
        }
        allocations.push(base58btc.baseEncode(b))
        break
      }
      case 4:
        maxDepth = r.sint32()
        break
      case 5:
        reference = r.bytes()
        break
      case 6:
        opts = decodeOptions(r.bytes())
        break
      case 7:
        timestamp = r.uint64Number()
        break
      default:
        r.skipType(tag & 7)
    }
  }
  const o = opts ?? decodeOptions(new Uint8Array())
  const cid = keyCid !== undefined ? normalizeCid(keyCid) : castCid(cidField)
  if (cid === null) throw new PinPbError('the pin has no valid CID')
  let metadata: Record<string, string> | null = null
  if (o.metadata) metadata = Object.fromEntries(o.metadata)
  if (o.sorted.length > 0) {
    metadata ??= {}
    for (const [k, v] of o.sorted) metadata[k] = v
  }
  const origins = o.origins.map((b) => {
    try {
      return multiaddr(b).toString()
    } catch {
      throw new PinPbError('an origin is not a multiaddress')
    }
  })
  return orderPin({
    replication_factor_min: o.rfMin,
    replication_factor_max: o.rfMax,
    name: o.name,
    // Go: PinDepth.ToPinMode — 0 is direct, anything else recursive.
    mode: maxDepth === 0 ? 'direct' : 'recursive',
    shard_size: o.shardSize,
    user_allocations: null,
    expire_at: o.expireAt > 0 ? formatTime(o.expireAt * 1000) : ZERO_TIME,
    metadata,
    pin_update: castCid(o.pinUpdate),
    origins,
    cid,
    // Go: 1 << n; a bit beyond ShardType names no type Go knows.
    type: PB_TO_TYPE[type] ?? 'bad-type',
    allocations,
    max_depth: maxDepth,
    reference: castCid(reference),
    timestamp: timestamp > 0 ? formatTime(timestamp * 1000) : ZERO_TIME,
  })
}
