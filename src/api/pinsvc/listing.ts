/**
 * `GET /pins`: a page of requests newest first, and how many match. Three ways, by the filters:
 *
 * - `cid` (at most 10 CIDs): those pins only, read one by one — no walk;
 * - `status`: a request's status is its CID's on every peer, which only the cluster's status
 *   stream gives in bulk (one walk of each peer's tracker, one IPFS pin listing each), so the
 *   stream is walked once, keeping the newest `limit` matches in a bounded heap and counting all;
 * - otherwise the index (index.ts), newest first from `before`: the page is one range read, and
 *   the count of an unfiltered listing the kept count, or the index's rank of `before` (at most
 *   one gap of its checkpoints walked); a `name` or `meta` filter walks the rest of the range to
 *   count.
 *
 * Statuses of a page's CIDs are asked with bounded concurrency (a page of 1,000 is not 1,000
 * sequential round trips, nor 1,000 at once).
 *
 * @example
 * ```ts
 * const { count, results } = await listRequests(parseListQuery(url.searchParams), deps, signal)
 * ```
 *
 * @module
 */
import type { ClusterRPC } from '../../components.ts'
import { ClusterError, errorMessage, NotFoundError } from '../../errors.ts'
import type { GlobalPinInfo } from '../../types/pininfo.ts'
import type { Pin } from '../../types/pin.ts'
import { MinHeap } from '../../util/heap.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import type { RequestIndex } from './index.ts'
import { hasFilters, type ListQuery, metaMatches, nameMatches, timeMatches } from './query.ts'
import { findRequest, newerFirst, type PinRequest, requestsOf } from './records.ts'
import { type SvcStatus, svcStatusMatches, svcStatusOf } from './status.ts'

/** Status calls in flight at once for a page. */
const STATUS_CONCURRENCY = 32
/** Pins read at once while walking the index with a `meta` filter. */
const PIN_READS = 64
/** How long a listing waits for a rebuild of the index before answering 503. */
const REBUILD_WAIT_MS = 10_000

/** The index is being rebuilt and a listing would be incomplete (503: retry). */
export class IndexRebuildingError extends ClusterError {
  override name = 'IndexRebuildingError'
  override status = 503
}

/** One listed request with what its PinStatus needs. */
export interface Listed {
  req: PinRequest
  status: SvcStatus
  /** The CID's status on every peer (for details of a failure). */
  gpi?: GlobalPinInfo
  /** The pin's allocations (empty: everywhere). */
  allocations: string[]
}

/** What listing reads. */
export interface ListingDeps {
  cluster: Pick<ClusterRPC, 'status' | 'statusAll' | 'pinGet'>
  index: RequestIndex
  /** For the wait on a rebuild (default: the system clock). */
  clock?: Clock
}

/** A page and the number of matches. */
export interface Page {
  count: number
  results: Listed[]
}

/** The pin of a CID, or undefined when it is not in the pinset. */
export async function pinOf(
  cluster: Pick<ClusterRPC, 'pinGet'>,
  cid: string,
  signal?: AbortSignal,
): Promise<Pin | undefined> {
  try {
    return await cluster.pinGet(cid, signal)
  } catch (err) {
    if (err instanceof NotFoundError || errorMessage(err) === 'pin is not part of the pinset') {
      return undefined
    }
    throw err
  }
}

/** Runs `fn` over `items` with at most `n` in flight; results in the items' order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane))
  return out
}

/** The statuses of CIDs (each asked once), with bounded concurrency. */
async function statuses(
  cluster: Pick<ClusterRPC, 'status'>,
  cids: Iterable<string>,
  signal?: AbortSignal,
): Promise<Map<string, GlobalPinInfo>> {
  const unique = [...new Set(cids)]
  const got = await mapBounded(unique, STATUS_CONCURRENCY, (c) => cluster.status(c, signal))
  return new Map(unique.map((c, i) => [c, got[i]]))
}

const matchesQuery = (q: ListQuery, r: PinRequest) =>
  timeMatches(q, r.created) && nameMatches(q, r.name) && metaMatches(q, r.meta)

/** Lists the requests a query selects. */
export async function listRequests(
  q: ListQuery,
  deps: ListingDeps,
  signal?: AbortSignal,
): Promise<Page> {
  if (q.cids) return await byCids(q, q.cids, deps, signal)
  if (q.status !== 0) return await byStatusStream(q, deps, signal)
  return await byIndex(q, deps, signal)
}

async function byCids(
  q: ListQuery,
  cids: string[],
  deps: ListingDeps,
  signal?: AbortSignal,
): Promise<Page> {
  const pins = await Promise.all(cids.map((c) => pinOf(deps.cluster, c, signal)))
  const found = pins.filter((p): p is Pin => p !== undefined)
  const gpis = await statuses(deps.cluster, found.map((p) => p.cid), signal)
  const all: Listed[] = []
  for (const pin of found) {
    const gpi = gpis.get(pin.cid)!
    const status = svcStatusOf(gpi)
    if (!svcStatusMatches(status, q.status)) continue
    for (const req of requestsOf(pin)) {
      if (matchesQuery(q, req)) all.push({ req, status, gpi, allocations: pin.allocations })
    }
  }
  all.sort((a, b) => newerFirst(a.req, b.req))
  return { count: all.length, results: all.slice(0, q.limit) }
}

async function byStatusStream(
  q: ListQuery,
  deps: ListingDeps,
  signal?: AbortSignal,
): Promise<Page> {
  // The oldest of the kept ones on top, to be dropped when a newer one comes.
  const kept = new MinHeap<Listed>((a, b) => newerFirst(a.req, b.req) > 0)
  let count = 0
  for await (const gpi of deps.cluster.statusAll(0, signal)) {
    const status = svcStatusOf(gpi)
    if (!svcStatusMatches(status, q.status)) continue
    const reqs = requestsOf({
      cid: gpi.cid,
      name: gpi.name,
      metadata: gpi.metadata,
      origins: gpi.origins,
      timestamp: gpi.created,
    })
    for (const req of reqs) {
      if (!matchesQuery(q, req)) continue
      count++
      kept.push({ req, status, gpi, allocations: gpi.allocations ?? [] })
      if (kept.size > q.limit) kept.pop()
    }
  }
  const results: Listed[] = []
  while (kept.size > 0) results.push(kept.pop()!)
  results.reverse()
  return { count, results }
}

async function byIndex(q: ListQuery, deps: ListingDeps, signal?: AbortSignal): Promise<Page> {
  const { index } = deps
  if (index.rebuilding()) {
    // A short rebuild (a small pinset, a restored snapshot) is waited for; a long one is said.
    const wait = (deps.clock ?? systemClock).timeoutSignal(REBUILD_WAIT_MS)
    try {
      await index.ready(signal ? AbortSignal.any([signal, wait]) : wait)
    } catch (err) {
      signal?.throwIfAborted()
      if (!wait.aborted) throw err
      throw new IndexRebuildingError(
        `the index of requests is being rebuilt from the pinset (${index.rebuildProgress()} ` +
          'pins so far); listings answer once it is done: retry in a moment',
      )
    }
  }
  const range = { before: q.before, after: q.after, signal }
  const filtered = hasFilters(q)
  const page: { cid: string; requestid: string; created: number }[] = []
  let more = false
  let extra = 0 // matches past the page (counted only when filtered)
  // With a meta filter each candidate's pin is read; in groups, to overlap the reads.
  let group: { cid: string; requestid: string; created: number }[] = []
  const metaOk = async (batch: typeof group) => {
    const pins = await Promise.all(batch.map((e) => pinOf(deps.cluster, e.cid, signal)))
    return batch.filter((e, i) => {
      const pin = pins[i]
      const req = pin && findRequest(pin, e.requestid)
      return req !== undefined && metaMatches(q, req.meta)
    })
  }
  const take = (e: { cid: string; requestid: string; created: number }) => {
    if (page.length < q.limit) page.push(e)
    else {
      more = true
      extra++
    }
  }
  for await (const e of index.list(range)) {
    if (q.name !== undefined && !nameMatches(q, e.name)) continue
    if (q.meta !== undefined) {
      group.push(e)
      if (group.length < PIN_READS) continue
      for (const ok of await metaOk(group)) take(ok)
      group = []
    } else {
      take(e)
    }
    if (more && !filtered) break // the one past the page says there are more
  }
  if (group.length > 0) { for (const ok of await metaOk(group)) take(ok) }

  let count: number
  if (!more) count = page.length
  else if (filtered) count = page.length + extra
  else count = Math.max(page.length + 1, await index.countRange(range))

  const pins = await mapBounded(page, PIN_READS, (e) => pinOf(deps.cluster, e.cid, signal))
  const gpis = await statuses(deps.cluster, page.map((e) => e.cid), signal)
  const results: Listed[] = []
  page.forEach((e, i) => {
    const pin = pins[i]
    const req = pin && findRequest(pin, e.requestid)
    if (!pin || !req) return // removed since the index was read
    const gpi = gpis.get(e.cid)!
    results.push({ req, status: svcStatusOf(gpi), gpi, allocations: pin.allocations })
  })
  return { count, results }
}
