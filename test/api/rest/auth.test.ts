/**
 * Authentication and CORS of the REST API, in-process: the auth matrix (none, wrong, right,
 * token, expired token…), the exact 401 messages and WWW-Authenticate headers, the exempt
 * requests, POST /token, and CORS preflight and actual-request headers.
 */
import assert from 'node:assert/strict'
import { signJWT } from '../../../src/api/common/jwt.ts'
import { call, json, testApi } from './helpers.ts'

const CREDS = { admin: 'secret', bob: 'hunter2' }
const basic = (u: string, p: string) => `Basic ${btoa(`${u}:${p}`)}`
const bearer = (t: string) => `Bearer ${t}`
const NO_AUTH = [
  'Bearer realm="Restricted IPFS Cluster API"',
  'Basic realm="Restricted IPFS Cluster API"',
]

async function expect401(res: Response, message: string, challenges: string[]) {
  assert.equal(res.status, 401)
  assert.deepEqual(await json(res), { code: 401, message })
  assert.equal(res.headers.get('www-authenticate'), challenges.join(', '))
}

Deno.test('auth: no credentials → 401 "unauthorized: no auth provided" with both challenges', async () => {
  const { api, cluster } = testApi({ basic_auth_credentials: CREDS })
  await expect401(await call(api, 'GET', '/id'), 'unauthorized: no auth provided', NO_AUTH)
  // An unparseable Authorization header counts as none.
  await expect401(
    await call(api, 'GET', '/id', { headers: { authorization: 'Basic !!!' } }),
    'unauthorized: no auth provided',
    NO_AUTH,
  )
  assert.equal(cluster.calls.length, 0)
})

Deno.test('auth: wrong basic credentials → 401 "unauthorized: access denied"', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  for (
    const h of [
      basic('admin', 'nope'),
      basic('nobody', 'secret'),
      basic('admin', ''),
      basic('', ''),
    ]
  ) {
    await expect401(
      await call(api, 'GET', '/id', { headers: { authorization: h } }),
      'unauthorized: access denied',
      ['Basic realm="Restricted IPFS Cluster API"'],
    )
  }
})

Deno.test('auth: right basic credentials pass (scheme case-insensitive)', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  for (const h of [basic('admin', 'secret'), basic('bob', 'hunter2').replace('Basic', 'bAsIc')]) {
    const res = await call(api, 'GET', '/id', { headers: { authorization: h } })
    assert.equal(res.status, 200, h)
    await res.body?.cancel()
  }
})

Deno.test('POST /token issues the reference token (HS256, claims only iss), which then authenticates', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  let res = await call(api, 'POST', '/token', {
    headers: { authorization: basic('admin', 'secret') },
  })
  assert.equal(res.status, 200)
  const { token } = await json(res) as { token: string }
  const [head, claims] = token.split('.')
  assert.equal(head, 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9') // {"alg":"HS256","typ":"JWT"}
  assert.equal(claims, 'eyJpc3MiOiJhZG1pbiJ9') // {"iss":"admin"}
  // Signature: HMAC-SHA256 over "head.claims" with the user's password (checked independently).
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode('secret'),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const sig = new Uint8Array(
    await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${head}.${claims}`)),
  )
  const b64 = btoa(String.fromCharCode(...sig)).replaceAll('+', '-').replaceAll('/', '_').replace(
    /=+$/,
    '',
  )
  assert.equal(token.split('.')[2], b64)

  res = await call(api, 'GET', '/id', { headers: { authorization: bearer(token) } })
  assert.equal(res.status, 200)
  await res.body?.cancel()
  // A token can renew itself: the issuer is the token's iss.
  res = await call(api, 'POST', '/token', { headers: { authorization: `bearer ${token}` } })
  assert.equal(res.status, 200)
  assert.equal((await json(res) as { token: string }).token, token)
})

Deno.test('auth: invalid tokens → 401 "unauthorized: invalid token" with the Bearer error challenge', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  const now = Math.floor(Date.now() / 1000)
  const bad = [
    await signJWT({ iss: 'admin', exp: now - 10 }, 'secret'), // expired
    await signJWT({ iss: 'admin', nbf: now + 3600 }, 'secret'), // not yet valid
    await signJWT({ iss: 'admin', iat: now + 3600 }, 'secret'), // issued in the future
    await signJWT({ iss: 'admin' }, 'wrong-password'), // bad signature
    await signJWT({ iss: 'mallory' }, 'secret'), // unknown issuer
    await signJWT({}, 'secret'), // no issuer
    'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJhZG1pbiJ9.', // alg none
    'not.a.jwt',
    'onlyonepart',
  ]
  for (const t of bad) {
    await expect401(
      await call(api, 'GET', '/id', { headers: { authorization: bearer(t) } }),
      'unauthorized: invalid token',
      ['Bearer realm="Restricted IPFS Cluster API", error="invalid_token"'],
    )
  }
  // Unexpired tokens with exp/nbf in range are fine.
  const ok = await signJWT({ iss: 'bob', exp: now + 3600, nbf: now - 10 }, 'hunter2')
  const res = await call(api, 'GET', '/id', { headers: { authorization: bearer(ok) } })
  assert.equal(res.status, 200)
  await res.body?.cancel()
})

Deno.test('auth: OPTIONS and GET /health need no credentials; /health/ and POST /health do', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  let res = await call(api, 'GET', '/health')
  assert.equal(res.status, 204)
  res = await call(api, 'OPTIONS', '/pins', {
    headers: { origin: 'http://example.com', 'access-control-request-method': 'GET' },
  })
  assert.equal(res.status, 204)
  res = await call(api, 'GET', '/health/')
  assert.equal(res.status, 401)
  await res.body?.cancel()
  res = await call(api, 'GET', '/health/alerts')
  assert.equal(res.status, 401)
  await res.body?.cancel()
})

Deno.test('auth runs before the trailing-slash redirect and routing', async () => {
  const { api } = testApi({ basic_auth_credentials: CREDS })
  for (const p of ['/id/', '/nope']) {
    const res = await call(api, 'GET', p)
    assert.equal(res.status, 401, p)
    await res.body?.cancel()
  }
})

Deno.test('CORS preflight with the defaults: 204 and the allow headers', async () => {
  const { api, cluster } = testApi()
  const res = await call(api, 'OPTIONS', '/pins', {
    headers: {
      origin: 'http://example.com',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'content-type',
    },
  })
  assert.equal(res.status, 204)
  assert.equal(res.headers.get('access-control-allow-origin'), '*')
  assert.equal(res.headers.get('access-control-allow-methods'), 'GET')
  assert.equal(res.headers.get('access-control-allow-headers'), 'content-type')
  assert.equal(res.headers.get('access-control-allow-credentials'), 'true')
  assert.equal(res.headers.get('access-control-max-age'), null)
  assert.match(res.headers.get('vary') ?? '', /Access-Control-Request-Method/)
  assert.equal(cluster.calls.length, 0)
})

Deno.test('CORS preflight refused (method or headers not allowed): 204 without allow headers', async () => {
  const { api } = testApi()
  for (
    const h of [
      { 'access-control-request-method': 'DELETE' } as Record<string, string>,
      { 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-custom' },
    ]
  ) {
    const res = await call(api, 'OPTIONS', '/pins', { headers: { origin: 'http://a.b', ...h } })
    assert.equal(res.status, 204)
    assert.equal(res.headers.get('access-control-allow-origin'), null)
  }
})

Deno.test('CORS with configured origins, methods, headers and max age', async () => {
  const { api } = testApi({
    cors_allowed_origins: ['https://app.example.com', 'https://*.example.org'],
    cors_allowed_methods: ['GET', 'POST'],
    cors_allowed_headers: ['X-Custom', 'Content-Type'],
    cors_max_age: '10m',
  })
  let res = await call(api, 'OPTIONS', '/pins', {
    headers: {
      origin: 'https://x.example.org',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'x-custom',
    },
  })
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://x.example.org')
  assert.equal(res.headers.get('access-control-max-age'), '600')
  res = await call(api, 'OPTIONS', '/pins', {
    headers: { origin: 'https://evil.com', 'access-control-request-method': 'GET' },
  })
  assert.equal(res.headers.get('access-control-allow-origin'), null)
  // Actual request from an allowed origin.
  res = await call(api, 'GET', '/version', { headers: { origin: 'https://app.example.com' } })
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com')
  assert.equal(
    res.headers.get('access-control-expose-headers'),
    'Content-Type, X-Stream-Output, X-Chunked-Output, X-Content-Length',
  )
  assert.equal(res.headers.get('vary'), 'Origin')
  await res.body?.cancel()
})

Deno.test('CORS actual request: headers only for an allowed origin and method', async () => {
  const { api } = testApi()
  let res = await call(api, 'GET', '/version', { headers: { origin: 'http://a.b' } })
  assert.equal(res.headers.get('access-control-allow-origin'), '*')
  assert.equal(res.headers.get('access-control-allow-credentials'), 'true')
  await res.body?.cancel()
  res = await call(api, 'POST', '/pins/recover', { headers: { origin: 'http://a.b' } })
  assert.equal(res.headers.get('access-control-allow-origin'), null) // POST is not allowed by default
  res = await call(api, 'GET', '/version')
  assert.equal(res.headers.get('access-control-allow-origin'), null) // no Origin
  assert.equal(res.headers.get('vary'), 'Origin')
  await res.body?.cancel()
})
