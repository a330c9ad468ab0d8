/**
 * The HTTP/1.1 client under the Kubo connector, against servers on 127.0.0.1: Deno.serve for
 * ordinary answers and streamed uploads, and a raw TCP server that sends exact bytes for framing
 * (Content-Length, chunked with trailers, to the end of the connection), interim answers, idle
 * connections the server dropped, aborts, and malformed answers.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  Http1Client,
  Http1ProtocolError,
  type Http1Response,
} from '../../../src/ipfsconn/ipfshttp/http1.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()
const CLOSE = 'close the connection'

/**
 * A raw server: for each request read on a connection, `answer(request, n)` gives the bytes to
 * send (n counts requests over all connections); `null` closes the connection instead, and so
 * does a last part CLOSE after the bytes are sent.
 */
function rawServer(answer: (head: string, n: number) => (string | Uint8Array)[] | null) {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  let n = 0
  const conns = new Set<Deno.Conn>()
  let accepted = 0
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn)
    let buf = ''
    const b = new Uint8Array(65536)
    try {
      for (;;) {
        const r = await conn.read(b)
        if (r === null) break
        buf += dec.decode(b.subarray(0, r))
        let i: number
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          const head = buf.slice(0, i)
          const m = /content-length: (\d+)/i.exec(head)
          const len = m ? Number(m[1]) : 0
          if (buf.length < i + 4 + len) break
          buf = buf.slice(i + 4 + len)
          const parts = answer(head, n++)
          if (parts === null) {
            conn.close()
            return
          }
          for (const p of parts) {
            if (p === CLOSE) return
            await conn.write(typeof p === 'string' ? enc.encode(p) : p)
          }
        }
      }
    } catch {
      // the client went away
    } finally {
      conns.delete(conn)
      try {
        conn.close()
      } catch {
        // closed already
      }
    }
  }
  const loop = (async () => {
    for await (const conn of listener) {
      accepted++
      serve(conn)
    }
  })()
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted
    },
    /** Closes the connections the server holds (as a restarted daemon would have). */
    dropAll() {
      for (const c of conns) c.close()
      conns.clear()
    },
    async close() {
      listener.close()
      for (const c of conns) c.close()
      await loop.catch(() => {})
    },
  }
}

const ok = (body: string, extra = '') =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${enc.encode(body).length}\r\n${extra}\r\n${body}`

async function chunks(res: Http1Response): Promise<string[]> {
  const out: string[] = []
  for (let c; (c = await res.read()) !== null;) out.push(dec.decode(c))
  return out
}

Deno.test('http1: Content-Length, chunked with trailers, and to-the-end bodies', async () => {
  const srv = rawServer((head) => {
    const path = head.split(' ')[1]
    if (path === '/length') return [ok('{"ID":"x"}\n')]
    if (path === '/big') return [ok('b'.repeat(100_000))]
    if (path === '/big-chunked') {
      return [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
        '9c40\r\n' + 'c'.repeat(40_000) + '\r\n',
        '9c40\r\n' + 'd'.repeat(40_000) + '\r\n0\r\n\r\n',
      ]
    }
    if (path === '/chunked') {
      return [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n',
        '7\r\n{"a":1',
        '}\r\n',
        '2;ext=1\r\n\n\n\r\n',
        '0\r\nX-Stream-Error: boom\r\n\r\n',
      ]
    }
    return ['HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', CLOSE]
  })
  const client = new Http1Client({ hostname: '127.0.0.1', port: srv.port })
  try {
    let res = await client.request({ path: '/length' })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-length'), '11')
    assert.equal(await res.text(), '{"ID":"x"}\n')
    res = await client.request({ path: '/chunked' })
    assert.equal((await chunks(res)).join(''), '{"a":1}\n\n')
    assert.equal(res.trailers.get('x-stream-error'), 'boom')
    assert.equal(client.openConnections, 1, 'one connection carried both answers')
    // Bodies larger than a read, gathered whole.
    assert.equal(
      dec.decode(await (await client.request({ path: '/big' })).bytes()),
      'b'.repeat(100_000),
    )
    const both = await (await client.request({ path: '/big-chunked' })).bytes()
    assert.equal(dec.decode(both), 'c'.repeat(40_000) + 'd'.repeat(40_000))
    res = await client.request({ path: '/eof' })
    assert.equal(await res.text(), 'until the end')
    assert.equal(client.openConnections, 0, 'an answer that ends with the connection closes it')
  } finally {
    client.close()
    await srv.close()
  }
})

Deno.test('http1: keep-alive connections are reused; a dropped idle one is replaced', async () => {
  const srv = rawServer(() => [ok('{}')])
  const client = new Http1Client({ hostname: '127.0.0.1', port: srv.port })
  try {
    for (let i = 0; i < 20; i++) {
      assert.equal(await (await client.request({ path: '/id' })).text(), '{}')
    }
    assert.equal(srv.accepted, 1)
    // Concurrent requests open as many connections, which are reused afterwards.
    await Promise.all(
      Array.from({ length: 5 }, () => client.request({ path: '/id' }).then((r) => r.text())),
    )
    const opened = srv.accepted
    assert.ok(opened >= 2 && opened <= 5, `${opened} connections`)
    srv.dropAll() // the daemon restarted: every idle connection is dead
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(await (await client.request({ path: '/id' })).text(), '{}', 'sent again, once')
    assert.equal(srv.accepted, opened + 1)
  } finally {
    client.close()
    await srv.close()
  }
})

Deno.test('http1: interim answers are skipped; 204 has no body', async () => {
  const srv = rawServer((head) =>
    head.includes('/204')
      ? ['HTTP/1.1 204 No Content\r\n\r\n']
      : ['HTTP/1.1 100 Continue\r\n\r\n', ok('after')]
  )
  const client = new Http1Client({ hostname: '127.0.0.1', port: srv.port })
  try {
    assert.equal(await (await client.request({ path: '/x' })).text(), 'after')
    const res = await client.request({ path: '/204' })
    assert.equal(res.status, 204)
    assert.ok(res.done)
    assert.equal(await res.read(), null)
    assert.equal(await (await client.request({ path: '/x' })).text(), 'after', 'still usable')
    assert.equal(srv.accepted, 1)
  } finally {
    client.close()
    await srv.close()
  }
})

Deno.test('http1: malformed answers are protocol errors and their connection is not reused', async () => {
  const answers: Record<string, string[]> = {
    '/status': ['HTTP/2 200 OK\r\n\r\n'],
    '/header': ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'],
    '/chunk': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    '/length': ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'],
    '/huge': ['HTTP/1.1 200 OK\r\n' + `X-Big: ${'a'.repeat(70_000)}\r\n`],
    '/te': ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n'],
  }
  const srv = rawServer((head) => answers[head.split(' ')[1]])
  const client = new Http1Client({ hostname: '127.0.0.1', port: srv.port })
  try {
    for (const path of ['/status', '/header', '/te']) {
      await assert.rejects(client.request({ path }), Http1ProtocolError, path)
    }
    await assert.rejects(client.request({ path: '/huge' }), /longer than 65536 bytes/)
    const chunk = await client.request({ path: '/chunk' })
    await assert.rejects(chunk.read(), /bad chunk size "zz"/)
    srv.dropAll()
    const short = await client.request({ path: '/length' })
    assert.equal(dec.decode((await short.read())!), 'short')
    srv.dropAll()
    await assert.rejects(short.read(), /unexpected EOF/)
    assert.equal(client.openConnections, 0)
  } finally {
    client.close()
    await srv.close()
  }
})

Deno.test('http1: aborting closes the connection and rejects with the reason, at any step', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => release = r)
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname
    if (path === '/slow-head') await held
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('{"Progress":1}\n'))
      },
      async pull(c) {
        await held
        c.close()
      },
    })
    return new Response(body)
  })
  const client = new Http1Client({ hostname: '127.0.0.1', port: server.addr.port })
  try {
    const ac = new AbortController()
    const pending = client.request({ path: '/slow-head', signal: ac.signal })
    setTimeout(() => ac.abort(new Error('caller gave up')), 30)
    await assert.rejects(pending, { message: 'caller gave up' })

    const ac2 = new AbortController()
    const res = await client.request({ path: '/slow-body', signal: ac2.signal })
    assert.equal(dec.decode((await res.read())!), '{"Progress":1}\n')
    const reading = res.read()
    ac2.abort(new Error('stalled'))
    await assert.rejects(reading, { message: 'stalled' }) // the socket closed under the read
    await assert.rejects(res.read(), { message: 'stalled' })
    assert.equal(client.openConnections, 0)
    await assert.rejects(
      client.request({ path: '/x', signal: AbortSignal.abort(new Error('early')) }),
      { message: 'early' },
    )
  } finally {
    release()
    client.close()
    await server.shutdown()
  }
})

Deno.test('http1: a streamed body goes out chunked while the answer comes back', async () => {
  // The server answers each part as soon as it arrives, before the upload ends (as block/put).
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const reader = req.body!.getReader()
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          const r = await reader.read()
          if (r.done) return c.close()
          c.enqueue(enc.encode(`${r.value.length}\n`))
        },
      }),
    )
  })
  const client = new Http1Client({ hostname: '127.0.0.1', port: server.addr.port })
  try {
    let sent = 0
    let answered = 0
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        // Each part is produced only after the previous one was answered: full duplex.
        if (sent > answered) return new Promise((r) => setTimeout(r, 5)).then(() => this.pull!(c))
        if (sent === 5) return c.close()
        sent++
        c.enqueue(new Uint8Array(1000 * sent))
      },
    }, { highWaterMark: 0 })
    const res = await client.request({ path: '/put', body, contentType: 'application/x-test' })
    let text = ''
    for (let b; (b = await res.read()) !== null;) {
      text += dec.decode(b)
      answered = text.split('\n').length - 1
    }
    assert.equal(sent, 5)
    assert.deepEqual(text.trim().split('\n').map(Number).reduce((a, b) => a + b, 0), 15_000)

    // A body stream that fails ends the request with its error.
    const failing = new ReadableStream<Uint8Array>({
      pull() {
        throw new Error('producer broke')
      },
    })
    await assert.rejects(
      (async () => {
        const r = await client.request({ path: '/put', body: failing })
        await r.text()
      })(),
      { message: 'producer broke' },
    )
  } finally {
    client.close()
    await server.shutdown()
  }
})

Deno.test('http1: a request body with its length; a unix socket', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'http1-' })
  const path = join(dir, 'api.sock')
  const server = Deno.serve({ path, onListen() {} }, async (req) =>
    new Response(
      `${req.method} ${new URL(req.url).pathname} ${req.headers.get('content-type')} ${await req
        .text()}`,
    ))
  const client = new Http1Client({ unixPath: path })
  try {
    const res = await client.request({
      path: '/api/v0/x',
      body: enc.encode('héllo'),
      contentType: 'text/plain',
    })
    assert.equal(await res.text(), 'POST /api/v0/x text/plain héllo')
    assert.equal(await (await client.request({ path: '/y' })).text(), 'POST /y null ')
  } finally {
    client.close()
    await server.shutdown()
    await Deno.remove(dir, { recursive: true })
  }
})
