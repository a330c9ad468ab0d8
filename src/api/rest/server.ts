/**
 * The REST API of a cluster peer (IPFS Cluster 1.x `api/rest`): its routes, in the reference's
 * order (the first route whose path and method match wins), on the shared HTTP server of
 * `api/common` (auth, CORS, 307 for trailing slashes, configured headers, NDJSON streams).
 *
 * @example
 * ```ts
 * const api = restApi(cfg, { cluster, configDir, peerId, add: contentAdder(…) })
 * await api.start()
 * const res = await api.handler(new Request('http://x/version')) // in-process, no socket
 * ```
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { posix } from 'node:path'
import type { ClusterRPC } from '../../components.ts'
import { ClusterError, errorMessage, ValidationError } from '../../errors.ts'
import { normalizeCid, parseCid } from '../../types/cid.ts'
import { PIN_TYPE_BITS, pinOptionsFromQuery } from '../../types/pin.ts'
import type { GlobalPinInfo } from '../../types/pininfo.ts'
import { parseStatusFilter } from '../../types/status.ts'
import type { Logger } from '../../util/log.ts'
import type { Foreground } from '../../util/foreground.ts'
import { addParamsFromQuery } from '../../adder/add_params.ts'
import type { AddContent, AddedOutput } from '../../adder/content.ts'
import { readBody } from '../common/body.ts'
import {
  type ApiRoute,
  type HttpApi,
  httpApi,
  type RequestContext,
  TOKEN_AND_HEALTH,
} from '../common/http_api.ts'
import { multipartBoundary, MultipartReader } from '../common/multipart.ts'
import { chunkedNdjsonResponse, ndjsonResponse } from '../common/ndjson.ts'
import { AsyncQueue } from '../common/queue.ts'
import type { RestApiConfig } from './config.ts'

/** What the REST API needs from the peer. */
export interface RestApiDeps {
  cluster: ClusterRPC
  /** The folder holding service.json; relative TLS and log paths are resolved against it. */
  configDir: string
  /** This peer's ID. */
  peerId: string
  /** Adds content through the cluster; without it `POST /add` answers 500. */
  add?: AddContent
  log?: Logger
  /** Receives access log lines when `http_log_file` is not set. */
  accessLog?: Logger
  /** Told of every request, so that background work steps aside (see util/foreground.ts). */
  foreground?: Foreground
}

/** The REST error body: `{"code":404,"message":"not found"}`. */
export const restErrorBody = (code: number, message: string) => ({ code, message })

/** Parses a CID from a path or query, as the reference's 400 says it. */
function cidParam(s: string): string {
  try {
    return normalizeCid(s)
  } catch (err) {
    throw new ValidationError(`error decoding Cid: ${errorMessage(err)}`)
  }
}

/** Validates a peer ID; returns its canonical string. */
function peerIdParam(s: string, message: (err: unknown) => string): string {
  try {
    return peerIdFromString(s).toString()
  } catch (err) {
    throw new ValidationError(message(err))
  }
}

/** Rebuilds `/<ipfs|ipns|ipld>/<path>` and checks it as the reference's path parser does. */
function pinPathParam(ctx: RequestContext): string {
  const raw = `/${ctx.params.keyType}/${ctx.params.path.replace(/\/+$/, '')}`
  const segs = posix.normalize(raw).split('/').filter((s) => s !== '')
  const fail = (why: string) =>
    new ValidationError(`error parsing path: invalid path ${JSON.stringify(raw)}: ${why}`)
  if (segs.length < 2 || segs[1] === '') throw fail('path does not have enough components')
  if (segs[0] === 'ipfs' || segs[0] === 'ipld') {
    try {
      parseCid(segs[1])
    } catch (err) {
      throw fail(errorMessage(err))
    }
  }
  return '/' + segs.join('/')
}

/** The allocations filter: pin types by name; rejected only when no name is known. */
function pinTypeMask(filter: string | null): number {
  let mask = 0
  for (const name of (filter ?? '').split(',')) {
    mask |= name === '' ? PIN_TYPE_BITS.all : (PIN_TYPE_BITS[name] ?? PIN_TYPE_BITS['bad-type'])
  }
  if (mask === PIN_TYPE_BITS['bad-type']) throw new ValidationError('invalid filter value')
  return mask
}

/** The status filter of GET /pins. */
function statusFilter(filter: string | null): number {
  const mask = parseStatusFilter(filter)
  // Only "undefined" (bit 0) named: the reference finds no filter and refuses it.
  if (mask === 0 && filter) throw new ValidationError('invalid filter value')
  return mask
}

/** Settles promises into a stream in completion order; errors end it after the results. */
function completionOrder<T>(tasks: Promise<T>[]): AsyncIterable<T> {
  const q = new AsyncQueue<T>()
  let left = tasks.length
  let firstError: unknown
  const settle = () => {
    if (--left === 0) q.close(firstError)
  }
  if (left === 0) q.close()
  for (const t of tasks) {
    t.then(
      (v) => q.push(v).then(settle, settle),
      (err) => {
        firstError ??= err
        settle()
      },
    )
  }
  return q
}

const local = (ctx: RequestContext) => ctx.query.get('local') === 'true'

/** Builds the REST API. Nothing listens until `start()`. */
export function restApi(config: RestApiConfig, deps: RestApiDeps): HttpApi {
  const { cluster } = deps

  async function peerAdd(ctx: RequestContext): Promise<Response> {
    const text = await readBody(ctx.req, ctx.maxBodyBytes)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      throw new ValidationError('error decoding request body')
    }
    // JSON null decodes into an empty struct in Go: it reaches the peer ID check.
    const raw = (body as { peer_id?: unknown } | null)?.peer_id
    if (
      typeof body !== 'object' || Array.isArray(body) ||
      (raw !== undefined && typeof raw !== 'string')
    ) {
      throw new ValidationError('error decoding request body')
    }
    const pid = peerIdParam(raw ?? '', () => 'error decoding peer_id')
    return ctx.r.json(200, await cluster.peerAdd(pid, ctx.signal))
  }

  /**
   * `?consistent=true` (an extension): wait for a Raft read barrier first, so the answer reflects
   * every pin committed before the request, whichever peer serves it.
   */
  async function consistent(ctx: RequestContext) {
    if (ctx.query.get('consistent') === 'true') await cluster.consistentRead(ctx.signal)
  }

  async function allocations(ctx: RequestContext): Promise<Response> {
    const mask = pinTypeMask(ctx.query.get('filter'))
    await consistent(ctx)
    const ac = new AbortController()
    const signal = AbortSignal.any([ac.signal, ctx.signal])
    if ((mask & PIN_TYPE_BITS.all) === PIN_TYPE_BITS.all) {
      // Every pin: stream the stored JSON bytes as they are (no decode, no re-encode).
      return await chunkedNdjsonResponse(ctx.r, cluster.pinsNDJSON(signal), ctx.streamOptions(ac))
    }
    return await ndjsonResponse(ctx.r, cluster.pins(mask, signal), ctx.streamOptions(ac))
  }

  function statusAll(ctx: RequestContext): Promise<Response> {
    const cidsParam = ctx.query.get('cids')
    if (cidsParam) {
      const cids = cidsParam.split(',').map(cidParam)
      const one = local(ctx)
        ? (c: string, s: AbortSignal) => cluster.statusLocal(c, s)
        : (c: string, s: AbortSignal) => cluster.status(c, s)
      return ctx.stream((s) => completionOrder<GlobalPinInfo>(cids.map((c) => one(c, s))))
    }
    const filter = statusFilter(ctx.query.get('filter'))
    return local(ctx)
      ? ctx.stream((s) => cluster.statusAllLocal(filter, s))
      : ctx.stream((s) => cluster.statusAll(filter, s))
  }

  async function repoGC(ctx: RequestContext): Promise<Response> {
    if (local(ctx)) {
      const gc = await cluster.repoGCLocal(ctx.signal)
      return ctx.r.json(200, { peer_map: { [gc.peer]: gc } })
    }
    return ctx.r.json(200, await cluster.repoGC(ctx.signal))
  }

  async function add(ctx: RequestContext): Promise<Response> {
    // The UnixFS importer loads with the first /add, not with the peer (docs/performance.md).
    const { checkAddParams } = await import('../../adder/adder.ts')
    const boundary = multipartBoundary(ctx.req.headers.get('content-type'))
    const params = addParamsFromQuery(ctx.query)
    checkAddParams(params)
    if (!deps.add) throw new ClusterError('cannot add: this peer has no IPFS connector')
    if (!ctx.req.body) throw new ValidationError('request body is empty')
    const reader = new MultipartReader(ctx.req.body, boundary)
    const ac = new AbortController()
    const signal = AbortSignal.any([ac.signal, ctx.signal])
    const outputs = deps.add(reader, params, signal)
    if (!params.stream_channels) {
      const all: AddedOutput[] = []
      try {
        for await (const o of outputs) all.push(o)
      } catch (err) {
        return ctx.r.error(err) // a broken upload (ValidationError) is a 400, IPFS failures 500
      }
      return ctx.r.json(200, all)
    }
    return await ndjsonResponse(ctx.r, outputs, {
      ...ctx.streamOptions(ac),
      headers: [['Cache-Control', 'no-cache'], ['X-Chunked-Output', '1']],
    })
  }

  const routes: ApiRoute[] = [
    {
      method: 'GET',
      pattern: '/id',
      handler: async (c) => c.r.json(200, await cluster.id(c.signal)),
    },
    {
      method: 'GET',
      pattern: '/version',
      handler: (c) => c.r.json(200, { version: cluster.version() }),
    },
    { method: 'GET', pattern: '/peers', handler: (c) => c.stream((s) => cluster.peers(s)) },
    { method: 'POST', pattern: '/peers', handler: peerAdd },
    {
      method: 'DELETE',
      pattern: '/peers/{peer}',
      handler: async (c) => {
        const pid = peerIdParam(
          c.params.peer,
          (err) => `error decoding Peer ID: ${errorMessage(err)}`,
        )
        await cluster.peerRemove(pid, c.signal)
        return c.r.empty(204)
      },
    },
    { method: 'POST', pattern: '/add', handler: add, unboundedBody: true },
    { method: 'GET', pattern: '/allocations', handler: allocations },
    {
      method: 'GET',
      pattern: '/allocations/{hash}',
      handler: async (c) => {
        const cid = cidParam(c.params.hash)
        await consistent(c)
        return c.r.json(200, await cluster.pinGet(cid, c.signal))
      },
    },
    { method: 'GET', pattern: '/pins', handler: statusAll },
    {
      method: 'POST',
      pattern: '/pins/{hash}/recover',
      handler: async (c) => {
        const cid = cidParam(c.params.hash)
        const gpi = local(c)
          ? await cluster.recoverLocal(cid, c.signal)
          : await cluster.recover(cid, c.signal)
        return c.r.json(200, gpi)
      },
    },
    {
      method: 'POST',
      pattern: '/pins/recover',
      handler: (c) =>
        local(c)
          ? c.stream((s) => cluster.recoverAllLocal(s))
          : c.stream((s) => cluster.recoverAll(s)),
    },
    {
      method: 'GET',
      pattern: '/pins/{hash}',
      handler: async (c) => {
        const cid = cidParam(c.params.hash)
        const gpi = local(c)
          ? await cluster.statusLocal(cid, c.signal)
          : await cluster.status(cid, c.signal)
        return c.r.json(200, gpi)
      },
    },
    {
      method: 'POST',
      pattern: '/pins/{hash}',
      handler: async (c) => {
        const cid = cidParam(c.params.hash)
        const opts = pinOptionsFromQuery(c.query) // a bad option is a 400 and nothing is pinned
        return c.r.json(200, await cluster.pin(cid, opts, c.signal))
      },
    },
    {
      method: 'POST',
      pattern: '/pins/{keyType:ipfs|ipns|ipld}/{path:.*}',
      handler: async (c) => {
        const path = pinPathParam(c)
        const opts = pinOptionsFromQuery(c.query)
        return c.r.json(200, await cluster.pinPath(path, opts, c.signal))
      },
    },
    {
      method: 'DELETE',
      pattern: '/pins/{hash}',
      handler: async (c) => c.r.json(200, await cluster.unpin(cidParam(c.params.hash), c.signal)),
    },
    {
      method: 'DELETE',
      pattern: '/pins/{keyType:ipfs|ipns|ipld}/{path:.*}',
      handler: async (c) => c.r.json(200, await cluster.unpinPath(pinPathParam(c), c.signal)),
    },
    { method: 'POST', pattern: '/ipfs/gc', handler: repoGC },
    {
      method: 'GET',
      pattern: '/health/graph',
      handler: async (c) => c.r.json(200, await cluster.connectGraph(c.signal)),
    },
    {
      method: 'GET',
      pattern: '/health/alerts',
      handler: async (c) => c.r.json(200, await cluster.alerts(c.signal)),
    },
    {
      method: 'GET',
      pattern: '/health/bandwidth',
      handler: async (c) => c.r.json(200, await cluster.bandwidthByProtocol(c.signal)),
    },
    {
      method: 'GET',
      pattern: '/monitor/metrics/{name}',
      handler: async (c) => c.r.json(200, await cluster.latestMetrics(c.params.name, c.signal)),
    },
    {
      method: 'GET',
      pattern: '/monitor/metrics',
      handler: async (c) => c.r.json(200, await cluster.metricNames(c.signal)),
    },
    ...TOKEN_AND_HEALTH,
  ]

  return httpApi(config, routes, {
    name: 'restapi',
    configDir: deps.configDir,
    errorBody: restErrorBody,
    log: deps.log,
    accessLog: deps.accessLog,
    foreground: deps.foreground,
  })
}
