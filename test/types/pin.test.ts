import assert from 'node:assert/strict'
import {
  defaultPinOptions,
  encodePin,
  expireAtMs,
  isPinEverywhere,
  newPin,
  orderPin,
  type Pin,
  pinFromJSON,
  pinOptionsFromQuery,
  pinOptionsToQuery,
  storedPin,
} from '../../src/types/pin.ts'
import { ZERO_TIME } from '../../src/types/time.ts'
import { CID, parseCid } from '../../src/types/cid.ts'
import { base58btc } from 'multiformats/bases/base58'
import { ValidationError } from '../../src/errors.ts'

const V0 = 'Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL'
const V1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const PEER = '12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const PEER2 = 'QmXZrtE5jQwXNqCJMfHUTQkvhQ4ZAnqMnmzFMJfLewuabc'
// GET /allocations of IPFS Cluster 1.1.6 for a pin added with ?name=x&meta-a=b (go_shapes).
const GO_STORED =
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive",' +
  '"shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},' +
  '"pin_update":null,"origins":[],"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL",' +
  '"type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}'
// The POST /pins response of the same request: the pin before storage.
const GO_POSTED =
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive",' +
  '"shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},' +
  '"pin_update":null,"origins":null,"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL",' +
  '"type":"pin","allocations":[],"max_depth":-1,"reference":null,' +
  '"timestamp":"2026-11-25T12:36:18.233052385Z"}'

Deno.test('newPin + encodePin give the reference JSON, key for key and in order', () => {
  const pin = newPin(V0, {
    name: 'x',
    metadata: { a: 'b' },
    replication_factor_min: -1,
    replication_factor_max: -1,
  })
  pin.timestamp = '2026-11-25T12:36:18.233052385Z'
  assert.equal(encodePin(pin), GO_POSTED)
  assert.equal(encodePin(storedPin(pin)), GO_STORED)
})

Deno.test('newPin: defaults, CID normalization and direct mode depth', () => {
  const pin = newPin(parseV1AsBase58())
  assert.equal(pin.cid, V1)
  assert.equal(pin.type, 'pin')
  assert.equal(pin.max_depth, -1)
  assert.equal(pin.pin_update, null)
  assert.equal(pin.timestamp, ZERO_TIME)
  assert.deepEqual(pin.allocations, [])
  assert.equal(newPin(V0, { mode: 'direct' }).max_depth, 0)
  assert.throws(() => newPin('notacid'), ValidationError)
})

function parseV1AsBase58(): string {
  // V1 written in base58btc ('z' prefix): newPin must store the base32 form.
  const s = parseCid(V1).toString(base58btc)
  assert.ok(s.startsWith('z'))
  return s
}

Deno.test('encodePin orders keys whatever order the object was built in', () => {
  const pin = newPin(V0)
  const shuffled = Object.fromEntries(Object.entries(pin).reverse()) as unknown as Pin
  assert.equal(encodePin(shuffled), encodePin(pin))
  assert.deepEqual(Object.keys(orderPin(shuffled)), Object.keys(pin))
})

Deno.test('storedPin keeps what the reference protobuf keeps and nothing more', () => {
  const pin = newPin(V1, {
    name: 'n',
    mode: 'direct',
    user_allocations: [PEER],
    metadata: {},
    expire_at: '2030-01-02T03:04:05.5Z',
  })
  pin.timestamp = '2026-11-25T12:36:18.9Z'
  const s = storedPin(pin)
  assert.equal(s.timestamp, '2026-11-25T12:36:18Z')
  assert.equal(s.expire_at, '2030-01-02T03:04:05Z')
  assert.deepEqual(s.origins, [])
  assert.equal(s.user_allocations, null)
  assert.equal(s.metadata, null)
  assert.equal(s.mode, 'direct')
  assert.equal(s.max_depth, 0)
  // Idempotent: storing a stored pin changes nothing.
  assert.equal(encodePin(storedPin(s)), encodePin(s))
  // Offsets keep their zone; anything that is not a fraction of seconds stays as it is.
  for (
    const [t, want] of [
      ['2026-11-25T14:36:18.123456789+02:00', '2026-11-25T14:36:18+02:00'],
      ['2026-11-25T12:36:18-05:30', '2026-11-25T12:36:18-05:30'],
      ['2026-11-25T12:36:18.Z', '2026-11-25T12:36:18.Z'],
      ['2026-11-25T12:36:18.5X', '2026-11-25T12:36:18.5X'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z'],
    ]
  ) {
    pin.timestamp = t
    assert.equal(storedPin(pin).timestamp, want, t)
  }
})

Deno.test('pinFromJSON reads the reference JSON and fills missing fields', () => {
  assert.equal(encodePin(pinFromJSON(JSON.parse(GO_STORED))), GO_STORED)
  const minimal = pinFromJSON({ cid: V0 })
  assert.equal(minimal.cid, V0)
  assert.equal(minimal.type, 'pin')
  assert.equal(minimal.mode, 'recursive')
  assert.equal(minimal.max_depth, -1)
  assert.equal(minimal.expire_at, ZERO_TIME)
  assert.deepEqual(minimal.allocations, [])
  assert.equal(pinFromJSON({ cid: V0, max_depth: 0 }).mode, 'direct')
  const withUpdate = pinFromJSON({ cid: V1, pin_update: V0, reference: V0 })
  assert.equal(withUpdate.pin_update, V0)
  assert.equal(withUpdate.reference, V0)
})

Deno.test('pinFromJSON rejects bad values naming the field', () => {
  const bad: [unknown, RegExp][] = [
    [null, /must be a JSON object/],
    [[], /must be a JSON object/],
    [{}, /cid is missing/],
    [{ cid: 'nope' }, /cid is not a valid CID/],
    [{ cid: V0, type: 'weird' }, /type has unknown value/],
    [{ cid: V0, replication_factor_min: 1.5 }, /replication_factor_min must be an integer/],
    [{ cid: V0, name: 3 }, /name must be a string/],
    [{ cid: V0, allocations: [1] }, /allocations must be a list of strings/],
    [{ cid: V0, metadata: { a: 1 } }, /metadata must be an object of strings/],
    [{ cid: V0, timestamp: 'yesterday' }, /invalid RFC3339 time/],
  ]
  for (const [v, re] of bad) assert.throws(() => pinFromJSON(v), re, JSON.stringify(v))
})

Deno.test('pinOptionsFromQuery parses the reference parameters', () => {
  const now = Date.UTC(2026, 0, 1)
  const q = new URLSearchParams(
    'name=n&mode=direct&replication-min=2&replication-max=3&shard-size=100' +
      `&user-allocations=${PEER},%20${PEER2},&expire-in=1h&meta-a=1&meta-b=2&meta-=x` +
      `&pin-update=${V0}&origins=/ip4/1.2.3.4/tcp/4001/p2p/${PEER}`,
  )
  const o = pinOptionsFromQuery(q, now)
  assert.equal(o.name, 'n')
  assert.equal(o.mode, 'direct')
  assert.equal(o.replication_factor_min, 2)
  assert.equal(o.replication_factor_max, 3)
  assert.equal(o.shard_size, 100)
  assert.deepEqual(o.user_allocations, [PEER, PEER2])
  assert.equal(o.expire_at, '2026-01-01T01:00:00Z')
  assert.deepEqual(o.metadata, { a: '1', b: '2' })
  assert.equal(o.pin_update, V0)
  assert.deepEqual(o.origins, [`/ip4/1.2.3.4/tcp/4001/p2p/${PEER}`])
})

Deno.test('pinOptionsFromQuery: replication overrides both; a repeated meta key keeps its first value', () => {
  const o = pinOptionsFromQuery(
    new URLSearchParams('replication=4&replication-min=1&meta-k=a&meta-k=b'),
  )
  assert.equal(o.replication_factor_min, 4)
  assert.equal(o.replication_factor_max, 4)
  assert.deepEqual(o.metadata, { k: 'a' })
  const d = pinOptionsFromQuery(new URLSearchParams(''))
  assert.deepEqual(d, { ...defaultPinOptions(), metadata: {} })
  assert.equal(
    pinOptionsFromQuery(new URLSearchParams('expire-at=2030-01-02T03:04:05.000Z')).expire_at,
    '2030-01-02T03:04:05Z',
  )
})

Deno.test('pinOptionsFromQuery errors carry the reference messages', () => {
  const bad: [string, string][] = [
    ['replication-min=abc', 'parameter replication-min invalid'],
    ['replication-max=1.5', 'parameter replication-max invalid'],
    ['replication=x', 'parameter replication invalid'],
    ['shard-size=-1', 'parameter shard_size is invalid'],
    // Overflow is garbage too (Go's strconv.Atoi answers "value out of range").
    ['replication-min=99999999999999999999999', 'parameter replication-min invalid'],
    ['replication-max=-99999999999999999999999', 'parameter replication-max invalid'],
    ['replication=9007199254740992', 'parameter replication invalid'],
    ['shard-size=99999999999999999999999', 'parameter shard_size is invalid'],
    ['expire-in=500ms', 'expire-in duration too short'],
    ['expire-in=soon', 'expire-in cannot be parsed'],
    [
      'expire-in=9999999999999h',
      'expire-in cannot be parsed: invalid duration "9999999999999h": out of range (at most ' +
      '2562047h47m16.854775807s)',
    ],
    [
      'user-allocations=notapeer,alsonot',
      'parameter user-allocations invalid: some peer IDs could not be decoded: notapeer, alsonot',
    ],
    [
      `user-allocations=${PEER},${V1}`, // a CID, but not a libp2p-key one
      `parameter user-allocations invalid: some peer IDs could not be decoded: ${V1}`,
    ],
    ['expire-at=tomorrow', 'expire-at cannot be parsed'],
    ['pin-update=nope', 'error decoding update option parameter'],
    ['origins=nope', 'error decoding multiaddress'],
    ['origins=/ip4/1.2.3.4/tcp/1', 'multiaddress does not contain peer ID'],
  ]
  for (const [query, msg] of bad) {
    assert.throws(
      () => pinOptionsFromQuery(new URLSearchParams(query)),
      (e: Error) => e instanceof ValidationError && e.message.startsWith(msg),
      query,
    )
  }
})

Deno.test('pinOptionsFromQuery: the largest values a JSON number holds exactly are accepted', () => {
  const o = pinOptionsFromQuery(
    new URLSearchParams('replication-min=%2B9007199254740991&shard-size=9007199254740991'),
  )
  assert.equal(o.replication_factor_min, Number.MAX_SAFE_INTEGER)
  assert.equal(o.shard_size, Number.MAX_SAFE_INTEGER)
  // The longest Go duration is accepted; the expiry is then about 292 years away.
  const now = Date.UTC(2026, 0, 1)
  const far = pinOptionsFromQuery(new URLSearchParams('expire-in=2562047h'), now)
  assert.equal(far.expire_at, new Date(now + 2562047 * 3_600_000).toISOString().replace('.000', ''))
})

Deno.test('pinOptionsFromQuery: user-allocations in CID form are read as go-libp2p prints them', () => {
  const asCid = CID.createV1(0x72, parseCid(PEER2).multihash).toString()
  const o = pinOptionsFromQuery(new URLSearchParams(`user-allocations=${asCid}`))
  assert.deepEqual(o.user_allocations, [PEER2])
})

Deno.test('pinOptionsToQuery is the inverse of pinOptionsFromQuery', () => {
  const opts = {
    ...defaultPinOptions(),
    name: 'a name & more',
    mode: 'direct' as const,
    replication_factor_min: 1,
    replication_factor_max: 5,
    shard_size: 7,
    user_allocations: [PEER],
    expire_at: '2030-01-02T03:04:05Z',
    metadata: { k: 'v', 'with space': 'x=y' },
    pin_update: V0,
    origins: [`/ip4/1.2.3.4/tcp/4001/p2p/${PEER}`],
  }
  const q = pinOptionsToQuery(opts)
  assert.deepEqual(pinOptionsFromQuery(new URLSearchParams(q.toString())), opts)
  // Defaults produce the reference's always-present parameters and nothing else.
  const d = pinOptionsToQuery({})
  assert.deepEqual([...d.keys()].sort(), [
    'mode',
    'name',
    'replication-max',
    'replication-min',
    'shard-size',
    'user-allocations',
  ])
})

Deno.test('isPinEverywhere and expireAtMs', () => {
  assert.ok(isPinEverywhere(newPin(V0, { replication_factor_min: -1, replication_factor_max: -1 })))
  assert.ok(!isPinEverywhere(newPin(V0, { replication_factor_min: -1, replication_factor_max: 2 })))
  assert.equal(expireAtMs(newPin(V0)), 0)
  assert.equal(
    expireAtMs(newPin(V0, { expire_at: '2030-01-01T00:00:00Z' })),
    Date.UTC(2030, 0, 1),
  )
})
