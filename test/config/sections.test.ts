import assert from 'node:assert/strict'
import { SECTIONS } from '../../src/service_config.ts'
import { clusterSection } from '../../src/cluster/config.ts'
import { embeddedSection } from '../../src/ipfsconn/embedded/config.ts'
import { numpinSection } from '../../src/informer/config.ts'
import type { Section } from '../../src/config/schema.ts'

// deno-lint-ignore no-explicit-any
type AnySection = Section<any>
const all: [string, AnySection][] = [
  ['cluster', clusterSection],
  ...Object.entries(SECTIONS).map(([k, v]) => [k, v.section] as [string, AnySection]),
]

Deno.test('every section: defaults → toJSON → load gives the defaults back', () => {
  for (const [name, s] of all) {
    const d = s.defaults()
    const json = JSON.parse(JSON.stringify(s.toJSON(d)))
    assert.deepEqual(s.load(json), d, name)
  }
})

Deno.test('every key has its own CLUSTER_* variable; no two keys share one', () => {
  const seen = new Map<string, string>()
  for (const [name, s] of all) {
    for (const key of Object.keys(s.fields)) {
      const env = s.envName(key)
      assert.match(env, /^CLUSTER_[A-Z0-9_]+$/)
      assert.ok(!seen.has(env), `${env} used by ${seen.get(env)} and ${name}.${key}`)
      seen.set(env, `${name}.${key}`)
    }
  }
  assert.equal(seen.get('CLUSTER_MONITORPINGINTERVAL'), 'cluster.monitor_ping_interval')
  assert.equal(
    seen.get('CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS'),
    'restapi.http_listen_multiaddress',
  )
  assert.equal(seen.get('CLUSTER_IPFSHTTP_NODEMULTIADDRESS'), 'ipfshttp.node_multiaddress')
})

Deno.test('sections the reference init does not write: numpin and embedded defaults', () => {
  assert.deepEqual(numpinSection.toJSON(numpinSection.defaults()), { metric_ttl: '10s' })
  const emb = embeddedSection.defaults()
  assert.equal(emb.folder, 'ipfs')
  assert.equal(emb.libp2p, true)
  assert.deepEqual(emb.listen_multiaddress, ['/ip4/0.0.0.0/tcp/9098'])
  assert.equal(emb.public_network, false)
  assert.deepEqual(emb.peering, [])
  assert.equal(emb.pin_timeout, 120_000)
})

Deno.test('cluster: the hidden and omitted keys stay out of the file unless set', () => {
  const json = clusterSection.toJSON(clusterSection.defaults())
  for (const k of ['follower_mode', 'peerstore_file']) {
    assert.ok(!(k in json), k)
  }
  const set = clusterSection.toJSON({
    ...clusterSection.defaults(),
    follower_mode: true,
    peerstore_file: 'ps',
  })
  assert.equal(set.follower_mode, true)
  assert.equal(set.peerstore_file, 'ps')
})
