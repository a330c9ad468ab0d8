/**
 * Pinning Service requests inside the cluster pinset. The pinset holds one Pin per CID; each
 * request made through this API is a record in that pin's metadata, under a reserved key
 * `pinsvc/<key>` (128 random bits in base32) whose value is the record's JSON
 * (`{"created","name","origins","meta"}`). So one CID can carry several requests (two names, two
 * clients), and no new consensus operation is needed: a request is added or removed by
 * re-committing the CID's pin. A record's request id is `<CID>-<key>`: it names its pin, so
 * finding a request needs no lookup table, on any peer, at any time.
 *
 * A pin without records (made by the REST API, ctl or a state import) is one request whose id is
 * its CID and whose `created` is the pin's timestamp, as the reference lists every pin. When such
 * a pin gets its first record, the key `pinsvc/base` keeps what it was (`{"created","name",
 * "origins"}`): its request lives on beside the records, and removing the last record leaves the
 * pin as it was instead of unpinning it. Everything here is pure: the records module decides what
 * the pin becomes; the caller commits it.
 *
 * Times are integer microseconds since the epoch (`created`), printed as RFC 3339 with up to six
 * fractional digits: the spec pages by `created`, so each request's must be unique, and this
 * peer hands out strictly increasing ones (createdClock).
 *
 * @example
 * ```ts
 * const key = newRecordKey()
 * const shape = withRecord(existing, key, { name: 'backup', meta: {}, origins: [] }, clock())
 * await cluster.commitPin(newPin(cid, { ...defaultPinOptions(), ...shape }))
 * requestsOf(pin) // [{ requestid: `${cid}-${key}`, cid, name: 'backup', … }, …]
 * ```
 *
 * @module
 */
import { base32 } from 'multiformats/bases/base32'
import { ValidationError } from '../../errors.ts'
import { normalizeCid } from '../../types/cid.ts'
import { RECORDS_PREFIX } from '../../types/pin.ts'
import { parseTime } from '../../types/time.ts'

/** Metadata keys starting with this hold the API's records (a re-pin by options keeps them). */
export const RESERVED_PREFIX = RECORDS_PREFIX
/** The metadata key that keeps a pin's own request once records were added to it. */
export const BASE_KEY = 'pinsvc/base'

/** What a client asks to pin (the spec's Pin object, validated). */
export interface PinBody {
  cid: string
  name: string
  origins: string[]
  meta: Record<string, string>
}

/** One request as the API shows it. */
export interface PinRequest {
  requestid: string
  cid: string
  name: string
  origins: string[]
  meta: Record<string, string>
  /** Microseconds since the epoch. */
  created: number
}

/** The fields of a cluster pin the records live in (a Pin, a GlobalPinInfo). */
export interface PinFields {
  cid: string
  name: string
  metadata: Record<string, string> | null
  origins: string[] | null
  /** RFC 3339: the pin's timestamp (a GlobalPinInfo's `created`). */
  timestamp: string
}

/** What the pin's name, metadata and origins become after a change of its requests. */
export interface PinShape {
  name: string
  metadata: Record<string, string>
  origins: string[]
}

/** A new record key: 128 random bits as 26 characters of lowercase base32 (URL-safe). */
export function newRecordKey(random: (n: number) => Uint8Array = randomBytes): string {
  return base32.baseEncode(random(16))
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n))
}

/** The request id of a record: its CID and its key. */
export function recordRequestId(cid: string, key: string): string {
  return `${cid}-${key}`
}

/**
 * What a request id names: a record (`<CID>-<key>`) or a pin's own request (`<CID>`), the CID
 * in canonical form; undefined when it names neither (no CID holds a `-`).
 */
export function parseRequestId(rid: string): { cid: string; key?: string } | undefined {
  const dash = rid.indexOf('-')
  const cidPart = dash < 0 ? rid : rid.slice(0, dash)
  const key = dash < 0 ? undefined : rid.slice(dash + 1)
  if (key === '') return undefined
  try {
    return { cid: normalizeCid(cidPart), key }
  } catch {
    return undefined
  }
}

/**
 * Strictly increasing `created` times (µs) from a millisecond clock: two requests made on this
 * peer within one millisecond still differ, which the spec's paging by `created` relies on.
 */
export function createdClock(nowMs: () => number): () => number {
  let last = 0
  return () => {
    last = Math.max(nowMs() * 1000, last + 1)
    return last
  }
}

/** Formats µs since the epoch as RFC 3339 in UTC, with the fraction's trailing zeros dropped. */
export function formatMicros(us: number): string {
  const ms = Math.floor(us / 1000)
  const iso = new Date(ms).toISOString() // 2026-01-02T03:04:05.678Z
  let frac = String(ms % 1000).padStart(3, '0') + String(us % 1000).padStart(3, '0')
  frac = frac.replace(/0+$/, '')
  return iso.slice(0, 19) + (frac ? `.${frac}` : '') + 'Z'
}

/**
 * Parses an RFC 3339 time into µs since the epoch. `exact` is false when the text holds a
 * fraction below the microsecond (the spec's clients send Go's RFC3339Nano): bounds round on it.
 */
export function parseMicros(s: string): { us: number; exact: boolean } {
  const ms = parseTime(s) // validates; the fraction past the millisecond is dropped there
  const dot = s.indexOf('.', 19)
  let sub = 0
  let exact = true
  if (dot === 19) {
    let i = 20
    while (i < s.length && s[i] >= '0' && s[i] <= '9') i++
    const digits = s.slice(20, i)
    sub = Number(digits.slice(3, 6).padEnd(3, '0'))
    exact = !/[1-9]/.test(digits.slice(6))
  }
  // parseTime floors to the millisecond toward the past for times before 1970 too.
  return { us: ms * 1000 + sub, exact }
}

/** A pin timestamp in µs, whole seconds: the state keeps pins' times to the second. */
export function timestampMicros(ts: string): number {
  let ms: number
  try {
    ms = parseTime(ts)
  } catch {
    return 0
  }
  return Math.floor(ms / 1000) * 1_000_000
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []

const stringMap = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!isObject(v)) return out
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x
  return out
}

/** The created time of a stored record or base marker; `fallback` when unreadable. */
function createdOf(v: unknown, fallback: number): number {
  if (typeof v !== 'string') return fallback
  try {
    return parseMicros(v).us
  } catch {
    return fallback
  }
}

/**
 * Reads a record's stored JSON. A value that is not one (someone set the key by hand through the
 * REST API) still reads as a request, dated by the pin, so it can be seen and removed.
 */
function decodeRecord(text: string, fallbackCreated: number) {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    v = undefined
  }
  const o = isObject(v) ? v : {}
  return {
    created: createdOf(o.created, fallbackCreated),
    name: typeof o.name === 'string' ? o.name : '',
    origins: strings(o.origins),
    meta: stringMap(o.meta),
  }
}

/** The stored JSON of a record; empty fields left out. */
function encodeRecord(
  r: { created: number; name: string; origins: string[]; meta: Record<string, string> },
) {
  const o: Record<string, unknown> = { created: formatMicros(r.created) }
  if (r.name) o.name = r.name
  if (r.origins.length) o.origins = r.origins
  if (Object.keys(r.meta).length) o.meta = r.meta
  return JSON.stringify(o)
}

/** The pin's own metadata: every key but the reserved ones. */
export function userMeta(metadata: Record<string, string> | null): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (!k.startsWith(RESERVED_PREFIX)) out[k] = v
  }
  return out
}

/** Newest first: by `created`, then by request id (the listing's order). */
export function newerFirst(a: { created: number; requestid: string }, b: typeof a): number {
  if (a.created !== b.created) return b.created - a.created
  return a.requestid < b.requestid ? 1 : a.requestid > b.requestid ? -1 : 0
}

/** A pin's requests taken apart: its records, its base marker (if any), its own metadata. */
interface Parsed {
  records: PinRequest[]
  base: { created: number; name: string; origins: string[] } | undefined
}

function parse(pin: PinFields): Parsed {
  const ts = timestampMicros(pin.timestamp)
  const records: PinRequest[] = []
  let base: Parsed['base']
  for (const [k, v] of Object.entries(pin.metadata ?? {})) {
    if (!k.startsWith(RESERVED_PREFIX)) continue
    if (k === BASE_KEY) {
      base = decodeRecord(v, ts)
      continue
    }
    const key = k.slice(RESERVED_PREFIX.length)
    if (key === '') continue
    records.push({ requestid: recordRequestId(pin.cid, key), cid: pin.cid, ...decodeRecord(v, ts) })
  }
  return { records, base }
}

/**
 * Every request a pin holds: its records, plus its own request (id = its CID) when it has no
 * record or was made outside this API first (the base marker).
 */
export function requestsOf(pin: PinFields): PinRequest[] {
  const { records, base } = parse(pin)
  if (base === undefined && records.length > 0) return records
  records.push({
    requestid: pin.cid,
    cid: pin.cid,
    name: base ? base.name : pin.name,
    origins: base ? base.origins : pin.origins ?? [],
    meta: userMeta(pin.metadata),
    created: base ? base.created : timestampMicros(pin.timestamp),
  })
  return records
}

/** The pin's name and origins for a set of records and an optional base. */
function shapeOf(
  metadata: Record<string, string>,
  base: { name: string; origins: string[] } | undefined,
  records: PinRequest[],
): PinShape {
  const newest = records.slice().sort(newerFirst)[0]
  const origins = new Set<string>(base?.origins ?? [])
  for (const r of records) for (const o of r.origins) origins.add(o)
  return { name: base ? base.name : newest?.name ?? '', metadata, origins: [...origins] }
}

/**
 * The pin of `cid` once a request is added: the existing pin's requests plus this one (recorded
 * under `key`, created at `created` µs). A pin made outside this API keeps its own request (the base marker).
 * The pin's name is the base's when there is one, else the newest request's; its origins are
 * every request's.
 */
export function withRecord(
  cid: string,
  existing: PinFields | undefined,
  key: string,
  body: Omit<PinBody, 'cid'>,
  created: number,
): PinShape {
  const metadata: Record<string, string> = { ...(existing?.metadata ?? {}) }
  const { records, base: marker } = existing ? parse(existing) : { records: [], base: undefined }
  let base: { name: string; origins: string[] } | undefined = marker
  if (existing && marker === undefined && records.length === 0) {
    // Made outside this API: its request stays, as it was.
    const was = {
      created: timestampMicros(existing.timestamp),
      name: existing.name,
      origins: existing.origins ?? [],
      meta: {},
    }
    metadata[BASE_KEY] = encodeRecord(was)
    base = was
  }
  metadata[RESERVED_PREFIX + key] = encodeRecord({ created, ...body })
  records.push({ requestid: recordRequestId(cid, key), cid, created, ...body })
  return shapeOf(metadata, base, records)
}

/**
 * The pin once the request `rid` is gone: its new shape, `unpin` when no request is left, or
 * undefined when the pin holds no such request.
 */
export function withoutRequest(pin: PinFields, rid: string): PinShape | 'unpin' | undefined {
  const id = parseRequestId(rid)
  if (id === undefined || id.cid !== pin.cid) return undefined
  const metadata: Record<string, string> = { ...(pin.metadata ?? {}) }
  let { records, base } = parse(pin)
  if (id.key !== undefined) {
    if (metadata[RESERVED_PREFIX + id.key] === undefined) return undefined
    delete metadata[RESERVED_PREFIX + id.key]
    const gone = recordRequestId(pin.cid, id.key)
    records = records.filter((r) => r.requestid !== gone)
  } else if (base !== undefined || records.length === 0) {
    if (records.length === 0) return 'unpin' // the pin's only request
    delete metadata[BASE_KEY]
    base = undefined
  } else {
    return undefined
  }
  if (records.length > 0) return shapeOf(metadata, base, records)
  if (!base) return 'unpin'
  // Back to the pin made outside this API, as it was.
  delete metadata[BASE_KEY]
  return { name: base.name, metadata, origins: base.origins }
}

/** The request `rid` of a pin, if it holds it (the id's CID in any form). */
export function findRequest(pin: PinFields, rid: string): PinRequest | undefined {
  const id = parseRequestId(rid)
  if (id === undefined || id.cid !== pin.cid) return undefined
  const want = id.key === undefined ? id.cid : recordRequestId(id.cid, id.key)
  return requestsOf(pin).find((r) => r.requestid === want)
}

/** Checks a pin name as the spec bounds it (255 characters). */
export function checkName(name: string, what = 'name'): void {
  if ([...name].length > 255) {
    throw new ValidationError(`${what} is longer than 255 characters`)
  }
}
