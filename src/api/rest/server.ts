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
import { parseStatusFilter, TRACKER_STATUSES } from '../../types/status.ts'
import type { Logger } from '../../util/log.ts'
import type { Foreground } from '../../util/foreground.ts'
import { addParamsFromQuery } from '../../adder/add_params.ts'
import type { AddContent, AddedOutput } from '../../adder/content.ts'
import { readBody } from '../common/body.ts'
import { type HttpApi, httpApi, type RequestContext, TOKEN_AND_HEALTH } from '../common/http_api.ts'
import { multipartBoundary, MultipartReader } from '../common/multipart.ts'
import {
  array,
  boolean,
  type DocumentedRoute,
  map,
  object,
  oneOfStrings,
  type OpenApiDocument,
  type ParamDoc,
  ref,
  type ResponseDoc,
  type Schema,
  string,
} from '../common/openapi.ts'
import { chunkedNdjsonResponse, ndjsonResponse } from '../common/ndjson.ts'
import { AsyncQueue } from '../common/queue.ts'
import type { RestApiConfig } from './config.ts'
import { uiRoutes } from './ui/routes.ts'
import {
  ADD_QUERY,
  HASH_PARAM,
  LOCAL_QUERY,
  PATH_PARAMS,
  PIN_OPTION_QUERY,
  restOpenApi,
} from './schemas.ts'

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

/**
 * What a path route's request span is filed under: the path as `pinPathParam` gives it to the
 * cluster, which files the pin's steps under it once IPFS resolved it (none for a bad path).
 */
function pathTraceKey(ctx: RequestContext): string | undefined {
  try {
    return pinPathParam(ctx)
  } catch {
    return undefined
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
  return httpApi(config, restRoutes(deps), {
    name: 'restapi',
    configDir: deps.configDir,
    errorBody: restErrorBody,
    log: deps.log,
    accessLog: deps.accessLog,
    foreground: deps.foreground,
  })
}

/**
 * The REST API's route table, each route with its OpenAPI doc (`GET /openapi.json` is built from
 * this same table).
 */
export function restRoutes(deps: RestApiDeps): DocumentedRoute[] {
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

  const ok = (description: string, json: Schema): Record<number, ResponseDoc> => ({
    200: { description, json },
  })
  const stream = (description: string, item: Schema): Record<number, ResponseDoc> => ({
    200: { description, ndjson: item },
    204: { description: 'Nothing to stream' },
  })
  const bad = (description: string): ResponseDoc => ({ description, json: ref('Error') })
  const badCid = bad('The CID does not decode (`error decoding Cid: …`)')
  const badOptions = bad('A pin option is invalid (nothing is pinned)')
  const consistentQuery: Record<string, ParamDoc> = {
    consistent: {
      description: 'true: answer after a Raft read barrier, so that every pin committed ' +
        'before the request is seen, whichever peer answers (an extension)',
      schema: boolean(),
    },
  }

  const routes: DocumentedRoute[] = [
    {
      method: 'GET',
      pattern: '/id',
      handler: async (c) => c.r.json(200, await cluster.id(c.signal)),
      doc: {
        operationId: 'id',
        summary: "This peer's identity",
        tags: ['peers'],
        responses: ok('The peer', ref('ID')),
      },
    },
    {
      method: 'GET',
      pattern: '/version',
      handler: (c) => c.r.json(200, { version: cluster.version() }),
      doc: {
        operationId: 'version',
        summary: 'The version of this peer',
        tags: ['peers'],
        responses: ok('The version', ref('Version')),
      },
    },
    {
      method: 'GET',
      pattern: '/peers',
      handler: (c) => c.stream((s) => cluster.peers(s)),
      doc: {
        operationId: 'peersList',
        summary: "Every member's identity",
        description: 'A member that does not answer within 15 s comes with its `error` set.',
        tags: ['peers'],
        responses: stream('One ID per member', ref('ID')),
      },
    },
    {
      method: 'POST',
      pattern: '/peers',
      handler: peerAdd,
      doc: {
        operationId: 'peerAdd',
        summary: 'Adds a peer to the cluster (Raft)',
        tags: ['peers'],
        body: {
          description: 'The peer to add',
          type: 'application/json',
          schema: object<{ peer_id: string }>({ peer_id: string({ description: 'Peer ID' }) }),
        },
        responses: {
          ...ok('The added peer', ref('ID')),
          400: bad('`error decoding request body` or `error decoding peer_id`'),
        },
      },
    },
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
      doc: {
        operationId: 'peerRemove',
        summary: 'Removes a peer from the cluster',
        description: 'Its pins are allocated elsewhere first (unless repinning is off). The ' +
          'CRDT consensus cannot remove peers: 500.',
        tags: ['peers'],
        params: { peer: { description: 'The peer ID' } },
        responses: { 204: { description: 'Removed' }, 400: bad('The peer ID does not decode') },
      },
    },
    {
      method: 'POST',
      pattern: '/add',
      handler: add,
      unboundedBody: true,
      doc: {
        operationId: 'add',
        summary: 'Adds files (UnixFS) or a CAR file and pins the root',
        description: "Blocks go to the allocated peers' IPFS daemons as they are read; the " +
          'outputs are streamed as `ipfs add` prints them, the root last. With ' +
          '`stream-channels=false` the answer is one JSON array instead. Pin metadata: ' +
          '`meta-<key>=<value>` query parameters.',
        tags: ['pins'],
        query: ADD_QUERY,
        body: {
          description: 'The files, as `ipfs add` sends them (directories as ' +
            '`application/x-directory` parts)',
          type: 'multipart/form-data',
          schema: object<{ file: unknown }>({
            file: array(string({ contentMediaType: 'application/octet-stream' })),
          }),
        },
        responses: {
          200: {
            description: 'The added files and directories (or progress items)',
            ndjson: { anyOf: [ref('AddedOutput'), array(ref('AddedOutput'))] },
            headers: { 'X-Chunked-Output': { description: '`1` on a stream' } },
          },
          400: bad('A parameter is invalid, the body is not multipart, or the upload broke'),
        },
      },
    },
    {
      method: 'GET',
      pattern: '/allocations',
      handler: allocations,
      doc: {
        operationId: 'allocationsList',
        summary: 'The shared pinset',
        tags: ['pins'],
        query: {
          filter: {
            description: 'Comma-separated pin types (default all); unknown names are ignored ' +
              'unless every name is unknown',
            schema: array(oneOfStrings(['pin', 'meta-pin', 'clusterdag-pin', 'shard-pin', 'all'])),
            explode: false,
          },
          ...consistentQuery,
        },
        responses: {
          ...stream('Every pin of the types asked for', ref('Pin')),
          400: bad('`invalid filter value`'),
        },
      },
    },
    {
      method: 'GET',
      pattern: '/allocations/{hash}',
      handler: async (c) => {
        const cid = cidParam(c.params.hash)
        await consistent(c)
        return c.r.json(200, await cluster.pinGet(cid, c.signal))
      },
      doc: {
        operationId: 'allocationGet',
        summary: 'One pin of the shared pinset',
        tags: ['pins'],
        params: HASH_PARAM,
        query: consistentQuery,
        responses: {
          ...ok('The pin', ref('Pin')),
          400: badCid,
          404: bad('`pin is not part of the pinset`'),
        },
      },
    },
    {
      method: 'GET',
      pattern: '/pins',
      handler: statusAll,
      doc: {
        operationId: 'statusList',
        summary: 'The status of every pin (or of the CIDs asked for) on every peer',
        tags: ['pins'],
        query: {
          ...LOCAL_QUERY,
          filter: {
            description: 'Comma-separated statuses (`error` and `queued` name groups)',
            schema: array(oneOfStrings([...TRACKER_STATUSES, 'error', 'queued'])),
            explode: false,
          },
          cids: {
            description: 'Comma-separated CIDs: only these, answered as each completes ' +
              '(`filter` is then ignored)',
            schema: array(string()),
            explode: false,
          },
        },
        responses: {
          ...stream('One status per CID', ref('GlobalPinInfo')),
          400: bad('`invalid filter value`, or a CID that does not decode'),
        },
      },
    },
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
      doc: {
        operationId: 'recover',
        summary: 'Retries a failed pin or unpin of a CID',
        tags: ['pins'],
        params: HASH_PARAM,
        query: LOCAL_QUERY,
        responses: { ...ok('Its status afterwards', ref('GlobalPinInfo')), 400: badCid },
      },
    },
    {
      method: 'POST',
      pattern: '/pins/recover',
      handler: (c) =>
        local(c)
          ? c.stream((s) => cluster.recoverAllLocal(s))
          : c.stream((s) => cluster.recoverAll(s)),
      doc: {
        operationId: 'recoverAll',
        summary: 'Retries every failed pin and unpin',
        tags: ['pins'],
        query: LOCAL_QUERY,
        responses: stream('The items queued again (only those)', ref('GlobalPinInfo')),
      },
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
      doc: {
        operationId: 'status',
        summary: 'The status of a CID on every peer',
        description: 'A CID that is not pinned is not an error: every peer says `unpinned`.',
        tags: ['pins'],
        params: HASH_PARAM,
        query: LOCAL_QUERY,
        responses: { ...ok('Its status', ref('GlobalPinInfo')), 400: badCid },
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
      doc: {
        operationId: 'pin',
        summary: 'Pins a CID in the cluster',
        description: 'Answers once the pin is committed (not once IPFS has pinned it). Metadata: ' +
          '`meta-<key>=<value>` query parameters.',
        tags: ['pins'],
        params: HASH_PARAM,
        query: PIN_OPTION_QUERY,
        responses: { ...ok('The committed pin', ref('Pin')), 400: badOptions },
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
      traceKey: pathTraceKey,
      doc: {
        operationId: 'pinPath',
        summary: 'Resolves an IPFS path and pins the CID it names',
        tags: ['pins'],
        params: PATH_PARAMS,
        query: PIN_OPTION_QUERY,
        responses: {
          ...ok('The committed pin', ref('Pin')),
          400: bad('`error parsing path: …`, or a pin option is invalid'),
        },
      },
    },
    {
      method: 'DELETE',
      pattern: '/pins/{hash}',
      handler: async (c) => c.r.json(200, await cluster.unpin(cidParam(c.params.hash), c.signal)),
      doc: {
        operationId: 'unpin',
        summary: 'Unpins a CID from the cluster',
        tags: ['pins'],
        params: HASH_PARAM,
        responses: {
          ...ok('The pin as it was', ref('Pin')),
          400: badCid,
          404: bad('`pin is not part of the pinset`'),
        },
      },
    },
    {
      method: 'DELETE',
      pattern: '/pins/{keyType:ipfs|ipns|ipld}/{path:.*}',
      handler: async (c) => c.r.json(200, await cluster.unpinPath(pinPathParam(c), c.signal)),
      traceKey: pathTraceKey,
      doc: {
        operationId: 'unpinPath',
        summary: 'Resolves an IPFS path and unpins the CID it names',
        tags: ['pins'],
        params: PATH_PARAMS,
        responses: {
          ...ok('The pin as it was', ref('Pin')),
          400: bad('`error parsing path: …`'),
          404: bad('`pin is not part of the pinset`'),
        },
      },
    },
    {
      method: 'POST',
      pattern: '/ipfs/gc',
      handler: repoGC,
      doc: {
        operationId: 'repoGC',
        summary: "Runs a garbage collection on every peer's IPFS daemon, one after another",
        tags: ['ipfs'],
        query: LOCAL_QUERY,
        responses: ok("Each peer's result", ref('GlobalRepoGC')),
      },
    },
    {
      method: 'GET',
      pattern: '/health/graph',
      handler: async (c) => c.r.json(200, await cluster.connectGraph(c.signal)),
      doc: {
        operationId: 'graph',
        summary: 'The connectivity graph of the cluster and its IPFS daemons',
        tags: ['health'],
        responses: ok('The graph', ref('ConnectGraph')),
      },
    },
    {
      method: 'GET',
      pattern: '/health/alerts',
      handler: async (c) => c.r.json(200, await cluster.alerts(c.signal)),
      doc: {
        operationId: 'alerts',
        summary: 'Recent alerts (expired metrics), newest first',
        tags: ['health'],
        responses: ok('The alerts', array(ref('Alert'))),
      },
    },
    {
      method: 'GET',
      pattern: '/health/bandwidth',
      handler: async (c) => c.r.json(200, await cluster.bandwidthByProtocol(c.signal)),
      doc: {
        operationId: 'bandwidth',
        summary: "This peer's traffic per libp2p protocol",
        tags: ['health'],
        responses: ok('By protocol ID', map(ref('BandwidthStats'))),
      },
    },
    {
      method: 'GET',
      pattern: '/monitor/metrics/{name}',
      handler: async (c) => c.r.json(200, await cluster.latestMetrics(c.params.name, c.signal)),
      doc: {
        operationId: 'metrics',
        summary: 'The latest valid metric of that name from each peer',
        tags: ['monitor'],
        params: { name: { description: 'A metric name (`GET /monitor/metrics` lists them)' } },
        responses: ok('Sorted by peer', array(ref('Metric'))),
      },
    },
    {
      method: 'GET',
      pattern: '/monitor/metrics',
      handler: async (c) => c.r.json(200, await cluster.metricNames(c.signal)),
      doc: {
        operationId: 'metricNames',
        summary: 'The names of the metrics the peers publish',
        tags: ['monitor'],
        responses: ok('The names', array(string(), { examples: [['freespace', 'ping']] })),
      },
    },
    ...TOKEN_AND_HEALTH,
    ...uiRoutes(cluster),
    {
      method: 'GET',
      pattern: '/openapi.json',
      public: true,
      handler: (c) => c.r.json(200, openApi()),
      doc: {
        operationId: 'openapi',
        summary: 'This document',
        description: 'Answered without credentials: it is the same for every peer (docs/' +
          'openapi.json) and tells nothing about this one.',
        tags: ['meta'],
        responses: ok('OpenAPI 3.1', { type: 'object' }),
      },
    },
  ]

  // Built from the table the router uses, on the first request (the table is fixed by then).
  let document: OpenApiDocument | undefined
  const openApi = () => document ??= restOpenApi(routes)
  return routes
}
