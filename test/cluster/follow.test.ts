/**
 * A follower's configuration (src/cluster/follow.ts): sources as URLs (the DNSLink gateway gets
 * the scheme the reference's default lacks), fetched configurations checked (CRDT only, exactly
 * one consensus section, no second source), fetch failures, and the follower's overrides.
 */
import { deepEqual, equal, match, ok, throws } from 'node:assert/strict'
import { rejects } from 'node:assert/strict'
import {
  checkFollowedConfig,
  fetchFollowedConfig,
  followerConfig,
  SourceFetchError,
  sourceUrl,
} from '../../src/cluster/follow.ts'
import { ConfigError } from '../../src/errors.ts'
import { defaultServiceConfig, serviceConfigToJSON } from '../../src/service_config.ts'

const URL_ = 'http://127.0.0.1:1/service.json'

/** A CRDT cluster's service.json, as `service init --consensus crdt` writes it. */
function crdtConfigText(): string {
  return serviceConfigToJSON(defaultServiceConfig({ consensus: 'crdt' }))
}

Deno.test('sourceUrl: http(s) URLs as given; a DNSLink name through the gateway, with a scheme', () => {
  deepEqual(sourceUrl('https://example.org/c.json', '127.0.0.1:8080'), {
    url: 'https://example.org/c.json',
    dnslink: false,
  })
  deepEqual(sourceUrl('example.org', '127.0.0.1:8080'), {
    url: 'http://127.0.0.1:8080/ipns/example.org',
    dnslink: true,
  })
  equal(sourceUrl('example.org', 'https://gw.example/').url, 'https://gw.example/ipns/example.org')
})

Deno.test('checkFollowedConfig: a CRDT configuration passes; the others are named errors', () => {
  const crdt = crdtConfigText()
  equal(checkFollowedConfig(crdt, URL_), crdt)
  const cases: [string, string, RegExp][] = [
    [
      'raft',
      serviceConfigToJSON(defaultServiceConfig({ consensus: 'raft' })),
      /uses consensus\.raft; ipfs-cluster-follow follows CRDT clusters only/,
    ],
    [
      'two sections',
      JSON.stringify({ cluster: {}, consensus: { crdt: {}, raft: {} } }),
      /has 2 consensus sections \(consensus\.crdt, consensus\.raft\); a follower needs exactly one/,
    ],
    ['none', JSON.stringify({ cluster: {} }), /has no consensus section/],
    ['not JSON', '<html>', /is not valid JSON/],
    ['an array', '[]', /is not a JSON object/],
    [
      'another source',
      JSON.stringify({ source: 'http://elsewhere/x.json' }),
      /points to another source \("http:\/\/elsewhere\/x\.json"\)/,
    ],
  ]
  for (const [what, text, msg] of cases) {
    throws(() => checkFollowedConfig(text, URL_), (e: Error) => {
      ok(e instanceof ConfigError, what)
      match(e.message, new RegExp(`^the configuration at ${URL_.replaceAll('.', '\\.')} `), what)
      match(e.message, msg, what)
      return true
    })
  }
})

Deno.test('fetchFollowedConfig: 2xx body; >= 300 is the reference error; unreachable is a fetch error', async () => {
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname
    if (path === '/ok') return new Response('{"a":1}')
    if (path === '/moved') return Response.redirect(new URL('/ok', req.url), 302)
    return new Response('no such file', { status: 404 })
  })
  const base = `http://127.0.0.1:${server.addr.port}`
  try {
    equal(await fetchFollowedConfig(`${base}/ok`), '{"a":1}')
    equal(await fetchFollowedConfig(`${base}/moved`), '{"a":1}')
    await rejects(fetchFollowedConfig(`${base}/missing`), (e: Error) => {
      ok(e instanceof ConfigError && !(e instanceof SourceFetchError))
      equal(
        e.message,
        `configuration source ${base}/missing: unsuccessful request (404): no such file`,
      )
      return true
    })
  } finally {
    await server.shutdown()
  }
  await rejects(fetchFollowedConfig(`${base}/ok`), (e: Error) => {
    ok(e instanceof SourceFetchError)
    match(e.message, new RegExp(`^failed retrieving configuration source \\(${base}/ok\\): `))
    return true
  })
})

Deno.test('followerConfig: follower mode, the REST API on the socket only, no other API, env applies', () => {
  const cfg = followerConfig(crdtConfigText(), '/srv/f/myc', {})
  equal(cfg.cluster.follower_mode, true)
  deepEqual(cfg.restapi?.http_listen_multiaddress, ['/unix/srv/f/myc/api-socket'])
  equal(cfg.ipfsproxy, undefined)
  equal(cfg.pinsvcapi, undefined)
  equal(cfg.metrics, undefined)
  equal(cfg.tracing, undefined)
  ok(cfg.crdt, "the cluster's consensus section stays")
  const env = {
    CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS: '/ip4/127.0.0.1/tcp/9999',
    CLUSTER_PEERNAME: 'me',
  }
  const withEnv = followerConfig(crdtConfigText(), '/srv/f/myc', env)
  deepEqual(withEnv.restapi?.http_listen_multiaddress, ['/ip4/127.0.0.1/tcp/9999'])
  equal(withEnv.cluster.peername, 'me')
  equal(withEnv.cluster.follower_mode, true, 'not an env override')
})
