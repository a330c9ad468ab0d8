import assert from 'node:assert/strict'
import { MAX_VALUE_CHARS, readPinsNDJSON } from '../../src/state/ndjson.ts'
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

Deno.test('bad values fail with the line and column where they start, and the reason', async () => {
  const cases: [string, RegExp][] = [
    [`{"cid":"${A}"}\n{bad`, /^line 2, column 1: invalid JSON: /],
    [`{"cid":"${A}"}\n\n{"cid":"nope"}\n`, /^line 3, column 1: pin field cid is not a valid CID/],
    ['[1]\n', /^line 1, column 1: pin must be a JSON object/],
    [
      `{"cid":"${A}","replication_factor_min":"2"}`,
      /^line 1, column 1: pin field replication_factor_min must be an integer/,
    ],
    // After a value on the same line; in a pretty-printed value, the inner place of the fault.
    [`{"cid":"${A}"}  {"cid":1}`, /^line 1, column 59: pin field cid must be a string$/],
    [
      `{\n  "cid": "${A}"\n}\n{\n  "cid": "${B}",\n  "name" "x"\n}\n`,
      /^line 4, column 1: invalid JSON: Expected ':' after property name at line 6, column 10$/,
    ],
    // Unclosed at the end of the input, garbage between values, a bare word, a stray bracket.
    [
      `{"cid":"${A}"}\n{"cid":"${B}"`,
      /^line 2, column 1: invalid JSON: Expected ',' or '}' after property value at line 2, column 69$/,
    ],
    [`{"cid":"${A}"} x {"cid":"${B}"}`, /^line 1, column 58: invalid JSON: /],
    ['null', /^line 1, column 1: pin must be a JSON object/],
    ['nul', /^line 1, column 1: invalid JSON: /],
    [`{"cid":"${A}"}}`, /^line 1, column 57: invalid JSON: /],
    ['"a string"', /^line 1, column 1: pin must be a JSON object/],
    // A message stays on one line whatever the input holds.
    ['{"cid": broken\n', /^line 1, column 1: invalid JSON: [^\n]*$/],
    [
      '{"cid":"a\\nb\\u001b[2J"}',
      /^line 1, column 1: pin field cid is not a valid CID: a\\nb\\x1b\[2J$/,
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

Deno.test("any stream of JSON values is read, as Go's json.Decoder reads it", async () => {
  const pretty = GO_EXPORT.map((l) => JSON.stringify(JSON.parse(l), null, 2))
  const inputs: [string, string][] = [
    ['one pretty-printed object', pretty[0] + '\n'],
    ['pretty-printed objects', pretty.join('\n')],
    ['nothing between objects', GO_EXPORT.join('')],
    ['tabs, CRLF and blank lines between objects', `\t${GO_EXPORT[0]}\r\n\r\n  ${GO_EXPORT[1]}\t`],
    [
      'two objects on a line, then one per line',
      `${GO_EXPORT[0]} ${GO_EXPORT[1]}\n${GO_EXPORT[0]}`,
    ],
  ]
  for (const [what, text] of inputs) {
    const want = what.startsWith('one')
      ? [GO_EXPORT[0]]
      : what.startsWith('two')
      ? [GO_EXPORT[0], GO_EXPORT[1], GO_EXPORT[0]]
      : GO_EXPORT
    assert.deepEqual((await read(stream(text))).map(encodePin), want, what)
  }
})

Deno.test('values split across chunks at every position read the same', async () => {
  // Quotes, escaped quotes, backslashes and brackets inside strings, across every cut.
  const tricky = JSON.stringify({
    cid: A,
    name: 'a "quoted" {name} [x] \\',
    metadata: { '}': '\\"' },
  })
  const text = `${tricky}{"cid":"${B}"}\n  ${JSON.stringify(JSON.parse(tricky), null, 1)}`
  const bytes = new TextEncoder().encode(text)
  const want = (await read(stream(text))).map(encodePin)
  assert.equal(want.length, 3)
  assert.deepEqual(JSON.parse(want[0]).name, 'a "quoted" {name} [x] \\')
  for (let cut = 1; cut < bytes.length; cut++) {
    const got = await read(stream(bytes.slice(0, cut), bytes.slice(cut)))
    assert.deepEqual(got.map(encodePin), want, `cut at ${cut}`)
  }
  // One byte at a time.
  const single = await read(stream(...Array.from(bytes, (b) => new Uint8Array([b]))))
  assert.deepEqual(single.map(encodePin), want)
})

Deno.test('a file is read as a byte stream; an unclosed value does not gather the rest of it', async () => {
  const dir = await Deno.makeTempDir()
  try {
    const file = `${dir}/pins.json`
    const pretty = GO_EXPORT.map((l) => JSON.stringify(JSON.parse(l), null, 2)).join('\n')
    await Deno.writeTextFile(file, pretty.repeat(2000))
    using f = await Deno.open(file)
    let n = 0
    for await (const _ of readPinsNDJSON(f.readable)) n++
    assert.equal(n, 4000)
    // An unclosed string runs on: refused at MAX_VALUE_CHARS, naming where it starts.
    await Deno.writeTextFile(file, `${GO_EXPORT[0]}\n{"cid":"${'x'.repeat(MAX_VALUE_CHARS + 10)}`)
    using g = await Deno.open(file)
    await assert.rejects(
      read(g.readable),
      (e: Error) =>
        e instanceof ValidationError &&
        e.message.startsWith(
          `line 2, column 1: a JSON value longer than ${MAX_VALUE_CHARS} characters`,
        ),
    )
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
