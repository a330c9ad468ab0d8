/**
 * A Kubo-shaped RPC double, written from the reference's description of what the connector calls
 * (docs/…/ipfs-cluster.md §7) and from answers observed from Kubo 0.43.1 — not from Kubo's code.
 *
 * It keeps an in-memory pinset and blockstore and answers `id`, `version`, `pin/add|rm|ls|update`,
 * `swarm/peers|connect`, `repo/stat|gc`, `config/show`, `resolve`, `block/put|get` and `add`.
 * Two uses:
 * - tests: knobs on `state` inject failures (stalled pin progress, HTTP 500 with Kubo's
 *   `{"Message","Code","Type":"error"}`, malformed JSON via `override`, numbers as strings,
 *   `null` vs `[]`), and `state.calls` / `state.requests` record what was asked;
 * - benches (`instant`): answers at once with no request log, for both the Go
 *   ipfs-cluster-service 1.1.6 and ours.
 *
 * In-process: `const d = await startKuboDouble({ instant: true })`, then `d.multiaddr` is the
 * `node_multiaddress`. Stand-alone: `deno run -A test/support/kubo_double.ts --port 5001 --instant`
 * prints the multiaddress on its first stdout line and runs until SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * const d = await startKuboDouble()
 * d.state.pinProgress = { steps: 3, intervalMs: 50, stallAt: 2 } // pin/add stalls at Progress 2
 * d.state.override = (r) => r.endpoint === 'repo/stat' ? kuboError('boom') : undefined
 * await d.stop()
 * ```
 */
import { parseArgs } from 'node:util'
import { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { base32 } from 'multiformats/bases/base32'
import { base58btc } from 'multiformats/bases/base58'
import { type CancelTimer, type Clock, systemClock } from '../../src/util/clock.ts'

/** A valid Ed25519 peer ID, the double's default identity. */
export const DOUBLE_PEER_ID = '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'

/** What a request looks like to `override`. */
export interface DoubleRequest {
  /** `pin/add`, `id`… (the path after `/api/v0/`). */
  endpoint: string
  params: URLSearchParams
  request: Request
}

/** Mutable state and knobs of a running double. */
export interface KuboDoubleState {
  /** Pinset keyed by multihash (base32): the CID string as first pinned, and its type. */
  pins: Map<string, { cid: string; type: 'recursive' | 'direct' }>
  /** Blockstore keyed by multihash. */
  blocks: Map<string, { cid: string; bytes: Uint8Array }>
  /** Calls per endpoint. */
  calls: Map<string, number>
  /** Every request's `endpoint?query`, in order (not kept in instant mode). */
  requests: string[]
  /** Peer IDs `swarm/peers` lists. */
  swarmPeers: string[]
  /** Send `"Peers": null` for an empty list, as Kubo does (false: `[]`, as js-ipfs does). */
  peersNullWhenEmpty: boolean
  /** Addresses given to `swarm/connect`. */
  connected: string[]
  /** `repo/stat` RepoSize; undefined = sum of stored block sizes. */
  repoSize?: number
  storageMax: number
  /** Send numbers as JSON strings (repo/stat, pin progress), as js-ipfs does. */
  numbersAsStrings: boolean
  /**
   * pin/add progress: `steps` lines `{"Progress":1..steps}` `intervalMs` apart, then the Pins
   * line. With `stallAt`, the count stops growing there and the same line repeats every
   * `intervalMs` until the client gives up (what Kubo does when blocks cannot be found).
   */
  pinProgress?: { steps: number; intervalMs: number; stallAt?: number }
  /** `resolve` answers: path (e.g. `/ipfs/<dir>/a.txt`) → CID. */
  resolveMap: Map<string, string>
  /** Lines `repo/gc` sends as `{"Error": …}` after the removed keys. */
  gcErrors: string[]
  /** `config/show` answer. */
  config: Record<string, unknown>
  /** Consulted first: return a Response to answer instead of the double. */
  override?: (req: DoubleRequest) => Response | undefined | Promise<Response | undefined>
}

/** Options of startKuboDouble. */
export interface KuboDoubleOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number
  /** Also listen on this unix socket path. */
  unixPath?: string
  /** Bench mode: answer at once, keep no request log, ignore pinProgress. */
  instant?: boolean
  peerId?: string
  /** Times the pin/add progress lines (default: the system clock; tests pass a manual one). */
  clock?: Clock
}

/** A running double. */
export interface KuboDouble {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `/ip4/127.0.0.1/tcp/<port>` */
  multiaddr: string
  /** `/unix/<path>` when listening on a unix socket. */
  unixMultiaddr?: string
  state: KuboDoubleState
  /** Stops listening and cancels streams in flight. Idempotent. */
  stop(): Promise<void>
}

const enc = new TextEncoder()
const CODECS: Record<string, number> = {
  raw: 0x55,
  'dag-pb': 0x70,
  'dag-cbor': 0x71,
  'dag-json': 0x0129,
  json: 0x0200,
  cbor: 0x51,
}

/** A Kubo-shaped error answer: `{"Message","Code":0,"Type":"error"}`, status 500 by default. */
export function kuboError(message: string, status = 500): Response {
  return Response.json({ Message: message, Code: status === 400 ? 1 : 0, Type: 'error' }, {
    status,
    headers: { 'Trailer': 'X-Stream-Error' },
  })
}

/** Parses a CID in any base the double may see; undefined if invalid. */
function parseAnyCid(s: string | null): CID | undefined {
  if (!s) return undefined
  try {
    if (s.startsWith('Qm')) return CID.parse(s)
    return CID.parse(s, base32.decoder.or(base58btc.decoder))
  } catch {
    return undefined
  }
}

/** Strips `/ipfs/` and sub-paths: the double pins roots only. */
function argCid(arg: string | null): CID | undefined {
  if (!arg) return undefined
  const m = /^\/ipfs\/([^/]+)/.exec(arg)
  return parseAnyCid(m ? m[1] : arg)
}

const mh = (c: CID) => base32.baseEncode(c.multihash.bytes)

/** A fresh state with Kubo-like defaults. */
export function newDoubleState(peerId = DOUBLE_PEER_ID): KuboDoubleState {
  return {
    pins: new Map(),
    blocks: new Map(),
    calls: new Map(),
    requests: [],
    swarmPeers: [],
    peersNullWhenEmpty: true,
    connected: [],
    storageMax: 10_000_000_000,
    numbersAsStrings: false,
    resolveMap: new Map(),
    gcErrors: [],
    config: {
      Identity: { PeerID: peerId },
      Datastore: { StorageMax: '10GB', StorageGCWatermark: 90, GCPeriod: '1h' },
      Addresses: { API: '/ip4/127.0.0.1/tcp/5001', Swarm: ['/ip4/127.0.0.1/tcp/4001'] },
    },
  }
}

/**
 * The request handler alone (no socket): `handler(new Request(url, { method: 'POST' }))`.
 * `closing` aborts long streams on stop.
 */
export function kuboDoubleHandler(
  state: KuboDoubleState,
  opts: { instant?: boolean; peerId?: string; closing?: AbortSignal; clock?: Clock } = {},
): (req: Request) => Promise<Response> {
  const peerId = opts.peerId ?? DOUBLE_PEER_ID
  const clock = opts.clock ?? systemClock
  const instant = !!opts.instant
  const num = (n: number) => (state.numbersAsStrings ? String(n) : n)

  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url)
    if (!url.pathname.startsWith('/api/v0/')) {
      return new Response('404 page not found', { status: 404 })
    }
    const endpoint = url.pathname.slice('/api/v0/'.length)
    const params = url.searchParams
    state.calls.set(endpoint, (state.calls.get(endpoint) ?? 0) + 1)
    if (!instant) state.requests.push(endpoint + url.search)
    if (request.method !== 'POST') return new Response('405 - Method Not Allowed', { status: 405 })
    if (state.override) {
      const r = await state.override({ endpoint, params, request })
      if (r) return r
    }
    switch (endpoint) {
      case 'id':
        return Response.json({
          ID: peerId,
          PublicKey: '',
          Addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${peerId}`],
          AgentVersion: 'kubo/0.43.1-double',
          Protocols: ['/ipfs/bitswap/1.2.0'],
        })
      case 'version':
        return Response.json({
          Version: '0.43.1',
          Commit: 'double',
          Repo: '18',
          System: 'amd64/linux',
          Golang: 'deno',
        })
      case 'pin/add':
        return pinAdd(params)
      case 'pin/rm': {
        const c = argCid(params.get('arg'))
        if (!c) return kuboError(`invalid path ${JSON.stringify(params.get('arg') ?? '')}`, 400)
        if (!state.pins.delete(mh(c))) return kuboError('not pinned or pinned indirectly')
        return Response.json({ Pins: [c.toString()] })
      }
      case 'pin/ls':
        return pinLs(params)
      case 'pin/update': {
        const [fromArg, toArg] = params.getAll('arg')
        if (!fromArg) return kuboError('argument "from-path" is required', 400)
        if (!toArg) return kuboError('argument "to-path" is required', 400)
        const from = argCid(fromArg)
        const to = argCid(toArg)
        if (!from || !to) return kuboError('invalid path', 400)
        if (state.pins.get(mh(from))?.type !== 'recursive') {
          return kuboError("'from' cid was not recursively pinned already")
        }
        if (state.pins.get(mh(to))?.type === 'recursive') {
          return kuboError("'to' cid was already recursively pinned")
        }
        state.pins.set(mh(to), { cid: to.toString(), type: 'recursive' })
        if (params.get('unpin') !== 'false') state.pins.delete(mh(from))
        return Response.json({ Pins: [from.toString(), to.toString()] })
      }
      case 'swarm/peers': {
        const peers = state.swarmPeers.map((p) => ({
          Addr: '/ip4/127.0.0.1/tcp/4001',
          Peer: p,
          Latency: '',
          Muxer: '',
          Direction: 0,
          Streams: null,
        }))
        return Response.json({
          Peers: peers.length === 0 && state.peersNullWhenEmpty ? null : peers,
        })
      }
      case 'swarm/connect': {
        const args = params.getAll('arg')
        if (args.length === 0) return kuboError('argument "address" is required', 400)
        state.connected.push(...args)
        return Response.json({
          Strings: args.map((a) => `connect ${a.split('/p2p/')[1] ?? a} success`),
        })
      }
      case 'repo/stat': {
        let size = state.repoSize
        if (size === undefined) {
          size = 0
          for (const b of state.blocks.values()) size += b.bytes.length
        }
        return Response.json({
          RepoSize: num(size),
          StorageMax: num(state.storageMax),
          NumObjects: num(state.blocks.size),
          RepoPath: '',
          Version: '',
        })
      }
      case 'repo/gc': {
        const lines: string[] = []
        for (const [k, b] of state.blocks) {
          if (state.pins.has(k)) continue
          state.blocks.delete(k)
          lines.push(JSON.stringify({ Key: { '/': b.cid } }))
        }
        for (const e of state.gcErrors) lines.push(JSON.stringify({ Error: e }))
        return ndjson(lines)
      }
      case 'config/show':
        return Response.json(state.config)
      case 'resolve': {
        const arg = params.get('arg') ?? ''
        const mapped = state.resolveMap.get(arg)
        if (mapped) return Response.json({ Path: `/ipfs/${mapped}` })
        const m = /^\/ipfs\/([^/]+)\/?$/.exec(arg)
        const c = m ? parseAnyCid(m[1]) : undefined
        if (c) return Response.json({ Path: `/ipfs/${c}` })
        if (arg.startsWith('/ipns/')) return kuboError(`could not resolve name: ${arg}`)
        return kuboError(
          `no link named ${JSON.stringify(arg.split('/').pop())} under ${arg.split('/')[2] ?? ''}`,
        )
      }
      case 'block/put':
        return await blockPut(params, request)
      case 'block/get': {
        const c = argCid(params.get('arg'))
        if (!c) {
          return kuboError(
            `invalid path ${
              JSON.stringify(params.get('arg') ?? '')
            }: path does not have enough components`,
          )
        }
        const b = state.blocks.get(mh(c))
        if (!b) return kuboError(`block was not found locally (offline): ipld: could not find ${c}`)
        return new Response(b.bytes as BodyInit, { headers: { 'content-type': 'text/plain' } })
      }
      case 'add':
        return await add(params, request)
      default:
        return new Response('404 page not found', { status: 404 })
    }
  }

  function pinAdd(params: URLSearchParams): Response {
    const args = params.getAll('arg')
    const cids = args.map(argCid)
    if (args.length === 0) return kuboError('argument "ipfs-path" is required', 400)
    const bad = cids.findIndex((c) => !c)
    if (bad >= 0) return kuboError(`invalid path ${JSON.stringify(args[bad])}`, 400)
    const recursive = params.get('recursive') !== 'false'
    for (const c of cids) {
      if (!recursive && state.pins.get(mh(c!))?.type === 'recursive') {
        return kuboError(`pin: ${c} already pinned recursively`)
      }
    }
    const commit = () => {
      for (const c of cids) {
        state.pins.set(mh(c!), { cid: c!.toString(), type: recursive ? 'recursive' : 'direct' })
      }
      return JSON.stringify({ Pins: cids.map(String) }) + '\n'
    }
    const prog = state.pinProgress
    if (instant || !prog || params.get('progress') !== 'true') {
      return new Response(commit(), {
        headers: { 'content-type': 'application/json', 'x-chunked-output': '1' },
      })
    }
    const closing = opts.closing
    let n = 0
    let cancelTimer: CancelTimer | undefined
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const stop = () => {
          cancelTimer?.()
          try {
            controller.close()
          } catch { /* closed */ }
        }
        // A client that goes away cancels the stream (cancel below); stop() closes it.
        closing?.addEventListener('abort', stop, { once: true })
        const tick = () => {
          if (closing?.aborted) return
          if (n < prog.steps && (prog.stallAt === undefined || n < prog.stallAt)) n++
          controller.enqueue(
            enc.encode(JSON.stringify({ Progress: num(n), Bytes: num(n * 1024) }) + '\n'),
          )
          if (n >= prog.steps && prog.stallAt === undefined) {
            controller.enqueue(enc.encode(commit()))
            controller.close()
            return
          }
          cancelTimer = clock.timeout(prog.intervalMs, tick)
        }
        cancelTimer = clock.timeout(prog.intervalMs, tick)
      },
      cancel() {
        cancelTimer?.()
      },
    })
    return new Response(body, {
      headers: { 'content-type': 'application/json', 'x-chunked-output': '1' },
    })
  }

  function pinLs(params: URLSearchParams): Response {
    const type = params.get('type') ?? 'all'
    if (!['all', 'recursive', 'direct', 'indirect'].includes(type)) {
      return kuboError(`invalid type '${type}', must be one of {direct, indirect, recursive, all}`)
    }
    const stream = params.get('stream') === 'true' || params.get('s') === 'true'
    const args = params.getAll('arg')
    const entries: { cid: string; type: string }[] = []
    if (args.length > 0) {
      for (const a of args) {
        const c = argCid(a)
        if (!c) return kuboError(`invalid path ${JSON.stringify(a)}`, 400)
        const p = state.pins.get(mh(c))
        if (!p || (type !== 'all' && p.type !== type)) return kuboError(`path '${a}' is not pinned`)
        entries.push({ cid: c.toString(), type: p.type })
      }
    } else {
      for (const p of state.pins.values()) if (type === 'all' || p.type === type) entries.push(p)
    }
    if (stream) return ndjson(entries.map((e) => JSON.stringify({ Cid: e.cid, Type: e.type })))
    const keys: Record<string, { Type: string; Name: string }> = {}
    for (const e of entries) keys[e.cid] = { Type: e.type, Name: '' }
    return Response.json({ Keys: keys })
  }

  async function blockPut(params: URLSearchParams, request: Request): Promise<Response> {
    const codecName = params.get('cid-codec') ?? (params.get('format') === 'v0' ? 'dag-pb' : 'raw')
    const codec = CODECS[codecName]
    if (codec === undefined) return kuboError(`unknown multicodec ${JSON.stringify(codecName)}`)
    const mhtype = params.get('mhtype') ?? 'sha2-256'
    const hasher = mhtype === 'sha2-256' ? sha256 : mhtype === 'sha2-512' ? sha512 : undefined
    if (!hasher) {
      return kuboError(`unsupported mhtype ${mhtype} (the double knows sha2-256, sha2-512)`)
    }
    let form: FormData
    try {
      form = await request.formData()
    } catch (err) {
      return kuboError(`file argument 'data' is required (${(err as Error).message})`, 400)
    }
    const lines: string[] = []
    for (const v of form.values()) {
      if (typeof v === 'string') continue
      const bytes = new Uint8Array(await v.arrayBuffer())
      const c = CID.createV1(codec, await hasher.digest(bytes))
      state.blocks.set(mh(c), { cid: c.toString(), bytes })
      if (params.get('pin') === 'true') {
        state.pins.set(mh(c), { cid: c.toString(), type: 'recursive' })
      }
      lines.push(JSON.stringify({ Key: c.toString(), Size: bytes.length }))
    }
    if (lines.length === 0) return kuboError("file argument 'data' is required", 400)
    return ndjson(lines)
  }

  /** `add` stores each file as one raw block (CIDv1, like `--raw-leaves --cid-version=1` for small files). */
  async function add(params: URLSearchParams, request: Request): Promise<Response> {
    let form: FormData
    try {
      form = await request.formData()
    } catch (err) {
      return kuboError(`expected a multipart body (${(err as Error).message})`, 400)
    }
    const lines: string[] = []
    for (const v of form.values()) {
      if (typeof v === 'string') continue
      const bytes = new Uint8Array(await v.arrayBuffer())
      const c = CID.createV1(0x55, await sha256.digest(bytes))
      state.blocks.set(mh(c), { cid: c.toString(), bytes })
      if (params.get('pin') !== 'false') {
        state.pins.set(mh(c), { cid: c.toString(), type: 'recursive' })
      }
      lines.push(
        JSON.stringify({
          Name: v.name || c.toString(),
          Hash: c.toString(),
          Size: String(bytes.length),
        }),
      )
    }
    return ndjson(lines)
  }
}

function ndjson(lines: string[]): Response {
  return new Response(lines.length ? lines.join('\n') + '\n' : '', {
    headers: {
      'content-type': 'application/json',
      'x-chunked-output': '1',
      'Trailer': 'X-Stream-Error',
    },
  })
}

/** Starts the double on 127.0.0.1 (and optionally a unix socket). */
export async function startKuboDouble(opts: KuboDoubleOptions = {}): Promise<KuboDouble> {
  const state = newDoubleState(opts.peerId)
  const closing = new AbortController()
  const handler = kuboDoubleHandler(state, {
    instant: opts.instant,
    peerId: opts.peerId,
    closing: closing.signal,
    clock: opts.clock,
  })
  const servers: Deno.HttpServer[] = []
  const tcp = Deno.serve({ hostname: '127.0.0.1', port: opts.port ?? 0, onListen() {} }, handler)
  servers.push(tcp)
  let unixMultiaddr: string | undefined
  if (opts.unixPath) {
    await Deno.remove(opts.unixPath).catch(() => {})
    servers.push(Deno.serve({ path: opts.unixPath, onListen() {} }, handler))
    unixMultiaddr = `/unix${opts.unixPath.startsWith('/') ? '' : '/'}${opts.unixPath}`
  }
  const port = tcp.addr.port
  let stopped: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    multiaddr: `/ip4/127.0.0.1/tcp/${port}`,
    unixMultiaddr,
    state,
    stop() {
      stopped ??= (async () => {
        closing.abort()
        await Promise.all(servers.map((s) => s.shutdown()))
        if (opts.unixPath) await Deno.remove(opts.unixPath).catch(() => {})
      })()
      return stopped
    },
  }
}

/** Stand-alone entry: `--port N [--instant] [--unix PATH] [--peer-id ID]`. */
async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '0' },
      instant: { type: 'boolean', default: false },
      unix: { type: 'string' },
      'peer-id': { type: 'string' },
    },
    strict: true,
  })
  const double = await startKuboDouble({
    port: Number(values.port),
    instant: values.instant,
    unixPath: values.unix,
    peerId: values['peer-id'],
  })
  console.log(double.multiaddr)
  if (double.unixMultiaddr) console.log(double.unixMultiaddr)
  const done = new Promise<void>((resolve) => {
    const onSignal = () => double.stop().then(() => resolve())
    Deno.addSignalListener('SIGINT', onSignal)
    Deno.addSignalListener('SIGTERM', onSignal)
  })
  await done
  Deno.exit(0)
}

if (import.meta.main) await main(Deno.args)
