/**
 * Every route of the Pinning Service API in-process (through `handler`, no socket) over the fake
 * cluster and a real index: each answer checked against the spec's schemas (schema.ts), its
 * status code, and what the cluster pinset holds afterwards.
 */
import assert from 'node:assert/strict'
import { FAKE_IPFS_ID, FAKE_PEER_ID } from '../../support/fake_cluster.ts'
import { newPin } from '../../../src/types/pin.ts'
import { formatTime } from '../../../src/types/time.ts'
import { benchCid } from '../../../bench/cids.ts'
import { type Harness, pinsvcHarness } from './harness.ts'
import { assertFailure, assertPinResults, assertPinStatus } from './schema.ts'

const CID0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const CID1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const ORIGIN = `/ip4/10.0.0.9/tcp/4001/p2p/${FAKE_IPFS_ID}`
const DELEGATE = `/ip4/127.0.0.1/tcp/4001/p2p/${FAKE_IPFS_ID}`

type Obj = Record<string, unknown>

async function json(res: Response): Promise<Obj> {
  const text = await res.text()
  assert.ok(text.endsWith('\n'), 'a JSON line')
  assert.equal(res.headers.get('content-type'), 'application/json')
  return JSON.parse(text)
}

async function withApi(fn: (h: Harness) => Promise<void>, config?: Record<string, unknown>) {
  const h = await pinsvcHarness(config)
  try {
    await fn(h)
  } finally {
    await h.close()
  }
}

/** POST /pins, checked; returns the PinStatus. */
async function add(h: Harness, body: Obj): Promise<Obj> {
  const res = await h.call('POST', '/pins', body)
  const st = await json(res)
  assert.equal(res.status, 202, JSON.stringify(st))
  assertPinStatus(st)
  return st
}

async function list(h: Harness, query = ''): Promise<{ count: number; results: Obj[] }> {
  const res = await h.call('GET', `/pins${query}`)
  const body = await json(res)
  assert.equal(res.status, 200, JSON.stringify(body))
  return assertPinResults(body)
}

async function failure(res: Response, status: number, reason: string): Promise<string> {
  const body = await json(res)
  assert.equal(res.status, status, JSON.stringify(body))
  return assertFailure(body, reason).details ?? ''
}

Deno.test("POST /pins: 202 and a PinStatus; the request is a record in the CID's cluster pin", () =>
  withApi(async (h) => {
    const st = await add(h, { cid: CID1, name: 'backup', origins: [ORIGIN], meta: { app: 'x' } })
    assert.match(st.requestid as string, new RegExp(`^${CID1}-[a-z2-7]{26}$`))
    assert.equal(st.status, 'pinned') // the fake pins at once
    assert.equal(st.created, '2026-01-02T03:04:05Z')
    assert.deepEqual(st.pin, { cid: CID1, name: 'backup', origins: [ORIGIN], meta: { app: 'x' } })
    assert.deepEqual(st.delegates, [DELEGATE])
    assert.deepEqual(st.info, { source: 'IPFS Cluster' })
    const pin = h.cluster.pinset.get(CID1)!
    assert.equal(pin.name, 'backup')
    assert.equal(pin.mode, 'recursive')
    assert.deepEqual(pin.origins, [ORIGIN])
    const key = (st.requestid as string).slice(CID1.length + 1)
    assert.deepEqual(Object.keys(pin.metadata!), [`pinsvc/${key}`])
    assert.deepEqual(JSON.parse(pin.metadata![`pinsvc/${key}`]), {
      created: '2026-01-02T03:04:05Z',
      name: 'backup',
      origins: [ORIGIN],
      meta: { app: 'x' },
    })
    // Read back by its id.
    const res = await h.call('GET', `/pins/${st.requestid}`)
    const got = await json(res)
    assert.equal(res.status, 200)
    assertPinStatus(got)
    assert.deepEqual(got, st)
  }))

Deno.test('one CID under two names: two requests, one pin named after the newest', () =>
  withApi(async (h) => {
    const a = await add(h, { cid: CID1, name: 'first' })
    const b = await add(h, { cid: CID1, name: 'second' })
    assert.notEqual(a.requestid, b.requestid)
    assert.equal(b.created, '2026-01-02T03:04:05.000001Z', 'unique even within one millisecond')
    assert.equal(h.cluster.pinset.size, 1)
    assert.equal(h.cluster.pinset.get(CID1)!.name, 'second')
    const l = await list(h)
    assert.equal(l.count, 2)
    assert.deepEqual(l.results.map((r) => r.requestid), [b.requestid, a.requestid])
    assert.deepEqual(l.results.map((r) => (r.pin as Obj).name), ['second', 'first'])
    // The first one goes: the pin stays for the second, named after it.
    const del = await h.call('DELETE', `/pins/${a.requestid}`)
    assert.equal(del.status, 202)
    assert.equal(await del.text(), '')
    assert.equal(h.cluster.pinset.get(CID1)!.name, 'second')
    assert.deepEqual((await list(h)).results.map((r) => r.requestid), [b.requestid])
    await failure(await h.call('GET', `/pins/${a.requestid}`), 404, 'NOT_FOUND')
    await failure(await h.call('DELETE', `/pins/${a.requestid}`), 404, 'NOT_FOUND')
    // The last one goes: the CID is unpinned.
    assert.equal((await h.call('DELETE', `/pins/${b.requestid}`)).status, 202)
    assert.equal(h.cluster.pinset.size, 0)
    assert.deepEqual(await list(h), { count: 0, results: [] })
  }))

Deno.test('concurrent requests for one CID all land (writes of a CID are serialised)', () =>
  withApi(async (h) => {
    const sts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => add(h, { cid: CID1, name: `n${i}` })),
    )
    const pin = h.cluster.pinset.get(CID1)!
    assert.equal(Object.keys(pin.metadata!).length, 20)
    const l = await list(h, '?limit=100')
    assert.equal(l.count, 20)
    assert.deepEqual(
      new Set(l.results.map((r) => r.requestid)),
      new Set(sts.map((s) => s.requestid)),
    )
    await Promise.all(
      sts.map((s) => h.call('DELETE', `/pins/${s.requestid}`).then((r) => r.body?.cancel())),
    )
    assert.equal(h.cluster.pinset.size, 0)
  }))

Deno.test('a pin made by the REST API lists as one request (its CID) and is left as it was', () =>
  withApi(async (h) => {
    const made = newPin(CID0, {
      name: 'ops',
      metadata: { owner: 'ops' },
      replication_factor_min: 2,
      replication_factor_max: 3,
    })
    made.timestamp = formatTime(Date.UTC(2025, 5, 1))
    made.allocations = [FAKE_PEER_ID]
    await h.restPin(made)
    let l = await list(h)
    assert.equal(l.count, 1)
    assert.deepEqual(l.results[0], {
      requestid: CID0,
      status: 'pinned',
      created: '2025-06-01T00:00:00Z',
      pin: { cid: CID0, name: 'ops', meta: { owner: 'ops' } },
      delegates: [DELEGATE],
      info: { source: 'IPFS Cluster' },
    })
    const st = await add(h, { cid: CID0, name: 'client' })
    const pin = h.cluster.pinset.get(CID0)!
    assert.equal(pin.name, 'ops', 'the pin keeps its name')
    assert.equal(pin.replication_factor_min, 2, 'and its replication')
    assert.equal(pin.replication_factor_max, 3)
    l = await list(h)
    assert.deepEqual(l.results.map((r) => r.requestid), [st.requestid, CID0])
    // The record goes: the pin is back to what the REST API made.
    assert.equal((await h.call('DELETE', `/pins/${st.requestid}`)).status, 202)
    const back = h.cluster.pinset.get(CID0)!
    assert.equal(back.name, 'ops')
    assert.deepEqual(back.metadata, { owner: 'ops' })
    // Its own request (id = CID) removed: unpinned, as the reference does.
    assert.equal((await h.call('DELETE', `/pins/${CID0}`)).status, 202)
    assert.equal(h.cluster.pinset.size, 0)
  }))

Deno.test('POST /pins/{requestid} replaces: the new request in, the old one out', () =>
  withApi(async (h) => {
    const a = await add(h, { cid: CID1, name: 'v1' })
    const keep = await add(h, { cid: CID1, name: 'other' })
    // Same CID: one commit.
    let res = await h.call('POST', `/pins/${a.requestid}`, { cid: CID1, name: 'v2' })
    const b = await json(res)
    assert.equal(res.status, 202)
    assertPinStatus(b)
    assert.notEqual(b.requestid, a.requestid)
    assert.equal((b.pin as Obj).name, 'v2')
    assert.deepEqual(
      new Set((await list(h)).results.map((r) => r.requestid)),
      new Set([b.requestid, keep.requestid]),
    )
    // Another CID: pinned first, then the old request goes (and its CID stays for `keep`).
    res = await h.call('POST', `/pins/${b.requestid}`, { cid: CID0, name: 'v3' })
    const c = await json(res)
    assert.equal(res.status, 202, JSON.stringify(c))
    assertPinStatus(c)
    assert.equal((c.pin as Obj).cid, CID0)
    const l = await list(h)
    assert.deepEqual(
      new Set(l.results.map((r) => r.requestid)),
      new Set([c.requestid, keep.requestid]),
    )
    assert.equal(h.cluster.pinset.size, 2)
    // The old CID's last request replaced: it is unpinned.
    res = await h.call('POST', `/pins/${keep.requestid}`, { cid: CID0 })
    assert.equal(res.status, 202)
    await res.body?.cancel()
    assert.deepEqual([...h.cluster.pinset.keys()], [CID0])
    // Replacing what does not exist: 404, and nothing is pinned.
    const details = await failure(
      await h.call('POST', `/pins/${a.requestid}`, { cid: CID1 }),
      404,
      'NOT_FOUND',
    )
    assert.match(details, /no pin request with requestid/)
    assert.equal(h.cluster.pinset.has(CID1), false)
  }))

Deno.test('GET /pins: newest first, limit, and Kubo-style paging with before ends on count', () =>
  withApi(async (h) => {
    const made: string[] = []
    for (let i = 0; i < 25; i++) {
      made.push((await add(h, { cid: benchCid(i), name: `item-${i}` })).requestid as string)
      await h.clock.advance(1000)
    }
    const first = await list(h)
    assert.equal(first.count, 25)
    assert.equal(first.results.length, 10, 'the default limit')
    assert.deepEqual(first.results.map((r) => r.requestid), made.slice(-10).reverse())
    // The client's loop: until count == the page's length, `before` = the oldest's created.
    const seen: string[] = []
    let query = '?limit=10'
    for (let pages = 0; pages < 10; pages++) {
      const page = await list(h, query)
      seen.push(...page.results.map((r) => r.requestid as string))
      if (page.count === page.results.length) break
      const oldest = page.results[page.results.length - 1].created as string
      query = `?limit=10&before=${encodeURIComponent(oldest)}`
    }
    assert.deepEqual(seen, made.slice().reverse())
    // after and before together, exclusive.
    const mid = await list(h, `?after=2026-01-02T03:04:10Z&before=2026-01-02T03:04:14Z`)
    assert.deepEqual(mid.results.map((r) => r.requestid), [made[8], made[7], made[6]])
    assert.equal(mid.count, 3)
    assert.equal((await list(h, '?limit=1000')).results.length, 25)
    await failure(await h.call('GET', '/pins?limit=1001'), 400, 'BAD_REQUEST')
    await failure(await h.call('GET', '/pins?limit=0'), 400, 'BAD_REQUEST')
  }))

Deno.test('GET /pins filters: cid, name with each match, meta, status; counts are of matches', () =>
  withApi(async (h) => {
    const a = await add(h, { cid: benchCid(1), name: 'Photos-2024', meta: { app: 'gallery' } })
    const b = await add(h, {
      cid: benchCid(2),
      name: 'photos-2025',
      meta: { app: 'gallery', v: '2' },
    })
    const c = await add(h, { cid: benchCid(3), name: 'backup' })
    const d = await add(h, { cid: benchCid(1), name: 'copy' })
    const ids = async (q: string) => (await list(h, q)).results.map((r) => r.requestid)
    assert.deepEqual(await ids(`?cid=${benchCid(1)}`), [d.requestid, a.requestid])
    assert.deepEqual(await ids(`?cid=${benchCid(1)},${benchCid(3)}&name=backup`), [c.requestid])
    assert.deepEqual(await ids('?name=photos-2025'), [b.requestid])
    assert.deepEqual(await ids('?name=PHOTOS-2024&match=iexact'), [a.requestid])
    assert.deepEqual(await ids('?name=photos&match=partial'), [b.requestid])
    assert.deepEqual(await ids('?name=PHOTOS&match=ipartial'), [b.requestid, a.requestid])
    assert.deepEqual(await ids(`?meta=${encodeURIComponent('{"app":"gallery"}')}`), [
      b.requestid,
      a.requestid,
    ])
    assert.deepEqual(await ids(`?meta=${encodeURIComponent('{"app":"gallery","v":"2"}')}`), [
      b.requestid,
    ])
    const named = await list(h, '?name=photos&match=ipartial&limit=1')
    assert.deepEqual(named.count, 2, 'a filtered count counts every match')
    assert.equal(named.results.length, 1)

    // Status: the CID's, on every peer.
    h.cluster.statuses.set(benchCid(2), 'pin_error')
    h.cluster.statuses.set(benchCid(3), 'pinning')
    assert.deepEqual(await ids('?status=pinned'), [d.requestid, a.requestid])
    assert.deepEqual(await ids('?status=failed,pinning'), [c.requestid, b.requestid])
    const failed = await list(h, '?status=failed')
    assert.equal(failed.count, 1)
    assert.deepEqual(failed.results[0].info, {
      source: 'IPFS Cluster',
      status_details: `${FAKE_PEER_ID}: fake error`,
    })
    assert.deepEqual(await ids(`?status=pinned&cid=${benchCid(2)}`), [])
    const byStatus = await list(h, '?status=pinned&limit=1')
    assert.equal(byStatus.count, 2)
    assert.deepEqual(byStatus.results.map((r) => r.requestid), [d.requestid])

    await failure(
      await h.call('GET', `/pins?cid=${Array(11).fill(CID0).join(',')}`),
      400,
      'BAD_REQUEST',
    )
    await failure(await h.call('GET', '/pins?status=done'), 400, 'BAD_REQUEST')
    await failure(await h.call('GET', '/pins?match=regex&name=x'), 400, 'BAD_REQUEST')
    await failure(await h.call('GET', '/pins?before=soon'), 400, 'BAD_REQUEST')
    await failure(await h.call('GET', '/pins?meta=nope'), 400, 'BAD_REQUEST')
  }))

Deno.test("bad input gets the spec's error body with a status and details", () =>
  withApi(async (h) => {
    const details = async (res: Response, status: number, reason: string) =>
      await failure(res, status, reason)
    assert.match(
      await details(await h.call('POST', '/pins', 'nope'), 400, 'BAD_REQUEST'),
      /^request body: not valid JSON/,
    )
    assert.match(
      await details(await h.call('POST', '/pins', {}), 400, 'BAD_REQUEST'),
      /^cid: missing/,
    )
    assert.match(
      await details(await h.call('POST', '/pins', { cid: 'Qmnope' }), 400, 'BAD_REQUEST'),
      /^cid: "Qmnope" is not a CID/,
    )
    assert.match(
      await details(
        await h.call('POST', '/pins', { cid: CID0, origins: ['x'] }),
        400,
        'BAD_REQUEST',
      ),
      /^origins: "x" is not a multiaddress/,
    )
    assert.equal(h.cluster.pinset.size, 0, 'nothing pinned by a bad request')
    await details(await h.call('GET', '/pins/nonsense'), 404, 'NOT_FOUND')
    await details(await h.call('GET', `/pins/${CID0}`), 404, 'NOT_FOUND')
    await details(
      await h.call('DELETE', `/pins/${CID0}-aaaaaaaaaaaaaaaaaaaaaaaaaa`),
      404,
      'NOT_FOUND',
    )
    await details(await h.call('GET', '/nope'), 404, 'NOT_FOUND')
    const res = await h.call('PUT', '/pins')
    await details(res, 405, 'METHOD_NOT_ALLOWED')
    assert.equal((await h.call('GET', '/health')).status, 204)
    // A cluster failure is a 500 with the cluster's words.
    h.cluster.fail.set('commitPin', new Error('no leader'))
    assert.equal(
      await details(await h.call('POST', '/pins', { cid: CID0 }), 500, 'INTERNAL_SERVER_ERROR'),
      'no leader',
    )
  }))

Deno.test("auth: Bearer tokens of POST /token, 401 in the spec's body otherwise", () =>
  withApi(async (h) => {
    const noAuth = await h.call('GET', '/pins')
    assert.match(await failure(noAuth, 401, 'UNAUTHORIZED'), /unauthorized: no auth provided/)
    const basic = { authorization: `Basic ${btoa('admin:secret')}` }
    const tokenRes = await h.call('POST', '/token', undefined, basic)
    assert.equal(tokenRes.status, 200)
    const { token } = await json(tokenRes) as { token: string }
    const bearer = { authorization: `Bearer ${token}` }
    const res = await h.call('POST', '/pins', { cid: CID0 }, bearer)
    assert.equal(res.status, 202)
    await res.body?.cancel()
    const listed = await h.call('GET', '/pins', undefined, bearer)
    assert.equal(listed.status, 200)
    assert.equal(assertPinResults(await json(listed)).count, 1)
    const bad = await h.call('GET', '/pins', undefined, { authorization: 'Bearer abc.def.ghi' })
    assert.match(await failure(bad, 401, 'UNAUTHORIZED'), /invalid token/)
    assert.equal((await h.call('GET', '/health')).status, 204, 'health needs no auth')
  }, { basic_auth_credentials: { admin: 'secret' } }))

Deno.test('a pin written while the cluster cannot tell its status is answered queued', () =>
  withApi(async (h) => {
    h.cluster.fail.set('status', new Error('no quorum'))
    const st = await add(h, { cid: CID0, name: 'later' })
    assert.equal(st.status, 'queued')
    assert.ok(h.cluster.pinset.has(CID0), 'pinned all the same')
    // A listing needs the statuses: the cluster's error, in the spec's body.
    const res = await h.call('GET', '/pins')
    assert.equal(await failure(res, 500, 'INTERNAL_SERVER_ERROR'), 'no quorum')
  }))
