/**
 * The streaming pieces under the Kubo connector: NDJSON reading and the multipart body (the
 * progress watchdog is tested in test/util/watchdog.test.ts).
 */
import assert from 'node:assert/strict'
import { multipartStream } from '../../../src/ipfsconn/ipfshttp/multipart.ts'
import { JsonLineError, readJsonLines } from '../../../src/ipfsconn/ipfshttp/ndjson.ts'

function chunked(...parts: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder()
  return new ReadableStream({
    start(c) {
      for (const p of parts) c.enqueue(enc.encode(p))
      c.close()
    },
  })
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const v of it) out.push(v)
  return out
}

Deno.test('readJsonLines: values split across chunks, blank lines, no final newline', async () => {
  const values = await collect(
    readJsonLines(chunked('{"Progress":1}\n{"Pro', 'gress":2}\n\n  \n{"Pins":["a', '"]}')),
  )
  assert.deepEqual(values, [{ Progress: 1 }, { Progress: 2 }, { Pins: ['a'] }])
  assert.deepEqual(await collect(readJsonLines(chunked(''))), [])
})

Deno.test('readJsonLines: a multi-byte character split between chunks', async () => {
  const bytes = new TextEncoder().encode('{"Name":"é"}\n')
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes.slice(0, 10)) // cuts "é" (2 bytes) in half
      c.enqueue(bytes.slice(10))
      c.close()
    },
  })
  assert.deepEqual(await collect(readJsonLines(body)), [{ Name: 'é' }])
})

Deno.test('readJsonLines: a bad line is a JsonLineError; breaking out cancels the body', async () => {
  await assert.rejects(
    collect(readJsonLines(chunked('{"a":1}\n{oops\n'))),
    (e) => e instanceof JsonLineError,
  )
  let cancelled = false
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new TextEncoder().encode('{"x":1}\n'))
    },
    cancel() {
      cancelled = true
    },
  })
  for await (const _ of readJsonLines(endless)) break
  assert.ok(cancelled)
})

/** A byte stream (as fetch bodies are) serving `bytes` in pieces of at most `piece` bytes. */
function byteStream(bytes: Uint8Array, piece: number, onCancel?: () => void) {
  let off = 0
  return new ReadableStream({
    type: 'bytes',
    pull(c) {
      if (off >= bytes.length) {
        c.close()
        c.byobRequest?.respond(0) // a pending BYOB read ends with the stream
        return
      }
      const view = c.byobRequest?.view
      const n = Math.min(piece, bytes.length - off, view ? view.byteLength : piece)
      if (view) {
        new Uint8Array(view.buffer, view.byteOffset, n).set(bytes.subarray(off, off + n))
        c.byobRequest!.respond(n)
      } else c.enqueue(bytes.slice(off, off + n))
      off += n
    },
    cancel: onCancel,
  })
}

Deno.test('readJsonLines: a byte stream in pieces of any size, lines longer than a piece', async () => {
  // One value far longer than a read, a "é" cut between two reads, many short lines.
  const long = 'x'.repeat(40_000)
  const text = `{"Name":"${long}"}\n{"A":"é"}\n` + '{"Progress":1}\n'.repeat(3000) + '{"Pins":[]}'
  const bytes = new TextEncoder().encode(text)
  for (const piece of [7, 4096, 1 << 20]) {
    const values = await collect(readJsonLines(byteStream(bytes, piece)))
    assert.equal(values.length, 3003)
    assert.deepEqual(values[0], { Name: long })
    assert.deepEqual(values[1], { A: 'é' })
    assert.deepEqual(values[3002], { Pins: [] })
  }
  let cancelled = false
  const endless = byteStream(new TextEncoder().encode('{"x":1}\n'.repeat(1e6)), 100, () => {
    cancelled = true
  })
  for await (const _ of readJsonLines(endless)) break
  assert.ok(cancelled, 'breaking out cancels a byte stream too')
})

Deno.test('multipartStream: a body the server parses back, produced lazily', async () => {
  let produced = 0
  async function* files() {
    for (let i = 0; i < 3; i++) {
      produced++
      yield { name: `f${i}`, bytes: new Uint8Array([i, i, i]) }
    }
  }
  const seen: string[] = []
  const { body, contentType } = multipartStream(files(), (f) => f, (f) => seen.push(f.name))
  assert.equal(produced, 0, 'nothing produced before the body is read')
  const form = await new Request('http://x/', {
    method: 'POST',
    body,
    headers: { 'content-type': contentType },
  }).formData()
  const parts = form.getAll('file') as File[]
  assert.deepEqual(parts.map((p) => p.name), ['f0', 'f1', 'f2'])
  assert.deepEqual(new Uint8Array(await parts[2].arrayBuffer()), new Uint8Array([2, 2, 2]))
  assert.deepEqual(seen, ['f0', 'f1', 'f2'])
})

Deno.test('multipartStream: cancelling the body returns the source iterator', async () => {
  let returned = false
  async function* files() {
    try {
      for (;;) yield { name: 'x', bytes: new Uint8Array(1) }
    } finally {
      returned = true
    }
  }
  const { body } = multipartStream(files(), (f) => f)
  const reader = body.getReader()
  await reader.read()
  await reader.cancel()
  assert.ok(returned)
})
