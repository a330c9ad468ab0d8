/**
 * The Pin: one entry of the shared pinset. The type mirrors the REST JSON of IPFS Cluster 1.x
 * field for field and in the same order, so a Pin is its own wire form: the state stores these
 * JSON bytes and `GET /allocations` streams them without re-encoding.
 *
 * @example
 * ```ts
 * const pin = newPin('bafy…', { name: 'backup', replication_factor_min: 2, replication_factor_max: 3 })
 * encodePin(pin) // '{"replication_factor_min":2,…}'
 * ```
 */
import { ValidationError } from '../errors.ts'
import { canonicalCid, normalizeCid } from './cid.ts'
import { parseDuration } from './duration.ts'
import { formatTime, parseTime, ZERO_TIME } from './time.ts'
import { parsePeerId } from './peer_id.ts'

/** Pin types; only `pin` is created by this implementation, the rest are accepted and kept. */
export type PinType = 'pin' | 'meta-pin' | 'clusterdag-pin' | 'shard-pin' | 'bad-type'
/** How IPFS pins the CID. */
export type PinMode = 'recursive' | 'direct'

/** Bits of the pin types, for `/allocations?filter=`. */
export const PIN_TYPE_BITS: Readonly<Record<string, number>> = {
  'bad-type': 1,
  pin: 2,
  'meta-pin': 4,
  'clusterdag-pin': 8,
  'shard-pin': 16,
  all: 30,
}

/** User-settable pin options (the Go `PinOptions`), as JSON. */
export interface PinOptions {
  replication_factor_min: number
  replication_factor_max: number
  name: string
  mode: PinMode
  shard_size: number
  user_allocations: string[] | null
  expire_at: string
  metadata: Record<string, string> | null
  pin_update: string | null
  origins: string[] | null
}

/** A pin in the shared state, as JSON, fields in the reference's order. */
export interface Pin extends PinOptions {
  cid: string
  type: PinType
  allocations: string[]
  max_depth: number
  reference: string | null
  timestamp: string
}

/**
 * Metadata keys under this prefix hold records an API keeps in the pin itself (the Pinning Service
 * API's requests, src/api/pinsvc/records.ts). A re-pin by options (REST, ctl, the IPFS proxy)
 * that sets none of them keeps the existing ones, so that changing a pin's replication does not
 * drop its requests; `Cluster.commitPin` of a whole pin sets them exactly.
 */
export const RECORDS_PREFIX = 'pinsvc/'

/** Default options: replication 0/0 means "use the cluster's configured factors". */
export function defaultPinOptions(): PinOptions {
  return {
    replication_factor_min: 0,
    replication_factor_max: 0,
    name: '',
    mode: 'recursive',
    shard_size: 0,
    user_allocations: null,
    expire_at: ZERO_TIME,
    metadata: {},
    pin_update: null,
    origins: null,
  }
}

/** Builds a data pin for a CID with the given options; the timestamp is set at commit. */
export function newPin(cid: string, opts: Partial<PinOptions> = {}): Pin {
  const o = { ...defaultPinOptions(), ...opts }
  // Field order is the JSON order of the reference: options first, then the pin's own fields.
  const pin: Pin = {
    replication_factor_min: o.replication_factor_min,
    replication_factor_max: o.replication_factor_max,
    name: o.name,
    mode: o.mode,
    shard_size: o.shard_size,
    user_allocations: o.user_allocations,
    expire_at: o.expire_at,
    metadata: o.metadata,
    pin_update: o.pin_update ?? null,
    origins: o.origins,
    cid: normalizeCid(cid),
    type: 'pin',
    allocations: [],
    max_depth: o.mode === 'direct' ? 0 : -1,
    reference: null,
    timestamp: ZERO_TIME,
  }
  return pin
}

/** Serializes a pin to its JSON text (one line, no trailing newline). */
export function encodePin(pin: Pin): string {
  return JSON.stringify(orderPin(pin))
}

/** Returns the pin with its keys in the reference's order (JSON.stringify keeps insertion order). */
export function orderPin(pin: Pin): Pin {
  const out: Pin = {
    replication_factor_min: pin.replication_factor_min,
    replication_factor_max: pin.replication_factor_max,
    name: pin.name,
    mode: pin.mode,
    shard_size: pin.shard_size,
    user_allocations: pin.user_allocations,
    expire_at: pin.expire_at,
    metadata: pin.metadata,
    pin_update: pin.pin_update,
    origins: pin.origins,
    cid: pin.cid,
    type: pin.type,
    allocations: pin.allocations,
    max_depth: pin.max_depth,
    reference: pin.reference,
    timestamp: pin.timestamp,
  }
  return out
}

/** True when the pin should be pinned on every peer (replication -1/-1). */
export function isPinEverywhere(pin: PinOptions): boolean {
  return pin.replication_factor_min === -1 && pin.replication_factor_max === -1
}

/** The pin's expiry in epoch ms, or 0 when it never expires. */
export function expireAtMs(pin: PinOptions): number {
  return pin.expire_at ? parseTime(pin.expire_at) : 0
}

const PIN_TYPES = new Set(['pin', 'meta-pin', 'clusterdag-pin', 'shard-pin', 'bad-type'])

/**
 * Validates and normalizes a pin decoded from JSON (state import, RPC). Missing fields take their
 * defaults; wrong types are rejected with the field's name.
 */
export function pinFromJSON(v: unknown): Pin {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError('pin must be a JSON object')
  }
  const o = v as Record<string, unknown>
  const int = (k: string, def: number): number => {
    const x = o[k]
    if (x === undefined || x === null) return def
    if (typeof x !== 'number' || !Number.isInteger(x)) {
      throw new ValidationError(`pin field ${k} must be an integer`)
    }
    return x
  }
  const str = (k: string, def: string): string => {
    const x = o[k]
    if (x === undefined || x === null) return def
    if (typeof x !== 'string') throw new ValidationError(`pin field ${k} must be a string`)
    return x
  }
  const strList = (k: string): string[] | null => {
    const x = o[k]
    if (x === undefined || x === null) return null
    if (!Array.isArray(x) || x.some((e) => typeof e !== 'string')) {
      throw new ValidationError(`pin field ${k} must be a list of strings`)
    }
    return x as string[]
  }
  const cidStr = str('cid', '')
  if (!cidStr) throw new ValidationError('pin field cid is missing')
  const cid = canonicalCid(cidStr)
  if (cid === undefined) throw new ValidationError(`pin field cid is not a valid CID: ${cidStr}`)
  const type = str('type', 'pin')
  if (!PIN_TYPES.has(type)) throw new ValidationError(`pin field type has unknown value ${type}`)
  const maxDepth = int('max_depth', -1)
  let mode = str('mode', '') as PinMode
  if (mode !== 'recursive' && mode !== 'direct') mode = maxDepth === 0 ? 'direct' : 'recursive'
  const metadata = o.metadata
  if (
    metadata !== undefined && metadata !== null &&
    (typeof metadata !== 'object' || Array.isArray(metadata) ||
      Object.values(metadata).some((x) => typeof x !== 'string'))
  ) {
    throw new ValidationError('pin field metadata must be an object of strings')
  }
  const expire = str('expire_at', ZERO_TIME)
  const ts = str('timestamp', ZERO_TIME)
  parseTime(expire)
  parseTime(ts)
  const ref = str('reference', '')
  const update = str('pin_update', '')
  const pin: Pin = {
    replication_factor_min: int('replication_factor_min', 0),
    replication_factor_max: int('replication_factor_max', 0),
    name: str('name', ''),
    mode,
    shard_size: int('shard_size', 0),
    user_allocations: strList('user_allocations'),
    expire_at: expire,
    metadata: (metadata as Record<string, string> | null | undefined) ?? null,
    pin_update: update ? normalizeCid(update) : null,
    origins: strList('origins'),
    cid,
    type: type as PinType,
    allocations: strList('allocations') ?? [],
    max_depth: maxDepth,
    reference: ref ? normalizeCid(ref) : null,
    timestamp: ts,
  }
  return orderPin(pin)
}

/**
 * An integer query parameter as Go's strconv.Atoi reads it (sign, decimal digits), within what a
 * JSON number holds exactly (±2^53-1; Go goes to ±2^63-1, far past any replication factor).
 * Garbage and overflow get the reference's `parameter <name> invalid`.
 */
function intQueryParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name)
  if (v === null || v === '') return undefined
  const n = /^[-+]?\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw new ValidationError(`parameter ${name} invalid`)
  return n
}

/**
 * The peer IDs of `user-allocations` (comma-separated, blanks ignored). The reference drops IDs it
 * cannot decode and pins as if they were not there; we refuse them, naming them, so that a typo is
 * not silently turned into an automatic allocation.
 */
function userAllocations(list: string): string[] {
  const ids: string[] = []
  const bad: string[] = []
  for (const s of list.split(',')) {
    const id = s.trim()
    if (id === '') continue
    const peer = parsePeerId(id)
    if (peer === undefined) bad.push(id)
    else ids.push(peer)
  }
  if (bad.length > 0) {
    throw new ValidationError(
      `parameter user-allocations invalid: some peer IDs could not be decoded: ${bad.join(', ')}`,
    )
  }
  return ids
}

/**
 * Parses the pin options of a REST query (`POST /pins/...`), with the reference's parameter names
 * and 400 messages. `now` is injected for expire-in.
 */
export function pinOptionsFromQuery(q: URLSearchParams, now = Date.now()): PinOptions {
  const o = defaultPinOptions()
  o.name = q.get('name') ?? ''
  o.mode = q.get('mode') === 'direct' ? 'direct' : 'recursive'
  // `replication` sets both factors (the reference copies it into replication-min/max first).
  const repl = intQueryParam(q, 'replication')
  o.replication_factor_min = repl ?? intQueryParam(q, 'replication-min') ?? 0
  o.replication_factor_max = repl ?? intQueryParam(q, 'replication-max') ?? 0
  const shard = q.get('shard-size')
  if (shard) {
    const n = /^\d+$/.test(shard) ? Number(shard) : NaN
    if (!Number.isSafeInteger(n)) throw new ValidationError('parameter shard_size is invalid')
    o.shard_size = n
  }
  const allocs = q.get('user-allocations')
  if (allocs) o.user_allocations = userAllocations(allocs)
  const expireAt = q.get('expire-at')
  const expireIn = q.get('expire-in')
  if (expireAt) {
    try {
      o.expire_at = formatTime(parseTime(expireAt))
    } catch (err) {
      throw new ValidationError(`expire-at cannot be parsed: ${(err as Error).message}`)
    }
  } else if (expireIn) {
    let d: number
    try {
      d = parseDuration(expireIn)
    } catch (err) {
      throw new ValidationError(`expire-in cannot be parsed: ${(err as Error).message}`)
    }
    if (d < 1000) throw new ValidationError('expire-in duration too short')
    o.expire_at = formatTime(now + d)
  }
  const meta: Record<string, string> = {}
  for (const k of q.keys()) {
    // q.get: a repeated key keeps its first value, as Go's url.Values.Get does.
    if (k.startsWith('meta-') && k.length > 5) meta[k.slice(5)] = q.get(k)!
  }
  o.metadata = meta
  const update = q.get('pin-update')
  if (update) {
    try {
      o.pin_update = normalizeCid(update)
    } catch (err) {
      throw new ValidationError(
        `error decoding update option parameter: ${(err as Error).message}`,
      )
    }
  }
  const origins = q.get('origins')
  if (origins) {
    o.origins = []
    for (const m of origins.split(',')) {
      const addr = m.trim()
      if (!addr.startsWith('/')) {
        throw new ValidationError(`error decoding multiaddress: invalid multiaddr ${addr}`)
      }
      if (!addr.includes('/p2p/') && !addr.includes('/ipfs/')) {
        throw new ValidationError(`multiaddress does not contain peer ID: ${addr}`)
      }
      o.origins.push(addr)
    }
  }
  return o
}

/** The inverse of pinOptionsFromQuery, used by the REST client. */
export function pinOptionsToQuery(o: Partial<PinOptions>): URLSearchParams {
  const q = new URLSearchParams()
  q.set('replication-min', String(o.replication_factor_min ?? 0))
  q.set('replication-max', String(o.replication_factor_max ?? 0))
  q.set('name', o.name ?? '')
  q.set('mode', o.mode ?? 'recursive')
  q.set('shard-size', String(o.shard_size ?? 0))
  q.set('user-allocations', (o.user_allocations ?? []).join(','))
  if (o.expire_at && o.expire_at !== ZERO_TIME) q.set('expire-at', o.expire_at)
  for (const [k, v] of Object.entries(o.metadata ?? {})) if (k) q.set(`meta-${k}`, v)
  if (o.pin_update) q.set('pin-update', o.pin_update)
  if (o.origins?.length) q.set('origins', o.origins.join(','))
  return q
}

/** A time without its fraction of seconds (`…:05.25Z` → `…:05Z`); a regex cost a pin ~1 µs. */
function secs(t: string): string {
  // The fraction is the last "." in the string, followed by digits, then Z or ±hh:mm.
  const dot = t.lastIndexOf('.')
  if (dot < 0) return t
  let end = dot + 1
  while (end < t.length && t.charCodeAt(end) >= 48 && t.charCodeAt(end) <= 57) end++
  if (end === dot + 1) return t
  const zone = t.slice(end)
  if (zone !== 'Z' && !/^[+-]\d{2}:\d{2}$/.test(zone)) return t
  return t.slice(0, dot) + zone
}

/**
 * The pin as the state keeps it. IPFS Cluster stores pins as protobuf with whole-second times,
 * without `user_allocations` (not in its protobuf) and with empty metadata read back as null, and
 * reads `origins` back as `[]`, so `GET /allocations` and `state export` show exactly that; we
 * store the same form.
 */
export function storedPin(pin: Pin): Pin {
  const hasMeta = pin.metadata !== null && Object.keys(pin.metadata).length > 0
  return orderPin({
    ...pin,
    user_allocations: null,
    metadata: hasMeta ? pin.metadata : null,
    origins: pin.origins ?? [],
    timestamp: secs(pin.timestamp),
    expire_at: secs(pin.expire_at),
  })
}
