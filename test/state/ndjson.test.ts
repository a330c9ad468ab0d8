import assert from 'node:assert/strict'
import { readPinsNDJSON } from '../../src/state/ndjson.ts'
import { encodePin } from '../../src/types/pin.ts'
import { ValidationError } from '../../src/errors.ts'

const A = 'Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL'
const B = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
// `ipfs-cluster-service state export` of IPFS Cluster 1.1.6 (two pins).
const GO_EXPORT = [
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},"pin_update":null,"origins":[],"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
  '{"replication_factor_min":2,"replication_factor_max":3,"name":"d","mode":"direct","shard_size":0,"user_allocations":null,"expire_at":"2030-01-02T03:04:05Z","metadata":null,"pin_update":"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG","origins":["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7"],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","type":"pin","allocations":["12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ"],"max_depth":0,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
]

/** A stream delivering `chunks` one by one (to split lines and characters across reads). */
function stream(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder()
  return new ReadableStream({
    pull(c) {
      const next = chunks.shift()
      if (next === undefined) c.close()
      else c.enqueue(typeof next === 'string' ? enc.encode(next) : next)
    },
  })
}

async function read(s: ReadableStream<Uint8Array>) {
  const out = []
  for await (const p of readPinsNDJSON(s)) out.push(p)
  return out
}

Deno.test('reads a Go state export back to the same JSON, line for line', async () => {
  const pins = await read(stream(GO_EXPORT.join('\n') + '\n'))
  assert.deepEqual(pins.map(encodePin), GO_EXPORT)
})

Deno.test('lines split across chunks, multibyte characters split, blank lines, no final newline', async () => {
  const line = JSON.stringify({ cid: A, name: 'ünïcödé ✓' })
  const bytes = new TextEncoder().encode(line)
  const cut = line.indexOf('ü') + 1 // inside the two-byte ü
  const pins = await read(stream(
    '\n  \n',
    bytes.slice(0, cut),
    bytes.slice(cut),
    '\r\n\n',
    `{"cid":"${B}"`,
    ',"name":"last"}',
  ))
  assert.deepEqual(pins.map((p) => [p.cid, p.name]), [[A, 'ünïcödé ✓'], [B, 'last']])
  assert.deepEqual(await read(stream('')), [])
})

Deno.test('bad lines fail with the line number and the reason', async () => {
  const cases: [string, RegExp][] = [
    [`{"cid":"${A}"}\n{bad`, /^line 2: invalid JSON/],
    [`{"cid":"${A}"}\n\n{"cid":"nope"}\n`, /^line 3: pin field cid is not a valid CID/],
    ['[1]\n', /^line 1: pin must be a JSON object/],
    [
      `{"cid":"${A}","replication_factor_min":"2"}`,
      /^line 1: pin field replication_factor_min must be an integer/,
    ],
  ]
  for (const [text, re] of cases) {
    await assert.rejects(
      read(stream(text)),
      (e: Error) => e instanceof ValidationError && re.test(e.message),
      text,
    )
  }
})

Deno.test('pins are yielded as they are read (a bad line later does not hide earlier pins)', async () => {
  const seen: string[] = []
  await assert.rejects(async () => {
    for await (const p of readPinsNDJSON(stream(`{"cid":"${A}"}\n`, 'oops\n'))) seen.push(p.cid)
  }, /line 2/)
  assert.deepEqual(seen, [A])
})
