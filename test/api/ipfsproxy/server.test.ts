/**
 * The IPFS proxy in-process: hijacked endpoints against a fake cluster (what each becomes, in
 * Kubo's shapes and errors), and the reverse proxy against Kubo-shaped servers on real sockets
 * (TCP and a unix socket): requests and answers pass unchanged and stream, an error Kubo reports
 * in a trailer cuts the answer short, a Kubo that is down is a 502.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ipfsProxySection } from '../../../src/api/ipfsproxy/config.ts'
import { ipfsProxy, type IpfsProxyDeps } from '../../../src/api/ipfsproxy/server.ts'
import type { AddContent, AddedOutput } from '../../../src/adder/content.ts'
import type { AddParams } from '../../../src/adder/add_params.ts'
import { ListenError } from '../../../src/net/listen_error.ts'
import { defaultPinOptions } from '../../../src/types/pin.ts'
import { VERSION } from '../../../src/types/id.ts'
import { fakeCluster } from '../../support/fake_cluster.ts'
import { startKuboDouble } from '../../support/kubo_double.ts'
import { manualClock } from '../../support/manual_clock.ts'

const CID = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const CID2 = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'

/** A proxy in front of `node` (a multiaddr), with a fake cluster. */
function proxyOf(
  node: string,
  deps: Partial<IpfsProxyDeps> = {},
  cfg: Record<string, unknown> = {},
) {
  const config = ipfsProxySection.load({
    listen_multiaddress: '/ip4/127.0.0.1/tcp/0',
    node_multiaddress: node,
    ...cfg,
  })
  const cluster = fakeCluster()
  const proxy = ipfsProxy(config, { cluster, configDir: '/nonexistent', version: VERSION, ...deps })
  const call = (path: string, init: RequestInit = {}) =>
    proxy.handler(new Request(`http://proxy${path}`, { method: 'POST', ...init }))
  return { proxy, cluster, call }
}

/** Kubo stand-in on a TCP port: answers with `answer`, records every request. */
function upstreamServer(answer: (req: Request) => Response | Promise<Response>) {
  const seen: { method: string; url: string; headers: Headers; body: string }[] = []
  const srv = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, async (req) => {
    seen.push({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body ? await req.text() : '',
    })
    return answer(req)
  })
  return { seen, multiaddr: `/ip4/127.0.0.1/tcp/${srv.addr.port}`, stop: () => srv.shutdown() }
}

Deno.test('proxy: other endpoints, and OPTIONS and HEAD on any, go to Kubo unchanged', async () => {
  const up = upstreamServer((req) =>
    new Response(req.method === 'HEAD' ? null : `answer to ${req.method}`, {
      status: 201,
      headers: { 'X-Kubo': 'yes', 'Content-Type': 'text/plain', 'Connection': 'keep-alive' },
    })
  )
  const { proxy, cluster } = proxyOf(up.multiaddr)
  try {
    const res = await proxy.handler(
      new Request('http://proxy/api/v0/files/write?arg=/a%20b&create=true', {
        method: 'POST',
        headers: { 'X-Custom': 'v', 'Content-Type': 'application/octet-stream' },
        body: 'payload',
      }),
      { remoteAddr: { transport: 'tcp', hostname: '10.0.0.7', port: 1 } } as Deno.ServeHandlerInfo,
    )
    assert.equal(res.status, 201)
    assert.equal(await res.text(), 'answer to POST')
    assert.equal(res.headers.get('x-kubo'), 'yes')
    assert.equal(res.headers.get('connection'), null, 'hop-by-hop headers are not passed on')
    const got = up.seen[0]
    assert.equal(
      new URL(got.url).pathname + new URL(got.url).search,
      '/api/v0/files/write?arg=/a%20b&create=true',
    )
    assert.equal(got.headers.get('x-custom'), 'v')
    assert.equal(got.headers.get('x-forwarded-for'), '10.0.0.7')
    assert.equal(got.body, 'payload')

    // OPTIONS and HEAD on a hijacked path are Kubo's too.
    const opt = await proxy.handler(
      new Request(`http://proxy/api/v0/pin/add?arg=${CID}`, { method: 'OPTIONS' }),
    )
    assert.equal(await opt.text(), 'answer to OPTIONS')
    const head = await proxy.handler(
      new Request(`http://proxy/api/v0/pin/add?arg=${CID}`, { method: 'HEAD' }),
    )
    assert.equal(head.status, 201)
    assert.equal(await head.text(), '')
    assert.deepEqual(up.seen.map((s) => s.method), ['POST', 'OPTIONS', 'HEAD'])
    assert.equal(cluster.calls.length, 0, 'nothing reached the cluster')
  } finally {
    await proxy.stop()
    await up.stop()
  }
})

Deno.test('proxy: a body streams both ways, piece by piece, over a unix socket too', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'api.sock')
  // Kubo stand-in on a unix socket: echoes the request body back, doubled.
  const srv = Deno.serve({ path, onListen() {} }, (req) => {
    const body = req.body!.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          c.enqueue(chunk)
          c.enqueue(chunk)
        },
      }),
    )
    return new Response(body)
  })
  const { proxy } = proxyOf(`/unix/${path}`)
  try {
    const size = 8 * 1024 * 1024
    let sent = 0
    const upload = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= size) return c.close()
        c.enqueue(new Uint8Array(64 * 1024).fill(sent / (64 * 1024) % 251))
        sent += 64 * 1024
      },
    })
    const res = await proxy.handler(
      new Request(
        'http://proxy/api/v0/block/put',
        { method: 'POST', body: upload, duplex: 'half' } as RequestInit,
      ),
    )
    assert.equal(res.status, 200)
    let got = 0
    let sum = 0
    for await (const c of res.body!) {
      got += c.byteLength
      for (let i = 0; i < c.length; i++) sum += c[i]
    }
    assert.equal(got, 2 * size)
    let want = 0
    for (let k = 0; k < size / (64 * 1024); k++) want += 2 * 64 * 1024 * (k % 251)
    assert.equal(sum, want, 'the bytes came back as sent')
  } finally {
    await proxy.stop()
    await srv.shutdown()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('proxy: an error Kubo sends in the X-Stream-Error trailer cuts the answer short', async () => {
  // A raw HTTP/1.1 server: Deno.serve cannot send trailers, and Kubo does.
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const serving = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(8192)
      await conn.read(buf)
      const ok = new TextEncoder().encode(
        'HTTP/1.1 200 OK\r\nTrailer: X-Stream-Error\r\nTransfer-Encoding: chunked\r\n' +
          'Content-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\nX-Stream-Error: block not found\r\n\r\n',
      )
      await conn.write(ok)
      conn.close()
    }
  })()
  const { proxy } = proxyOf(`/ip4/127.0.0.1/tcp/${(listener.addr as Deno.NetAddr).port}`)
  try {
    const res = await proxy.handler(
      new Request(`http://proxy/api/v0/cat?arg=${CID}`, { method: 'POST' }),
    )
    assert.equal(res.status, 200)
    await assert.rejects(res.text(), /block not found/)
  } finally {
    await proxy.stop()
    listener.close()
    await serving.catch(() => {})
  }
})

Deno.test("proxy: a Kubo that does not answer is a 502 in Kubo's error shape", async () => {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (l.addr as Deno.NetAddr).port
  l.close()
  const { proxy, call } = proxyOf(`/ip4/127.0.0.1/tcp/${port}`)
  try {
    const res = await call('/api/v0/cat?arg=x')
    assert.equal(res.status, 502)
    const body = await res.json()
    assert.match(
      body.Message,
      new RegExp(`cannot reach the IPFS daemon at http://127.0.0.1:${port}`),
    )
    assert.equal(body.Type, 'error')
  } finally {
    await proxy.stop()
  }
})

Deno.test('proxy: pin/add and pin/rm are cluster pins of the path, with the default replication', async () => {
  const kubo = await startKuboDouble()
  const { proxy, cluster, call } = proxyOf(kubo.multiaddr)
  try {
    let res = await call(`/api/v0/pin/add?arg=${CID}&recursive=true&progress=true`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { Pins: [CID] })
    assert.equal(res.headers.get('content-type'), 'application/json')
    assert.equal(res.headers.get('server'), `ipfs-cluster/ipfsproxy/${VERSION}`)
    const pin = cluster.pinset.get(CID)!
    assert.equal(pin.replication_factor_min, 0, 'the cluster default')
    assert.equal(pin.mode, 'recursive')
    assert.deepEqual(cluster.calls[0], {
      method: 'pinPath',
      args: [`/ipfs/${CID}`, { ...defaultPinOptions() }],
    })
    assert.equal(kubo.state.calls.get('pin/add'), undefined, 'Kubo was not asked to pin')

    // Kubo's recursive=false (and the reference's type=direct) pin directly; the path form too.
    res = await call(`/api/v0/pin/add/${CID2}?recursive=false&name=n`)
    assert.deepEqual(await res.json(), { Pins: [CID2] })
    assert.equal(cluster.pinset.get(CID2)!.mode, 'direct')
    assert.equal(cluster.pinset.get(CID2)!.name, 'n')

    res = await call(`/api/v0/pin/rm?arg=/ipfs/${CID}`)
    assert.deepEqual(await res.json(), { Pins: [CID] })
    assert.equal(cluster.pinset.has(CID), false)

    res = await call('/api/v0/pin/add?arg=notacid')
    assert.equal(res.status, 400)
    const err = await res.json()
    assert.match(err.Message, /^Error parsing IPFS Path: invalid path "\/ipfs\/notacid"/)
    assert.equal(err.Code, 0)
    assert.equal(err.Type, 'error')

    // Not 404, which Kubo's clients read as "Command not found".
    res = await call(`/api/v0/pin/rm?arg=${CID}`)
    assert.equal(res.status, 500)
    assert.equal((await res.json()).Message, 'pin is not part of the pinset')
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

Deno.test('proxy: pin/ls lists cluster pins with their real type, whole, streamed or one by one', async () => {
  const kubo = await startKuboDouble()
  const { proxy, cluster, call } = proxyOf(kubo.multiaddr)
  try {
    await cluster.pin(CID, defaultPinOptions())
    await cluster.pin(CID2, { ...defaultPinOptions(), mode: 'direct' })
    let res = await call('/api/v0/pin/ls')
    assert.deepEqual(await res.json(), {
      Keys: { [CID]: { Type: 'recursive' }, [CID2]: { Type: 'direct' } },
    })
    res = await call('/api/v0/pin/ls?type=direct')
    assert.deepEqual(await res.json(), { Keys: { [CID2]: { Type: 'direct' } } })
    res = await call('/api/v0/pin/ls?stream=true')
    assert.equal(res.status, 200)
    assert.deepEqual((await res.text()).trim().split('\n').map((l) => JSON.parse(l)), [
      { Cid: CID, Type: 'recursive' },
      { Cid: CID2, Type: 'direct' },
    ])
    res = await call(`/api/v0/pin/ls?arg=/ipfs/${CID2}`)
    assert.deepEqual(await res.json(), { Keys: { [CID2]: { Type: 'direct' } } })
    res = await call(`/api/v0/pin/ls/${CID}?stream=true`)
    assert.deepEqual(JSON.parse(await res.text()), { Cid: CID, Type: 'recursive' })

    res = await call(`/api/v0/pin/ls?arg=${CID}&type=direct`)
    assert.equal(res.status, 500)
    assert.equal((await res.json()).Message, `path '${CID}' is not pinned`)
    res = await call('/api/v0/pin/ls?type=some')
    assert.equal(res.status, 400)
    assert.match((await res.json()).Message, /invalid type 'some'/)
    res = await call('/api/v0/pin/ls?arg=xyz')
    assert.equal(res.status, 400)

    // An empty pinset: 200 and an empty stream (Kubo's answer), or no keys.
    cluster.pinset.clear()
    res = await call('/api/v0/pin/ls?stream=true')
    assert.equal(res.status, 200)
    assert.equal(await res.text(), '')
    res = await call('/api/v0/pin/ls')
    assert.deepEqual(await res.json(), { Keys: {} })

    // A listing that fails after its first pin ends with Kubo's error object.
    await cluster.pin(CID, defaultPinOptions())
    await cluster.pin(CID2, defaultPinOptions())
    cluster.fail.set('pins', new Error('state is gone'))
    cluster.failAfter = 1
    res = await call('/api/v0/pin/ls?stream=true')
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(lines, [
      { Cid: CID, Type: 'recursive' },
      { Message: 'state is gone', Code: 0, Type: 'error' },
    ])
    cluster.failAfter = 0
    res = await call('/api/v0/pin/ls')
    assert.equal(res.status, 500)
    assert.equal((await res.json()).Message, 'state is gone')
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

Deno.test('proxy: pin/update pins the new path as an update of the old one, then unpins it', async () => {
  const kubo = await startKuboDouble()
  const resolved: string[] = []
  const { proxy, cluster, call } = proxyOf(kubo.multiaddr, {
    resolve: (p) => {
      resolved.push(p)
      return Promise.resolve(CID)
    },
  })
  try {
    let res = await call('/api/v0/pin/update')
    assert.equal(res.status, 400)
    assert.equal((await res.json()).Message, 'argument "from-path" is required')
    res = await call(`/api/v0/pin/update?arg=${CID}`)
    assert.equal(res.status, 400)
    assert.equal((await res.json()).Message, 'argument "to-path" is required')

    await cluster.pin(CID, { ...defaultPinOptions(), name: 'site' })
    res = await call(`/api/v0/pin/update?arg=/ipns/example.org&arg=${CID2}`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { Pins: [CID, CID2] })
    assert.deepEqual(resolved, ['/ipns/example.org'])
    const pinPath = cluster.calls.find((c) => c.method === 'pinPath')!
    assert.equal((pinPath.args[1] as { pin_update: string }).pin_update, CID)
    assert.equal(cluster.pinset.has(CID), false, 'the old one is unpinned')

    await cluster.pin(CID, defaultPinOptions())
    res = await call(`/api/v0/pin/update?arg=${CID2}&arg=${CID}&unpin=false`)
    assert.deepEqual(await res.json(), { Pins: [CID2, CID] })
    assert.ok(cluster.pinset.has(CID2), 'unpin=false keeps the old one')
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

/** An AddContent double: records its params, yields what the test gives after reading the body. */
function fakeAdd(outputs: AddedOutput[], fail?: Error) {
  const seen: AddParams[] = []
  const add: AddContent = async function* (reader, params) {
    seen.push(params)
    for (let part = await reader.nextPart(); part; part = await reader.nextPart()) {
      for await (const _ of part.body()) { /* read */ }
    }
    yield* outputs
    if (fail) throw fail
  }
  return { add, seen }
}

function form(): FormData {
  const f = new FormData()
  f.append('file', new Blob(['hello']), 'a.txt')
  return f
}

Deno.test("proxy: add is the cluster add, with Kubo's parameters and output", async () => {
  const kubo = await startKuboDouble()
  const outputs: AddedOutput[] = [
    { name: 'a.txt', cid: null, bytes: 5 },
    { name: 'a.txt', cid: CID, size: 13 },
  ]
  const adder = fakeAdd(outputs)
  const { proxy, call } = proxyOf(kubo.multiaddr, { add: adder.add })
  try {
    let res = await call(
      '/api/v0/add?trickle=true&pin=false&pin-name=p&cid-version=1&progress=true',
      {
        body: form(),
      },
    )
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-chunked-output'), '1')
    assert.deepEqual((await res.text()).trim().split('\n').map((l) => JSON.parse(l)), [
      { Name: 'a.txt', Bytes: 5 },
      { Name: 'a.txt', Hash: CID, Size: '13' },
    ])
    const p = adder.seen[0]
    assert.equal(p.layout, 'trickle')
    assert.equal(p.no_pin, true)
    assert.equal(p.pin.name, 'p')
    assert.equal(p.cid_version, 1)
    assert.equal(kubo.state.calls.get('add'), undefined, 'Kubo did not add it')

    res = await call('/api/v0/add?stream-channels=false', { body: form() })
    assert.deepEqual(await res.json(), [{ Name: 'a.txt', Bytes: 5 }, {
      Name: 'a.txt',
      Hash: CID,
      Size: '13',
    }])

    res = await call('/api/v0/add?only-hash=true', { body: form() })
    assert.equal(res.status, 400)
    assert.equal((await res.json()).Message, 'only-hash is not supported when adding to cluster')
    res = await call('/api/v0/add', { body: 'x' })
    assert.equal(res.status, 400)
    assert.match((await res.json()).Message, /^error reading request: /)
    res = await call('/api/v0/add?layout=zigzag', { body: form() })
    assert.equal(res.status, 400)
    assert.equal((await res.json()).Message, 'error parsing options: layout parameter is invalid')
    assert.equal(adder.seen.length, 2, 'refused adds read nothing')

    // A failure after the first output ends the stream with Kubo's error object.
    const failing = fakeAdd(outputs.slice(0, 1), new Error('no destination took the blocks'))
    const p2 = proxyOf(kubo.multiaddr, { add: failing.add })
    res = await p2.call('/api/v0/add', { body: form() })
    assert.deepEqual((await res.text()).trim().split('\n').map((l) => JSON.parse(l)), [
      { Name: 'a.txt', Bytes: 5 },
      { Message: 'no destination took the blocks', Code: 0, Type: 'error' },
    ])
    await p2.proxy.stop()
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

Deno.test("proxy: repo/stat sums the cluster; repo/gc lists every peer's keys and errors", async () => {
  const kubo = await startKuboDouble()
  const { proxy, cluster, call } = proxyOf(kubo.multiaddr)
  try {
    cluster.repoStatValue = { repoSize: 3000, storageMax: 30_000 }
    let res = await call('/api/v0/repo/stat?size-only=true')
    assert.deepEqual(await res.json(), {
      RepoSize: 3000,
      StorageMax: 30_000,
      NumObjects: 0,
      RepoPath: '',
      Version: '',
    })
    assert.equal(kubo.state.calls.get('repo/stat'), undefined)

    const gc = {
      peer_map: {
        p1: { peer: 'p1', peername: 'one', keys: [{ key: CID }, { error: 'cannot remove' }] },
        p2: { peer: 'p2', peername: 'two', keys: [], error: 'ipfs is down' },
      },
    }
    cluster.repoGC = () => Promise.resolve(gc)
    res = await call('/api/v0/repo/gc')
    assert.equal(res.status, 200)
    assert.deepEqual((await res.text()).trim().split('\n').map((l) => JSON.parse(l)), [
      { Key: { '/': CID } },
      { Message: 'cannot remove; two: ipfs is down', Code: 0, Type: 'error' },
    ])
    res = await call('/api/v0/repo/gc?stream-errors=true')
    assert.deepEqual((await res.text()).trim().split('\n').map((l) => JSON.parse(l)), [
      { Key: { '/': CID } },
      { Error: 'cannot remove' },
      { Error: 'two: ipfs is down' },
    ])
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

Deno.test('proxy: block/put with pin=true stores in Kubo and pins in the cluster', async () => {
  const kubo = await startKuboDouble()
  const { proxy, cluster, call } = proxyOf(kubo.multiaddr)
  try {
    const blocks = new FormData()
    blocks.append('data', new Blob(['block one']))
    blocks.append('data', new Blob(['block two']))
    let res = await call('/api/v0/block/put?pin=true&cid-codec=raw', { body: blocks })
    assert.equal(res.status, 200)
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(lines.length, 2)
    assert.deepEqual(
      [...cluster.pinset.keys()].sort(),
      lines.map((l: { Key: string }) => l.Key).sort(),
    )
    assert.equal(kubo.state.pins.size, 0, 'Kubo was told not to pin: the cluster does')
    assert.match(kubo.state.requests.at(-1)!, /pin=false/)

    // Without pin=true it is Kubo's block/put, untouched.
    const one = new FormData()
    one.append('data', new Blob(['block three']))
    res = await call('/api/v0/block/put?cid-codec=raw', { body: one })
    assert.equal(res.status, 200)
    await res.text()
    assert.equal(cluster.pinset.size, 2)

    // A pin that fails: the lines still come, then the failure as Kubo's error object.
    cluster.fail.set('pin', new Error('no quorum'))
    const again = new FormData()
    again.append('data', new Blob(['block four']))
    res = await call('/api/v0/block/put?pin=true&cid-codec=raw', { body: again })
    const out = (await res.text()).trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(out.length, 2)
    assert.equal(out[1].Type, 'error')
    assert.match(out[1].Message, /no quorum/)

    // Kubo's own refusal is passed on as it came.
    res = await call('/api/v0/block/put?pin=true', { body: new FormData() })
    assert.equal(res.status, 400)
    assert.match((await res.json()).Message, /file argument 'data' is required/)
  } finally {
    await proxy.stop()
    await kubo.stop()
  }
})

Deno.test("proxy: hijacked answers carry Kubo's CORS headers and the extracted ones, kept for the TTL", async () => {
  let version = 0
  const up = upstreamServer((req) => {
    if (req.method === 'OPTIONS') {
      return new Response(null, {
        headers: {
          'Access-Control-Allow-Origin': req.headers.get('origin')!,
          'Vary': 'Origin',
          'Access-Control-Allow-Credentials': 'true',
          'Access-Control-Allow-Methods': req.headers.get('access-control-request-method')!,
        },
      })
    }
    version++
    return Response.json({ Version: '0.43.1' }, {
      headers: { 'Access-Control-Expose-Headers': 'X-Stream-Output', 'X-Custom': `v${version}` },
    })
  })
  const clock = manualClock()
  const { proxy, cluster, call } = proxyOf(up.multiaddr, { clock }, {
    extract_headers_extra: ['X-Custom'],
    extract_headers_ttl: '1m',
  })
  try {
    await cluster.pin(CID, defaultPinOptions())
    const origin = { headers: { Origin: 'http://app.example' } }
    let res = await call('/api/v0/pin/ls', origin)
    await res.body?.cancel()
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.example')
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(res.headers.get('vary'), 'Origin')
    assert.equal(
      res.headers.get('access-control-allow-methods'),
      null,
      'preflight-only: not copied',
    )
    assert.equal(res.headers.get('access-control-expose-headers'), 'X-Stream-Output')
    assert.equal(res.headers.get('x-custom'), 'v1')
    const preflight = up.seen.find((s) => s.method === 'OPTIONS')!
    assert.equal(new URL(preflight.url).pathname, '/api/v0/pin/ls')
    assert.equal(preflight.headers.get('access-control-request-method'), 'POST')

    await clock.advance(59_000)
    res = await call('/api/v0/pin/ls')
    await res.body?.cancel()
    assert.equal(res.headers.get('x-custom'), 'v1', 'within the TTL: not asked again')
    assert.equal(res.headers.get('access-control-allow-origin'), null, 'no Origin, no CORS')
    await clock.advance(1_000)
    res = await call('/api/v0/pin/ls')
    await res.body?.cancel()
    assert.equal(res.headers.get('x-custom'), 'v2', 'after the TTL: asked again')
    assert.equal(up.seen.filter((s) => s.url.endsWith('/api/v0/version')).length, 2)
  } finally {
    await proxy.stop()
    await up.stop()
  }
})

Deno.test('proxy: listens where configured, fails on a busy port naming the key, logs access', async () => {
  const kubo = await startKuboDouble()
  const dir = await Deno.makeTempDir()
  const { proxy, cluster } = proxyOf(kubo.multiaddr, { configDir: dir }, { log_file: 'proxy.log' })
  try {
    await proxy.start()
    const addr = proxy.addresses()[0]
    const port = Number(/\/tcp\/(\d+)$/.exec(addr)![1])
    await cluster.pin(CID, defaultPinOptions())
    const res = await fetch(`http://127.0.0.1:${port}/api/v0/pin/ls?arg=${CID}`, { method: 'POST' })
    assert.deepEqual(await res.json(), { Keys: { [CID]: { Type: 'recursive' } } })
    const v = await fetch(`http://127.0.0.1:${port}/api/v0/version`, { method: 'POST' })
    assert.equal((await v.json()).Version, '0.43.1')
    const big = await fetch(`http://127.0.0.1:${port}/api/v0/version`, {
      method: 'POST',
      headers: { 'X-Big': 'x'.repeat(9000) },
    })
    assert.equal(big.status, 431)
    await big.body?.cancel()

    const busy = proxyOf(kubo.multiaddr, {}, { listen_multiaddress: addr })
    await assert.rejects(busy.proxy.start(), (err: Error) => {
      assert.ok(err instanceof ListenError)
      assert.match(
        err.message,
        new RegExp(
          `cannot listen on ${addr} \\(api\\.ipfsproxy\\.listen_multiaddress\\): address already in use`,
        ),
      )
      return true
    })
    await busy.proxy.stop()
    await proxy.stop()
    const log = await Deno.readTextFile(join(dir, 'proxy.log'))
    assert.match(log, new RegExp(`"POST /api/v0/pin/ls\\?arg=${CID} HTTP/1.1" 200 \\d+`))
    assert.match(log, /"POST \/api\/v0\/version HTTP\/1.1" 200 \d+/)
  } finally {
    await proxy.stop()
    await kubo.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('proxy: dag/put with pin=true is stored with pin=false and pinned in the cluster', async () => {
  const up = upstreamServer(() => new Response(JSON.stringify({ Cid: { '/': CID2 } }) + '\n'))
  const { proxy, cluster, call } = proxyOf(up.multiaddr)
  try {
    const node = new FormData()
    node.append('object data', new Blob(['{"a":1}']))
    const res = await call('/api/v0/dag/put?pin=true&store-codec=dag-cbor', { body: node })
    assert.deepEqual(JSON.parse(await res.text()), { Cid: { '/': CID2 } })
    assert.ok(cluster.pinset.has(CID2))
    const put = up.seen.find((s) => s.url.includes('/api/v0/dag/put'))!
    const q = new URL(put.url).searchParams
    assert.equal(q.get('pin'), 'false')
    assert.equal(q.get('store-codec'), 'dag-cbor')
    assert.match(put.body, /\{"a":1\}/, 'the body went to Kubo')
  } finally {
    await proxy.stop()
    await up.stop()
  }
})
