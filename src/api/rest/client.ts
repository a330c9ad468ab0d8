/**
 * The typed client of the IPFS Cluster 1.x REST API: one method per route, streams as async
 * iterables read incrementally, API errors as `ApiError`, failover over several API addresses
 * (as `ipfs-cluster-ctl --host a,b` does), timeouts and AbortSignals on every call.
 *
 * @example
 * ```ts
 * const c = restClient({ host: '/ip4/127.0.0.1/tcp/9094' })
 * const pin = await c.pin('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', { name: 'x' })
 * for await (const st of c.statusAll({ filter: 'pinned' })) console.log(st.cid)
 * await c.waitFor(pin.cid, 'pinned', { limit: 1, timeoutMs: 30_000 })
 * ```
 */
import { posix } from 'node:path'
import type {
  Alert,
  GlobalPinInfo,
  ID,
  Metric,
  Pin,
  PinOptions,
  TrackerStatus,
} from '../../types/mod.ts'
import { normalizeCid, PIN_TYPE_BITS, pinOptionsToQuery } from '../../types/mod.ts'
import { addBody, addParamsToQuery, defaultAddParams } from './client_add.ts'
import {
  decodeAddedOutput,
  decodeAlert,
  decodeBandwidthByProtocol,
  decodeConnectGraph,
  decodeGlobalPinInfo,
  decodeGlobalRepoGC,
  decodeID,
  decodeList,
  decodeMetric,
  decodePin,
  decodeStringList,
  decodeVersion,
  goStatus,
} from './client_decode.ts'
import { jsonValues, parseJson } from './client_json.ts'
import {
  type Endpoint,
  EndpointError,
  fetchTransport,
  nodeTransport,
  parseEndpoint,
  type Transport,
  TransportError,
  type TransportResponse,
} from './client_transport.ts'
import type {
  AddedOutput,
  AddParams,
  BandwidthByProtocol,
  ConnectGraph,
  GlobalRepoGC,
  Version,
} from './client_types.ts'
import { ApiError } from './client_types.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import { waitFor, type WaitForOptions } from './client_wait.ts'

export { ApiError } from './client_types.ts'
export type * from './client_types.ts'
export { EndpointError } from './client_transport.ts'
export type { WaitForOptions } from './client_wait.ts'

/** Default REST API address, as in the reference. */
export const DEFAULT_API_ADDR = '/ip4/127.0.0.1/tcp/9094'

/** How to reach and authenticate to the API. */
export interface RestClientOptions {
  /** API address(es): multiaddrs (`/ip4|ip6|dns*\/…/tcp/…`, `/unix/…`) or http(s) URLs; a
   * comma-separated string or a list means fail-over in order. Default `/ip4/127.0.0.1/tcp/9094`. */
  host?: string | string[]
  /** Use https for multiaddr hosts. */
  https?: boolean
  /** Do not verify the server's TLS certificate. */
  noCheckCertificate?: boolean
  /** Extra trusted CA certificates (PEM). */
  caCerts?: string[]
  /** Basic auth credentials (sent when `user` is not empty). */
  basicAuth?: { user: string; pass: string }
  /** A JWT from `getToken()`, sent as `Authorization: Bearer` when no basic auth is set. */
  token?: string
  /** Time limit of each request, body included; 0 or absent = none. */
  timeoutMs?: number
  /** Time for `timeoutMs` and `waitFor` (default: the system clock). */
  clock?: Clock
  /** Use this fetch instead of node:http (trailers, and so `X-Stream-Error`, are then unseen). */
  fetch?: typeof fetch
  /** A transport of your own (tests). Takes precedence over `fetch`. */
  transport?: Transport
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal
}

/** Options of `add`. */
export interface AddOptions extends CallOptions {
  /**
   * Told how many body bytes went out so far, and the files' total size (undefined for URLs),
   * as the upload proceeds (a progress bar).
   */
  onSent?: (sent: number, total: number | undefined) => void
}

/** Options of status, recover and GC calls. */
export interface LocalOptions extends CallOptions {
  /** Only the contacted peer answers. */
  local?: boolean
}

/** Options of `statusAll`. */
export interface StatusAllOptions extends LocalOptions {
  /** Status names, comma separated (`pinned,error`); empty = all. */
  filter?: string
  /** Only these CIDs. */
  cids?: string[]
}

/** The REST API, route by route. */
export interface RestClient {
  /** GET /id */
  id(o?: CallOptions): Promise<ID>
  /** GET /version */
  version(o?: CallOptions): Promise<Version>
  /** GET /peers (stream) */
  peers(o?: CallOptions): AsyncIterable<ID>
  /** POST /peers */
  peerAdd(peerId: string, o?: CallOptions): Promise<ID>
  /** DELETE /peers/{peer} */
  peerRemove(peerId: string, o?: CallOptions): Promise<void>
  /** POST /pins/{cid} */
  pin(cid: string, opts?: Partial<PinOptions>, o?: CallOptions): Promise<Pin>
  /** POST /pins/{ipfs|ipns|ipld}/{path}; a bare CID becomes /ipfs/<cid> */
  pinPath(path: string, opts?: Partial<PinOptions>, o?: CallOptions): Promise<Pin>
  /** DELETE /pins/{cid} */
  unpin(cid: string, o?: CallOptions): Promise<Pin>
  /** DELETE /pins/{ipfs|ipns|ipld}/{path} */
  unpinPath(path: string, o?: CallOptions): Promise<Pin>
  /** GET /allocations?filter= (stream); filter: pin types, comma separated, default all */
  allocations(filter?: string, o?: CallOptions): AsyncIterable<Pin>
  /** GET /allocations/{cid} */
  allocation(cid: string, o?: CallOptions): Promise<Pin>
  /** GET /pins/{cid} */
  status(cid: string, o?: LocalOptions): Promise<GlobalPinInfo>
  /** GET /pins (stream) */
  statusAll(o?: StatusAllOptions): AsyncIterable<GlobalPinInfo>
  /** POST /pins/{cid}/recover */
  recover(cid: string, o?: LocalOptions): Promise<GlobalPinInfo>
  /** POST /pins/recover (stream) */
  recoverAll(o?: LocalOptions): AsyncIterable<GlobalPinInfo>
  /** POST /ipfs/gc */
  repoGC(o?: LocalOptions): Promise<GlobalRepoGC>
  /** GET /monitor/metrics (null when the server sent null) */
  metricNames(o?: CallOptions): Promise<string[] | null>
  /** GET /monitor/metrics/{name} */
  metrics(name: string, o?: CallOptions): Promise<Metric[] | null>
  /** GET /health/alerts */
  alerts(o?: CallOptions): Promise<Alert[] | null>
  /** GET /health/bandwidth */
  bandwidth(o?: CallOptions): Promise<BandwidthByProtocol | null>
  /** GET /health/graph */
  graph(o?: CallOptions): Promise<ConnectGraph>
  /** POST /add (stream): local paths (files, or directories with `recursive`) and http(s) URLs */
  add(paths: string[], params?: Partial<AddParams>, o?: AddOptions): AsyncIterable<AddedOutput>
  /** POST /token */
  getToken(o?: CallOptions): Promise<string>
  /** GET /health (204 when up) */
  health(o?: CallOptions): Promise<void>
  /** Polls GET /pins/{cid} until `target` is reached (the reference's client.WaitFor). */
  waitFor(cid: string, target: TrackerStatus, o?: WaitForOptions): Promise<GlobalPinInfo>
}

interface RequestSpec {
  method: string
  path: string
  headers?: Record<string, string>
  body?: () => AsyncIterable<Uint8Array>
  signal?: AbortSignal
}

/** Builds a REST client. Throws EndpointError for an unusable address. */
export function restClient(opts: RestClientOptions = {}): RestClient {
  const hosts = (Array.isArray(opts.host) ? opts.host : (opts.host ?? DEFAULT_API_ADDR).split(','))
    .map((h) => h.trim())
    .filter((h) => h !== '')
  if (hosts.length === 0) throw new EndpointError('no API address given')
  const endpoints: Endpoint[] = hosts.map((h) => parseEndpoint(h, opts.https ?? false))
  const transport = opts.transport ??
    (opts.fetch
      ? fetchTransport(opts.fetch)
      : nodeTransport({ rejectUnauthorized: !opts.noCheckCertificate, caCerts: opts.caCerts }))
  const auth = authHeader(opts)
  const timeoutMs = opts.timeoutMs ?? 0
  const clock = opts.clock ?? systemClock

  /** Sends a request, failing over to the next address while no answer comes at all. */
  async function send(spec: RequestSpec): Promise<TransportResponse> {
    const signals = [spec.signal, timeoutMs > 0 ? clock.timeoutSignal(timeoutMs) : undefined]
      .filter((s): s is AbortSignal => s !== undefined)
    const signal = signals.length ? AbortSignal.any(signals) : new AbortController().signal
    const headers: Record<string, string> = { ...spec.headers }
    if (auth) headers['Authorization'] = auth
    for (let i = 0;; i++) {
      const ep = endpoints[i]
      try {
        return await transport({
          method: spec.method,
          url: ep.baseUrl + spec.path,
          headers,
          body: spec.body?.(),
          signal,
          socketPath: ep.socketPath,
        })
      } catch (err) {
        if (spec.signal?.aborted) throw spec.signal.reason
        if (!(err instanceof TransportError)) throw err
        if (i + 1 >= endpoints.length) throw new ApiError(0, err.message, { cause: err })
      }
    }
  }

  async function readAll(res: TransportResponse): Promise<string> {
    const chunks: Uint8Array[] = []
    for await (const c of res.body) chunks.push(c)
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
    let off = 0
    for (const c of chunks) {
      all.set(c, off)
      off += c.length
    }
    return new TextDecoder().decode(all)
  }

  async function errorOf(res: TransportResponse): Promise<ApiError> {
    const text = await readBody(res)
    try {
      const v = parseJson(text)
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const o = v as { code?: unknown; message?: unknown }
        return new ApiError(
          typeof o.code === 'number' ? o.code : 0,
          typeof o.message === 'string' ? o.message : '',
        )
      }
    } catch { /* not JSON: the body is the message */ }
    return new ApiError(res.status, text)
  }

  async function readBody(res: TransportResponse): Promise<string> {
    try {
      return await readAll(res)
    } catch (err) {
      throw new ApiError(res.status, (err as Error).message, { cause: err })
    }
  }

  /** One JSON answer; 202/204 give the decoder `undefined` (Go leaves the zero value). */
  async function call<T>(spec: RequestSpec, decode: (v: unknown) => T): Promise<T> {
    const res = await send(spec)
    if (res.status >= 400 && res.status < 600) throw await errorOf(res)
    const text = await readBody(res)
    if (res.status === 202 || res.status === 204) return decode(undefined)
    let v: unknown
    try {
      if (text.trim() === '') throw new Error('unexpected end of JSON input')
      v = parseJson(text)
    } catch (err) {
      throw new ApiError(res.status, (err as Error).message)
    }
    return decode(v)
  }

  /** A streamed answer: values as they arrive, then the X-Stream-Error trailer is checked. */
  async function* stream<T>(spec: RequestSpec, decode: (v: unknown) => T): AsyncGenerator<T> {
    const res = await send(spec)
    if (res.status >= 400 && res.status < 600) throw await errorOf(res)
    if (res.status !== 200 && res.status !== 204) {
      throw new ApiError(res.status, 'expected streaming response with code 200/204')
    }
    for await (const v of jsonValues(res.body)) yield decode(v)
    const errs = (res.trailerValues('X-Stream-Error') ?? []).filter((e) => e !== '')
    if (errs.length) throw new ApiError(500, errs.join('; '))
  }

  const local = (o?: LocalOptions) => `local=${o?.local ? 'true' : 'false'}`

  const client: RestClient = {
    id: (o) => call({ method: 'GET', path: '/id', signal: o?.signal }, decodeID),
    version: (o) => call({ method: 'GET', path: '/version', signal: o?.signal }, decodeVersion),
    peers: (o) => stream({ method: 'GET', path: '/peers', signal: o?.signal }, decodeID),
    peerAdd: (peerId, o) =>
      call({
        method: 'POST',
        path: '/peers',
        headers: { 'Content-Type': 'application/json' },
        body: () => once(JSON.stringify({ peer_id: peerId }) + '\n'),
        signal: o?.signal,
      }, decodeID),
    peerRemove: (peerId, o) =>
      call({ method: 'DELETE', path: `/peers/${enc(peerId)}`, signal: o?.signal }, () => {}),
    pin: (cid, opts = {}, o) =>
      call({
        method: 'POST',
        path: `/pins/${enc(cid)}?${pinQuery(opts)}`,
        signal: o?.signal,
      }, decodePin),
    pinPath: async (path, opts = {}, o) =>
      await call({
        method: 'POST',
        path: `/pins${encPath(ipfsPath(path))}?${pinQuery(opts)}`,
        signal: o?.signal,
      }, decodePin),
    unpin: (cid, o) =>
      call({ method: 'DELETE', path: `/pins/${enc(cid)}`, signal: o?.signal }, decodePin),
    unpinPath: async (path, o) =>
      await call({
        method: 'DELETE',
        path: `/pins${encPath(ipfsPath(path))}`,
        signal: o?.signal,
      }, decodePin),
    allocations: (filter = 'all', o) =>
      stream({
        method: 'GET',
        path: `/allocations?filter=${encodeURIComponent(pinTypeFilter(filter))}`,
        signal: o?.signal,
      }, decodePin),
    allocation: (cid, o) =>
      call({ method: 'GET', path: `/allocations/${enc(cid)}`, signal: o?.signal }, decodePin),
    status: (cid, o) =>
      call({
        method: 'GET',
        path: `/pins/${enc(cid)}?${local(o)}`,
        signal: o?.signal,
      }, decodeGlobalPinInfo),
    statusAll: (o = {}) => {
      const filter = o.filter ? goStatus(o.filter) : ''
      if (o.filter && filter === 'undefined') {
        return failing<GlobalPinInfo>(new Error('invalid filter value'))
      }
      const cids = (o.cids ?? []).join(',')
      return stream({
        method: 'GET',
        path: `/pins?${local(o)}&filter=${encodeURIComponent(filter)}&cids=${cids}`,
        signal: o.signal,
      }, decodeGlobalPinInfo)
    },
    recover: (cid, o) =>
      call({
        method: 'POST',
        path: `/pins/${enc(cid)}/recover?${local(o)}`,
        signal: o?.signal,
      }, decodeGlobalPinInfo),
    recoverAll: (o) =>
      stream({
        method: 'POST',
        path: `/pins/recover?${local(o)}`,
        signal: o?.signal,
      }, decodeGlobalPinInfo),
    repoGC: (o) =>
      call({ method: 'POST', path: `/ipfs/gc?${local(o)}`, signal: o?.signal }, decodeGlobalRepoGC),
    metricNames: (o) =>
      call({ method: 'GET', path: '/monitor/metrics', signal: o?.signal }, decodeStringList),
    metrics: (name, o) => {
      if (!name) return Promise.reject(new Error('bad metric name'))
      return call(
        { method: 'GET', path: `/monitor/metrics/${enc(name)}`, signal: o?.signal },
        (v) => decodeList(v, decodeMetric),
      )
    },
    alerts: (o) =>
      call(
        { method: 'GET', path: '/health/alerts', signal: o?.signal },
        (v) => decodeList(v, decodeAlert),
      ),
    bandwidth: (o) =>
      call(
        { method: 'GET', path: '/health/bandwidth', signal: o?.signal },
        decodeBandwidthByProtocol,
      ),
    graph: (o) =>
      call({ method: 'GET', path: '/health/graph', signal: o?.signal }, decodeConnectGraph),
    add: (paths, params = {}, o) => {
      const p: AddParams = { ...defaultAddParams(), ...params, stream_channels: true }
      return (async function* () {
        const body = await addBody(paths, p, o?.signal)
        const onSent = o?.onSent
        const total = onSent ? await body.contentSize() : undefined
        const length = await body.length()
        const headers: Record<string, string> = {
          'Content-Type': `multipart/form-data; boundary=${body.boundary}`,
        }
        if (length !== undefined) headers['Content-Length'] = String(length)
        yield* stream({
          method: 'POST',
          path: `/add?${addParamsToQuery(p)}`,
          headers,
          body: onSent
            ? () => counted(body.stream(), (n) => onSent(n, total))
            : () => body.stream(),
          signal: o?.signal,
        }, decodeAddedOutput)
      })()
    },
    getToken: (o) =>
      call({ method: 'POST', path: '/token', signal: o?.signal }, (v) => {
        const t = (v as { token?: unknown } | undefined)?.token
        return typeof t === 'string' ? t : ''
      }),
    health: (o) => call({ method: 'GET', path: '/health', signal: o?.signal }, () => {}),
    waitFor: (cid, target, o) => waitFor(client, cid, target, { clock, ...o }),
  }
  return client
}

/** Passes chunks through, telling `onSent` the running byte count. */
async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  onSent: (sent: number) => void,
): AsyncIterable<Uint8Array> {
  let sent = 0
  for await (const c of chunks) {
    yield c
    sent += c.length
    onSent(sent)
  }
}

function authHeader(opts: RestClientOptions): string | undefined {
  if (opts.basicAuth?.user) {
    const bytes = new TextEncoder().encode(`${opts.basicAuth.user}:${opts.basicAuth.pass ?? ''}`)
    return `Basic ${btoa(String.fromCharCode(...bytes))}`
  }
  if (opts.token) return `Bearer ${opts.token}`
  return undefined
}

function pinQuery(opts: Partial<PinOptions>): string {
  // Go's url.Values.Encode sorts the keys.
  const q = pinOptionsToQuery(opts)
  q.sort()
  return q.toString()
}

/** Escapes one path segment. */
function enc(s: string): string {
  return encodeURIComponent(s)
}

function encPath(p: string): string {
  return p.split('/').map(enc).join('/')
}

/**
 * An IPFS path as boxo's path.NewPath accepts it (`/ipfs|ipld|ipns/<root>[/…]`, cleaned); a
 * string that is not one is tried again as `/ipfs/<string>`, as the reference client does.
 */
export function ipfsPath(p: string): string {
  try {
    return newPath(p)
  } catch {
    return newPath('/ipfs/' + p)
  }
}

function newPath(str: string): string {
  const cleaned = posix.normalize(str === '' ? '.' : str)
  const segments = cleaned === '.' ? [] : cleaned.replace(/^\/+|\/+$/g, '').split('/')
  if (!str.startsWith('/') || segments.length < 2 || segments[1] === '') {
    throw new Error(`invalid path ${JSON.stringify(str)}: path does not have enough components`)
  }
  let out = '/' + segments.join('/')
  if (str.endsWith('/')) out += '/'
  switch (segments[0]) {
    case 'ipfs':
    case 'ipld':
      try {
        normalizeCid(segments[1])
      } catch (err) {
        throw new Error(`invalid path ${JSON.stringify(str)}: ${(err as Error).message}`)
      }
      return out
    case 'ipns':
      return out
    default:
      throw new Error(
        `invalid path ${JSON.stringify(str)}: unknown namespace: ${JSON.stringify(segments[0])}`,
      )
  }
}

const PIN_TYPES_IN_ORDER = ['pin', 'meta-pin', 'clusterdag-pin', 'shard-pin']

/** The `/allocations?filter=` value the reference client sends for a comma list of pin types. */
export function pinTypeFilter(filter: string): string {
  let mask = 0
  for (const f of filter.split(',')) mask |= f === '' ? PIN_TYPE_BITS.all : (PIN_TYPE_BITS[f] ?? 1)
  if (mask === PIN_TYPE_BITS.all) return 'all'
  return PIN_TYPES_IN_ORDER.filter((t) => (PIN_TYPE_BITS[t] & mask) !== 0).join(',')
}

async function* once(s: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(s)
}

// deno-lint-ignore require-yield
async function* failing<T>(err: Error): AsyncGenerator<T> {
  throw err
}
