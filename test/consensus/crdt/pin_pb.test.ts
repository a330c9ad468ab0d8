/**
 * The pin's protobuf in the CRDT (`api.pb.Pin`): the bytes Go 1.1.6 writes for the reference
 * vector of crdt-interop.md §3.4, and round trips of every field through our Pin type.
 */
import assert from 'node:assert/strict'
import { decodePinPb, encodePinPb, PinPbError } from '../../../src/consensus/crdt/pin_pb.ts'
import { newPin, type Pin, storedPin } from '../../../src/types/pin.ts'
import { parseCid } from '../../../src/types/cid.ts'

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
const unhex = (s: string) =>
  Uint8Array.from(s.replace(/[\s|]/g, '').match(/../g)!.map((h) => parseInt(h, 16)))

const V0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const PEER_A = '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K'
const PEER_B = 'QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL'

// crdt-interop.md §3.4: {Data, recursive, rf -1/-1, name "n", metadata a=1,b=2, ts 1700000000}.
const VECTOR =
  '0a22 1220 9d6c2be50f706953479ab9df2ce3edca90b68053c00b3004b7f0accbe1e8eedf | 1001 | ' +
  '2001 | 3217 0801 1001 1a016e 5206 0a0161 120131 5206 0a0162 120132 | 38 80e2cfaa06'

function vectorPin(): Pin {
  const pin = newPin(V0, {
    replication_factor_min: -1,
    replication_factor_max: -1,
    name: 'n',
    metadata: { b: '2', a: '1' }, // out of order: the encoding sorts them
  })
  pin.timestamp = '2023-11-14T22:13:20Z'
  return pin
}

Deno.test('pin_pb: the §3.4 vector is what Go 1.1.6 writes, byte for byte', () => {
  assert.equal(hex(encodePinPb(vectorPin())), hex(unhex(VECTOR)))
})

Deno.test('pin_pb: the §3.4 vector decodes to the stored pin', () => {
  const pin = decodePinPb(unhex(VECTOR), V0)
  assert.deepEqual(pin, storedPin(vectorPin()))
  assert.equal(pin.mode, 'recursive')
  assert.equal(pin.max_depth, -1)
  assert.deepEqual(pin.metadata, { a: '1', b: '2' })
  assert.deepEqual(pin.allocations, [])
  assert.deepEqual(pin.origins, [])
})

Deno.test('pin_pb: every field round-trips to the stored form of the pin', () => {
  const v1 = parseCid(V0).toV1().toString()
  const pin: Pin = {
    ...newPin(v1, {
      replication_factor_min: 2,
      replication_factor_max: 3,
      name: 'every field ✓',
      mode: 'direct',
      shard_size: 2 ** 40 + 5, // past 2^32: protons' uint64 bug must not bite
      user_allocations: [PEER_A], // not stored (Go does not either)
      expire_at: '2100-01-02T03:04:05.678Z', // whole seconds are stored
      metadata: { z: 'last', '': 'empty key', k: '' },
      pin_update: V0,
      origins: ['/ip4/1.2.3.4/tcp/4001/p2p/' + PEER_A, '/dns4/example.com/tcp/443/wss'],
    }),
    type: 'shard-pin',
    allocations: [PEER_A, PEER_B],
    max_depth: 0,
    reference: V0,
    timestamp: '2024-02-29T12:00:00.999Z',
  }
  const back = decodePinPb(encodePinPb(pin), v1)
  assert.deepEqual(back, storedPin(pin))
  assert.equal(back.expire_at, '2100-01-02T03:04:05Z')
  assert.equal(back.timestamp, '2024-02-29T12:00:00Z')
  assert.equal(back.user_allocations, null)
  assert.equal(back.mode, 'direct')
  assert.equal(back.shard_size, 2 ** 40 + 5)
})

Deno.test('pin_pb: each type maps to its log2 and back; a depth-limited pin stays recursive', () => {
  for (const [type, n] of [['pin', 1], ['meta-pin', 2], ['clusterdag-pin', 3], ['shard-pin', 4]]) {
    const pin = { ...newPin(V0), type: type as Pin['type'], max_depth: 2 }
    const bytes = encodePinPb(pin)
    // field 2 right after the CID's 36 bytes (0a22 + 34)
    assert.deepEqual([...bytes.subarray(36, 38)], [0x10, n])
    const back = decodePinPb(bytes, V0)
    assert.equal(back.type, type)
    assert.equal(back.max_depth, 2)
    assert.equal(back.mode, 'recursive')
  }
})

Deno.test('pin_pb: absent fields read as Go reads them (BadType, direct, unset times)', () => {
  // Only field 1 (the CID): proto3 zero values everywhere else.
  const bytes = unhex('0a22 1220 9d6c2be50f706953479ab9df2ce3edca90b68053c00b3004b7f0accbe1e8eedf')
  const pin = decodePinPb(bytes)
  assert.equal(pin.cid, V0)
  assert.equal(pin.type, 'bad-type')
  assert.equal(pin.max_depth, 0)
  assert.equal(pin.mode, 'direct')
  assert.equal(pin.timestamp, '0001-01-01T00:00:00Z')
  assert.equal(pin.expire_at, '0001-01-01T00:00:00Z')
  assert.equal(pin.metadata, null)
  assert.equal(pin.reference, null)
  assert.equal(pin.pin_update, null)
})

Deno.test('pin_pb: the key CID wins over field 1; the deprecated metadata map is read', () => {
  const other = parseCid(V0).toV1().toString()
  // PinOptions: field 6 (the deprecated map, entry a=o), then field 10 (a=n): 10 overlays 6.
  const options = unhex('3206 0a0161 12016f' + '5206 0a0161 12016e')
  const bytes = Uint8Array.of(
    ...unhex('0a22 1220 9d6c2be50f706953479ab9df2ce3edca90b68053c00b3004b7f0accbe1e8eedf'),
    0x32,
    options.length,
    ...options,
  )
  const pin = decodePinPb(bytes, other)
  assert.equal(pin.cid, other)
  assert.deepEqual(pin.metadata, { a: 'n' })
})

Deno.test('pin_pb: garbage is a PinPbError, not a crash', () => {
  assert.throws(() => decodePinPb(Uint8Array.of(0x0a, 0x50, 1, 2)), PinPbError)
  assert.throws(() => decodePinPb(Uint8Array.of(0x1a, 0x02, 0xff, 0xff), V0), PinPbError)
  assert.throws(() => decodePinPb(new Uint8Array()), PinPbError) // no CID at all
})
