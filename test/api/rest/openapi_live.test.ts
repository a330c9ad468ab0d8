/**
 * A real peer's answers against its own OpenAPI document: our daemon as a process (basic auth
 * on) beside a real Kubo, every documented operation called over a real socket at least once
 * (pins, allocations, status, recover, add, paths, peers, id, version, health, metrics, gc,
 * tokens, the dashboard, errors 400/401/404/405/500), each answer's status looked up in the
 * document and its body (each NDJSON line) validated against the schema there, made strict
 * (test/api/rest/openapi_validate.ts): a wrong schema, a missing documented status or an
 * undocumented field fails.
 */
import assert from 'node:assert/strict'
import type { OpenApiDocument } from '../../../src/api/common/openapi.ts'
import { startKubo } from '../../support/kubo.ts'
import { startPeerProcess } from '../../support/peer.ts'
import { waitFor } from '../../support/wait.ts'
import { multipart } from './helpers.ts'
import { answerChecker, schemaValidator } from './openapi_validate.ts'

const BASIC = `Basic ${btoa('admin:secret')}`

Deno.test({
  name: 'openapi live: every operation of a real peer beside Kubo answers as its document says',
  async fn() {
    const kubo = await startKubo()
    let peer: Awaited<ReturnType<typeof startPeerProcess>> | undefined
    try {
      peer = await startPeerProcess({
        ipfs: kubo.apiMultiaddr,
        edit: (cfg) => {
          cfg.api.restapi.basic_auth_credentials = { admin: 'secret' }
        },
      })
      const base = peer.restUrl
      // The document comes from the peer itself, without credentials.
      const docRes = await fetch(`${base}/openapi.json`)
      assert.equal(docRes.status, 200)
      const doc = await docRes.json() as OpenApiDocument
      const check = answerChecker(doc)
      const called = new Set<string>()

      /** Calls the peer and checks the answer against the operation at `path`. */
      const op = async (
        method: string,
        path: string,
        url: string,
        init: { body?: BodyInit; headers?: Record<string, string>; auth?: string | null } = {},
      ): Promise<{ status: number; body: unknown }> => {
        const headers: Record<string, string> = { ...init.headers }
        const auth = init.auth === undefined ? BASIC : init.auth
        if (auth) headers.authorization = auth
        const res = await fetch(`${base}${url}`, { method, headers, body: init.body })
        const status = res.status
        const body = await check(method, path, res)
        called.add(`${method.toLowerCase()} ${path}`)
        return { status, body }
      }

      // Peers.
      assert.equal((await op('GET', '/id', '/id')).status, 200)
      assert.equal((await op('GET', '/version', '/version')).status, 200)
      const peers = await op('GET', '/peers', '/peers')
      assert.equal((peers.body as unknown[]).length, 1)
      const self = (peers.body as { id: string }[])[0].id
      assert.equal((await op('POST', '/peers', '/peers', { body: '{"peer_id":7}' })).status, 400)
      assert.equal((await op('DELETE', '/peers/{peer}', '/peers/not-a-peer')).status, 400)
      // The last member cannot go: an internal refusal, documented as a 500 with the Error body.
      assert.equal((await op('DELETE', '/peers/{peer}', `/peers/${self}`)).status, 500)

      // Add: a stream, a JSON array, progress items.
      const mp = (content: string | Uint8Array) => {
        const m = multipart([{ path: 'a.txt', content }])
        return { body: m.body, headers: { 'content-type': m.contentType } }
      }
      const added = await op('POST', '/add', '/add?name=live', mp('openapi live\n'))
      assert.equal(added.status, 200)
      const cid = (added.body as { cid: string }[]).at(-1)!.cid
      const arr = await op('POST', '/add', '/add?stream-channels=false', mp('as an array\n'))
      assert.ok(Array.isArray((arr.body as unknown[])[0]))
      const big = new Uint8Array(600_000).map((_, i) => i % 251)
      const prog = await op('POST', '/add', '/add?progress=true&cid-version=1', mp(big))
      assert.ok((prog.body as { cid: string | null }[]).some((o) => o.cid === null))
      assert.equal((await op('POST', '/add', '/add?layout=sideways', mp('x'))).status, 400)

      await waitFor(async () => {
        const res = await fetch(`${base}/pins/${cid}`, { headers: { authorization: BASIC } })
        return (await res.text()).includes('"pinned"')
      }, { what: `${cid} pinned`, timeoutMs: 60_000 })

      // Pins and status.
      const other = await kubo.add(new TextEncoder().encode('pinned by CID\n'))
      const pinned = await op(
        'POST',
        '/pins/{hash}',
        `/pins/${other}?name=n&replication=1&meta-k=v&expire-in=1h&mode=direct`,
      )
      assert.equal(pinned.status, 200)
      assert.equal((await op('POST', '/pins/{hash}', `/pins/${other}?shard-size=x`)).status, 400)
      const dir = await kubo.add(new TextEncoder().encode('by path\n'), { wrap: 'f.txt' })
      const byPath = await op('POST', '/pins/{keyType}/{path}', `/pins/ipfs/${dir}/f.txt`)
      assert.equal(byPath.status, 200)
      assert.equal((await op('POST', '/pins/{keyType}/{path}', '/pins/ipfs/bad')).status, 400)
      // (Before the GC below, which drops the unpinned directory the path goes through.)
      const unpinPath = await op('DELETE', '/pins/{keyType}/{path}', `/pins/ipfs/${dir}/f.txt`)
      assert.equal(unpinPath.status, 200, JSON.stringify(unpinPath.body))
      const repin = await op('POST', '/pins/{keyType}/{path}', `/pins/ipfs/${dir}/f.txt`)
      assert.equal(repin.status, 200)
      for (const q of ['', '?filter=pin', '?filter=pin,meta-pin&consistent=true']) {
        assert.equal((await op('GET', '/allocations', `/allocations${q}`)).status, 200)
      }
      assert.equal((await op('GET', '/allocations', '/allocations?filter=shard-pin')).status, 204)
      assert.equal((await op('GET', '/allocations', '/allocations?filter=nope')).status, 400)
      assert.equal((await op('GET', '/allocations/{hash}', `/allocations/${cid}`)).status, 200)
      const pinFields = (await op('GET', '/allocations/{hash}', `/allocations/${other}`))
        .body as { metadata: Record<string, string> }
      assert.deepEqual(pinFields.metadata, { k: 'v' })
      for (const q of ['', '?local=true', '?filter=pinned,queued', `?cids=${cid},${other}`]) {
        assert.equal((await op('GET', '/pins', `/pins${q}`)).status, 200)
      }
      assert.equal((await op('GET', '/pins', '/pins?filter=unexpectedly_unpinned')).status, 204)
      assert.equal((await op('GET', '/pins', '/pins?filter=nope')).status, 400)
      assert.equal((await op('GET', '/pins/{hash}', `/pins/${cid}`)).status, 200)
      assert.equal((await op('GET', '/pins/{hash}', `/pins/${cid}?local=true`)).status, 200)
      assert.equal((await op('GET', '/pins/{hash}', '/pins/not-a-cid')).status, 400)
      assert.equal((await op('POST', '/pins/{hash}/recover', `/pins/${cid}/recover`)).status, 200)
      assert.equal(
        (await op('POST', '/pins/{hash}/recover', `/pins/${cid}/recover?local=true`)).status,
        200,
      )
      for (const q of ['', '?local=true']) {
        // Nothing failed, so nothing is queued again: an empty stream.
        assert.equal((await op('POST', '/pins/recover', `/pins/recover${q}`)).status, 204)
      }

      // IPFS, health, metrics.
      const gc = await op('POST', '/ipfs/gc', '/ipfs/gc')
      assert.ok(Object.keys((gc.body as { peer_map: object }).peer_map).includes(self))
      assert.equal((await op('POST', '/ipfs/gc', '/ipfs/gc?local=true')).status, 200)
      assert.equal((await op('GET', '/health/graph', '/health/graph')).status, 200)
      assert.equal((await op('GET', '/health/alerts', '/health/alerts')).status, 200)
      assert.equal((await op('GET', '/health/bandwidth', '/health/bandwidth')).status, 200)
      const names = (await op('GET', '/monitor/metrics', '/monitor/metrics')).body as string[]
      assert.ok(names.includes('ping'), JSON.stringify(names))
      for (const name of names) {
        const m = await op('GET', '/monitor/metrics/{name}', `/monitor/metrics/${name}`)
        assert.ok((m.body as unknown[]).length > 0, name)
      }
      assert.equal((await op('GET', '/health', '/health', { auth: null })).status, 204)

      // Auth: a token, a bearer call, refusals.
      const token = (await op('POST', '/token', '/token')).body as { token: string }
      assert.equal((await op('GET', '/id', '/id', { auth: `Bearer ${token.token}` })).status, 200)
      assert.equal((await op('GET', '/id', '/id', { auth: null })).status, 401)
      assert.equal((await op('POST', '/token', '/token', { auth: 'Basic eDp5' })).status, 401)
      assert.equal((await op('GET', '/openapi.json', '/openapi.json', { auth: null })).status, 200)

      // The dashboard's routes.
      for (const p of ['/ui', '/ui/app.js', '/ui/graph.js', '/ui/style.css']) {
        assert.equal((await op('GET', p, p)).status, 200, p)
      }
      assert.equal((await op('GET', '/ui/api/pins', '/ui/api/pins?limit=2')).status, 200)
      assert.equal((await op('GET', '/ui/api/pins', '/ui/api/pins?limit=0')).status, 400)

      // Unpin; a second unpin is a 404.
      assert.equal((await op('DELETE', '/pins/{hash}', `/pins/${other}`)).status, 200)
      assert.equal((await op('DELETE', '/pins/{hash}', `/pins/${other}`)).status, 404)
      assert.equal((await op('DELETE', '/pins/{hash}', '/pins/not-a-cid')).status, 400)

      // The router's own answers (no operation): the Error body all the same.
      const error = schemaValidator(doc)({ $ref: '#/components/schemas/Error' })
      for (const [method, url, status] of [['GET', '/nope', 404], ['PUT', '/pins', 405]] as const) {
        const res = await fetch(`${base}${url}`, { method, headers: { authorization: BASIC } })
        assert.equal(res.status, status)
        assert.ok(error(await res.json()), `${method} ${url}: ${JSON.stringify(error.errors)}`)
      }

      // Every operation of the document was exercised.
      const all = Object.entries(doc.paths).flatMap(([p, item]) =>
        Object.keys(item).map((m) => `${m} ${p}`)
      )
      assert.deepEqual(all.filter((o) => !called.has(o)), [], 'operations never called')
    } finally {
      await peer?.stop()
      await kubo.stop()
    }
  },
})
