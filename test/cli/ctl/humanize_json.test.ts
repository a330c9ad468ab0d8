/**
 * go-humanize and Go fmt/json behaviours ctl output depends on, and the `--enc=json` encoder.
 */
import { equal } from 'node:assert/strict'
import { goFixed, humanBytes, relTime } from '../../../cli/ctl/humanize.ts'
import { goJsonIndent } from '../../../cli/ctl/format_json.ts'
import { decodeMetric, decodePin, goTime } from '../../../src/api/rest/client_decode.ts'
import { jsonValues, parseJson } from '../../../src/api/rest/client_json.ts'
import { CIDS } from './fake_cluster.ts'

// Expected values printed by go-humanize v1.0.1 itself.
Deno.test('humanize: SI bytes as go-humanize.Bytes', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [9, '9 B'],
    [10, '10 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [1234, '1.2 kB'],
    [82854982, '83 MB'],
    [12_345_678_901, '12 GB'],
    [12_500_000_000, '12 GB'], // exact tie: Go's %.0f rounds half to even
    [13_500_000_000, '14 GB'],
    [9_950_000, '10 MB'],
    [9_960_000, '10 MB'],
    [1_000_000, '1.0 MB'],
    [1e9, '1.0 GB'],
    [1e12, '1.0 TB'],
    [999_999, '1000 kB'],
    [999_500, '1000 kB'],
    [1e15, '1.0 PB'],
    [1e18, '1.0 EB'],
  ]
  for (const [n, want] of cases) equal(humanBytes(n), want, `${n}`)
})

Deno.test('humanize: %.Nf rounds exact halves to even', () => {
  equal(goFixed(0.125, 2), '0.12')
  equal(goFixed(0.375, 2), '0.38')
  equal(goFixed(12.3456, 2), '12.35')
  equal(goFixed(2.5, 0), '2')
  equal(goFixed(3.5, 0), '4')
  equal(goFixed(1.005, 2), '1.00') // not a tie in binary: below the half
  equal(goFixed(0, 2), '0.00')
})

Deno.test('humanize: relative times as go-humanize.Time', () => {
  const now = 1_000_000_000_000
  const s = 1000
  const cases: [number, string][] = [
    [0, 'now'],
    [999, 'now'],
    [1 * s, '1 second from now'],
    [29.9 * s, '29 seconds from now'],
    [60 * s, '1 minute from now'],
    [-119 * s, '1 minute ago'],
    [-120 * s, '2 minutes ago'],
    [90 * 60 * s, '1 hour from now'],
    [-3 * 3600 * s, '3 hours ago'],
    [36 * 3600 * s, '1 day from now'],
    [-10 * 86400 * s, '1 week ago'],
    [-20 * 86400 * s, '2 weeks ago'],
    [-45 * 86400 * s, '1 month ago'],
    [-100 * 86400 * s, '3 months ago'],
    [-400 * 86400 * s, '1 year ago'],
    [-600 * 86400 * s, '2 years ago'],
    [-3000 * 86400 * s, '8 years ago'],
    [-20000 * 86400 * s, 'a long while ago'],
  ]
  for (const [d, want] of cases) equal(relTime(now + d, now), want, `${d}`)
})

Deno.test('json: MarshalIndent layout, HTML escaping, exact big integers', () => {
  const m = decodeMetric(
    parseJson('{"name":"freespace","peer":"p","value":"<&>","expire":1795615805678123456}'),
  )
  equal(
    goJsonIndent(m),
    `{
    "name": "freespace",
    "peer": "p",
    "value": "\\u003c\\u0026\\u003e",
    "expire": 1795615805678123456,
    "valid": false,
    "weight": 0,
    "partitionable": false,
    "received_at": 0
}`,
  )
  equal(goJsonIndent([]), '[]')
  equal(goJsonIndent(null), 'null')
  equal(goJsonIndent({ a: {}, b: [1] }), '{\n    "a": {},\n    "b": [\n        1\n    ]\n}')
})

Deno.test('json: decoded pins carry Go zero values in Go field order', () => {
  const pin = decodePin({ cid: CIDS[0], metadata: { b: '1', a: '2' } })
  equal(
    JSON.stringify(pin),
    `{"replication_factor_min":0,"replication_factor_max":0,"name":"","mode":"recursive",` +
      `"shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z",` +
      `"metadata":{"a":"2","b":"1"},"pin_update":null,"origins":null,"cid":"${CIDS[0]}",` +
      `"type":"bad-type","allocations":null,"max_depth":0,"reference":null,` +
      `"timestamp":"0001-01-01T00:00:00Z"}`,
  )
})

Deno.test('json: times re-marshal as Go does (trailing zeros, Z, zero time)', () => {
  equal(goTime('2024-03-04T05:06:07.100000Z'), '2024-03-04T05:06:07.1Z')
  equal(goTime('2024-03-04T05:06:07.000+00:00'), '2024-03-04T05:06:07Z')
  equal(goTime('2024-03-04T05:06:07.5+02:00'), '2024-03-04T05:06:07.5+02:00')
  equal(goTime(undefined), '0001-01-01T00:00:00Z')
  equal(goTime('garbage'), '0001-01-01T00:00:00Z')
})

Deno.test('json stream: values are yielded as soon as complete, whatever the chunking', async () => {
  const text = '{"a":"x}\\"{"}\n[1,2]{"b":{"c":[]}}\n\n  "str" 12 true null\n'
  const enc = new TextEncoder()
  for (const size of [1, 2, 3, 7, 100]) {
    const chunks: Uint8Array[] = []
    for (let i = 0; i < text.length; i += size) chunks.push(enc.encode(text.slice(i, i + size)))
    const got: unknown[] = []
    for await (
      const v of jsonValues((async function* () {
        yield* chunks
      })())
    ) got.push(v)
    equal(
      JSON.stringify(got),
      '[{"a":"x}\\"{"},[1,2],{"b":{"c":[]}},"str",12,true,null]',
      `chunk size ${size}`,
    )
  }
})

Deno.test('json stream: a truncated value is an error, not a silent end', async () => {
  let err: unknown
  try {
    for await (
      const _ of jsonValues((async function* () {
        yield new TextEncoder().encode('{"a":1}\n{"b":')
      })())
    ) { /* consume */ }
  } catch (e) {
    err = e
  }
  equal((err as Error)?.name, 'JsonStreamError')
})
