/**
 * One page of the pinset for the dashboard: walk a key-ordered pin stream from a cursor, keep the
 * pins that match a search and a type filter, stop after `limit` matches. The walk never holds
 * more than one page, and it stops reading the source as soon as the page is full (the caller's
 * stream is closed by `return()`), so a page costs what it reads: with a source that starts at the
 * cursor (a Deno KV list from a key) that is O(limit) for a plain listing, and O(pins scanned)
 * for a search that matches rarely, bounded by `maxScan` so one request never walks a million pins.
 *
 * @example
 * ```ts
 * const q = parsePageQuery(new URLSearchParams('limit=50&q=photos'))
 * const page = await pinPage(cluster.pins(0, signal), q)
 * page.pins.length // ≤ 50
 * page.next // the cursor of the next page, or null at the end
 * ```
 */
import { ValidationError } from '../../../errors.ts'
import type { Pin } from '../../../types/pin.ts'
import { PIN_TYPE_BITS } from '../../../types/pin.ts'

/** The largest page a request may ask for. */
export const MAX_PAGE = 500
/** The page size when none is asked for. */
export const DEFAULT_PAGE = 50
/** How many pins one request reads at most before it answers with what it found. */
export const MAX_SCAN = 20_000

/** What a page request asks for. */
export interface PageQuery {
  /** Only pins whose CID sorts after this one (the previous page's `next`). */
  after?: string
  limit: number
  /** Case-insensitive substring of the CID or the name; empty: every pin. */
  q: string
  /** Pin type bits (PIN_TYPE_BITS); 0: every type. */
  typeMask: number
  /** Stop after reading this many pins (see MAX_SCAN). */
  maxScan: number
}

/** A page of pins and where the next one starts. */
export interface PinPage {
  pins: Pin[]
  /**
   * The cursor of the next page (`after=`): the last CID read. Null when the pinset ended. When
   * the scan budget ran out, `next` is set even if `pins` is short: the search goes on from there.
   */
  next: string | null
  /** Pins read to make this page. */
  scanned: number
}

/** Parses `after`, `limit`, `q`, `type` of `GET /ui/api/pins`; bad values are 400s. */
export function parsePageQuery(query: URLSearchParams, maxScan = MAX_SCAN): PageQuery {
  const rawLimit = query.get('limit')
  let limit = DEFAULT_PAGE
  if (rawLimit !== null && rawLimit !== '') {
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_PAGE) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE}, not "${rawLimit}"`)
    }
    limit = Number(rawLimit)
  }
  let typeMask = 0
  for (const name of (query.get('type') ?? '').split(',')) {
    if (name === '') continue
    const bit = PIN_TYPE_BITS[name]
    if (bit === undefined || name === 'bad-type') {
      throw new ValidationError(
        `unknown pin type "${name}": use pin, meta-pin, clusterdag-pin, shard-pin or all`,
      )
    }
    typeMask |= bit
  }
  const after = query.get('after') || undefined
  return { after, limit, q: (query.get('q') ?? '').trim().toLowerCase(), typeMask, maxScan }
}

/** Whether a pin passes the page's search and type filter. */
export function pinMatches(pin: Pin, q: PageQuery): boolean {
  if (q.typeMask !== 0 && (PIN_TYPE_BITS[pin.type] & q.typeMask) === 0) return false
  if (q.q === '') return true
  return pin.cid.toLowerCase().includes(q.q) || (pin.name ?? '').toLowerCase().includes(q.q)
}

/**
 * Reads one page from `source`, a key-ordered pin stream. Pins at or before `q.after` are
 * skipped (a source that already starts after the cursor skips none).
 */
export async function pinPage(source: AsyncIterable<Pin>, q: PageQuery): Promise<PinPage> {
  const pins: Pin[] = []
  let scanned = 0
  let last: string | undefined
  for await (const pin of source) {
    if (q.after !== undefined && pin.cid <= q.after) continue
    scanned++
    last = pin.cid
    if (pinMatches(pin, q)) pins.push(pin)
    // Leaving the loop closes the source: the KV list stops reading.
    if (pins.length === q.limit || scanned >= q.maxScan) return { pins, next: last, scanned }
  }
  return { pins, next: null, scanned }
}
