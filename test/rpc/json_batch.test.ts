/**
 * The JSON text of a streamed batch (src/rpc/json_batch.ts): whatever the items, they decode to
 * what `JSON.parse(JSON.stringify(item))` gives, key order included; items of one shape travel as
 * columns, a status stream's PinInfos in a fraction of their JSON; the size estimate follows the
 * text; malformed columns are refused.
 */
import assert from 'node:assert/strict'
import { JsonBatch, parseJsonBatch } from '../../src/rpc/json_batch.ts'
import { pinInfo } from './hosts.ts'

/** What the batch must reproduce: each item as JSON would carry it. */
function viaJson(items: unknown[]): unknown[] {
  return items.map((x) => JSON.parse(JSON.stringify(x) ?? 'null'))
}

function roundTrip(items: unknown[]): { text: string; chars: number; got: unknown[] } {
  const b = new JsonBatch()
  for (const it of items) b.add(it)
  assert.equal(b.count, items.length)
  const chars = b.chars
  const text = b.take()
  assert.equal(b.count, 0)
  assert.equal(b.chars, 0)
  const got = parseJsonBatch(text)
  assert.deepEqual(got, viaJson(items))
  // Byte for byte: same keys in the same order.
  assert.equal(JSON.stringify(got), JSON.stringify(viaJson(items)))
  return { text, chars, got }
}

Deno.test('json batch: a status stream travels as columns, in a fraction of its JSON', () => {
  const items = Array.from({ length: 500 }, (_, i) => {
    const pi = pinInfo(i * 7919)
    // Fresh arrays per item, as a parsed pin has: equal by value, not by reference.
    pi.allocations = []
    pi.origins = []
    if (i % 50 === 7) {
      pi.status = 'pin_error'
      pi.error = 'context deadline exceeded'
      pi.attempt_count = 2
    }
    return pi
  })
  const { text, chars } = roundTrip(items)
  const plain = JSON.stringify(items).length
  assert.ok(text.length < plain / 3, `${text.length} characters against ${plain} as plain JSON`)
  const cols = JSON.parse(text)
  assert.ok(!Array.isArray(cols), 'columns')
  // The CID, the name and the varying status fields are rows; the peer's fields constants.
  assert.deepEqual(
    cols.k.filter((_: string, j: number) => !cols.c.includes(j)),
    ['cid', 'name', 'status', 'error', 'attempt_count'],
  )
  assert.ok(Math.abs(text.length - chars) < text.length / 10 + 200, `${chars} for ${text.length}`)
})

Deno.test('json batch: decoded items own their constant objects', () => {
  const shared = ['/ip4/127.0.0.1/tcp/4001']
  const { got } = roundTrip([{ a: 1, xs: shared, m: { k: 'v' } }, {
    a: 2,
    xs: shared,
    m: { k: 'v' },
  }])
  const [x, y] = got as { xs: string[]; m: Record<string, string> }[]
  x.xs.push('/ip4/10.0.0.1/tcp/4001')
  x.m.k = 'changed'
  assert.deepEqual(y.xs, shared)
  assert.deepEqual(y.m, { k: 'v' })
})

Deno.test('json batch: any items decode as JSON carries them', () => {
  const cases: unknown[][] = [
    [],
    [1, 'two', null, [3], { four: 4 }],
    [{ a: 1, b: 2 }, { b: 2, a: 1 }], // same keys, another order
    [{ a: 1 }, { a: 1, b: 2 }],
    [{ a: 1, b: undefined }, { a: 2, b: undefined }], // absent everywhere
    [{ a: 1, b: undefined }, { a: 2, b: 'x' }], // absent somewhere only
    [{ a: 1, b: 'x' }, { a: 2, b: undefined }],
    [{ a: { y: 1, x: 2 } }, { a: { x: 2, y: 1 } }], // equal objects, keys in another order
    [{ a: [] }, { a: [] }, { a: [1] }],
    [{ '2': 'b', '1': 'a', z: 0 }, { '2': 'b', '1': 'a', z: 1 }],
    [{ a: 'é€𝄞"\\\n' }, { a: 'plain' }],
    [{ a: 1 }, 'not an object'],
    [Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
    [{ a: NaN }, { a: NaN }],
  ]
  for (const items of cases) roundTrip(items)
  for (let n = 1; n < 40; n++) {
    const items = Array.from({ length: n }, (_, i) => ({
      cid: `c${i}`,
      same: 'x',
      sometimes: i % 3 === 0 ? 'a' : 'b',
      late: i === n - 1 ? 'changed' : 'kept',
    }))
    roundTrip(items)
  }
})

Deno.test('json batch: malformed columns are refused', () => {
  const bad = [
    '{"k":["a","b"],"c":[0],"v":[1],"r":[[1,2]]}', // row too long
    '{"k":["a"],"c":[5],"v":[1],"r":[]}', // no such column
    '{"k":["a","b"],"c":[0,1],"v":[1],"r":[[]]}', // a constant without a value
    '{"k":["a"],"r":[]}',
    '"text"',
    'null',
  ]
  for (const t of bad) assert.throws(() => parseJsonBatch(t), SyntaxError, t)
})
