/**
 * Unit tests of the shared HTTP plumbing: multipart parsing across arbitrary chunk boundaries,
 * NDJSON chunk coalescing and flushing when the source pauses, the router's matching rules,
 * listen multiaddrs, JWT verification, and the body sizes the access log reads.
 */
import assert from 'node:assert/strict'
import { signJWT, verifyJWT } from '../../../src/api/common/jwt.ts'
import { boundMultiaddr, listenTarget } from '../../../src/api/common/listen.ts'
import { MultipartReader, parseHeaderParams } from '../../../src/api/common/multipart.ts'
import { ndjsonResponse } from '../../../src/api/common/ndjson.ts'
import { knownBodySize, responder, utf8Length } from '../../../src/api/common/response.ts'
import { router } from '../../../src/api/common/router.ts'

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close()
      c.enqueue(bytes.slice(off, off + size))
      off += size
    },
  })
}

async function readParts(body: Uint8Array, boundary: string, chunk: number) {
  const mp = new MultipartReader(chunked(body, chunk), boundary)
  const out: { name: string; data: string }[] = []
  for (let p = await mp.nextPart(); p; p = await mp.nextPart()) {
    let data = ''
    for await (const c of p.body()) data += new TextDecoder().decode(c)
    out.push({ name: p.headers.get('content-disposition') ?? '', data })
  }
  return out
}

Deno.test('multipart: parts survive every chunking, including one byte at a time', async () => {
  const b = 'XyZ'
  const text = `preamble\r\n--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\n` +
    `line1\r\n--${b}x not a delimiter\r\n\r\n--${b}\r\nContent-Disposition: form-data; name="b"\r\n\r\n\r\n--${b}--\r\nepilogue`
  const body = new TextEncoder().encode(text)
  for (const size of [1, 2, 3, 7, 64, body.length]) {
    const parts = await readParts(body, b, size)
    assert.deepEqual(parts, [
      { name: 'form-data; name="a"', data: `line1\r\n--${b}x not a delimiter\r\n` },
      { name: 'form-data; name="b"', data: '' },
    ], `chunk ${size}`)
  }
})

Deno.test('multipart: unread parts are skipped; truncated bodies are errors', async () => {
  const body = new TextEncoder().encode('--b\r\n\r\nskip me\r\n--b\r\nX-N: 2\r\n\r\nkeep\r\n--b--')
  const mp = new MultipartReader(chunked(body, 5), 'b')
  await mp.nextPart()
  const second = await mp.nextPart()
  assert.equal(second?.headers.get('x-n'), '2')
  assert.equal(new TextDecoder().decode((await second?.read()) ?? undefined), 'keep')
  assert.equal(await mp.nextPart(), null)
  const bad = new MultipartReader(chunked(new TextEncoder().encode('--b\r\n\r\nno end'), 3), 'b')
  const p = await bad.nextPart()
  await assert.rejects(async () => {
    for await (const _ of p!.body()) { /* drain */ }
  }, /unexpected end of input/)
})

Deno.test('parseHeaderParams: quoted values, escapes and case', () => {
  const { type, params } = parseHeaderParams(
    'Form-Data; name="file"; FileName="a \\"b\\";c.txt"; x=1',
  )
  assert.equal(type, 'form-data')
  assert.equal(params.get('name'), 'file')
  assert.equal(params.get('filename'), 'a "b";c.txt')
  assert.equal(params.get('x'), '1')
})

Deno.test('ndjson: items are coalesced into large chunks while the source keeps up', async () => {
  async function* many() {
    for (let i = 0; i < 5000; i++) yield { i, pad: 'x'.repeat(40) }
  }
  const res = await ndjsonResponse(responder({}, (code, message) => ({ code, message })), many())
  const reader = res.body!.getReader()
  let reads = 0
  let lines = 0
  while (true) {
    const { done, value } = await reader.read()
    if (done) break
    reads++
    lines += value.filter((b) => b === 10).length
  }
  assert.equal(lines, 5000)
  assert.ok(reads <= 8, `reads: ${reads}`) // ~270 KB in 64 KiB chunks
})

Deno.test('ndjson: a pausing source flushes what it has (lines are not held back)', async () => {
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  async function* slow() {
    yield { n: 1 }
    await gate
    yield { n: 2 }
  }
  const res = await ndjsonResponse(responder({}, (code, message) => ({ code, message })), slow())
  const reader = res.body!.getReader()
  const first = await reader.read()
  assert.equal(new TextDecoder().decode(first.value), '{"n":1}\n')
  release()
  const second = await reader.read()
  assert.equal(new TextDecoder().decode(second.value), '{"n":2}\n')
  assert.equal((await reader.read()).done, true)
})

Deno.test('response: the body size of what a responder made is known without reading the body', async () => {
  const enc = new TextEncoder()
  for (
    const s of [
      '',
      'abc',
      '\u0001\t\n',
      'é',
      '€',
      '😀',
      'a😀b',
      '\ud800',
      '\udc00',
      'x\ud800y',
      '\ud800\ud800',
    ]
  ) {
    assert.equal(utf8Length(s), enc.encode(s).byteLength, JSON.stringify(s))
  }
  const r = responder({ 'X-A': ['1'] }, (code, message) => ({ code, message }))
  const json = r.json(200, { name: 'é€😀' })
  const error = r.error(new Error('nope'), 404)
  const empty = r.empty(204)
  for (const res of [json, error, empty]) {
    assert.equal(knownBodySize(res), (await res.arrayBuffer()).byteLength)
  }
  assert.equal(knownBodySize(new Response('made elsewhere')), undefined)
})

Deno.test('router: literal/param precedence by order, alternatives, rest, 405 vs 404', () => {
  const match = router([
    { method: 'POST', pattern: '/pins/{hash}/recover', handler: 1 },
    { method: 'POST', pattern: '/pins/recover', handler: 2 },
    { method: 'GET', pattern: '/pins/{hash}', handler: 3 },
    { method: 'POST', pattern: '/pins/{t:ipfs|ipns}/{path:.*}', handler: 4 },
  ])
  const h = (m: string, p: string) => {
    const r = match(m, p)
    return r.kind === 'route' ? [r.route.handler, r.params] : r.kind === 'method' ? r.allow : r.kind
  }
  assert.deepEqual(h('POST', '/pins/recover'), [2, {}])
  assert.deepEqual(h('POST', '/pins/ipfs/recover'), [1, { hash: 'ipfs' }])
  assert.deepEqual(h('POST', '/pins/ipfs/Qm/a/b'), [4, { t: 'ipfs', path: 'Qm/a/b' }])
  assert.deepEqual(h('GET', '/pins/recover'), [3, { hash: 'recover' }])
  assert.deepEqual(h('DELETE', '/pins/x'), ['GET'])
  assert.deepEqual(h('POST', '/pins/ipld/x/y'), 'none')
  assert.deepEqual(h('GET', '/pins//recover'), 'none')
})

Deno.test('listen: multiaddrs to Deno.serve targets and back', () => {
  assert.deepEqual(listenTarget('/ip4/127.0.0.1/tcp/9094'), {
    transport: 'tcp',
    hostname: '127.0.0.1',
    port: 9094,
  })
  assert.deepEqual(listenTarget('/ip6/::1/tcp/0'), { transport: 'tcp', hostname: '::1', port: 0 })
  assert.deepEqual(listenTarget('/dns4/localhost/tcp/1'), {
    transport: 'tcp',
    hostname: 'localhost',
    port: 1,
  })
  assert.deepEqual(listenTarget('/unix/tmp/api.sock'), { transport: 'unix', path: '/tmp/api.sock' })
  for (
    const bad of [
      '/ip4/127.0.0.1/udp/1',
      '/ip4/127.0.0.1/tcp/70000',
      '/ip4/1.2.3.4',
      'nonsense',
      '/unix/',
    ]
  ) {
    assert.throws(() => listenTarget(bad), /cannot listen on/)
  }
  assert.equal(boundMultiaddr({ transport: 'tcp', hostname: '::1', port: 5 }), '/ip6/::1/tcp/5')
  assert.equal(boundMultiaddr({ transport: 'unix', path: '/tmp/a' }), '/unix/tmp/a')
})

Deno.test('jwt: sign/verify round trip, claims checked, other algorithms refused', async () => {
  const keyFor = (iss: string) => (iss === 'u' ? 'pw' : undefined)
  const t = await signJWT({ iss: 'u', exp: 2000 }, 'pw')
  assert.deepEqual(await verifyJWT(t, keyFor, 1000), { iss: 'u', exp: 2000 })
  await assert.rejects(verifyJWT(t, keyFor, 2000), /expired/)
  const [, claims, sig] = t.split('.')
  const rs256 = btoa('{"alg":"RS256","typ":"JWT"}').replace(/=+$/, '')
  await assert.rejects(verifyJWT(`${rs256}.${claims}.${sig}`, keyFor, 1000), /not HMAC/)
  await assert.rejects(verifyJWT(`${t.split('.')[0]}.${claims}.AAAA`, keyFor, 1000), /signature/)
})
