/**
 * The dashboard's routes in-process: the page and its scripts behind the REST API's auth, and the
 * paged pin listing (cursor, search, type filter, bad input, early stop of the source).
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ValidationError } from '../../src/errors.ts'
import { defaultPinOptions, newPin, type Pin } from '../../src/types/pin.ts'
import { parsePageQuery, pinPage } from '../../src/api/rest/ui/pin_page.ts'
import { call, testApi } from '../api/rest/helpers.ts'

async function cids(n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    out.push(
      CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`ui-${i}`))).toString(),
    )
  }
  return out.sort()
}

function pinOf(cid: string, name: string): Pin {
  return newPin(cid, { ...defaultPinOptions(), name })
}

/** A key-ordered source that counts what it handed out and whether it was closed. */
function counted(pins: Pin[]) {
  const seen = { read: 0, closed: false }
  async function* gen() {
    try {
      for (const p of pins) {
        seen.read++
        yield p
      }
    } finally {
      seen.closed = true
    }
  }
  return { source: gen(), seen }
}

Deno.test('pin page: pages follow each other by cursor and cover the pinset once', async () => {
  const all = (await cids(23)).map((c, i) => pinOf(c, `file-${i}`))
  const got: string[] = []
  let after: string | undefined
  for (let pages = 0; pages < 10; pages++) {
    const q = parsePageQuery(new URLSearchParams({ limit: '5', ...(after ? { after } : {}) }))
    const page = await pinPage(all.values() as unknown as AsyncIterable<Pin>, q)
    got.push(...page.pins.map((p) => p.cid))
    assert(page.pins.length <= 5)
    if (page.next === null) break
    after = page.next
  }
  assert.deepStrictEqual(got, all.map((p) => p.cid))
})

Deno.test('pin page: stops reading the source once the page is full', async () => {
  const all = (await cids(200)).map((c) => pinOf(c, ''))
  const { source, seen } = counted(all)
  const page = await pinPage(source, parsePageQuery(new URLSearchParams('limit=10')))
  assert.deepStrictEqual(page.pins.length, 10)
  assert.deepStrictEqual(seen.read, 10)
  assert(seen.closed, 'the source was not closed')
  assert.deepStrictEqual(page.next, all[9].cid)
})

Deno.test('pin page: search by name or CID substring, and the scan budget', async () => {
  const all = (await cids(60)).map((c, i) => pinOf(c, i % 20 === 0 ? `Photos-${i}` : `doc-${i}`))
  const q = parsePageQuery(new URLSearchParams('q=photos&limit=50'))
  const page = await pinPage(all.values() as unknown as AsyncIterable<Pin>, q)
  assert.deepStrictEqual(page.pins.map((p) => p.name), ['Photos-0', 'Photos-20', 'Photos-40'])
  assert.deepStrictEqual(page.next, null)
  const byCid = parsePageQuery(new URLSearchParams({ q: all[7].cid.slice(-12).toUpperCase() }))
  const one = await pinPage(all.values() as unknown as AsyncIterable<Pin>, byCid)
  assert.deepStrictEqual(one.pins.map((p) => p.cid), [all[7].cid])
  // A search that runs out of budget answers short, with a cursor to go on from.
  const budget = parsePageQuery(new URLSearchParams('q=photos'), 25)
  const part = await pinPage(all.values() as unknown as AsyncIterable<Pin>, budget)
  assert.deepStrictEqual(part.pins.map((p) => p.name), ['Photos-0', 'Photos-20'])
  assert.deepStrictEqual(part.scanned, 25)
  assert.deepStrictEqual(part.next, all[24].cid)
})

Deno.test('pin page: bad limit and type are validation errors that name the value', () => {
  for (
    const bad of ['limit=0', 'limit=501', 'limit=ten', 'limit=-3', 'type=bogus', 'type=bad-type']
  ) {
    let err: unknown
    try {
      parsePageQuery(new URLSearchParams(bad))
    } catch (e) {
      err = e
    }
    assert(err instanceof ValidationError, bad)
    assert.match((err as Error).message, /limit must be an integer|unknown pin type/)
  }
})

Deno.test('GET /ui/api/pins over the REST API: JSON page, type filter, 400 on bad input', async () => {
  const { api, cluster } = testApi()
  const list = await cids(12)
  for (const [i, c] of list.entries()) {
    await cluster.pin(c, { ...defaultPinOptions(), name: `n${i}` })
  }
  const res = await call(api, 'GET', '/ui/api/pins?limit=5')
  assert.deepStrictEqual(res.status, 200)
  const page = await res.json()
  assert.deepStrictEqual(page.pins.map((p: Pin) => p.cid), list.slice(0, 5))
  assert.deepStrictEqual(page.next, list[4])
  const next = await (await call(api, 'GET', `/ui/api/pins?limit=5&after=${page.next}`)).json()
  assert.deepStrictEqual(next.pins.map((p: Pin) => p.cid), list.slice(5, 10))
  const metas = await (await call(api, 'GET', '/ui/api/pins?type=meta-pin')).json()
  assert.deepStrictEqual(metas, { pins: [], next: null, scanned: 12 })
  const bad = await call(api, 'GET', '/ui/api/pins?limit=100000')
  assert.deepStrictEqual(bad.status, 400)
  assert.match((await bad.json()).message, /limit must be an integer from 1 to 500/)
})

Deno.test('GET /ui serves the page and its modules; /ui/ redirects to /ui', async () => {
  const { api } = testApi()
  const page = await call(api, 'GET', '/ui')
  assert.deepStrictEqual(page.status, 200)
  assert.match(page.headers.get('content-type')!, /^text\/html/)
  assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/)
  const html = await page.text()
  assert.match(html, /<script type="module" src="ui\/app.js">/)
  for (
    const [path, type] of [['/ui/app.js', 'text/javascript'], ['/ui/graph.js', 'text/javascript'], [
      '/ui/style.css',
      'text/css',
    ]]
  ) {
    const res = await call(api, 'GET', path)
    assert.deepStrictEqual(res.status, 200, path)
    assert.match(res.headers.get('content-type')!, new RegExp(`^${type}`))
    assert((await res.text()).length > 500, path)
  }
  const slash = await call(api, 'GET', '/ui/')
  assert.deepStrictEqual(slash.status, 307)
  assert.deepStrictEqual(slash.headers.get('location'), '/ui')
  const none = await call(api, 'GET', '/ui/nothing.js')
  assert.deepStrictEqual(none.status, 404)
  await none.body?.cancel()
})

Deno.test("the dashboard sits behind the REST API's basic auth", async () => {
  const { api } = testApi({ basic_auth_credentials: { admin: 'secret' } })
  for (const path of ['/ui', '/ui/app.js', '/ui/api/pins']) {
    const res = await call(api, 'GET', path)
    assert.deepStrictEqual(res.status, 401, path)
    await res.body?.cancel()
  }
  const ok = await call(api, 'GET', '/ui', {
    headers: { authorization: `Basic ${btoa('admin:secret')}` },
  })
  assert.deepStrictEqual(ok.status, 200)
  await ok.body?.cancel()
})

Deno.test('the browser modules parse as JavaScript modules', async () => {
  const { APP_JS, GRAPH_JS } = await import('../../src/api/rest/ui/assets.ts')
  // A syntax error in a module is a blank page. Deno parses them here: graph.js only defines
  // things; app.js (its import dropped) gets as far as the first browser global.
  const dataUrl = (src: string) =>
    `data:text/javascript;base64,${btoa(String.fromCharCode(...new TextEncoder().encode(src)))}`
  const graph = await import(dataUrl(GRAPH_JS))
  assert.deepStrictEqual(typeof graph.drawGraph, 'function')
  await assert.rejects(
    () => import(dataUrl(APP_JS.replace(/^import .*$/m, ''))),
    ReferenceError,
  )
})
