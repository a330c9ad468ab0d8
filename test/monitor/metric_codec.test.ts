/**
 * The `monitor.metrics` payload against the Go peer's bytes (the reference vector of
 * ../shared/reference/crdt-interop.md §5), round trips of every field, and bad payloads.
 */
import assert from 'node:assert/strict'
import { base58btc } from 'multiformats/bases/base58'
import { decodeMetric, encodeMetric, MetricDecodeError } from '../../src/monitor/metric_codec.ts'
import type { Metric } from '../../src/types/metric.ts'

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
const unhex = (s: string) => new Uint8Array((s.match(/../g) ?? []).map((x) => parseInt(x, 16)))
const utf8 = (s: string) => hex(new TextEncoder().encode(s))

const PEER = '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K'
const GO_PING: Metric = {
  name: 'ping',
  peer: PEER,
  value: '{"peer_name":"a"}',
  expire: 1_700_000_000_000_000_000,
  valid: true,
  weight: 0,
  partitionable: false,
  received_at: 0,
}

Deno.test('metric codec: a ping encodes to the bytes a Go 1.1.6 peer publishes, and decodes back', () => {
  const peer = hex(base58btc.baseDecode(PEER))
  // The vector as the reference gives it, its elided middle parts filled in from the fields.
  assert.ok(peer.startsWith('002408011220fca2') && peer.endsWith('f6644e'), peer)
  const want = '85' + 'a16e' + 'a4' + utf8('ping') + 'a170' + 'da0026' + peer + 'a176' + 'b1' +
    utf8('{"peer_name":"a"}') + 'a165' + 'd3' + '17979cfe362a0000' + 'a164' + 'c3'
  assert.equal(hex(encodeMetric(GO_PING)), want)
  assert.deepEqual(decodeMetric(unhex(want)), GO_PING)
})

Deno.test('metric codec: every field round trips; integers take their smallest signed form', () => {
  for (
    const m of [
      {
        ...GO_PING,
        name: 'freespace',
        weight: 123_456_789_012,
        received_at: 1_800_000_000_000_000_000,
      },
      { ...GO_PING, name: 'tag:group', value: 'a', partitionable: true, weight: 0 },
      { ...GO_PING, name: 'pinqueue', weight: -5, valid: false },
      { ...GO_PING, name: 'x'.repeat(40), value: 'v'.repeat(70_000), weight: 300 },
      { ...GO_PING, weight: -40_000 },
      { ...GO_PING, weight: 100 },
      { ...GO_PING, weight: -20 },
    ]
  ) assert.deepEqual(decodeMetric(encodeMetric(m)), m, m.name)
  assert.equal(hex(encodeMetric({ ...GO_PING, weight: 300 })).includes('a177d1012c'), true)
  assert.equal(hex(encodeMetric({ ...GO_PING, weight: -5 })).includes('a177fb'), true)
})

Deno.test('metric codec: what ugorji also reads — str8, bin, unsigned ints, unknown keys, the old prefix', () => {
  const peer = base58btc.baseDecode(PEER)
  const m = '86' + 'a16e' + 'd904' + utf8('ping') + 'a170' + 'c426' + hex(peer) + 'a165' +
    'cf' + '17979cfe362a0000' + 'a164' + 'c3' + 'a178' + '92a161c0' + 'a177' + 'cd0100'
  const want = { ...GO_PING, value: '', weight: 256 }
  assert.deepEqual(decodeMetric(unhex(m)), want)
  assert.deepEqual(decodeMetric(unhex(utf8('\x09/msgpack\n') + m)), want)
})

Deno.test('metric codec: bad payloads are MetricDecodeError, bad peers ValidationError', () => {
  for (
    const bad of [
      '',
      '93010203',
      '81a16e',
      '82a16ea470696e67a1',
      '81a16ea470696e67', // no peer
      '81a170c426' + '00'.repeat(38), // no name
      '81a16ea470696e67ff',
    ]
  ) assert.throws(() => decodeMetric(unhex(bad)), MetricDecodeError, bad)
  assert.throws(() => encodeMetric({ ...GO_PING, peer: 'not a peer!' }), /not a peer ID/)
})
