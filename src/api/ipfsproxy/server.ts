/**
 * The IPFS proxy (IPFS Cluster 1.x `api/ipfsproxy`): Kubo's RPC API, served beside Kubo, where
 * the calls that change what is pinned become cluster operations — `pin/add`, `pin/rm`, `pin/ls`,
 * `pin/update`, `add`, `repo/stat`, `repo/gc`, and `block/put`/`dag/put` with `pin=true` — and
 * every other request (other endpoints, and OPTIONS or HEAD on any) goes to Kubo unchanged, its
 * answer streamed back (upstream.ts). Point an IPFS client at the proxy instead of Kubo and its
 * pins are the cluster's, with the cluster's replication.
 *
 * No auth and no CORS policy of its own: hijacked answers take Kubo's CORS headers (headers.ts),
 * errors have Kubo's shape. It runs on the same server as the other APIs (`api/common`'s
 * listeners, connection limits and timeouts), without their auth, CORS and 307 layers, which a
 * proxy must leave to Kubo.
 *
 * @example
 * ```ts
 * const proxy = ipfsProxy(cfg, { cluster, add, resolve, configDir, version: VERSION })
 * await proxy.start()
 * const res = await proxy.handler(new Request('http://x/api/v0/pin/ls', { method: 'POST' }))
 * await proxy.stop()
 * ```
 */
import { isAbsolute, join } from 'node:path'
import type { API, ClusterRPC } from '../../components.ts'
import {
  ClusterError,
  errorMessage,
  IPFSError,
  NotFoundError,
  ValidationError,
} from '../../errors.ts'
import { addParamsFromQuery } from '../../adder/add_params.ts'
import type { AddContent, AddedOutput } from '../../adder/content.ts'
import { cidFromJson } from '../../ipfsconn/ipfshttp/parse.ts'
import { readJsonLines } from '../../ipfsconn/ipfshttp/ndjson.ts'
import { normalizeCid } from '../../types/cid.ts'
import { defaultPinOptions, type Pin, PIN_TYPE_BITS, type PinMode } from '../../types/pin.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import type { Foreground } from '../../util/foreground.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { ipfsPath } from '../rest/client.ts'
import { commonLogLine, fileAccessLog, loggerAccessLog, whenSent } from '../common/access_log.ts'
import type { HttpServer } from '../common/http_server.ts'
import { listenApi } from '../common/http_api.ts'
import { boundMultiaddr } from '../common/listen.ts'
import { multipartBoundary, MultipartReader } from '../common/multipart.ts'
import { chunkedNdjsonResponse, type StreamOptions } from '../common/ndjson.ts'
import { type Responder, responder, statusOf } from '../common/response.ts'
import { router } from '../common/router.ts'
import type { IPFSProxyConfig } from './config.ts'
import { kuboHeaders } from './headers.ts'
import {
  kuboAdded,
  kuboErrorBody,
  kuboLines,
  kuboPinType,
  pinLsKeys,
  pinLsType,
  pinTypeMatches,
  repoGCValues,
} from './kubo_json.ts'
import { forwardHeaders, type KuboUpstream, kuboUpstream, streamAnswer } from './upstream.ts'

/** What the proxy needs from the peer. */
export interface IpfsProxyDeps {
  cluster: ClusterRPC
  /** Adds content through the cluster (the REST API's `/add`); without it `add` answers 500. */
  add?: AddContent
  /** Resolves an IPFS path to a CID on this peer's IPFS (the `from` of `pin/update`). */
  resolve?: (path: string, signal?: AbortSignal) => Promise<string>
  /** The folder holding service.json; a relative `log_file` is resolved against it. */
  configDir: string
  /** The cluster's version, for the `Server` header. */
  version: string
  log?: Logger
  /** Receives access log lines when `log_file` is not set (the reference's `ipfsproxylog`). */
  accessLog?: Logger
  /** Told of every hijacked request, so that background work steps aside. */
  foreground?: Foreground
  /** For the extracted headers' TTL. */
  clock?: Clock
  /** Kubo's side (tests inject one); built from the config otherwise. */
  upstream?: KuboUpstream
}

/** The proxy, with an in-process entry point. */
export interface IpfsProxy extends API {
  /** Runs a request through the proxy without a socket (hijacked or forwarded). */
  handler(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>
}

/** What a hijacked endpoint's handler gets. */
interface ProxyContext {
  req: Request
  query: URLSearchParams
  /** Aborted when the client goes away or the server stops (for streams: see `stream`). */
  signal: AbortSignal
  r: Responder
  remote?: string
  /** Streams NDJSON bytes with the reference's 500/200 rules; the source's signal ends it. */
  stream(
    source: (signal: AbortSignal) => AsyncIterable<Uint8Array>,
    headers?: [string, string][],
  ): Promise<Response>
}

interface ProxyRoute {
  method: string
  pattern: string
  handler: (ctx: ProxyContext) => Promise<Response>
}

/** The methods hijacked (Kubo took GET and PUT too, once); OPTIONS and HEAD go to Kubo. */
const HIJACKED_METHODS = ['POST', 'GET', 'PUT']

/** A CID argument of `pin/ls`: a CID, or a path `/ipfs/<cid>` to one. */
function cidArg(arg: string): string {
  const m = /^\/ip[fl]d?s?\/([^/]+)\/?$/.exec(arg)
  try {
    return normalizeCid(m ? m[1] : arg)
  } catch (err) {
    throw new ValidationError(errorMessage(err))
  }
}

/** An IPFS path argument (`/ipfs/…`, `/ipns/…`, or a bare CID with an optional path). */
function pathArg(arg: string, what = 'Error parsing IPFS Path'): string {
  try {
    return ipfsPath(arg)
  } catch (err) {
    throw new ValidationError(`${what}: ${errorMessage(err)}`)
  }
}

/** The pin mode asked: `type=direct` (the reference) or Kubo's own `recursive=false`. */
function pinMode(q: URLSearchParams): PinMode {
  const type = q.get('type')
  if (type === 'direct') return 'direct'
  if (type === 'recursive') return 'recursive'
  return q.get('recursive') === 'false' ? 'direct' : 'recursive'
}

/** Builds the proxy. Nothing listens until `start()`. */
export function ipfsProxy(config: IPFSProxyConfig, deps: IpfsProxyDeps): IpfsProxy {
  const log = deps.log ?? nullLogger
  const { cluster } = deps
  const r = responder({ Server: [`ipfs-cluster/ipfsproxy/${deps.version}`] }, kuboErrorBody)
  const stopping = new AbortController()
  const upstream = deps.upstream ?? kuboUpstream(config, { log })
  const headers = kuboHeaders({
    upstream,
    extra: config.extract_headers_extra ?? [],
    path: config.extract_headers_path,
    ttlMs: config.extract_headers_ttl,
    clock: deps.clock ?? systemClock,
    signal: stopping.signal,
    log,
  })
  const maxHeaderBytes = config.max_header_bytes + 4096 // Go allows this much slack too
  let server: HttpServer | undefined
  let access = loggerAccessLog(deps.accessLog)
  let started = false
  let stopped: Promise<void> | undefined

  const streamOptions = (ac: AbortController): StreamOptions => ({
    onCancel: () => ac.abort(),
    onError: (err) => log.error(`stream aborted: ${errorMessage(err)}`),
  })

  // ---- hijacked endpoints ----

  async function pinOp(ctx: ProxyContext, op: 'pin' | 'unpin'): Promise<Response> {
    const path = pathArg(ctx.query.get('arg') ?? '')
    const pin = op === 'pin'
      ? await cluster.pinPath(path, {
        ...defaultPinOptions(),
        mode: pinMode(ctx.query),
        name: ctx.query.get('name') ?? '',
      }, ctx.signal)
      : await cluster.unpinPath(path, ctx.signal)
    return r.json(200, { Pins: [pin.cid] })
  }

  async function pinLs(ctx: ProxyContext): Promise<Response> {
    const q = ctx.query
    const stream = q.get('stream') === 'true' || q.get('s') === 'true'
    const type = pinLsType(q.get('type'))
    const args = q.getAll('arg').filter((a) => a !== '')
    const entry = (pin: Pin) => ({ Cid: pin.cid, Type: kuboPinType(pin) })
    if (args.length > 0) {
      const pins: Pin[] = []
      for (const arg of args) {
        const cid = cidArg(arg)
        let pin: Pin | undefined
        try {
          pin = await cluster.pinGet(cid, ctx.signal)
        } catch (err) {
          if (statusOf(err) !== 404) throw err
        }
        if (!pin || !pinTypeMatches(pin, type)) {
          throw new NotFoundError(`path '${arg}' is not pinned`)
        }
        pins.push(pin)
      }
      if (stream) {
        const lines = pins.map((p) => JSON.stringify(entry(p)) + '\n').join('')
        return new Response(lines, { status: 200, headers: r.headers() })
      }
      const keys: Record<string, { Type: string }> = {}
      for (const p of pins) keys[p.cid] = { Type: kuboPinType(p) }
      return r.json(200, { Keys: keys })
    }
    const filtered = async function* (signal: AbortSignal) {
      for await (const pin of cluster.pins(PIN_TYPE_BITS.all, signal)) {
        if (pinTypeMatches(pin, type)) yield pin
      }
    }
    return stream
      ? await ctx.stream(async function* (s) {
        yield* kuboLines(
          (async function* () {
            for await (const p of filtered(s)) yield entry(p)
          })(),
          log,
        )
      })
      : await ctx.stream((s) => pinLsKeys(filtered(s)))
  }

  async function pinUpdate(ctx: ProxyContext): Promise<Response> {
    const args = ctx.query.getAll('arg')
    if (args.length === 0) throw new ValidationError('argument "from-path" is required')
    if (args.length === 1) throw new ValidationError('argument "to-path" is required')
    const unpin = ctx.query.get('unpin') !== 'false'
    const from = pathArg(args[0], 'error parsing "from-path" argument')
    const to = pathArg(args[1], 'error parsing "to-path" argument')
    const bare = /^\/ipfs\/([^/]+)$/.exec(from)
    let fromCid: string
    if (bare) fromCid = normalizeCid(bare[1])
    else if (deps.resolve) fromCid = normalizeCid(await deps.resolve(from, ctx.signal))
    else throw new ClusterError('cannot resolve a path: this peer has no IPFS connector')
    const pin = await cluster.pinPath(
      to,
      { ...defaultPinOptions(), pin_update: fromCid },
      ctx.signal,
    )
    // Updating a pin to itself leaves it pinned (the reference would unpin it here).
    if (unpin && pin.cid !== fromCid) await cluster.unpin(fromCid, ctx.signal)
    return r.json(200, { Pins: [fromCid, pin.cid] })
  }

  async function add(ctx: ProxyContext): Promise<Response> {
    // The UnixFS importer loads with the first add, not with the peer (docs/performance.md).
    const { checkAddParams } = await import('../../adder/adder.ts')
    const q = ctx.query
    // The reference writes this error and adds anyway; nothing is added here.
    if (q.get('only-hash') === 'true') {
      throw new ValidationError('only-hash is not supported when adding to cluster')
    }
    let boundary: string
    try {
      boundary = multipartBoundary(ctx.req.headers.get('content-type'))
    } catch (err) {
      throw new ValidationError(`error reading request: ${errorMessage(err)}`)
    }
    let params
    try {
      params = addParamsFromQuery(q)
    } catch (err) {
      throw new ValidationError(`error parsing options: ${errorMessage(err)}`)
    }
    // Kubo's names for what the cluster's /add calls layout, no-pin and name.
    if (q.get('trickle') === 'true') params.layout = 'trickle'
    if (q.get('pin') === 'false') params.no_pin = true
    const pinName = q.get('pin-name')
    if (pinName) params.pin.name = pinName
    checkAddParams(params)
    if (!deps.add) throw new ClusterError('cannot add: this peer has no IPFS connector')
    if (!ctx.req.body) throw new ValidationError('error reading request: request body is empty')
    const reader = new MultipartReader(ctx.req.body, boundary)
    const addContent = deps.add
    const run = async function* (signal: AbortSignal): AsyncIterable<AddedOutput> {
      yield* addContent(reader, params, signal)
    }
    if (!params.stream_channels) {
      const all = []
      for await (const o of run(ctx.signal)) all.push(kuboAdded(o))
      return r.json(200, all)
    }
    return await ctx.stream(
      (s) =>
        kuboLines(
          (async function* () {
            for await (const o of run(s)) yield kuboAdded(o)
          })(),
          log,
        ),
      [['Cache-Control', 'no-cache'], ['X-Chunked-Output', '1']],
    )
  }

  async function repoStat(ctx: ProxyContext): Promise<Response> {
    const s = await cluster.repoStat(ctx.signal)
    // Kubo's other fields, empty (the reference sends only the two sizes): kubo-rpc-client
    // fails on an answer without NumObjects. The cluster counts no objects.
    return r.json(200, {
      RepoSize: s.repoSize,
      StorageMax: s.storageMax,
      NumObjects: 0,
      RepoPath: '',
      Version: '',
    })
  }

  async function repoGC(ctx: ProxyContext): Promise<Response> {
    const gc = await cluster.repoGC(ctx.signal)
    const { values, error } = repoGCValues(gc, ctx.query.get('stream-errors') === 'true')
    if (error) {
      log.error(`repo/gc: ${error}`)
      values.push(kuboErrorBody(500, error))
    }
    // Already gathered (every peer answered whole): written at once.
    const body = values.map((v) => JSON.stringify(v) + '\n').join('')
    return new Response(body, {
      status: 200,
      headers: r.headers([['Trailer', 'X-Stream-Error'], ['X-Chunked-Output', '1']]),
    })
  }

  /**
   * `block/put` and `dag/put` with `pin=true`: Kubo stores the blocks (told not to pin them: the
   * cluster pins), and each CID Kubo answers is pinned in the cluster before its line is passed
   * on. A pin that fails does not stop the others; the failures end the answer as one error.
   */
  function putAndPin(field: 'Key' | 'Cid') {
    return async (ctx: ProxyContext): Promise<Response> => {
      if (ctx.query.get('pin') !== 'true') return await forward(ctx.req, ctx.remote)
      const url = new URL(ctx.req.url)
      const q = new URLSearchParams(url.search)
      q.set('pin', 'false')
      const res = await upstream.request({
        method: ctx.req.method,
        path: `${url.pathname}?${q}`,
        headers: forwardHeaders(ctx.req, ctx.remote),
        body: ctx.req.body ?? undefined,
        signal: ctx.signal,
      })
      if (res.status !== 200) return streamAnswer(res, { log, what: url.pathname })
      return await ctx.stream((s) =>
        kuboLines(
          (async function* () {
            const failures: string[] = []
            for await (const v of readJsonLines(res)) {
              const cid = cidFromJson((v as Record<string, unknown> | null)?.[field])
              if (!cid) throw new IPFSError(`IPFS answered no ${field}: ${JSON.stringify(v)}`)
              try {
                await cluster.pin(cid, defaultPinOptions(), s)
              } catch (err) {
                log.error(`pinning ${cid}: ${errorMessage(err)}`)
                failures.push(`${cid}: ${errorMessage(err)}`)
              }
              yield v
            }
            if (failures.length) throw new ClusterError(failures.join('; '))
          })(),
          log,
        )
      )
    }
  }

  const routes: ProxyRoute[] = []
  const hijack = (path: string, handler: ProxyRoute['handler']) => {
    for (const method of HIJACKED_METHODS) {
      routes.push({ method, pattern: `/api/v0${path}`, handler })
    }
  }
  // `/pin/add/<arg>`: the argument in the path, an undocumented form the reference accepts too
  // (the handler finds it in `arg`).
  hijack('/pin/add/{arg}', (c) => pinOp(c, 'pin'))
  hijack('/pin/add', (c) => pinOp(c, 'pin'))
  hijack('/pin/rm/{arg}', (c) => pinOp(c, 'unpin'))
  hijack('/pin/rm', (c) => pinOp(c, 'unpin'))
  hijack('/pin/ls/{arg}', pinLs)
  hijack('/pin/ls', pinLs)
  hijack('/pin/update', pinUpdate)
  hijack('/add', add)
  hijack('/repo/stat', repoStat)
  hijack('/repo/gc', repoGC)
  hijack('/block/put', putAndPin('Key'))
  hijack('/dag/put', putAndPin('Cid'))
  const match = router(routes)

  // ---- the pipeline ----

  const forward = async (
    req: Request,
    remote?: string,
    onDone?: (bytes: number, status: number) => void,
  ) => {
    try {
      return await upstream.forward(req, { signal: stopping.signal, remote, onDone })
    } catch (err) {
      onDone?.(0, 502)
      if (stopping.signal.aborted) throw err
      // Go's ReverseProxy answers 502 with no body; a message says what failed.
      log.error(`${req.method} ${new URL(req.url).pathname}: ${errorMessage(err)}`)
      return r.error(err, 502)
    }
  }

  const headerBytes = (req: Request) => {
    let n = req.url.length + req.method.length + 12
    for (const [k, v] of req.headers) n += k.length + v.length + 4
    return n
  }

  function accessLogger(req: Request, info?: Deno.ServeHandlerInfo) {
    if (!access.on) return undefined
    const remote = info?.remoteAddr
    const url = new URL(req.url)
    const record = {
      host: remote && 'hostname' in remote ? remote.hostname : '',
      time: new Date(),
      method: req.method,
      uri: url.pathname + url.search,
    }
    return (status: number, size: number) =>
      access.write(commonLogLine({ ...record, status, size }))
  }

  async function hijacked(
    route: ProxyRoute,
    req: Request,
    query: URLSearchParams,
    remote: string | undefined,
  ): Promise<Response> {
    const ctx: ProxyContext = {
      req,
      query,
      signal: stopping.signal,
      r,
      remote,
      stream(source, extra) {
        const ac = new AbortController()
        const signal = AbortSignal.any([ac.signal, stopping.signal])
        return chunkedNdjsonResponse(r, source(signal), { ...streamOptions(ac), headers: extra })
      },
    }
    const url = new URL(req.url)
    const [kubo, res] = await Promise.all([
      headers.headersFor(req, url.pathname, stopping.signal),
      (async () => {
        try {
          return await route.handler(ctx)
        } catch (err) {
          // Kubo's clients read a 404 as "Command not found" (go-ipfs-cmds): a missing pin is a
          // 500, as Kubo answers it; bad input stays a 400, which they read as the error it is.
          const status = statusOf(err)
          const res = r.error(err, status === 404 ? 500 : status)
          if (status >= 500) log.error(`${req.method} ${url.pathname}: ${errorMessage(err)}`)
          return res
        }
      })(),
    ])
    for (const [k, v] of kubo) res.headers.set(k, v)
    return res
  }

  async function handler(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const remote = info?.remoteAddr && 'hostname' in info.remoteAddr
      ? info.remoteAddr.hostname
      : undefined
    const logged = accessLogger(req, info)
    if (headerBytes(req) > maxHeaderBytes) {
      logged?.(431, 0)
      return r.error(new Error('request header fields too large'), 431)
    }
    const url = new URL(req.url)
    let path = url.pathname
    try {
      path = decodeURIComponent(path)
    } catch {
      // Not ours to judge: Kubo answers it.
    }
    const m = match(req.method, path)
    if (m.kind !== 'route') {
      return await forward(req, remote, logged && ((n, status) => logged(status, n)))
    }
    const end = deps.foreground?.begin()
    const query = new URLSearchParams(url.search)
    if (m.params.arg !== undefined) {
      log.warn(
        'You are using an undocumented form of the IPFS API. Consider passing your command ' +
          "arguments with the '?arg=' query parameter",
      )
      query.set('arg', m.params.arg)
    }
    let res: Response
    try {
      res = await hijacked(m.route, req, query, remote)
    } catch (err) {
      res = r.error(err)
    }
    if (!end && !logged) return res
    return whenSent(res, (size) => {
      logged?.(res.status, size)
      end?.()
    })
  }

  return {
    handler,
    async start() {
      if (started) return
      started = true
      if (config.log_file) {
        const p = isAbsolute(config.log_file)
          ? config.log_file
          : join(deps.configDir, config.log_file)
        access = await fileAccessLog(p, { key: 'log_file', log })
      }
      try {
        server = listenApi({
          listen: config.listen_multiaddress,
          listenKey: 'api.ipfsproxy.listen_multiaddress',
          timeouts: config,
          maxConnections: 0,
          handler,
          r,
          log,
        })
      } catch (err) {
        access.close()
        throw err
      }
      for (const a of server.addrs) {
        log.info(`IPFS Proxy: ${boundMultiaddr(a)} -> ${config.node_multiaddress}`)
      }
    },
    addresses: () => server?.addrs.map(boundMultiaddr) ?? [],
    stop() {
      stopped ??= (async () => {
        log.info('stopping IPFS Proxy')
        stopping.abort(new DOMException('IPFS proxy stopped', 'AbortError'))
        await server?.stop()
        server = undefined
        upstream.close()
        access.close()
      })()
      return stopped
    },
  }
}
