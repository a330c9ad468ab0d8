/**
 * What a client sends, checked: the query of `GET /pins` and the Pin object of `POST /pins`,
 * with the spec's bounds (IPFS Pinning Service API v1.0.0) and a 400 naming the field for
 * anything else. Pure functions of their input.
 *
 * @example
 * ```ts
 * const q = parseListQuery(new URLSearchParams('limit=100&status=pinned&name=abc&match=ipartial'))
 * const pin = parsePinBody('{"cid":"bafy…","name":"backup"}')
 * ```
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { errorMessage, ValidationError } from '../../errors.ts'
import { normalizeCid } from '../../types/cid.ts'
import { checkName, parseMicros, type PinBody } from './records.ts'
import { parseSvcStatuses } from './status.ts'

/** How `name` matches (the spec's TextMatchingStrategy). */
export type MatchStrategy = 'exact' | 'iexact' | 'partial' | 'ipartial'

const STRATEGIES: readonly MatchStrategy[] = ['exact', 'iexact', 'partial', 'ipartial']

/** At most this many CIDs in a `cid` filter (the spec's bound). */
export const MAX_CID_FILTER = 10
/** The page size when none is asked for, and the largest one (the spec's bounds). */
export const DEFAULT_LIMIT = 10
export const MAX_LIMIT = 1000
/** At most this many origins and meta keys in a Pin (the spec's bounds). */
export const MAX_ORIGINS = 20
export const MAX_META_KEYS = 1000

/** A parsed `GET /pins` query. Times are µs since the epoch; bounds are exclusive. */
export interface ListQuery {
  /** Canonical CIDs (at most 10), or undefined for every CID. */
  cids?: string[]
  name?: string
  match: MatchStrategy
  /** SVC_STATUS_BITS mask; 0 = every status. */
  status: number
  /** Only requests created strictly before this (µs; rounded up from a finer time). */
  before?: number
  /** Only requests created strictly after this (µs). */
  after?: number
  limit: number
  meta?: Record<string, string>
}

/** True when the query filters on more than time (the listing cannot use the kept count). */
export function hasFilters(q: ListQuery): boolean {
  return q.cids !== undefined || q.name !== undefined || q.status !== 0 || q.meta !== undefined
}

/** Parses the query of `GET /pins`. */
export function parseListQuery(query: URLSearchParams): ListQuery {
  const q: ListQuery = { match: 'exact', status: 0, limit: DEFAULT_LIMIT }
  const cid = query.get('cid')
  if (cid) {
    const list = cid.split(',').map((s) => s.trim()).filter((s) => s !== '')
    if (list.length > MAX_CID_FILTER) {
      throw new ValidationError(
        `cid: at most ${MAX_CID_FILTER} CIDs may be given, got ${list.length}`,
      )
    }
    q.cids = [...new Set(list.map((c) => cidParam(c, 'cid')))]
  }
  const name = query.get('name')
  if (name) {
    checkName(name)
    q.name = name
  }
  const match = query.get('match')
  if (match) {
    if (!STRATEGIES.includes(match as MatchStrategy)) {
      throw new ValidationError(
        `match: unknown strategy ${JSON.stringify(match)} (allowed: ${STRATEGIES.join(', ')})`,
      )
    }
    q.match = match as MatchStrategy
  }
  q.status = parseSvcStatuses(query.get('status'))
  const before = query.get('before')
  if (before) {
    const t = timeParam(before, 'before')
    // created < before: a time finer than the µs still excludes the µs it falls in only above it.
    q.before = t.exact ? t.us : t.us + 1
  }
  const after = query.get('after')
  if (after) q.after = timeParam(after, 'after').us
  const limit = query.get('limit')
  if (limit !== null && limit !== '') {
    const n = /^\d+$/.test(limit) ? Number(limit) : NaN
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) {
      throw new ValidationError(
        `limit: must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limit)}`,
      )
    }
    q.limit = n
  }
  const meta = query.get('meta')
  if (meta) q.meta = stringMap(parseJson(meta, 'meta'), 'meta')
  return q
}

/** True when a name passes the query's name filter. */
export function nameMatches(q: Pick<ListQuery, 'name' | 'match'>, name: string): boolean {
  const want = q.name
  if (want === undefined) return true
  switch (q.match) {
    case 'exact':
      return name === want
    case 'iexact':
      return name.toLowerCase() === want.toLowerCase()
    case 'partial':
      return name.includes(want)
    case 'ipartial':
      return name.toLowerCase().includes(want.toLowerCase())
  }
}

/** True when a request's meta holds every pair of the query's meta filter. */
export function metaMatches(
  q: Pick<ListQuery, 'meta'>,
  meta: Record<string, string>,
): boolean {
  for (const [k, v] of Object.entries(q.meta ?? {})) if (meta[k] !== v) return false
  return true
}

/** True when a created time (µs) is within the query's bounds. */
export function timeMatches(q: Pick<ListQuery, 'before' | 'after'>, created: number): boolean {
  return (q.before === undefined || created < q.before) &&
    (q.after === undefined || created > q.after)
}

/** Parses the Pin object of `POST /pins` and `POST /pins/{requestid}`. */
export function parsePinBody(text: string): PinBody {
  const v = parseJson(text, 'request body')
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError('request body: must be a JSON object (a Pin)')
  }
  const o = v as Record<string, unknown>
  if (o.cid === undefined || o.cid === null || o.cid === '') {
    throw new ValidationError('cid: missing (the CID to pin)')
  }
  if (typeof o.cid !== 'string') throw new ValidationError('cid: must be a string')
  const body: PinBody = { cid: cidParam(o.cid, 'cid'), name: '', origins: [], meta: {} }
  if (o.name !== undefined && o.name !== null) {
    if (typeof o.name !== 'string') throw new ValidationError('name: must be a string')
    checkName(o.name)
    body.name = o.name
  }
  if (o.origins !== undefined && o.origins !== null) {
    if (!Array.isArray(o.origins)) {
      throw new ValidationError('origins: must be a list of multiaddresses')
    }
    if (o.origins.length > MAX_ORIGINS) {
      throw new ValidationError(`origins: at most ${MAX_ORIGINS}, got ${o.origins.length}`)
    }
    const seen = new Set<string>()
    for (const a of o.origins) {
      if (typeof a !== 'string') throw new ValidationError('origins: must be a list of strings')
      try {
        multiaddr(a)
      } catch (err) {
        throw new ValidationError(
          `origins: ${JSON.stringify(a)} is not a multiaddress (${errorMessage(err)})`,
        )
      }
      if (!seen.has(a)) body.origins.push(a)
      seen.add(a)
    }
  }
  if (o.meta !== undefined && o.meta !== null) body.meta = stringMap(o.meta, 'meta')
  return body
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ValidationError(`${what}: not valid JSON (${errorMessage(err)})`)
  }
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError(`${what}: must be a JSON object of strings`)
  }
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length > MAX_META_KEYS) {
    throw new ValidationError(`${what}: at most ${MAX_META_KEYS} keys, got ${entries.length}`)
  }
  const out: Record<string, string> = {}
  for (const [k, x] of entries) {
    if (typeof x !== 'string') {
      throw new ValidationError(`${what}: the value of ${JSON.stringify(k)} must be a string`)
    }
    out[k] = x
  }
  return out
}

function cidParam(s: string, what: string): string {
  try {
    return normalizeCid(s)
  } catch (err) {
    throw new ValidationError(`${what}: ${JSON.stringify(s)} is not a CID (${errorMessage(err)})`)
  }
}

function timeParam(s: string, what: string): { us: number; exact: boolean } {
  try {
    return parseMicros(s)
  } catch (err) {
    throw new ValidationError(`${what}: ${errorMessage(err)} (expected RFC 3339, as "created")`)
  }
}
