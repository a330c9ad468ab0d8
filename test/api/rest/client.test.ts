/**
 * The REST client against fake IPFS Cluster APIs on 127.0.0.1: routes and queries, incremental
 * streams, the X-Stream-Error trailer, API and transport errors (with the reference's wording),
 * auth, TLS with and without certificate checks, timeouts, aborts, fail-over, unix sockets,
 * waitFor and the multipart body of add.
 */
import { deepEqual, equal, match, ok, rejects } from 'node:assert/strict'
import { ApiError, ipfsPath, pinTypeFilter, restClient } from '../../../src/api/rest/client.ts'
import { parseEndpoint } from '../../../src/api/rest/client_transport.ts'
import { DeadlineExceededError, statusReached } from '../../../src/api/rest/client_wait.ts'
import {
  CIDS,
  errorResponse,
  gpiFixture,
  jsonResponse,
  MISSING_CID,
  PEERS,
  pinFixture,
  startFakeCluster,
} from '../../cli/ctl/fake_cluster.ts'
import { manualClock, recordingClock } from '../../support/manual_clock.ts'
import { waitFor } from '../../support/wait.ts'

const FIXTURES = new URL('../../fixtures/tls/', import.meta.url)
const CERT = Deno.readTextFileSync(new URL('cert.pem', FIXTURES))
const KEY = Deno.readTextFileSync(new URL('key.pem', FIXTURES))
const CA = Deno.readTextFileSync(new URL('ca.pem', FIXTURES))

Deno.test('client: plain routes decode into Go-shaped objects', async () => {
  await using srv = startFakeCluster()
  const c = restClient({ host: srv.maddr })
  const id = await c.id()
  equal(id.id, PEERS[0])
  equal(id.peername, 'peer0')
  deepEqual(await c.version(), { version: '1.1.6' })
  const pin = await c.allocation(CIDS[2])
  equal(pin.mode, 'direct')
  equal(pin.pin_update, null)
  deepEqual(await c.metricNames(), ['freespace', 'ping'])
  equal((await c.metrics('freespace'))?.length, 2)
  equal(typeof (await c.bandwidth())?.['/ipfs/id/1.0.0'].rate_in, 'number')
  equal((await c.graph()).cluster_id, PEERS[0])
  equal(Object.keys((await c.repoGC()).peer_map ?? {}).length, 2)
  await c.peerRemove(PEERS[1])
  await c.health()
  const peers = []
  for await (const p of c.peers()) peers.push(p.id)
  deepEqual(peers, [...PEERS])
})

Deno.test('client: paths, methods and query strings follow the reference client', async () => {
  await using srv = startFakeCluster((_req, url) => {
    if (url.pathname.startsWith('/pins/ipfs/')) return jsonResponse(pinFixture(0))
  })
  const c = restClient({ host: srv.url })
  await c.pinPath(CIDS[0], { name: 'a b', replication_factor_min: 1, metadata: { k: 'v' } })
  await c.pin(CIDS[1], { mode: 'direct' })
  await c.unpinPath(`/ipfs/${CIDS[0]}/sub/`)
  await c.status(CIDS[0], { local: true })
  await c.recover(CIDS[0])
  for await (const _ of c.statusAll({ filter: 'pinned,error', cids: [] })) { /* drain */ }
  for await (const _ of c.allocations('pin,shard-pin')) { /* drain */ }
  for await (const _ of c.recoverAll({ local: true })) { /* drain */ }
  const seen = srv.requests.map((r) => `${r.method} ${r.path}?${r.query}`)
  deepEqual(seen, [
    `POST /pins/ipfs/${
      CIDS[0]
    }?meta-k=v&mode=recursive&name=a+b&replication-max=0&replication-min=1&shard-size=0&user-allocations=`,
    `POST /pins/${
      CIDS[1]
    }?mode=direct&name=&replication-max=0&replication-min=0&shard-size=0&user-allocations=`,
    `DELETE /pins/ipfs/${CIDS[0]}/sub/?`,
    `GET /pins/${CIDS[0]}?local=true`,
    `POST /pins/${CIDS[0]}/recover?local=false`,
    'GET /pins?local=false&filter=cluster_error%2Cpin_error%2Cunpin_error%2Cpinned&cids=',
    'GET /allocations?filter=pin%2Cshard-pin',
    'POST /pins/recover?local=true',
  ])
})

Deno.test('client: ipfs paths and pin type filters as the reference builds them', () => {
  equal(ipfsPath(CIDS[0]), `/ipfs/${CIDS[0]}`)
  equal(ipfsPath(`/ipfs/${CIDS[0]}//a/./b`), `/ipfs/${CIDS[0]}/a/b`)
  equal(ipfsPath('/ipns/example.org'), '/ipns/example.org')
  let msg = ''
  try {
    ipfsPath('')
  } catch (e) {
    msg = (e as Error).message
  }
  equal(msg, 'invalid path "/ipfs/": path does not have enough components')
  equal(pinTypeFilter('all'), 'all')
  equal(pinTypeFilter(''), 'all')
  equal(pinTypeFilter('pin,meta-pin,clusterdag-pin,shard-pin'), 'all')
  equal(pinTypeFilter('shard-pin,pin'), 'pin,shard-pin')
  equal(pinTypeFilter('bogus'), '')
})

Deno.test('client: endpoints from multiaddrs and URLs', () => {
  deepEqual(parseEndpoint('/ip4/127.0.0.1/tcp/9094', false), { baseUrl: 'http://127.0.0.1:9094' })
  deepEqual(parseEndpoint('/ip6/::1/tcp/9094', true), { baseUrl: 'https://[::1]:9094' })
  deepEqual(parseEndpoint('/dns4/localhost/tcp/80', false), { baseUrl: 'http://localhost:80' })
  deepEqual(parseEndpoint('/unix/tmp/api.sock', false), {
    baseUrl: 'http://restapi',
    socketPath: '/tmp/api.sock',
  })
  deepEqual(parseEndpoint('https://example.org:8443/', false), {
    baseUrl: 'https://example.org:8443',
  })
  for (
    const bad of [
      'foo',
      '/ip4/1.2.3.4/udp/1',
      `/ip4/127.0.0.1/tcp/9096/p2p/${PEERS[0]}`,
      '/dnsaddr/x',
    ]
  ) {
    let err: unknown
    try {
      parseEndpoint(bad, false)
    } catch (e) {
      err = e
    }
    equal((err as Error)?.name, 'EndpointError', bad)
  }
})

Deno.test('client: API errors carry the server code and message', async () => {
  await using srv = startFakeCluster((_req, url) => {
    if (url.pathname === '/version') return new Response('bad gateway\n', { status: 502 })
    if (url.pathname === '/peers') return errorResponse(500, 'rpc down')
    if (url.pathname === '/id') return new Response('', { status: 200 })
  })
  const c = restClient({ host: srv.maddr })
  await rejects(c.allocation(MISSING_CID), (e) => {
    ok(e instanceof ApiError)
    equal(e.code, 404)
    equal(e.message, 'pin is not part of the pinset')
    equal(e.toString(), 'pin is not part of the pinset (404)')
    return true
  })
  await rejects(c.version(), { name: 'ApiError', code: 502, message: 'bad gateway\n' })
  await rejects(async () => {
    for await (const _ of c.peers()) { /* none */ }
  }, { code: 500, message: 'rpc down' })
  await rejects(c.id(), { code: 200, message: 'unexpected end of JSON input' })
})

Deno.test('client: transport errors are code 0 with Go wording', async () => {
  const c = restClient({ host: '/ip4/127.0.0.1/tcp/1' })
  await rejects(c.id(), {
    name: 'ApiError',
    code: 0,
    message: 'Get "http://127.0.0.1:1/id": dial tcp 127.0.0.1:1: connect: connection refused',
  })
})

Deno.test('client: streams are read incrementally, not gathered', async () => {
  let release!: () => void
  const gate = new Promise<void>((r) => release = r)
  await using srv = startFakeCluster((_req, url) => {
    if (url.pathname !== '/pins') return
    const enc = new TextEncoder()
    return new Response(
      new ReadableStream({
        async start(ctl) {
          ctl.enqueue(enc.encode(JSON.stringify(gpiFixture(0)) + '\n'))
          await gate // the second item only comes after the client saw the first
          ctl.enqueue(enc.encode(JSON.stringify(gpiFixture(1)) + '\n'))
          ctl.close()
        },
      }),
      { headers: { 'Content-Type': 'application/json' } },
    )
  })
  const got: string[] = []
  for await (const g of restClient({ host: srv.maddr }).statusAll()) {
    got.push(g.cid)
    if (got.length === 1) release()
  }
  deepEqual(got, [CIDS[0], CIDS[1]])
})

/** A raw HTTP/1.1 server that can send trailers (Deno.serve cannot). */
function trailerServer(body: string[], trailers: string[]): { port: number; close(): void } {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const enc = new TextEncoder()
  ;(async () => {
    for await (const conn of l) {
      const buf = new Uint8Array(4096)
      await conn.read(buf)
      let out = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTrailer: X-Stream-Error\r\n' +
        'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
      for (const b of body) out += `${enc.encode(b).length.toString(16)}\r\n${b}\r\n`
      out += '0\r\n' + trailers.map((t) => `X-Stream-Error: ${t}\r\n`).join('') + '\r\n'
      await conn.write(enc.encode(out))
      conn.close()
    }
  })().catch(() => {})
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() }
}

Deno.test('client: X-Stream-Error trailers fail the stream after its items', async () => {
  const line = JSON.stringify(gpiFixture(0)) + '\n'
  const bad = trailerServer([line, line], ['boom', '', 'bang'])
  const good = trailerServer([line], [''])
  try {
    const got: string[] = []
    await rejects(async () => {
      for await (const g of restClient({ host: `/ip4/127.0.0.1/tcp/${bad.port}` }).statusAll()) {
        got.push(g.cid)
      }
    }, { name: 'ApiError', code: 500, message: 'boom; bang' })
    equal(got.length, 2)
    let n = 0
    for await (const _ of restClient({ host: `/ip4/127.0.0.1/tcp/${good.port}` }).statusAll()) n++
    equal(n, 1) // an empty trailer is success
  } finally {
    bad.close()
    good.close()
  }
})

Deno.test('client: with an injected fetch, trailers are unseen and the stream succeeds', async () => {
  const line = JSON.stringify(gpiFixture(0)) + '\n'
  const bad = trailerServer([line], ['boom'])
  try {
    let n = 0
    const c = restClient({ host: `/ip4/127.0.0.1/tcp/${bad.port}`, fetch })
    for await (const _ of c.statusAll()) n++
    equal(n, 1)
  } finally {
    bad.close()
  }
})

Deno.test('client: basic auth and bearer tokens', async () => {
  await using srv = startFakeCluster((req, url) => {
    if (url.pathname === '/token') return jsonResponse({ token: 'abc.def.ghi' })
    const a = req.headers.get('authorization')
    if (a !== 'Basic dXNlcjpww6Fzcw==' && a !== 'Bearer abc.def.ghi') {
      return errorResponse(401, 'unauthorized: access denied')
    }
  })
  await rejects(restClient({ host: srv.maddr }).id(), { code: 401 })
  const basic = restClient({ host: srv.maddr, basicAuth: { user: 'user', pass: 'páss' } })
  equal((await basic.id()).id, PEERS[0])
  const token = await basic.getToken()
  equal(token, 'abc.def.ghi')
  equal((await restClient({ host: srv.maddr, token }).id()).id, PEERS[0])
})

Deno.test('client: TLS verifies certificates unless told not to', async () => {
  await using srv = startFakeCluster(undefined, { cert: CERT, key: KEY })
  await rejects(restClient({ host: srv.maddr, https: true }).id(), {
    code: 0,
    message:
      `Get "https://127.0.0.1:${srv.port}/id": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
  })
  equal(
    (await restClient({ host: srv.maddr, https: true, noCheckCertificate: true }).id()).id,
    PEERS[0],
  )
  equal((await restClient({ host: srv.maddr, https: true, caCerts: [CA] }).id()).id, PEERS[0])
  // https against a plain HTTP server fails (reference t0041).
  await using plain = startFakeCluster()
  await rejects(
    restClient({ host: plain.maddr, https: true, noCheckCertificate: true }).id(),
    {
      code: 0,
      message:
        `Get "https://127.0.0.1:${plain.port}/id": http: server gave HTTP response to HTTPS client`,
    },
  )
})

Deno.test('client: timeouts and aborts', async () => {
  let stop!: () => void
  const hang = new Promise<void>((r) => stop = r)
  await using srv = startFakeCluster(async (_req, url) => {
    if (url.pathname === '/id') {
      await hang
      return jsonResponse({})
    }
  })
  try {
    // The timeout runs on the client's clock: 149 ms is not enough, 150 ms is.
    const clock = manualClock()
    let settled = false
    const timingOut = restClient({ host: srv.maddr, timeoutMs: 150, clock }).id()
    timingOut.then(() => (settled = true), () => (settled = true))
    await waitFor(() => srv.requests.length === 1)
    await clock.advance(149)
    equal(settled, false)
    await clock.advance(1)
    await rejects(timingOut, {
      code: 0,
      message:
        `Get "http://127.0.0.1:${srv.port}/id": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    })
    // An abort ends a request that is waiting for its answer.
    const ac = new AbortController()
    const p = restClient({ host: srv.maddr }).id({ signal: ac.signal })
    await waitFor(() => srv.requests.length === 2)
    ac.abort(new Error('stop it'))
    await rejects(p, { message: 'stop it' })
  } finally {
    stop()
  }
})

Deno.test('client: fails over to the next address when one does not answer', async () => {
  await using srv = startFakeCluster()
  const c = restClient({ host: `/ip4/127.0.0.1/tcp/1,${srv.maddr}` })
  equal((await c.id()).id, PEERS[0])
})

Deno.test('client: unix socket API addresses', async () => {
  const dir = await Deno.makeTempDir()
  const path = `${dir}/api.sock`
  const server = Deno.serve({ path, onListen: () => {} }, () => jsonResponse({ version: '1.1.6' }))
  try {
    deepEqual(await restClient({ host: `/unix${path}` }).version(), { version: '1.1.6' })
  } finally {
    await server.shutdown()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('waitFor: error statuses fail at once, limits count peers at the target', () => {
  const g = (statuses: string[]) =>
    ({
      ...gpiFixture(0),
      peer_map: Object.fromEntries(statuses.map((s, i) => [`p${i}`, { status: s }])),
    }) as unknown as Parameters<typeof statusReached>[1]
  equal(statusReached('pinned', g(['pinned', 'remote']), 0), true)
  equal(statusReached('pinned', g(['pinned', 'pinning']), 0), false)
  equal(statusReached('pinned', g(['pinned', 'pinning']), 1), true)
  equal(statusReached('pinned', g(['pinned', 'pinning']), 5), false) // capped at the peer count: 2
  equal(statusReached('unpinned', g(['unpinned', 'remote']), 0), false)
  for (const bad of ['pin_error', 'cluster_error', 'unpin_error', 'undefined']) {
    let msg = ''
    try {
      statusReached('pinned', g(['pinned', bad]), 1)
    } catch (e) {
      msg = (e as Error).message
    }
    equal(msg, 'error has occurred while attempting to reach status: pinned')
  }
})

Deno.test('waitFor: polls until reached, times out with DeadlineExceeded', async () => {
  let polls = 0
  await using srv = startFakeCluster((req, url) => {
    if (req.method === 'GET' && url.pathname === `/pins/${CIDS[0]}`) {
      polls++
      const st = polls < 3 ? 'pinning' : 'pinned'
      const g = gpiFixture(0, st) as { peer_map: Record<string, { status: string }> }
      for (const v of Object.values(g.peer_map)) v.status = st
      return jsonResponse(g)
    }
  })
  const clock = recordingClock()
  const c = restClient({ host: srv.maddr, clock })
  const st = await c.waitFor(CIDS[0], 'pinned')
  equal(polls, 3)
  deepEqual(clock.sleeps, [1000, 1000, 1000]) // the first poll comes one period after the start
  equal(Object.values(st.peer_map)[0].status, 'pinned')
  polls = -1000
  clock.sleeps.length = 0
  await rejects(
    c.waitFor(CIDS[0], 'pinned', { checkFreqMs: 20, timeoutMs: 120 }),
    (e) => e instanceof DeadlineExceededError && e.message === 'context deadline exceeded',
  )
  // Polls at 20, 40, … 100 ms; the deadline at 120 ms ends the sixth pause.
  equal(polls, -1000 + 5)
  deepEqual(clock.sleeps, [20, 20, 20, 20, 20, 20])
})

Deno.test('add: multipart body of files and directories, reference query', async () => {
  const dir = await Deno.makeTempDir()
  await Deno.mkdir(`${dir}/d/sub`, { recursive: true })
  await Deno.writeTextFile(`${dir}/d/b.txt`, 'bbb')
  await Deno.writeTextFile(`${dir}/d/a b.txt`, 'aaa')
  await Deno.writeTextFile(`${dir}/d/.hidden`, 'h')
  await Deno.writeTextFile(`${dir}/d/sub/c.txt`, 'c')
  await Deno.writeTextFile(`${dir}/f.txt`, 'top')
  let body = ''
  let ctype = ''
  await using srv = startFakeCluster((req, url, text) => {
    if (url.pathname !== '/add') return
    ctype = req.headers.get('content-type') ?? ''
    body = text
    return new Response(
      JSON.stringify({ name: 'f.txt', cid: CIDS[0], size: 3 }) + '\n' +
        JSON.stringify({ name: 'd', cid: CIDS[1] }) + '\n',
      { headers: { 'Content-Type': 'application/json' } },
    )
  })
  const c = restClient({ host: srv.maddr })
  await rejects(async () => {
    for await (const _ of c.add([`${dir}/d`], {})) { /* none */ }
  }, { message: `${dir}/d is a directory, but Recursive option is not set` })
  const out = []
  for await (const o of c.add([`${dir}/f.txt`, `${dir}/d`], { recursive: true, name: 'n' })) {
    out.push(o)
  }
  deepEqual(out, [{ name: 'f.txt', cid: CIDS[0], size: 3 }, { name: 'd', cid: CIDS[1] }])
  const boundary = /boundary=([0-9a-f]+)$/.exec(ctype)![1]
  const parts = body.split(`--${boundary}`).slice(1, -1)
  const names = parts.map((p) => /filename="([^"]*)"/.exec(p)![1])
  deepEqual(names, ['f.txt', 'd', 'd%2Fa+b.txt', 'd%2Fb.txt', 'd%2Fsub', 'd%2Fsub%2Fc.txt'])
  match(parts[0], /Content-Type: application\/octet-stream\r\n\r\ntop\r\n$/)
  match(parts[1], /Content-Type: application\/x-directory\r\n\r\n\r\n$/)
  equal(parts[1].includes('Abspath-Encoded'), false) // only files carry their path
  match(
    parts[0],
    /^\r\nAbspath-Encoded: .*f\.txt\r\nContent-Disposition: form-data; name="file\?mode=0\d{3}&mtime=\d+(&mtime-nsecs=\d+)?"; filename="f\.txt"\r\n/,
  )
  const add = srv.requests.find((r) => r.path === '/add')!
  equal(add.query.get('stream-channels'), 'true')
  equal(add.query.get('recursive'), 'true')
  equal(add.query.get('name'), 'n')
  equal(add.query.get('chunker'), 'size-262144')
  equal(add.query.get('shard-size'), '104857600')
  await Deno.remove(dir, { recursive: true })
})
