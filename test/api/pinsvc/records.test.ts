/**
 * The requests of a pin (api/pinsvc/records.ts): ids, `created` times, what a pin lists as, and
 * what adding and removing requests leaves — including a pin made outside the API, which keeps
 * its own request and is left as it was when the last record goes.
 */
import assert from 'node:assert/strict'
import {
  BASE_KEY,
  createdClock,
  findRequest,
  formatMicros,
  newRecordKey,
  parseMicros,
  parseRequestId,
  type PinFields,
  recordRequestId,
  requestsOf,
  userMeta,
  withoutRequest,
  withRecord,
} from '../../../src/api/pinsvc/records.ts'
import { normalizeCid } from '../../../src/types/cid.ts'

const CID = normalizeCid('bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 // µs

/** A pin as the state holds it after a commit of `shape` at second `secs`. */
function pinOf(
  shape: { name: string; metadata: Record<string, string>; origins: string[] },
  secs = 0,
): PinFields {
  return {
    cid: CID,
    name: shape.name,
    metadata: shape.metadata,
    origins: shape.origins,
    timestamp: formatMicros(T0 + secs * 1_000_000),
  }
}

Deno.test("request ids: <CID>-<128 random bits>, or the CID for a pin's own request", () => {
  const keys = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const key = newRecordKey()
    assert.match(key, /^[a-z2-7]{26}$/)
    keys.add(key)
  }
  assert.equal(keys.size, 2000)
  assert.equal(newRecordKey(() => new Uint8Array(16)), 'a'.repeat(26))
  const rid = recordRequestId(CID, 'k'.repeat(26))
  assert.equal(rid, `${CID}-${'k'.repeat(26)}`)
  assert.deepEqual(parseRequestId(rid), { cid: CID, key: 'k'.repeat(26) })
  assert.deepEqual(parseRequestId(CID), { cid: CID, key: undefined })
  for (const bad of ['nope', 'nope-key', `${CID}-`, '-key', '']) {
    assert.equal(parseRequestId(bad), undefined, bad)
  }
})

Deno.test('created: strictly increasing within one millisecond, printed to the µs', () => {
  let now = 1_700_000_000_123
  const next = createdClock(() => now)
  const a = next()
  const b = next()
  const c = next()
  assert.equal(a, now * 1000)
  assert.equal(b, a + 1)
  assert.equal(c, a + 2)
  now += 5
  assert.equal(next(), now * 1000)
  now -= 100 // a clock stepping back still gives a later time
  assert.ok(next() > now * 1000 + 100_000)
  assert.equal(formatMicros(a), '2023-11-14T22:13:20.123Z')
  assert.equal(formatMicros(b), '2023-11-14T22:13:20.123001Z')
  assert.equal(formatMicros(1_700_000_000_000_000), '2023-11-14T22:13:20Z')
  for (const us of [a, b, c, 1, 999_999, T0 + 120]) {
    assert.equal(parseMicros(formatMicros(us)).us, us)
  }
})

Deno.test('parseMicros: zones, nanoseconds, and what is not RFC 3339', () => {
  assert.deepEqual(parseMicros('2023-11-14T22:13:20.123456789Z'), {
    us: 1_700_000_000_123_456,
    exact: false,
  })
  assert.deepEqual(parseMicros('2023-11-14T22:13:20.123456000Z'), {
    us: 1_700_000_000_123_456,
    exact: true,
  })
  assert.equal(parseMicros('2023-11-15T00:13:20.5+02:00').us, 1_700_000_000_500_000)
  assert.throws(() => parseMicros('yesterday'), /invalid RFC3339 time/)
  assert.throws(() => parseMicros('2023-11-14 22:13:20Z'), /invalid RFC3339 time/)
})

Deno.test('a pin without records is one request: its CID, name, meta, origins and timestamp', () => {
  const pin: PinFields = {
    cid: CID,
    name: 'made by ctl',
    metadata: { kind: 'text' },
    origins: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N'],
    timestamp: '2026-01-02T03:04:05.678Z',
  }
  assert.deepEqual(requestsOf(pin), [{
    requestid: CID,
    cid: CID,
    name: 'made by ctl',
    origins: pin.origins,
    meta: { kind: 'text' },
    created: T0, // whole seconds: the state keeps pins' times to the second
  }])
  assert.deepEqual(requestsOf({ ...pin, metadata: null, origins: null }).map((r) => r.meta), [{}])
})

Deno.test('requests added to a new pin: the pin is named after the newest, origins are all', () => {
  const s1 = withRecord(CID, undefined, 'aaaaaaaaaaaaaaaaaaaaaaaaaa', {
    name: 'first',
    origins: ['/ip4/1.2.3.4/tcp/1'],
    meta: { app: 'x' },
  }, T0 + 1)
  assert.equal(s1.name, 'first')
  assert.deepEqual(Object.keys(s1.metadata), ['pinsvc/aaaaaaaaaaaaaaaaaaaaaaaaaa'])
  const p1 = pinOf(s1, 1)
  const s2 = withRecord(CID, p1, 'bbbbbbbbbbbbbbbbbbbbbbbbbb', {
    name: 'second',
    origins: ['/ip4/1.2.3.4/tcp/1', '/ip4/5.6.7.8/tcp/1'],
    meta: {},
  }, T0 + 2)
  assert.equal(s2.name, 'second')
  assert.deepEqual(s2.origins, ['/ip4/1.2.3.4/tcp/1', '/ip4/5.6.7.8/tcp/1'])
  const p2 = pinOf(s2, 2)
  const reqs = requestsOf(p2)
  const ra = `${CID}-aaaaaaaaaaaaaaaaaaaaaaaaaa`
  const rb = `${CID}-bbbbbbbbbbbbbbbbbbbbbbbbbb`
  assert.deepEqual(reqs.map((r) => [r.requestid, r.name, r.created]).sort(), [
    [ra, 'first', T0 + 1],
    [rb, 'second', T0 + 2],
  ])
  assert.deepEqual(findRequest(p2, ra)?.meta, { app: 'x' })
  assert.equal(findRequest(p2, CID), undefined, 'a pin made here has no request of its own')
  assert.deepEqual(userMeta(p2.metadata), {})

  // Removing the newest names the pin after the one left; removing the last unpins.
  const s3 = withoutRequest(p2, rb)
  assert.ok(s3 && s3 !== 'unpin')
  assert.equal(s3.name, 'first')
  assert.deepEqual(s3.origins, ['/ip4/1.2.3.4/tcp/1'])
  assert.equal(withoutRequest(pinOf(s3, 3), ra), 'unpin')
  assert.equal(withoutRequest(p2, `${CID}-cccccccccccccccccccccccccc`), undefined)
  assert.equal(
    withoutRequest(p2, `QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG-${'a'.repeat(26)}`),
    undefined,
    'another CID',
  )
  assert.equal(withoutRequest(p2, CID), undefined, 'no such request')
})

Deno.test('a pin made outside the API keeps its request beside records, and comes back as it was', () => {
  const made: PinFields = {
    cid: CID,
    name: 'backup',
    metadata: { owner: 'ops' },
    origins: ['/ip4/9.9.9.9/tcp/4001'],
    timestamp: formatMicros(T0),
  }
  const s = withRecord(CID, made, 'aaaaaaaaaaaaaaaaaaaaaaaaaa', {
    name: 'client',
    origins: [],
    meta: {},
  }, T0 + 5_000_000)
  assert.equal(s.name, 'backup', 'the pin keeps its own name')
  assert.ok(s.metadata[BASE_KEY] !== undefined)
  assert.equal(s.metadata.owner, 'ops')
  const p = pinOf(s, 5)
  const reqs = requestsOf(p)
  const ra = `${CID}-aaaaaaaaaaaaaaaaaaaaaaaaaa`
  assert.deepEqual(reqs.map((r) => r.requestid).sort(), [ra, CID].sort())
  const base = findRequest(p, CID)!
  assert.equal(base.created, T0, 'its created stays that of the pin before the record')
  assert.equal(base.name, 'backup')
  assert.deepEqual(base.meta, { owner: 'ops' })
  assert.deepEqual(base.origins, ['/ip4/9.9.9.9/tcp/4001'])

  // The last record going leaves the pin as it was made.
  const back = withoutRequest(p, ra)
  assert.deepEqual(back, {
    name: 'backup',
    metadata: { owner: 'ops' },
    origins: ['/ip4/9.9.9.9/tcp/4001'],
  })
  // Removing the pin's own request leaves the records only; then the last one unpins.
  const recordsOnly = withoutRequest(p, CID)
  assert.ok(recordsOnly && recordsOnly !== 'unpin')
  assert.equal(recordsOnly.metadata[BASE_KEY], undefined)
  assert.equal(recordsOnly.name, 'client')
  const p2 = pinOf(recordsOnly, 6)
  assert.deepEqual(requestsOf(p2).map((r) => r.requestid), [ra])
  assert.equal(withoutRequest(p2, ra), 'unpin')
  // A pin without records: its own request is its only one.
  assert.equal(withoutRequest(made, CID), 'unpin')
})

Deno.test('a record set by hand to something else is still a request, dated by its pin', () => {
  const pin: PinFields = {
    cid: CID,
    name: '',
    metadata: { 'pinsvc/handmade': 'not json', 'pinsvc/': 'ignored' },
    origins: [],
    timestamp: formatMicros(T0),
  }
  assert.deepEqual(requestsOf(pin), [{
    requestid: `${CID}-handmade`,
    cid: CID,
    name: '',
    origins: [],
    meta: {},
    created: T0,
  }])
  assert.equal(withoutRequest(pin, `${CID}-handmade`), 'unpin')
})
