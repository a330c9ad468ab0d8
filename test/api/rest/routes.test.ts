/**
 * Every REST route in-process (through `handler`, no socket): status, JSON shape, headers, and
 * the plumbing (307 for trailing slashes, 404, 405, 413, bad JSON, bad CIDs, bad filters, pin
 * option errors that must not execute the request, stream status codes).
 */
import assert from 'node:assert/strict'
import { defaultPinOptions, type Pin } from '../../../src/types/mod.ts'
import { ConsensusError } from '../../../src/errors.ts'
import { FAKE_PEER_ID } from '../../support/fake_cluster.ts'
import { call, json, ndjson, testApi } from './helpers.ts'

const CID0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const CID1 = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const PEER2 = '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'

function assertJsonHeaders(res: Response) {
  assert.equal(res.headers.get('content-type'), 'application/json')
}

Deno.test('GET /id and /version answer the peer identity and the version', async () => {
  const { api } = testApi()
  let res = await call(api, 'GET', '/id')
  assert.equal(res.status, 200)
  assertJsonHeaders(res)
  const id = await json(res) as Record<string, unknown>
  assert.equal(id.id, FAKE_PEER_ID)
  assert.deepEqual(Object.keys(id), [
    'id',
    'addresses',
    'cluster_peers',
    'cluster_peers_addresses',
    'version',
    'commit',
    'rpc_protocol_version',
    'error',
    'ipfs',
    'peername',
  ])
  res = await call(api, 'GET', '/version')
  assert.equal(res.status, 200)
  assert.equal(await res.text(), '{"version":"1.1.6"}\n')
})

Deno.test('configured headers and Content-Type are on every response, errors included', async () => {
  const { api } = testApi({
    headers: { 'X-Test': ['a', 'b'], 'Access-Control-Allow-Headers': 'X-One' },
  })
  for (
    const [m, p] of [['GET', '/version'], ['GET', '/nope'], ['PUT', '/id'], ['GET', '/id/'], [
      'GET',
      '/health',
    ]]
  ) {
    const res = await call(api, m, p)
    await res.body?.cancel()
    assert.equal(res.headers.get('x-test'), 'a, b', `${m} ${p}`)
    assert.equal(res.headers.get('access-control-allow-headers'), 'X-One')
    assertJsonHeaders(res)
  }
})

Deno.test('unknown route: 404 {"code":404,"message":"not found"}', async () => {
  const { api } = testApi()
  const res = await call(api, 'GET', '/does/not/exist')
  assert.equal(res.status, 404)
  assert.equal(await res.text(), '{"code":404,"message":"not found"}\n')
})

Deno.test('wrong method on a known path: 405 with Allow and a JSON error', async () => {
  const { api } = testApi()
  const res = await call(api, 'PUT', '/pins')
  assert.equal(res.status, 405)
  assert.equal(res.headers.get('allow'), 'GET')
  assert.deepEqual(await json(res), { code: 405, message: 'method not allowed' })
  const res2 = await call(api, 'PATCH', `/pins/${CID0}`)
  assert.equal(res2.status, 405)
  assert.equal(res2.headers.get('allow'), 'GET, POST, DELETE')
  await res2.body?.cancel()
})

Deno.test('a trailing slash is a 307 to the same URL without it (query kept)', async () => {
  const { api, cluster } = testApi()
  const res = await call(api, 'POST', `/pins/${CID0}/?name=x`)
  assert.equal(res.status, 307)
  assert.equal(res.headers.get('location'), `/pins/${CID0}?name=x`)
  assert.equal(cluster.calls.length, 0)
})

Deno.test('GET /peers streams the peers; failure before the first item is a 500', async () => {
  const { api, cluster } = testApi()
  cluster.otherPeers.push({ ...(await cluster.id()), id: PEER2, peername: 'two' })
  let res = await call(api, 'GET', '/peers')
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('trailer'), 'X-Stream-Error')
  const peers = await ndjson(res) as { id: string }[]
  assert.deepEqual(peers.map((p) => p.id), [FAKE_PEER_ID, PEER2])
  cluster.fail.set('peers', new Error('no quorum'))
  res = await call(api, 'GET', '/peers')
  assert.equal(res.status, 500)
  assert.deepEqual(await json(res), { code: 500, message: 'no quorum' })
})

Deno.test('POST /peers adds the peer; bad bodies and IDs are 400 with the reference messages', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'POST', '/peers', { body: JSON.stringify({ peer_id: PEER2 }) })
  assert.equal(res.status, 200)
  assert.equal((await json(res) as { id: string }).id, PEER2)
  for (const body of ['{bad', '[]', '{"peer_id":5}', '', '"x"']) {
    res = await call(api, 'POST', '/peers', { body })
    assert.equal(res.status, 400, body)
    assert.deepEqual(await json(res), { code: 400, message: 'error decoding request body' })
  }
  for (const body of ['{}', 'null', '{"peer_id":"nope"}']) {
    res = await call(api, 'POST', '/peers', { body })
    assert.equal(res.status, 400)
    assert.deepEqual(await json(res), { code: 400, message: 'error decoding peer_id' })
  }
  assert.equal(cluster.calls.filter((c) => c.method === 'peerAdd').length, 1)
})

Deno.test('POST /peers refuses bodies over max_body_bytes with 413', async () => {
  const { api, cluster } = testApi({ max_body_bytes: 1024 })
  const big = JSON.stringify({ peer_id: PEER2, pad: 'x'.repeat(2000) })
  let res = await call(api, 'POST', '/peers', { body: big })
  assert.equal(res.status, 413)
  assert.match((await json(res) as { message: string }).message, /limit is 1024 bytes/)
  // Without a Content-Length (a streamed body) the limit holds while reading.
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(big))
      c.close()
    },
  })
  res = await call(api, 'POST', '/peers', { body: stream })
  assert.equal(res.status, 413)
  await res.body?.cancel()
  assert.equal(cluster.calls.length, 0)
})

Deno.test('DELETE /peers/{peer}: 204, bad ID 400, unknown peer 404', async () => {
  const { api, cluster } = testApi()
  await cluster.peerAdd(PEER2)
  let res = await call(api, 'DELETE', `/peers/${PEER2}`)
  assert.equal(res.status, 204)
  assert.equal(await res.text(), '')
  res = await call(api, 'DELETE', '/peers/notapeer')
  assert.equal(res.status, 400)
  assert.match((await json(res) as { message: string }).message, /^error decoding Peer ID: /)
  res = await call(api, 'DELETE', `/peers/${PEER2}`)
  assert.equal(res.status, 404)
  await res.body?.cancel()
})

Deno.test('POST /pins/{cid} pins with the query options and answers the committed pin', async () => {
  const { api, cluster } = testApi()
  const res = await call(
    api,
    'POST',
    `/pins/${CID1}?name=backup&replication-min=1&replication-max=2&meta-owner=alice&user-allocations=${PEER2}`,
  )
  assert.equal(res.status, 200)
  const pin = await json(res) as Pin
  assert.equal(pin.cid, CID1)
  assert.equal(pin.name, 'backup')
  assert.equal(pin.replication_factor_min, 1)
  assert.equal(pin.replication_factor_max, 2)
  assert.deepEqual(pin.metadata, { owner: 'alice' })
  assert.deepEqual(pin.user_allocations, [PEER2])
  assert.ok(cluster.pinset.has(CID1))
})

Deno.test('pin option errors are a 400 and nothing is pinned', async () => {
  const { api, cluster } = testApi()
  const cases: [string, RegExp][] = [
    ['replication-min=abc', /parameter replication-min invalid/],
    ['shard-size=x', /parameter shard_size is invalid/],
    ['expire-at=yesterday', /^expire-at cannot be parsed/],
    ['expire-in=10ms', /expire-in duration too short/],
    // Once a 500 "Invalid time value" (the expiry date overflowed).
    ['expire-in=9999999999999h', /^expire-in cannot be parsed: .*out of range \(at most 2562047h/],
    // Once accepted and refused later with a message about "-1 together".
    ['replication-min=99999999999999999999999', /^parameter replication-min invalid$/],
    ['replication-max=1e3', /^parameter replication-max invalid$/],
    ['replication=99999999999999999999999', /^parameter replication invalid$/],
    ['shard-size=99999999999999999999999', /^parameter shard_size is invalid$/],
    // Once a 200 echoing the IDs while the stored pin had none.
    [
      'user-allocations=notapeer,alsonot',
      /^parameter user-allocations invalid: some peer IDs could not be decoded: notapeer, alsonot$/,
    ],
    ['pin-update=bogus', /^error decoding update option parameter/],
    ['origins=/ip4/1.2.3.4/tcp/4001', /multiaddress does not contain peer ID/],
  ]
  for (const [q, re] of cases) {
    for (const path of [`/pins/${CID0}?${q}`, `/pins/ipfs/${CID0}?${q}`]) {
      const res = await call(api, 'POST', path)
      assert.equal(res.status, 400, path)
      assert.match((await json(res) as { message: string }).message, re)
    }
  }
  assert.equal(cluster.calls.length, 0)
  assert.equal(cluster.pinset.size, 0)
})

Deno.test('bad CIDs in paths are a 400 "error decoding Cid: …"', async () => {
  const { api, cluster } = testApi()
  for (
    const [m, p] of [
      ['POST', '/pins/notacid'],
      ['GET', '/pins/notacid'],
      ['DELETE', '/pins/Qmshort'],
      ['GET', '/allocations/zzz'],
      ['POST', '/pins/notacid/recover'],
      ['GET', `/pins?cids=${CID0},bad`],
    ]
  ) {
    const res = await call(api, m, p)
    assert.equal(res.status, 400, `${m} ${p}`)
    assert.match((await json(res) as { message: string }).message, /^error decoding Cid: /)
  }
  assert.equal(cluster.calls.length, 0)
})

Deno.test('route order follows the reference: POST /pins/recover is recover-all, GET is a CID', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'POST', '/pins/recover')
  assert.equal(res.status, 204)
  assert.equal(cluster.calls.at(-1)?.method, 'recoverAll')
  res = await call(api, 'GET', '/pins/recover')
  assert.equal(res.status, 400)
  await res.body?.cancel()
  res = await call(api, 'POST', '/pins/recover?local=true')
  assert.equal(res.status, 204)
  assert.equal(cluster.calls.at(-1)?.method, 'recoverAllLocal')
})

Deno.test('POST/DELETE /pins/{ipfs|ipns|ipld}/{path} rebuild the path and call the path methods', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'POST', `/pins/ipfs/${CID0}/a/b?name=p`)
  assert.equal(res.status, 200)
  assert.equal((await json(res) as Pin).name, 'p')
  assert.deepEqual(cluster.calls.at(-1)?.args[0], `/ipfs/${CID0}/a/b`)
  res = await call(api, 'DELETE', `/pins/ipfs/${CID0}/a/b`)
  assert.equal(res.status, 200)
  assert.equal(cluster.calls.at(-1)?.method, 'unpinPath')
  res = await call(api, 'POST', '/pins/ipfs/notacid/x')
  assert.equal(res.status, 400)
  assert.match(
    (await json(res) as { message: string }).message,
    /^error parsing path: invalid path "\/ipfs\/notacid\/x": /,
  )
  res = await call(api, 'POST', '/pins/ipns/example.com/')
  assert.equal(res.status, 307)
  res = await call(api, 'POST', '/pins/ipns/example.com')
  assert.equal(res.status, 400) // the fake cannot resolve IPNS: its error reaches the client
  assert.match((await json(res) as { message: string }).message, /cannot resolve/)
  assert.deepEqual(cluster.calls.at(-1)?.args[0], '/ipns/example.com')
})

Deno.test('DELETE /pins/{cid}: the pin before removal; missing pin 404 with the reference text', async () => {
  const { api, cluster } = testApi()
  await cluster.pin(CID0, defaultPinOptions())
  let res = await call(api, 'DELETE', `/pins/${CID0}`)
  assert.equal(res.status, 200)
  assert.equal((await json(res) as Pin).cid, CID0)
  res = await call(api, 'DELETE', `/pins/${CID0}`)
  assert.equal(res.status, 404)
  assert.equal(await res.text(), '{"code":404,"message":"pin is not part of the pinset"}\n')
})

Deno.test('GET /allocations streams the stored pins; filters select pin types', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'GET', '/allocations')
  assert.equal(res.status, 204)
  assert.equal(res.headers.get('trailer'), 'X-Stream-Error')
  await cluster.pin(CID0, defaultPinOptions())
  await cluster.pin(CID1, { ...defaultPinOptions(), name: 'two' })
  res = await call(api, 'GET', '/allocations')
  assert.equal(res.status, 200)
  const text = await res.text()
  const lines = text.split('\n')
  assert.equal(lines.length, 3)
  assert.equal(lines[2], '')
  assert.equal(cluster.calls.at(-1)?.method, 'pinsNDJSON') // the fast path, no re-encoding
  for (const f of ['pin', 'all', 'pin,bogus', '', 'meta-pin,pin']) {
    res = await call(api, 'GET', `/allocations?filter=${f}`)
    assert.equal((await ndjson(res)).length, 2, f)
  }
  res = await call(api, 'GET', '/allocations?filter=shard-pin,meta-pin')
  assert.equal(res.status, 204)
  for (const f of ['bogus', 'bogus,other']) {
    res = await call(api, 'GET', `/allocations?filter=${f}`)
    assert.equal(res.status, 400)
    assert.deepEqual(await json(res), { code: 400, message: 'invalid filter value' })
  }
})

Deno.test('GET /allocations/{cid}: the pin, or 404', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'GET', `/allocations/${CID0}`)
  assert.equal(res.status, 404)
  await res.body?.cancel()
  await cluster.pin(CID0, defaultPinOptions())
  res = await call(api, 'GET', `/allocations/${CID0}`)
  assert.equal(res.status, 200)
  assert.equal((await json(res) as Pin).cid, CID0)
})

Deno.test('GET /pins: status of all pins, local, filter, cids', async () => {
  const { api, cluster } = testApi()
  await cluster.pin(CID0, defaultPinOptions())
  await cluster.pin(CID1, defaultPinOptions())
  cluster.statuses.set(CID1, 'pin_error')
  let res = await call(api, 'GET', '/pins')
  assert.equal((await ndjson(res)).length, 2)
  assert.equal(cluster.calls.at(-1)?.method, 'statusAll')
  res = await call(api, 'GET', '/pins?local=true&filter=error')
  const items = await ndjson(res) as { cid: string }[]
  assert.deepEqual(items.map((i) => i.cid), [CID1])
  assert.equal(cluster.calls.at(-1)?.method, 'statusAllLocal')
  res = await call(api, 'GET', '/pins?filter=pinned,bogus')
  assert.deepEqual((await ndjson(res) as { cid: string }[]).map((i) => i.cid), [CID0])
  for (const f of ['bogus', 'undefined']) {
    res = await call(api, 'GET', `/pins?filter=${f}`)
    assert.equal(res.status, 400)
    assert.deepEqual(await json(res), { code: 400, message: 'invalid filter value' })
  }
  res = await call(api, 'GET', `/pins?cids=${CID0},${CID1}&local=true`)
  const got = (await ndjson(res) as { cid: string }[]).map((i) => i.cid).sort()
  assert.deepEqual(got, [CID0, CID1].sort())
  assert.equal(cluster.calls.at(-1)?.method, 'statusLocal')
})

Deno.test('GET /pins?cids=…: a CID whose status fails before any result is a 500', async () => {
  const { api, cluster } = testApi()
  cluster.fail.set('status', new Error('peer down'))
  const res = await call(api, 'GET', `/pins?cids=${CID0}`)
  assert.equal(res.status, 500)
  assert.deepEqual(await json(res), { code: 500, message: 'peer down' })
})

Deno.test('GET /pins/{cid} and POST /pins/{cid}/recover, global and local', async () => {
  const { api, cluster } = testApi()
  let res = await call(api, 'GET', `/pins/${CID0}`)
  assert.equal(res.status, 200)
  const gpi = await json(res) as { cid: string; peer_map: Record<string, { status: string }> }
  assert.equal(gpi.cid, CID0)
  assert.equal(gpi.peer_map[FAKE_PEER_ID].status, 'unpinned') // unknown CIDs are not an error
  await call(api, 'GET', `/pins/${CID0}?local=true`).then((r) => r.body?.cancel())
  assert.equal(cluster.calls.at(-1)?.method, 'statusLocal')
  res = await call(api, 'POST', `/pins/${CID0}/recover`)
  assert.equal(res.status, 200)
  await res.body?.cancel()
  assert.equal(cluster.calls.at(-1)?.method, 'recover')
  await call(api, 'POST', `/pins/${CID0}/recover?local=true`).then((r) => r.body?.cancel())
  assert.equal(cluster.calls.at(-1)?.method, 'recoverLocal')
})

Deno.test('POST /pins/recover streams the re-queued items only', async () => {
  const { api, cluster } = testApi()
  await cluster.pin(CID0, defaultPinOptions())
  await cluster.pin(CID1, defaultPinOptions())
  cluster.statuses.set(CID1, 'pin_error')
  const res = await call(api, 'POST', '/pins/recover')
  assert.equal(res.status, 200)
  assert.deepEqual((await ndjson(res) as { cid: string }[]).map((i) => i.cid), [CID1])
})

Deno.test('POST /ipfs/gc: global map, and local wrapped as a one-peer map', async () => {
  const { api } = testApi()
  for (const q of ['', '?local=true']) {
    const res = await call(api, 'POST', `/ipfs/gc${q}`)
    assert.equal(res.status, 200)
    const gc = await json(res) as { peer_map: Record<string, { peer: string }> }
    assert.deepEqual(Object.keys(gc.peer_map), [FAKE_PEER_ID])
    assert.equal(gc.peer_map[FAKE_PEER_ID].peer, FAKE_PEER_ID)
  }
})

Deno.test('health and monitor routes', async () => {
  const { api } = testApi()
  let res = await call(api, 'GET', '/health/graph')
  assert.equal((await json(res) as { cluster_id: string }).cluster_id, FAKE_PEER_ID)
  res = await call(api, 'GET', '/health/alerts')
  assert.deepEqual(await json(res), [])
  res = await call(api, 'GET', '/health/bandwidth')
  assert.ok('/ipfscluster/1.0/rpc' in (await json(res) as object))
  res = await call(api, 'GET', '/monitor/metrics')
  assert.deepEqual(await json(res), ['ping', 'freespace'])
  res = await call(api, 'GET', '/monitor/metrics/freespace')
  const ms = await json(res) as { name: string; peer: string }[]
  assert.equal(ms[0].name, 'freespace')
  res = await call(api, 'GET', '/monitor/metrics/none')
  assert.deepEqual(await json(res), [])
  res = await call(api, 'GET', '/health')
  assert.equal(res.status, 204)
  assert.equal(await res.text(), '')
})

Deno.test('POST /token without auth configured: 401 unauthorized', async () => {
  const { api } = testApi()
  const res = await call(api, 'POST', '/token')
  assert.equal(res.status, 401)
  assert.deepEqual(await json(res), { code: 401, message: 'unauthorized' })
})

Deno.test('errors of the cluster keep their status; unknown errors are 500', async () => {
  const { api, cluster } = testApi()
  cluster.fail.set('id', new Error('boom'))
  let res = await call(api, 'GET', '/id')
  assert.equal(res.status, 500)
  assert.deepEqual(await json(res), { code: 500, message: 'boom' })
  // An error that lost its class across RPC still maps to 404 by its text.
  cluster.fail.set('pinGet', new Error('pin is not part of the pinset'))
  res = await call(api, 'GET', `/allocations/${CID0}`)
  assert.equal(res.status, 404)
  await res.body?.cancel()
})

Deno.test('malformed input never crashes: bad escapes, odd methods, huge query values', async () => {
  const { api } = testApi()
  let res = await call(api, 'GET', '/pins/%E0%A4%A')
  assert.equal(res.status, 400)
  await res.body?.cancel()
  res = await call(api, 'GET', `/pins?filter=${'x'.repeat(100_000)}`)
  assert.equal(res.status, 431) // the URL alone is past max_header_bytes
  await res.body?.cancel()
  res = await call(api, 'GET', `/allocations?filter=${'pin,'.repeat(500)}`)
  assert.equal(res.status, 204)
  res = await call(api, 'OPTIONS', '/id') // not a preflight: routed, and no route has OPTIONS
  assert.equal(res.status, 405)
  await res.body?.cancel()
})

Deno.test('GET /allocations[/{cid}]?consistent=true waits for a read barrier first', async () => {
  const { api, cluster } = testApi()
  await cluster.pin(CID0, defaultPinOptions())
  cluster.calls.length = 0
  let res = await call(api, 'GET', '/allocations?consistent=true')
  assert.equal(res.status, 200)
  await res.body?.cancel()
  assert.deepEqual(cluster.calls.map((c) => c.method), ['consistentRead', 'pinsNDJSON'])
  cluster.calls.length = 0
  res = await call(api, 'GET', `/allocations/${CID0}?consistent=true`)
  assert.equal(res.status, 200)
  await res.body?.cancel()
  assert.deepEqual(cluster.calls.map((c) => c.method), ['consistentRead', 'pinGet'])
  cluster.calls.length = 0
  res = await call(api, 'GET', `/allocations/${CID0}`)
  await res.body?.cancel()
  assert.deepEqual(cluster.calls.map((c) => c.method), ['pinGet'], 'no barrier unless asked')
  cluster.fail.set('consistentRead', new ConsensusError('no leader'))
  res = await call(api, 'GET', '/allocations?consistent=true')
  assert.equal(res.status, 500)
  assert.deepEqual(await json(res), { code: 500, message: 'no leader' })
})
