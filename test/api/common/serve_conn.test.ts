/**
 * The one internal Deno API the HTTP server stands on, `Deno[Deno.internal].serveHttpOnConnection`
 * (serve_conn.ts). If a Deno upgrade removes or changes it, these tests fail here, with the
 * reason, before any API test fails mysteriously: it must exist, serve HTTP/1.1 keep-alive
 * requests on one accepted connection, settle `info.completed` once a response is sent, and drop
 * the connection at once when the signal aborts.
 */
import assert from 'node:assert/strict'
import { serveConnection, serveConnectionAvailable } from '../../../src/api/common/serve_conn.ts'

Deno.test('serve_conn: this Deno has Deno[Deno.internal].serveHttpOnConnection(conn, signal, handler, onError, onListen)', () => {
  assert.ok(
    serveConnectionAvailable(),
    `Deno ${Deno.version.deno} lacks the internal serveHttpOnConnection the HTTP server needs: ` +
      'see src/api/common/serve_conn.ts',
  )
})

Deno.test('serve_conn: serves keep-alive requests on one connection; completed settles; abort drops it', async () => {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = listener.addr as Deno.NetAddr
  const client = await Deno.connect({ hostname: '127.0.0.1', port })
  const conn = await listener.accept()
  const ac = new AbortController()
  const completed: string[] = []
  const srv = serveConnection(conn, (req, info) => {
    const path = new URL(req.url).pathname
    info.completed.then(() => completed.push(path))
    return new Response(`hello ${path}\n`)
  }, { signal: ac.signal, onError: () => new Response('error', { status: 500 }) })

  await client.write(
    new TextEncoder().encode(
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    ),
  )
  let text = ''
  const buf = new Uint8Array(4096)
  while (!text.includes('hello /b\n')) {
    const n = await client.read(buf)
    assert.notEqual(n, null, `closed early: ${text}`)
    text += new TextDecoder().decode(buf.subarray(0, n!))
  }
  assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 2)
  while (completed.length < 2) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(completed, ['/a', '/b'])

  ac.abort() // the connection is idle (keep-alive): it is dropped now
  assert.equal(await client.read(buf), null)
  await srv.finished
  client.close()
  listener.close()
})
