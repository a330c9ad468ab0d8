/**
 * The REST API on real sockets (127.0.0.1 only): port 0 and the bound address, streaming in
 * coalesced chunks, a mid-stream error that cuts the body, TLS, unix sockets, the access log,
 * 413 and oversized headers on the wire, and an idempotent stop that frees the port.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { restApi } from '../../../src/api/rest/server.ts'
import { defaultPinOptions } from '../../../src/types/mod.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { restConfig } from './helpers.ts'
import { waitFor } from '../../support/wait.ts'
import { nullLogger } from '../../../src/util/log.ts'

const FIXTURES = fileURLToPath(new URL('../../fixtures/tls/', import.meta.url))

function hostPort(maddr: string): string {
  const [, proto, host, , port] = maddr.split('/')
  return proto === 'ip6' ? `[${host}]:${port}` : `${host}:${port}`
}

async function withApi(
  overrides: Record<string, unknown>,
  fn: (
    base: string,
    api: ReturnType<typeof restApi>,
    cluster: ReturnType<typeof fakeCluster>,
  ) => Promise<void>,
  configDir = Deno.cwd(),
) {
  const cluster = fakeCluster()
  const api = restApi(restConfig(overrides), { cluster, configDir, peerId: FAKE_PEER_ID })
  await api.start()
  try {
    await fn(`http://${hostPort(api.addresses()[0])}`, api, cluster)
  } finally {
    await api.stop()
  }
}

Deno.test('socket: port 0 binds a real port, addresses() reports it, stop() frees it (twice is fine)', async () => {
  const cluster = fakeCluster()
  const api = restApi(restConfig(), { cluster, configDir: Deno.cwd(), peerId: FAKE_PEER_ID })
  await api.start()
  const [addr] = api.addresses()
  assert.match(addr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
  assert.notEqual(addr, '/ip4/127.0.0.1/tcp/0')
  const res = await fetch(`http://${hostPort(addr)}/id`)
  assert.equal(res.status, 200)
  assert.equal((await res.json()).id, FAKE_PEER_ID)
  await api.stop()
  await api.stop()
  assert.deepEqual(api.addresses(), [])
  const port = Number(addr.split('/')[4])
  const l = Deno.listen({ hostname: '127.0.0.1', port }) // free again
  l.close()
})

Deno.test('socket: listens on every configured address (IPv4 and IPv6 loopback)', async () => {
  await withApi(
    { http_listen_multiaddress: ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'] },
    async (_base, api) => {
      const addrs = api.addresses()
      assert.equal(addrs.length, 2)
      assert.match(addrs[1], /^\/ip6\/::1\/tcp\/\d+$/)
      for (const a of addrs) {
        const res = await fetch(`http://${hostPort(a)}/version`)
        assert.equal(await res.text(), '{"version":"1.1.6"}\n')
      }
    },
  )
})

Deno.test('socket: a listen address in use fails start() with a clear error', async () => {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  try {
    const port = (l.addr as Deno.NetAddr).port
    const api = restApi(restConfig({ http_listen_multiaddress: [`/ip4/127.0.0.1/tcp/${port}`] }), {
      cluster: fakeCluster(),
      configDir: Deno.cwd(),
      peerId: FAKE_PEER_ID,
    })
    await assert.rejects(
      api.start(),
      new RegExp(
        `^ListenError: cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${port} ` +
          `\\(api\\.restapi\\.http_listen_multiaddress\\): address already in use; ` +
          `stop the program using it or set another address in service\\.json$`,
      ),
    )
    await api.stop()
  } finally {
    l.close()
  }
})

Deno.test('socket: GET /allocations streams 20,000 pins in coalesced chunks', async () => {
  await withApi({}, async (base, _api, cluster) => {
    for (let i = 0; i < 20_000; i++) {
      const digest = await sha256.digest(new TextEncoder().encode(String(i)))
      await cluster.pin(CID.createV1(0x55, digest).toString(), defaultPinOptions())
    }
    const res = await fetch(`${base}/allocations`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('trailer'), 'X-Stream-Error')
    assert.equal(res.headers.get('transfer-encoding'), 'chunked')
    const reader = res.body!.getReader()
    let reads = 0
    let text = ''
    const dec = new TextDecoder()
    while (true) {
      const { done, value } = await reader.read()
      if (done) break
      reads++
      text += dec.decode(value, { stream: true })
    }
    const lines = text.split('\n')
    assert.equal(lines.pop(), '')
    assert.equal(lines.length, 20_000)
    JSON.parse(lines[12_345])
    // ~7 MB: one write per item would be 20,000 reads; 64 KiB chunks give a few hundred.
    assert.ok(reads < 2_000, `reads: ${reads}`)
  })
})

Deno.test('socket: an error after the first item cuts the body (no terminating chunk), never a JSON error line', async () => {
  await withApi({}, async (base, _api, cluster) => {
    for (
      const c of [
        'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
        'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
      ]
    ) {
      await cluster.pin(c, defaultPinOptions())
    }
    cluster.fail.set('pinsNDJSON', new Error('state read failed'))
    cluster.failAfter = 1
    const res = await fetch(`${base}/allocations`)
    assert.equal(res.status, 200)
    await assert.rejects(res.text()) // the client sees a truncated chunked body
    cluster.failAfter = 0
    const res2 = await fetch(`${base}/allocations`)
    assert.equal(res2.status, 500)
    assert.deepEqual(await res2.json(), { code: 500, message: 'state read failed' })
  })
})

Deno.test('socket: a client that goes away mid-stream aborts the source', async () => {
  await withApi({}, async (base, _api, cluster) => {
    let aborted = false
    cluster.statusAll = async function* (_f, signal) {
      signal?.addEventListener('abort', () => (aborted = true))
      for (let i = 0;; i++) {
        yield {
          cid: `c${i}`,
          name: '',
          allocations: [],
          origins: [],
          created: '',
          metadata: null,
          peer_map: {},
        }
        await new Promise((r) => setTimeout(r, 1))
        if (signal?.aborted) return
      }
    }
    const ac = new AbortController()
    const res = await fetch(`${base}/pins`, { signal: ac.signal })
    const reader = res.body!.getReader()
    await reader.read()
    ac.abort()
    await reader.cancel().catch(() => {})
    await waitFor(() => aborted, { what: 'the source to see the abort' })
  })
})

Deno.test('socket: TLS with ssl_cert_file/ssl_key_file relative to the config folder', async () => {
  await withApi(
    { ssl_cert_file: 'cert.pem', ssl_key_file: 'key.pem' },
    async (base) => {
      const ca = await Deno.readTextFile(join(FIXTURES, 'ca.pem'))
      const client = Deno.createHttpClient({ caCerts: [ca] })
      try {
        const res = await fetch(base.replace('http:', 'https:') + '/version', { client })
        assert.equal(await res.text(), '{"version":"1.1.6"}\n')
        // Plain HTTP to a TLS port fails.
        await assert.rejects(fetch(`${base}/version`).then((r) => r.text()))
      } finally {
        client.close()
      }
    },
    FIXTURES,
  )
})

Deno.test('socket: a missing TLS file fails start() with the reference message', async () => {
  const api = restApi(restConfig({ ssl_cert_file: 'nope.pem', ssl_key_file: 'key.pem' }), {
    cluster: fakeCluster(),
    configDir: FIXTURES,
    peerId: FAKE_PEER_ID,
  })
  await assert.rejects(api.start(), /^ConfigError: error loading TLS certificate\/key: /)
  await api.stop()
})

Deno.test('socket: a unix socket listener with the access log on (as the daemon runs it)', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'api.sock')
  const lines: string[] = []
  const accessLog = { ...nullLogger, info: (l: string) => void lines.push(l) }
  const api = restApi(restConfig({ http_listen_multiaddress: [`/unix${path}`] }), {
    cluster: fakeCluster(),
    configDir: dir,
    peerId: FAKE_PEER_ID,
    accessLog,
  })
  await api.start()
  const client = Deno.createHttpClient({ proxy: { transport: 'unix', path } })
  try {
    // Deno's remoteAddr throws for a unix socket's connection: every answer was a 500.
    const res = await fetch('http://localhost/version', { client })
    assert.equal(res.status, 200)
    assert.equal(await res.text(), '{"version":"1.1.6"}\n')
    await waitFor(() => lines.length === 1, { what: 'the access line' })
    assert.match(lines[0], /^- - - \[.*\] "GET \/version HTTP\/1\.1" 200 20$/)
  } finally {
    client.close()
    await api.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('socket: a unix socket listener, whose file stop() removes so that a restart can bind it', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'api.sock')
  try {
    for (const round of [1, 2]) {
      await withApi({ http_listen_multiaddress: [`/unix${path}`] }, async (_b, api) => {
        assert.deepEqual(api.addresses(), [`/unix${path}`])
        const client = Deno.createHttpClient({ proxy: { transport: 'unix', path } })
        try {
          const res = await fetch('http://localhost/version', { client })
          assert.equal(await res.text(), '{"version":"1.1.6"}\n', `round ${round}`)
        } finally {
          client.close()
        }
      })
      await assert.rejects(Deno.lstat(path), Deno.errors.NotFound)
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('socket: http_log_file gets one Common Log Format line per request', async () => {
  const dir = await Deno.makeTempDir()
  const CID_V0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
  let pinBytes = 0
  try {
    await withApi({ http_log_file: 'http.log' }, async (base, _api, cluster) => {
      await cluster.pin(CID_V0, defaultPinOptions())
      await (await fetch(`${base}/version`)).text()
      await (await fetch(`${base}/nope?x=1`)).text()
      await (await fetch(`${base}/allocations`)).text()
      await (await fetch(`${base}/health`)).text()
      // A body with multi-byte characters: the logged size is its size in bytes, and it is sent
      // whole with its length (as the reference does), not re-streamed to be counted.
      const name = encodeURIComponent('é€😀')
      const res = await fetch(`${base}/pins/${CID_V0}?name=${name}`, { method: 'POST' })
      pinBytes = (await res.arrayBuffer()).byteLength
      assert.equal(res.headers.get('content-length'), String(pinBytes))
    }, dir)
    const lines = (await Deno.readTextFile(join(dir, 'http.log'))).trimEnd().split('\n')
    assert.equal(lines.length, 5)
    const re =
      /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "(\S+) (\S+) HTTP\/1\.1" (\d{3}) (\d+)$/
    const parsed = lines.map((l) => re.exec(l)?.slice(1))
    assert.deepEqual(parsed[0], ['GET', '/version', '200', '20'])
    assert.deepEqual(parsed[1], ['GET', '/nope?x=1', '404', '35'])
    assert.equal(parsed[2]?.[2], '200')
    assert.ok(Number(parsed[2]?.[3]) > 300)
    assert.deepEqual(parsed[3], ['GET', '/health', '204', '0'])
    assert.deepEqual(parsed[4], [
      'POST',
      `/pins/${CID_V0}?name=%C3%A9%E2%82%AC%F0%9F%98%80`,
      '200',
      String(pinBytes),
    ])
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('socket: 413 for a large body and no crash on oversized headers', async () => {
  await withApi({ max_body_bytes: 4096 }, async (base) => {
    let res = await fetch(`${base}/peers`, { method: 'POST', body: 'x'.repeat(100_000) })
    assert.equal(res.status, 413)
    assert.match((await res.json()).message, /request body too large/)
    res = await fetch(`${base}/id`, { headers: { 'x-big': 'a'.repeat(20_000) } })
    assert.ok(res.status === 431 || res.status === 400, String(res.status))
    await res.body?.cancel()
    res = await fetch(`${base}/id`) // still serving
    assert.equal(res.status, 200)
    await res.body?.cancel()
  })
})

Deno.test('socket: the trailing-slash redirect is followed by clients with the method kept', async () => {
  await withApi({}, async (base, _api, cluster) => {
    const res = await fetch(`${base}/pins/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG/?name=r`, {
      method: 'POST',
    })
    assert.equal(res.status, 200)
    assert.equal((await res.json()).name, 'r')
    assert.equal(cluster.pinset.size, 1)
  })
})
