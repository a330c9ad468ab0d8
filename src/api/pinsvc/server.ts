/**
 * The IPFS Pinning Service API (spec v1.0.0) of a cluster peer, on the shared HTTP server of
 * `api/common` (auth with `POST /token` and Bearer tokens, CORS, listeners, TLS, access log), as
 * the reference's `api/pinsvcapi` is. Requests are records in the CID's cluster pin (records.ts);
 * listings read this peer's index of them (index.ts, listing.ts). Errors answer the spec's body,
 * `{"error":{"reason":"NOT_FOUND","details":"…"}}`, with its statuses.
 *
 * Writes of one CID's pin are serialised on this peer: each request re-commits the pin with its
 * records, so two at once would otherwise lose one. Two peers writing the same CID at the same
 * moment can still lose one (docs/pinsvc.md).
 *
 * @example
 * ```ts
 * const api = pinSvcApi(cfg, { cluster, index, configDir })
 * await api.start()
 * const res = await api.handler(new Request('http://x/pins?limit=100')) // in-process, no socket
 * ```
 *
 * @module
 */
import type { ClusterRPC } from '../../components.ts'
import { errorMessage, NotFoundError } from '../../errors.ts'
import { defaultPinOptions, newPin, type Pin, type PinOptions } from '../../types/pin.ts'
import type { GlobalPinInfo } from '../../types/pininfo.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import type { Foreground } from '../../util/foreground.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { KeyedMutex } from '../../util/keyed_mutex.ts'
import type { SpanContext } from '../../observations/otlp.ts'
import { tracedUnder } from '../../observations/tracing.ts'
import { readBody } from '../common/body.ts'
import {
  type ApiRoute,
  type HttpApi,
  httpApi,
  type RequestContext,
  TOKEN_AND_HEALTH,
} from '../common/http_api.ts'
import type { PinSvcApiConfig } from './config.ts'
import { delegatesCache } from './delegates.ts'
import type { RequestIndex } from './index.ts'
import { IndexRebuildingError, type Listed, listRequests, pinOf } from './listing.ts'
import { parseListQuery, parsePinBody } from './query.ts'
import {
  createdClock,
  findRequest,
  formatMicros,
  newRecordKey,
  parseRequestId,
  type PinBody,
  type PinRequest,
  type PinShape,
  recordRequestId,
  withoutRequest,
  withRecord,
} from './records.ts'
import { type SvcStatus, svcStatusOf } from './status.ts'

/** What the Pinning Service API needs from the peer. */
export interface PinSvcApiDeps {
  cluster: ClusterRPC
  /** This peer's index of requests (index.ts), opened and fed by consensus. */
  index: RequestIndex
  /** The folder holding service.json; relative TLS and log paths are resolved against it. */
  configDir: string
  /** Time for `created` (default: the system clock). */
  clock?: Clock
  /** Keys of new records (default: 128 random bits); a request id is `<CID>-<key>`. */
  newRecordKey?: () => string
  /** How long a write waits for the index to show it before answering (default 10 s). */
  indexWaitMs?: number
  log?: Logger
  /** Receives access log lines when `http_log_file` is not set. */
  accessLog?: Logger
  /** Told of every request, so that background work steps aside. */
  foreground?: Foreground
}

/** The spec's `reason` for an HTTP status. */
export function reasonOf(status: number): string {
  switch (status) {
    case 400:
      return 'BAD_REQUEST'
    case 401:
      return 'UNAUTHORIZED'
    case 404:
      return 'NOT_FOUND'
    case 405:
      return 'METHOD_NOT_ALLOWED'
    case 409:
      return 'CONFLICT'
    case 413:
      return 'PAYLOAD_TOO_LARGE'
    case 431:
      return 'REQUEST_HEADER_FIELDS_TOO_LARGE'
    case 503:
      return 'SERVICE_UNAVAILABLE'
    default:
      return status >= 500 ? 'INTERNAL_SERVER_ERROR' : `HTTP_${status}`
  }
}

/** The spec's error body (Failure): `{"error":{"reason":"NOT_FOUND","details":"…"}}`. */
export const pinSvcErrorBody = (status: number, message: string) => ({
  error: message ? { reason: reasonOf(status), details: message } : { reason: reasonOf(status) },
})

/** The PinStatus object of the spec, fields in its order. */
export function pinStatusJson(
  req: PinRequest,
  status: SvcStatus,
  delegates: string[],
  gpi?: Pick<GlobalPinInfo, 'peer_map'>,
): Record<string, unknown> {
  const pin: Record<string, unknown> = { cid: req.cid }
  if (req.name) pin.name = req.name
  if (req.origins.length) pin.origins = req.origins
  if (Object.keys(req.meta).length) pin.meta = req.meta
  const info: Record<string, string> = { source: 'IPFS Cluster' }
  if (status === 'failed' && gpi) {
    const failing = Object.entries(gpi.peer_map).find(([, p]) => p.error)
    if (failing) info.status_details = `${failing[0]}: ${failing[1].error}`
  }
  return {
    requestid: req.requestid,
    status,
    created: formatMicros(req.created),
    pin,
    delegates,
    info,
  }
}

/** Builds the Pinning Service API. Nothing listens until `start()`. */
export function pinSvcApi(config: PinSvcApiConfig, deps: PinSvcApiDeps): HttpApi {
  const { cluster, index } = deps
  const log = deps.log ?? nullLogger
  const created = createdClock(() => (deps.clock ?? systemClock).now())
  const nextKey = deps.newRecordKey ?? (() => newRecordKey())
  const indexWait = deps.indexWaitMs ?? 10_000
  const delegates = delegatesCache(cluster, { clock: deps.clock, log })
  const locks = new KeyedMutex()

  const notFound = (rid: string) =>
    new NotFoundError(`no pin request with requestid ${JSON.stringify(rid)}`)

  /** The options a re-commit of `cid` takes: the existing pin's, with the new shape. */
  function optionsFor(existing: Pin | undefined, shape: PinShape): PinOptions {
    const o = defaultPinOptions()
    if (existing) {
      o.replication_factor_min = existing.replication_factor_min
      o.replication_factor_max = existing.replication_factor_max
      o.shard_size = existing.shard_size
      o.expire_at = existing.expire_at
    }
    // The spec pins recursively: a direct pin that gets a request is pinned recursively.
    o.mode = 'recursive'
    o.name = shape.name
    o.metadata = shape.metadata
    o.origins = shape.origins.length ? shape.origins : null
    return o
  }

  /** The CID a request id names (`<CID>-<key>` or `<CID>`); 404 when it names none. */
  function cidOf(rid: string): string {
    const id = parseRequestId(rid)
    if (id === undefined) throw notFound(rid)
    return id.cid
  }

  /** Waits (bounded) until this peer's index shows the change, so a listing that follows does. */
  async function indexed(cid: string, test: (ids: ReadonlySet<string>) => boolean, s: AbortSignal) {
    const ok = await index.whenIndexed(cid, test, { signal: s, timeoutMs: indexWait })
    if (!ok && !s.aborted) log.debug(`index does not show the change of ${cid} yet; answering`)
  }

  /** The CID's status; `queued` when the cluster cannot say (the request is written anyway). */
  async function statusOf(cid: string, signal: AbortSignal) {
    try {
      const gpi = await cluster.status(cid, signal)
      return { status: svcStatusOf(gpi), gpi }
    } catch (err) {
      signal.throwIfAborted()
      log.warn(`status of ${cid}: ${errorMessage(err)}; answering queued`)
      return { status: 'queued' as SvcStatus, gpi: undefined }
    }
  }

  /** The PinStatus answer of a request just written. */
  async function answer(
    status: number,
    c: RequestContext,
    req: PinRequest,
    pin: Pin | undefined,
  ): Promise<Response> {
    const { status: st, gpi } = await statusOf(req.cid, c.signal)
    const ds = await delegates.of(pin?.allocations ?? [], c.signal)
    return c.r.json(status, pinStatusJson(req, st, ds, gpi))
  }

  /**
   * Adds a request for `body` recorded under `key`; returns the pin committed. The pin's steps go
   * into the trace of the request's `span`, when one is recorded.
   */
  function addRequest(
    key: string,
    body: PinBody,
    signal: AbortSignal,
    span?: SpanContext,
  ): Promise<Pin> {
    const at = created()
    return locks.run(body.cid, async () => {
      const existing = await pinOf(cluster, body.cid, signal)
      const shape = withRecord(body.cid, existing, key, body, at)
      const pin = newPin(body.cid, optionsFor(existing, shape))
      return await tracedUnder(span, body.cid, () => cluster.commitPin(pin, signal))
    })
  }

  /** Removes the request `rid` of `cid`; false when there is no such request. */
  function removeRequest(cid: string, rid: string, signal: AbortSignal): Promise<boolean> {
    return locks.run(cid, async () => {
      const pin = await pinOf(cluster, cid, signal)
      const next = pin && withoutRequest(pin, rid)
      if (!pin || next === undefined) return false
      if (next === 'unpin') await cluster.unpin(cid, signal)
      else await cluster.commitPin(newPin(cid, optionsFor(pin, next)), signal)
      return true
    })
  }

  async function list(c: RequestContext): Promise<Response> {
    const q = parseListQuery(c.query)
    let page
    try {
      page = await listRequests(q, { cluster, index, clock: deps.clock }, c.signal)
    } catch (err) {
      // Answered, not logged as a fault: the peer is well, its index is not complete yet.
      if (err instanceof IndexRebuildingError) return c.r.error(err, 503, [['Retry-After', '10']])
      throw err
    }
    const results = await Promise.all(
      page.results.map(async (l: Listed) =>
        pinStatusJson(l.req, l.status, await delegates.of(l.allocations, c.signal), l.gpi)
      ),
    )
    return c.r.json(200, { count: page.count, results })
  }

  async function add(c: RequestContext): Promise<Response> {
    const body = parsePinBody(await readBody(c.req, c.maxBodyBytes))
    const key = nextKey()
    const rid = recordRequestId(body.cid, key)
    const pin = await addRequest(key, body, c.signal, c.span)
    await indexed(body.cid, (ids) => ids.has(rid), c.signal)
    return await answer(202, c, findRequest(pin, rid)!, pin)
  }

  async function get(c: RequestContext): Promise<Response> {
    const rid = c.params.requestid
    const cid = cidOf(rid)
    const pin = await pinOf(cluster, cid, c.signal)
    const req = pin && findRequest(pin, rid)
    if (!pin || !req) throw notFound(rid)
    return await answer(200, c, req, pin)
  }

  async function replace(c: RequestContext): Promise<Response> {
    const rid = c.params.requestid
    const body = parsePinBody(await readBody(c.req, c.maxBodyBytes))
    const oldCid = cidOf(rid)
    const old = await pinOf(cluster, oldCid, c.signal)
    const was = old && findRequest(old, rid)
    if (!was) throw notFound(rid)
    const key = nextKey()
    const next = recordRequestId(body.cid, key)
    let pin: Pin
    if (oldCid === body.cid) {
      // One commit: the new request in, the old one out.
      const at = created()
      pin = await locks.run(oldCid, async () => {
        const cur = await pinOf(cluster, oldCid, c.signal)
        if (!cur || !findRequest(cur, rid)) throw notFound(rid)
        const added = withRecord(oldCid, cur, key, body, at)
        const shape = withoutRequest({ ...cur, ...added }, rid)
        if (shape === undefined || shape === 'unpin') throw notFound(rid) // cannot: `next` stays
        return await cluster.commitPin(newPin(oldCid, optionsFor(cur, shape)), c.signal)
      })
    } else {
      // The new CID is pinned first, so the old one's blocks are not dropped before it is.
      pin = await addRequest(key, body, c.signal, c.span)
      await removeRequest(oldCid, rid, c.signal)
      await indexed(oldCid, (ids) => !ids.has(was.requestid), c.signal)
    }
    await indexed(body.cid, (ids) => ids.has(next) && !ids.has(was.requestid), c.signal)
    return await answer(202, c, findRequest(pin, next)!, pin)
  }

  async function remove(c: RequestContext): Promise<Response> {
    const rid = c.params.requestid
    const cid = cidOf(rid)
    const pin = await pinOf(cluster, cid, c.signal)
    const req = pin && findRequest(pin, rid)
    if (!req || !await removeRequest(cid, rid, c.signal)) throw notFound(rid)
    await indexed(cid, (ids) => !ids.has(req.requestid), c.signal)
    return c.r.empty(202)
  }

  const routes: ApiRoute[] = [
    { method: 'GET', pattern: '/pins', handler: list },
    { method: 'POST', pattern: '/pins', handler: add },
    { method: 'GET', pattern: '/pins/{requestid}', handler: get },
    { method: 'POST', pattern: '/pins/{requestid}', handler: replace },
    { method: 'DELETE', pattern: '/pins/{requestid}', handler: remove },
    ...TOKEN_AND_HEALTH,
  ]

  return httpApi(config, routes, {
    name: 'pinsvcapi',
    configDir: deps.configDir,
    errorBody: pinSvcErrorBody,
    log: deps.log,
    accessLog: deps.accessLog,
    foreground: deps.foreground,
  })
}
