/**
 * A fake IPFS Cluster REST API for ctl and client tests: fixed JSON shaped exactly like the
 * reference's (Go encoding/json of its api types), on 127.0.0.1 with a random port. Routes can be
 * replaced per test; every request is recorded.
 *
 * @example
 * ```ts
 * await using srv = startFakeCluster()
 * await ctlMain(['--host', srv.maddr, 'id'], io)
 * ```
 */

/** Valid peer IDs (from the reference's graph tests). */
export const PEERS = [
  'QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD',
  'QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ',
  'QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu',
] as const
/** Valid IPFS daemon peer IDs. */
export const IPFS_PEERS = [
  'QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV',
  'QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq',
  'QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL',
] as const
/** Valid CIDs. */
export const CIDS = [
  'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
  'bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
  'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n',
] as const
/** A CID the fake does not know (404 on /allocations/{cid}). */
export const MISSING_CID = 'QmQsdAdCHs4PRLi5tcoLfasYppryqQENxgAy4b2aS8xccb'

/** The `GET /id` fixture of a peer. */
export function idFixture(i = 0): Record<string, unknown> {
  return {
    id: PEERS[i],
    addresses: [
      `/ip4/192.168.1.${10 + i}/tcp/9096/p2p/${PEERS[i]}`,
      `/ip4/127.0.0.1/tcp/9096/p2p/${PEERS[i]}`,
    ],
    cluster_peers: [...PEERS],
    cluster_peers_addresses: [],
    version: '1.1.6',
    commit: '',
    rpc_protocol_version: '/ipfscluster/1.0/rpc',
    error: '',
    ipfs: {
      id: IPFS_PEERS[i],
      addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${IPFS_PEERS[i]}`, '/ip4/10.0.0.1/tcp/4001'],
      error: '',
    },
    peername: `peer${i}`,
  }
}

/** A pin fixture; `i` picks the CID. */
export function pinFixture(i = 0, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    replication_factor_min: i === 1 ? -1 : 2,
    replication_factor_max: i === 1 ? -1 : 3,
    name: i === 0 ? 'my pin' : '',
    mode: i === 2 ? 'direct' : 'recursive',
    shard_size: 0,
    user_allocations: null,
    expire_at: i === 2 ? '2031-05-06T07:08:09.5+02:00' : '0001-01-01T00:00:00Z',
    metadata: i === 0 ? { kind: 'text', a: '<b>&' } : null,
    pin_update: null,
    origins: [],
    cid: CIDS[i],
    type: 'pin',
    allocations: i === 1 ? [] : [PEERS[1], PEERS[0]],
    max_depth: i === 2 ? 0 : -1,
    reference: null,
    timestamp: '2024-03-04T05:06:07.123456789Z',
    ...extra,
  }
}

/** A cluster-wide status fixture. */
export function gpiFixture(i = 0, status = 'pinned'): Record<string, unknown> {
  return {
    cid: CIDS[i],
    name: i === 0 ? 'my pin' : '',
    allocations: [PEERS[0], PEERS[1]],
    origins: [],
    created: '2024-03-04T05:06:07.1Z',
    metadata: null,
    peer_map: {
      [PEERS[1]]: {
        peername: 'peer1',
        ipfs_peer_id: IPFS_PEERS[1],
        ipfs_peer_addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${IPFS_PEERS[1]}`],
        status,
        timestamp: '2024-03-04T05:06:08Z',
        error: '',
        attempt_count: 0,
        priority_pin: false,
      },
      [PEERS[0]]: {
        peername: 'a-very-long-peer-name-over-20',
        ipfs_peer_id: IPFS_PEERS[0],
        status: status === 'pinned' ? 'pin_error' : status,
        timestamp: '2024-03-04T05:06:09.5+01:00',
        error: status === 'pinned' ? 'context deadline exceeded' : '',
        attempt_count: 3,
        priority_pin: true,
      },
      [PEERS[2]]: {
        peername: '',
        status: 'remote',
        timestamp: '2024-03-04T05:06:10Z',
        error: '',
        attempt_count: 0,
        priority_pin: false,
      },
    },
  }
}

/** Metric fixtures expiring `inMs` from `now` (ns timestamps, as the reference). */
export function metricsFixture(now: number, inMs = 90 * 60_000): Record<string, unknown>[] {
  const ns = (ms: number) => BigInt(ms) * 1_000_000n + 123_456n
  return [
    {
      name: 'freespace',
      peer: PEERS[0],
      value: '12000000000',
      expire: ns(now + inMs),
      valid: true,
      weight: 12_345_678_901,
      partitionable: false,
      received_at: ns(now),
    },
    {
      name: 'freespace',
      peer: PEERS[1],
      value: '0',
      expire: ns(now + inMs),
      valid: true,
      weight: 0,
      partitionable: false,
      received_at: ns(now),
    },
  ]
}

/** Encodes like Go's json.Encoder (bigints as plain digits, one value per line). */
export function goEncode(v: unknown): string {
  const raw = (JSON as unknown as { rawJSON: (t: string) => unknown }).rawJSON
  const s = JSON.stringify(v, (_k, x) => typeof x === 'bigint' ? raw(x.toString()) : x)
  return s.replaceAll('<', '\\u003c').replaceAll('>', '\\u003e').replaceAll('&', '\\u0026') +
    '\n'
}

/** Builds a JSON response as the reference's API writes one. */
export function jsonResponse(v: unknown, status = 200): Response {
  return new Response(goEncode(v), { status, headers: { 'Content-Type': 'application/json' } })
}

/** An NDJSON stream response (200, or 204 when empty). */
export function streamResponse(items: unknown[]): Response {
  if (items.length === 0) return new Response(null, { status: 204 })
  return new Response(items.map(goEncode).join(''), {
    status: 200,
    headers: { 'Content-Type': 'application/json', Trailer: 'X-Stream-Error' },
  })
}

/** An API error response. */
export function errorResponse(code: number, message: string): Response {
  return jsonResponse({ code, message }, code)
}

/** A recorded request. */
export interface Recorded {
  method: string
  path: string
  query: URLSearchParams
  headers: Headers
  body: string
}

/** A route handler; return undefined to fall through to the defaults. */
export type Handler = (
  req: Request,
  url: URL,
  body: string,
) => Response | undefined | Promise<Response | undefined>

/** A running fake API. */
export interface FakeCluster extends AsyncDisposable {
  port: number
  url: string
  maddr: string
  requests: Recorded[]
  close(): Promise<void>
}

/** The default routes, answering with the fixtures above. */
export function defaultRoutes(now: () => number): Handler {
  return (req, url) => {
    const p = url.pathname
    const m = req.method
    if (m === 'GET' && p === '/id') return jsonResponse(idFixture(0))
    if (m === 'GET' && p === '/version') return jsonResponse({ version: '1.1.6' })
    if (m === 'GET' && p === '/peers') {
      return streamResponse([idFixture(0), idFixture(1), {
        ...idFixture(2),
        error: 'dial backoff',
      }])
    }
    if (m === 'GET' && p === '/allocations') {
      return streamResponse([pinFixture(0), pinFixture(1), pinFixture(2)])
    }
    let mm = /^\/allocations\/([^/]+)$/.exec(p)
    if (m === 'GET' && mm) {
      const i = CIDS.indexOf(mm[1] as typeof CIDS[number])
      return i < 0
        ? errorResponse(404, 'pin is not part of the pinset')
        : jsonResponse(pinFixture(i))
    }
    if (m === 'GET' && p === '/pins') {
      const cids = url.searchParams.get('cids')
      const list = cids
        ? cids.split(',').map((c) => CIDS.indexOf(c as typeof CIDS[number]))
        : [0, 1]
      return streamResponse(list.map((i) => gpiFixture(Math.max(i, 0))))
    }
    if (m === 'POST' && p === '/pins/recover') return streamResponse([gpiFixture(1, 'pin_queued')])
    mm = /^\/pins\/([^/]+)\/recover$/.exec(p)
    if (m === 'POST' && mm) return jsonResponse(gpiFixture(0, 'pinning'))
    mm = /^\/pins\/(?:ipfs\/)?([^/]+)$/.exec(p)
    if (mm) {
      const i = Math.max(0, CIDS.indexOf(mm[1] as typeof CIDS[number]))
      if (m === 'GET') return jsonResponse(gpiFixture(i))
      if (m === 'POST') {
        return jsonResponse(pinFixture(i, { name: url.searchParams.get('name') ?? '' }))
      }
      if (m === 'DELETE') return jsonResponse(pinFixture(i))
    }
    if (m === 'GET' && p === '/monitor/metrics') return jsonResponse(['freespace', 'ping'])
    if (m === 'GET' && p === '/monitor/metrics/freespace') {
      return jsonResponse(metricsFixture(now()))
    }
    if (m === 'GET' && p === '/health/alerts') {
      const a = metricsFixture(now(), -3 * 3600_000)[0]
      return jsonResponse([{
        ...a,
        name: 'ping',
        triggered_at: new Date(now() - 150_000).toISOString(),
      }])
    }
    if (m === 'GET' && p === '/health/bandwidth') {
      return jsonResponse({
        '/ipfs/id/1.0.0': { total_in: 1234, total_out: 5, rate_in: 1.5, rate_out: 0.125 },
        '/ipfscluster/1.0/rpc': { total_in: 98765432, total_out: 0, rate_in: 0, rate_out: 12.3456 },
      })
    }
    if (m === 'GET' && p === '/health/graph') {
      return jsonResponse({
        cluster_id: PEERS[0],
        id_to_peername: { [PEERS[0]]: 'peer0', [PEERS[1]]: 'peer1' },
        ipfs_links: { [IPFS_PEERS[0]]: [IPFS_PEERS[1]], [IPFS_PEERS[1]]: [IPFS_PEERS[0]] },
        cluster_links: { [PEERS[0]]: [PEERS[1]], [PEERS[1]]: [PEERS[0]], [PEERS[2]]: [] },
        cluster_trust_links: { [PEERS[0]]: true, [PEERS[1]]: true, [PEERS[2]]: false },
        cluster_to_ipfs: { [PEERS[0]]: IPFS_PEERS[0], [PEERS[1]]: IPFS_PEERS[1] },
      })
    }
    if (m === 'POST' && p === '/ipfs/gc') {
      return jsonResponse({
        peer_map: {
          [PEERS[1]]: {
            peer: PEERS[1],
            peername: 'peer1',
            keys: [{ key: CIDS[0] }, { key: null, error: 'gc fail' }],
          },
          [PEERS[0]]: { peer: PEERS[0], peername: '', keys: [], error: 'ipfs is down' },
        },
      })
    }
    if (m === 'DELETE' && /^\/peers\/[^/]+$/.test(p)) return new Response(null, { status: 204 })
    if (m === 'GET' && p === '/health') return new Response(null, { status: 204 })
    return errorResponse(404, 'not found')
  }
}

/** Starts the fake on 127.0.0.1:0; `routes` run before the defaults. */
export function startFakeCluster(
  routes?: Handler,
  opts: { now?: () => number; cert?: string; key?: string } = {},
): FakeCluster {
  const requests: Recorded[] = []
  const defaults = defaultRoutes(opts.now ?? Date.now)
  const server = Deno.serve({
    hostname: '127.0.0.1',
    port: 0,
    onListen: () => {},
    ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
  }, async (req) => {
    const url = new URL(req.url)
    const body = req.body ? await req.text() : ''
    requests.push({
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body,
    })
    const r = routes ? await routes(req, url, body) : undefined
    return r ?? (await defaults(req, url, body)) ?? errorResponse(404, 'not found')
  })
  const port = server.addr.port
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await server.shutdown()
  }
  return {
    port,
    url: `${opts.cert ? 'https' : 'http'}://127.0.0.1:${port}`,
    maddr: `/ip4/127.0.0.1/tcp/${port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  }
}
