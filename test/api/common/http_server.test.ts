/**
 * The HTTP server under the APIs on real sockets (127.0.0.1): the timeouts of the config close
 * slow-header, idle, slow-body and non-reading clients; connections over `max_connections` get a
 * 503 with the API's JSON error; oversized requests get the answers docs/rest-api.md promises
 * (431 with a JSON body up to the engine's limits, the engine's bare 400 beyond them); and the
 * server keeps serving through all of it. Time bounds here are generous (seconds); the exact
 * timeout logic is covered on a manual clock in conn_guard.test.ts.
 */
import assert from 'node:assert/strict'
import { restApi } from '../../../src/api/rest/server.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { restConfig } from '../rest/helpers.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

async function withApi(
  overrides: Record<string, unknown>,
  fn: (port: number, cluster: ReturnType<typeof fakeCluster>) => Promise<void>,
) {
  const cluster = fakeCluster()
  const api = restApi(restConfig(overrides), {
    cluster,
    configDir: Deno.cwd(),
    peerId: FAKE_PEER_ID,
  })
  await api.start()
  try {
    await fn(Number(api.addresses()[0].split('/')[4]), cluster)
  } finally {
    await api.stop()
  }
}

/** What a raw client saw: the bytes until the server closed, and when that happened. */
interface Seen {
  text: string
  /** ms from the end of our write to EOF or reset. */
  closedAfter: number
  reset: boolean
}

/** Writes `data` (without waiting for the write to finish) and reads until the server closes. */
async function exchange(port: number, data: string | Uint8Array, maxMs = 20_000): Promise<Seen> {
  const conn = await Deno.connect({ hostname: '127.0.0.1', port })
  const bytes = typeof data === 'string' ? enc.encode(data) : data
  const writing = (async () => {
    let off = 0
    try {
      while (off < bytes.length) off += await conn.write(bytes.subarray(off))
    } catch {
      // the server may close before reading it all
    }
  })()
  const t0 = performance.now()
  const killer = setTimeout(() => conn.close(), maxMs)
  let text = ''
  let reset = false
  const buf = new Uint8Array(65536)
  try {
    for (;;) {
      const n = await conn.read(buf)
      if (n === null) break
      text += dec.decode(buf.subarray(0, n))
    }
  } catch {
    reset = true
  }
  const closedAfter = performance.now() - t0
  clearTimeout(killer)
  await writing
  try {
    conn.close()
  } catch {
    // closed by the killer
  }
  return { text, closedAfter, reset }
}

async function stillServing(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/version`)
  assert.equal(await res.text(), '{"version":"1.1.6"}\n')
}

function statusLine(text: string): string {
  return text.split('\r\n')[0]
}

function body(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4)
}

Deno.test('server: a slow-header client is disconnected at read_header_timeout', async () => {
  await withApi({ read_header_timeout: '1s' }, async (port) => {
    const seen = exchange(port, 'GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
    await stillServing(port) // others are served meanwhile
    const s = await seen
    assert.equal(s.text, '')
    assert.ok(s.closedAfter >= 900, `closed after ${s.closedAfter} ms, before the timeout`)
    assert.ok(s.closedAfter < 10_000, `still open after ${s.closedAfter} ms`)
  })
})

Deno.test('server: an idle keep-alive connection is closed at idle_timeout after its response', async () => {
  await withApi({ idle_timeout: '1s', read_header_timeout: '30s' }, async (port) => {
    const s = await exchange(port, 'GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    assert.equal(statusLine(s.text), 'HTTP/1.1 200 OK')
    assert.equal(body(s.text), '{"version":"1.1.6"}\n')
    assert.ok(s.closedAfter >= 900, `closed after ${s.closedAfter} ms`)
    assert.ok(s.closedAfter < 10_000, `still open after ${s.closedAfter} ms`)
  })
})

Deno.test('server: a body that does not arrive within read_timeout closes the connection', async () => {
  await withApi({ read_timeout: '1s' }, async (port) => {
    const pin = 'POST /pins/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG HTTP/1.1\r\n'
    const add = 'POST /add HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n'
    // A route that reads its body (/add) and one that answers without reading it (/pins).
    for (const head of [add, pin]) {
      const s = await exchange(
        port,
        `${head}Host: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n--b\r\n`,
      )
      assert.ok(s.closedAfter >= 900 && s.closedAfter < 10_000, `closed after ${s.closedAfter} ms`)
    }
    await stillServing(port)
  })
})

Deno.test('server: a client that does not read its response is cut at write_timeout', async () => {
  await withApi({ write_timeout: '1s' }, async (port, cluster) => {
    cluster.pinsNDJSON = async function* (signal) {
      const line = enc.encode(`{"cid":"${'x'.repeat(1000)}"}\n`)
      for (;;) {
        signal?.throwIfAborted()
        yield line
        await new Promise((r) => setTimeout(r, 0))
      }
    }
    const conn = await Deno.connect({ hostname: '127.0.0.1', port })
    await conn.write(enc.encode('GET /allocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
    // Read nothing for 3 s: the endless stream fills the socket buffers and the server waits.
    await new Promise((r) => setTimeout(r, 3000))
    let cut = true
    const giveUp = setTimeout(() => {
      cut = false
      conn.close()
    }, 10_000)
    const buf = new Uint8Array(1 << 20)
    try {
      while ((await conn.read(buf)) !== null) { /* what was buffered before the cut */ }
    } catch {
      // reset, also a cut (or closed by giveUp)
    }
    clearTimeout(giveUp)
    if (cut) conn.close()
    assert.ok(cut, 'an endless stream was not cut')
    await stillServing(port)
  })
})

Deno.test('server: over max_connections a client gets a 503 with the JSON error and Connection: close', async () => {
  await withApi({ max_connections: 2, headers: { 'X-Custom': ['1'] } }, async (port) => {
    const idle = [
      await Deno.connect({ hostname: '127.0.0.1', port }),
      await Deno.connect({ hostname: '127.0.0.1', port }),
    ]
    await new Promise((r) => setTimeout(r, 200)) // both accepted
    const s = await exchange(port, 'GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    assert.equal(statusLine(s.text), 'HTTP/1.1 503 Service Unavailable')
    const head = s.text.slice(0, s.text.indexOf('\r\n\r\n')).toLowerCase()
    assert.match(head, /\r\nconnection: close\r\n/)
    assert.match(head, /\r\ncontent-type: application\/json\r\n/)
    assert.match(head, /\r\nx-custom: 1\r\n/)
    assert.match(head, /\r\nretry-after: 1\r\n/)
    assert.deepEqual(JSON.parse(body(s.text)), {
      code: 503,
      message: 'too many connections: 2 are open (max_connections); retry later',
    })
    assert.equal(s.reset, false)
    idle[0].close()
    await new Promise((r) => setTimeout(r, 200)) // the server sees the close
    await stillServing(port)
    idle[1].close()
  })
})

Deno.test('server: request heads over max_header_bytes + 4096 get 431 with a JSON body', async () => {
  await withApi({}, async (port) => {
    const cases = [
      `GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`,
      `GET /id?x=${'a'.repeat(60_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      `POST /pins/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG?name=${'n'.repeat(50_000)} ` +
      `HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    ]
    for (const req of cases) {
      const s = await exchange(port, req.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
      assert.equal(statusLine(s.text), 'HTTP/1.1 431 Request Header Fields Too Large')
      assert.deepEqual(JSON.parse(body(s.text)), {
        code: 431,
        message: 'request header fields too large',
      })
    }
    await stillServing(port)
  })
})

Deno.test("server: beyond the engine's limits (64 KiB head, 128 fields) the engine answers a bare 400", async () => {
  await withApi({}, async (port) => {
    const bare = (s: Seen) => {
      // hyper writes the 400 and closes; a client still sending may see a reset after it.
      assert.equal(statusLine(s.text), 'HTTP/1.1 400 Bad Request')
      assert.match(s.text, /\r\ncontent-length: 0\r\n/i)
      assert.equal(body(s.text), '')
    }
    bare(await exchange(port, `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`))
    bare(await exchange(port, `GET /id HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(70_000)}\r\n\r\n`))
    const fields = Array.from({ length: 130 }, (_, i) => `X-${i}: 1\r\n`).join('')
    bare(await exchange(port, `GET /id HTTP/1.1\r\nHost: x\r\n${fields}\r\n`))
    await stillServing(port)
    // A 10 MB name: the engine answers 400 and closes while the client is still sending.
    const s = await exchange(
      port,
      `POST /pins/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG?name=${'n'.repeat(10_000_000)} ` +
        `HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    )
    assert.ok(s.text === '' ? s.reset : statusLine(s.text) === 'HTTP/1.1 400 Bad Request', s.text)
    await stillServing(port)
  })
})
