/**
 * What clients send, checked (api/pinsvc/query.ts and status.ts): the `GET /pins` query with the
 * spec's bounds, the Pin body, name matching, and the status words both ways.
 */
import assert from 'node:assert/strict'
import {
  hasFilters,
  metaMatches,
  nameMatches,
  parseListQuery,
  parsePinBody,
  timeMatches,
} from '../../../src/api/pinsvc/query.ts'
import {
  parseSvcStatuses,
  SVC_STATUS_BITS,
  svcStatusMatches,
  svcStatusOf,
} from '../../../src/api/pinsvc/status.ts'
import { ValidationError } from '../../../src/errors.ts'
import type { PinInfoShort } from '../../../src/types/pininfo.ts'
import type { TrackerStatus } from '../../../src/types/status.ts'

const CID0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const CID1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const q = (s: string) => parseListQuery(new URLSearchParams(s))
const bad = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ValidationError && re.test((e as Error).message))

Deno.test('list query: defaults, every filter, and the µs bounds of before/after', () => {
  assert.deepEqual(q(''), { match: 'exact', status: 0, limit: 10 })
  assert.equal(hasFilters(q('')), false)
  assert.equal(hasFilters(q('before=2026-01-01T00:00:00Z&limit=1000')), false)
  const all = q(
    `cid=${CID0},${CID1},${CID1}&name=Ab&match=ipartial&status=pinned,failed&limit=1000` +
      '&before=2026-01-01T00:00:00.000001Z&after=2025-01-01T00:00:00Z&meta={"app":"x"}',
  )
  assert.deepEqual(all.cids, [CID0, 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'])
  assert.equal(all.name, 'Ab')
  assert.equal(all.match, 'ipartial')
  assert.equal(all.status, SVC_STATUS_BITS.pinned | SVC_STATUS_BITS.failed)
  assert.equal(all.limit, 1000)
  assert.equal(all.before, Date.UTC(2026, 0, 1) * 1000 + 1)
  assert.equal(all.after, Date.UTC(2025, 0, 1) * 1000)
  assert.deepEqual(all.meta, { app: 'x' })
  assert.ok(hasFilters(all))
  // A bound finer than the µs (Go's RFC3339Nano): created < 0.5 µs past t means created ≤ t.
  const t = Date.UTC(2026, 0, 1) * 1000
  assert.equal(q('before=2026-01-01T00:00:00.0000005Z').before, t + 1)
  assert.equal(q('after=2026-01-01T00:00:00.0000005Z').after, t)
  assert.ok(timeMatches({ before: t + 1 }, t))
  assert.ok(!timeMatches({ before: t }, t), 'before is strict')
  assert.ok(!timeMatches({ after: t }, t), 'after is strict')
  assert.ok(timeMatches({ after: t }, t + 1))
})

Deno.test('list query: every bad input is a 400 that names the field', () => {
  bad(() => q('limit=0'), /^limit: must be a whole number from 1 to 1000, got "0"$/)
  bad(() => q('limit=1001'), /^limit: .*"1001"/)
  bad(() => q('limit=ten'), /^limit: /)
  bad(() => q('limit=-1'), /^limit: /)
  bad(
    () => q(`cid=${Array(11).fill(CID0).join(',')}`),
    /^cid: at most 10 CIDs may be given, got 11$/,
  )
  bad(() => q('cid=nope'), /^cid: "nope" is not a CID/)
  bad(() => q(`name=${'x'.repeat(256)}`), /^name is longer than 255 characters$/)
  bad(
    () => q('match=fuzzy'),
    /^match: unknown strategy "fuzzy" \(allowed: exact, iexact, partial, ipartial\)$/,
  )
  bad(
    () => q('status=pinned,done'),
    /^status: unknown status "done" \(allowed: queued, pinning, pinned, failed\)$/,
  )
  bad(() => q('before=yesterday'), /^before: invalid RFC3339 time "yesterday" \(expected RFC 3339/)
  bad(() => q('after=2026-13-01T00:00:00Z'), /^after: .*month out of range/)
  bad(() => q('meta=[1]'), /^meta: must be a JSON object of strings$/)
  bad(() => q('meta={"a":1}'), /^meta: the value of "a" must be a string$/)
  bad(() => q('meta={'), /^meta: not valid JSON/)
  // 255 characters (not bytes) is the bound.
  assert.equal(q(`name=${'é'.repeat(255)}`).name?.length, 255)
})

Deno.test('name matching: the four strategies', () => {
  const m = (match: 'exact' | 'iexact' | 'partial' | 'ipartial', want: string, name: string) =>
    nameMatches({ name: want, match }, name)
  assert.ok(m('exact', 'Backup', 'Backup'))
  assert.ok(!m('exact', 'Backup', 'backup'))
  assert.ok(m('iexact', 'Backup', 'bACKUP'))
  assert.ok(!m('iexact', 'Backup', 'Backups'))
  assert.ok(m('partial', 'ack', 'Backup'))
  assert.ok(!m('partial', 'ACK', 'Backup'))
  assert.ok(m('ipartial', 'ACK', 'Backup'))
  assert.ok(!m('ipartial', 'zz', 'Backup'))
  assert.ok(nameMatches({ match: 'exact' }, 'anything'), 'no name filter')
  assert.ok(metaMatches({ meta: { a: '1' } }, { a: '1', b: '2' }))
  assert.ok(!metaMatches({ meta: { a: '1', c: '3' } }, { a: '1', b: '2' }))
})

Deno.test('pin body: the Pin object checked, with a 400 naming the field', () => {
  assert.deepEqual(parsePinBody(`{"cid":"${CID0}"}`), {
    cid: CID0,
    name: '',
    origins: [],
    meta: {},
  })
  const full = parsePinBody(JSON.stringify({
    cid: CID1,
    name: 'n',
    origins: [
      '/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N',
      '/dns4/x.example/tcp/1',
      '/dns4/x.example/tcp/1',
    ],
    meta: { app: 'x' },
  }))
  assert.equal(full.origins.length, 2, 'duplicates dropped')
  assert.deepEqual(full.meta, { app: 'x' })
  bad(() => parsePinBody('nope'), /^request body: not valid JSON/)
  bad(() => parsePinBody('[]'), /^request body: must be a JSON object \(a Pin\)$/)
  bad(() => parsePinBody('{}'), /^cid: missing/)
  bad(() => parsePinBody('{"cid":3}'), /^cid: must be a string$/)
  bad(() => parsePinBody('{"cid":"Qmnope"}'), /^cid: "Qmnope" is not a CID/)
  bad(() => parsePinBody(`{"cid":"${CID0}","name":7}`), /^name: must be a string$/)
  bad(() => parsePinBody(JSON.stringify({ cid: CID0, name: 'x'.repeat(256) })), /^name is longer/)
  bad(() => parsePinBody(`{"cid":"${CID0}","origins":"x"}`), /^origins: must be a list/)
  bad(
    () => parsePinBody(`{"cid":"${CID0}","origins":["nope"]}`),
    /^origins: "nope" is not a multiaddress/,
  )
  bad(
    () =>
      parsePinBody(JSON.stringify({ cid: CID0, origins: Array(21).fill('/ip4/1.2.3.4/tcp/1') })),
    /^origins: at most 20, got 21$/,
  )
  bad(
    () => parsePinBody(`{"cid":"${CID0}","meta":{"a":[]}}`),
    /^meta: the value of "a" must be a string$/,
  )
})

Deno.test('status: the OR of the peers, in the reference order; never undefined for a held pin', () => {
  const of = (...sts: TrackerStatus[]) =>
    svcStatusOf({
      peer_map: Object.fromEntries(
        sts.map((status, i) => [`p${i}`, { status } as PinInfoShort]),
      ),
    })
  assert.equal(of('pinned', 'pinned'), 'pinned')
  assert.equal(of('pinned', 'remote'), 'pinned')
  assert.equal(of('pinned', 'pinning'), 'pinning')
  assert.equal(of('pin_queued', 'pinning'), 'queued')
  assert.equal(of('pinned', 'pin_error'), 'failed')
  assert.equal(of('pinned', 'cluster_error'), 'failed')
  assert.equal(of('unpin_error'), 'failed')
  // Where the reference says undefined: the pin is held, nobody has it yet.
  assert.equal(of('unpinned', 'remote'), 'queued')
  assert.equal(of('unexpectedly_unpinned'), 'queued')
  assert.equal(of(), 'queued')
  assert.equal(parseSvcStatuses(''), 0)
  assert.equal(
    parseSvcStatuses('queued, pinning'),
    SVC_STATUS_BITS.queued | SVC_STATUS_BITS.pinning,
  )
  assert.ok(svcStatusMatches('pinned', 0))
  assert.ok(svcStatusMatches('pinned', SVC_STATUS_BITS.pinned))
  assert.ok(!svcStatusMatches('failed', SVC_STATUS_BITS.pinned | SVC_STATUS_BITS.queued))
})
