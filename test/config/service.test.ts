import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  defaultConfigDir,
  defaultServiceConfig,
  loadServiceConfig,
  parseServiceConfig,
  saveServiceConfig,
  serviceConfigToJSON,
} from '../../src/service_config.ts'
import { loadIdentity } from '../../src/config/identity.ts'
import { crdtSection } from '../../src/consensus/crdt/config.ts'
import { ConfigError } from '../../src/errors.ts'

const fixtures = new URL('./fixtures/', import.meta.url).pathname
/** service.json written by the real `ipfs-cluster-service init --consensus raft` (1.1.6). */
const GO_TEXT = Deno.readTextFileSync(join(fixtures, 'go_raft_service.json'))
const GO = JSON.parse(GO_TEXT)
const GO_SERVICE = new URL('../../.tools/bin/ipfs-cluster-service', import.meta.url).pathname
const haveGo = (() => {
  try {
    return Deno.statSync(GO_SERVICE).isFile
  } catch {
    return false
  }
})()

/** Parsed service.json, edited freely by the cases below. */
// deno-lint-ignore no-explicit-any
type O = any

/**
 * The reference writes a multiaddress list holding one address as a plain string (Go's
 * config.Strings); we always write a list. Both load the same, so compare with lists.
 */
function listForm(o: O): O {
  const c = structuredClone(o)
  c.cluster.listen_multiaddress = [c.cluster.listen_multiaddress].flat()
  for (const api of Object.values(c.api ?? {}) as O[]) {
    if ('http_listen_multiaddress' in api) {
      api.http_listen_multiaddress = [api.http_listen_multiaddress].flat()
    }
    if ('listen_multiaddress' in api) api.listen_multiaddress = [api.listen_multiaddress].flat()
  }
  return c
}

/** A deep copy of the Go file with `mut` applied, as text. */
function goWith(mut: (o: O) => void): string {
  const o = structuredClone(GO)
  mut(o)
  return JSON.stringify(o)
}

function loadError(text: string, env: Record<string, string> = {}): string {
  try {
    parseServiceConfig(text, env)
    return ''
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`)
    return (err as Error).message
  }
}

/** Loads service.json text; returns the config and the lines reported at load. */
function loadWarned(text: string, env: Record<string, string> = {}) {
  const warnings: string[] = []
  const cfg = parseServiceConfig(text, env, (m) => warnings.push(m))
  return { cfg, warnings }
}

/** What loading a file holding every API the reference writes says: nothing, all are served. */
const UNSERVED_APIS: string[] = []
const DATASTORE_NOTE = 'ignored: the pinset lives in Deno KV here (<raft data folder>/state.kv, ' +
  'or <config folder>/crdt/state.kv under CRDT consensus)'

Deno.test('the Go raft service.json loads and saves back byte for byte', () => {
  const { cfg, warnings } = loadWarned(GO_TEXT)
  // Said once at load: the two APIs the reference would start and this peer does not have.
  assert.deepEqual(warnings, UNSERVED_APIS)
  assert.equal(cfg.cluster.peername, 'vm')
  assert.equal(cfg.cluster.secret, GO.cluster.secret)
  assert.deepEqual(cfg.cluster.listen_multiaddress, [
    '/ip4/0.0.0.0/tcp/9096',
    '/ip4/0.0.0.0/udp/9096/quic',
  ])
  assert.deepEqual(cfg.restapi?.http_listen_multiaddress, ['/ip4/127.0.0.1/tcp/9094'])
  assert.equal(cfg.raft?.commit_retry_delay, 200)
  assert.equal(cfg.ipfshttp?.repogc_timeout, 24 * 3_600_000)
  assert.equal(cfg.numpin, undefined, 'absent section stays absent')
  assert.equal(cfg.embedded, undefined)
  // Same keys, values and order as the reference wrote them (lists aside, see listForm).
  const out = serviceConfigToJSON(cfg)
  assert.equal(out, JSON.stringify(listForm(GO), null, 2) + '\n')
})

Deno.test('defaults equal what the reference init writes, less what is not implemented here', () => {
  const cfg = defaultServiceConfig({ peername: 'vm', secret: GO.cluster.secret })
  const ours = JSON.parse(serviceConfigToJSON(cfg))
  // Deliberate deviation: no QUIC transport in this implementation, so only the TCP listener.
  assert.deepEqual(ours.cluster.listen_multiaddress, ['/ip4/0.0.0.0/tcp/9096'])
  ours.cluster.listen_multiaddress = GO.cluster.listen_multiaddress
  // Deliberate addition: informer.numpin is written (the reference never writes it).
  assert.deepEqual(ours.informer.numpin, { metric_ttl: '10s' })
  delete ours.informer.numpin
  assert.deepEqual(Object.keys(ours.api), ['ipfsproxy', 'pinsvcapi', 'restapi'])
  const want = listForm(GO)
  assert.deepEqual(ours, want)
  // Key order too: the saved file reads like the reference's.
  assert.equal(JSON.stringify(ours), JSON.stringify(want))
})

Deno.test('defaults: §3.2 values in their loaded (ms) form', () => {
  const cfg = defaultServiceConfig({})
  assert.match(cfg.cluster.secret, /^[0-9a-f]{64}$/)
  assert.notEqual(cfg.cluster.secret, defaultServiceConfig({}).cluster.secret, 'random secret')
  assert.equal(cfg.cluster.peername, Deno.hostname())
  assert.equal(cfg.cluster.disable_repinning, true)
  assert.equal(cfg.cluster.replication_factor_min, -1)
  assert.equal(cfg.cluster.monitor_ping_interval, 15_000)
  assert.equal(cfg.cluster.connection_manager.grace_period, 120_000)
  assert.equal(cfg.cluster.pubsub.seen_messages_ttl, 30 * 60_000)
  assert.equal(cfg.raft?.wait_for_leader_timeout, 15_000)
  assert.equal(cfg.raft?.snapshot_threshold, 8192)
  assert.deepEqual(cfg.ipfsproxy?.listen_multiaddress, ['/ip4/127.0.0.1/tcp/9095'])
  assert.equal(defaultServiceConfig({ connector: 'embedded' }).ipfsproxy, undefined, 'no Kubo')
  assert.deepEqual(cfg.pinsvcapi?.http_listen_multiaddress, ['/ip4/127.0.0.1/tcp/9097'])
  assert.equal(cfg.stateless?.max_pin_queue_size, 1_000_000)
  assert.deepEqual(cfg.balanced?.allocate_by, ['tag:group', 'freespace'])
  assert.deepEqual(cfg.tags?.tags, { group: 'default' })
  assert.equal(cfg.numpin?.metric_ttl, 10_000, 'numpin is written (unlike the reference)')
  assert.equal(cfg.metrics?.reporting_interval, 30_000)
  assert.equal(cfg.tracing?.sampling_prob, 0.3)
  const emb = defaultServiceConfig({ connector: 'embedded' })
  assert.ok(emb.embedded && !emb.ipfshttp)
  assert.deepEqual(defaultServiceConfig({ peers: ['a', 'b'] }).raft?.init_peerset, ['a', 'b'])
})

Deno.test('env overrides: CLUSTER_PEERNAME, CLUSTER_MONITORPINGINTERVAL, component keys', () => {
  const env = {
    CLUSTER_PEERNAME: 'envpeer',
    CLUSTER_MONITORPINGINTERVAL: '2s',
    CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS: '/ip4/127.0.0.1/tcp/19094',
    CLUSTER_IPFSHTTP_NODEMULTIADDRESS: '/ip4/127.0.0.1/tcp/15001',
    CLUSTER_RAFT_WAITFORLEADERTIMEOUT: '1m0s',
    CLUSTER_STATELESS_CONCURRENTPINS: '3',
    CLUSTER_DISABLEREPINNING: 'false',
    CLUSTER_PEERADDRESSES: '/ip4/1.2.3.4/tcp/9096/p2p/x,/ip4/1.2.3.5/tcp/9096/p2p/y',
  }
  for (const cfg of [parseServiceConfig(GO_TEXT, env), defaultServiceConfig({}, env)]) {
    assert.equal(cfg.cluster.peername, 'envpeer')
    assert.equal(cfg.cluster.monitor_ping_interval, 2000)
    assert.equal(cfg.cluster.disable_repinning, false)
    assert.equal(cfg.cluster.peer_addresses?.length, 2)
    assert.deepEqual(cfg.restapi?.http_listen_multiaddress, ['/ip4/127.0.0.1/tcp/19094'])
    assert.equal(cfg.ipfshttp?.node_multiaddress, '/ip4/127.0.0.1/tcp/15001')
    assert.equal(cfg.raft?.wait_for_leader_timeout, 60_000)
    assert.equal(cfg.stateless?.concurrent_pins, 3)
  }
  const secret = 'ab'.repeat(32)
  assert.equal(defaultServiceConfig({}, { CLUSTER_SECRET: secret }).cluster.secret, secret)
  assert.match(
    loadError(GO_TEXT, { CLUSTER_MONITORPINGINTERVAL: 'often' }),
    /^CLUSTER_MONITORPINGINTERVAL \(cluster\.monitor_ping_interval\): must be a duration/,
  )
})

Deno.test('invalid values in each section name section.key and the allowed values', () => {
  const cases: [(o: O) => void, RegExp][] = [
    [
      (o) => (o.cluster.secret = 'abcd'),
      /^cluster\.secret: must be 64 hexadecimal characters \(32 bytes, .*got 4 characters$/,
    ],
    [
      (o) => (o.cluster.replication_factor_min = -2),
      /^cluster\.replication_factor_min: must be at least -1/,
    ],
    [(o) => {
      o.cluster.replication_factor_min = 3
      o.cluster.replication_factor_max = 2
    }, /replication_factor_min is larger than max/],
    [(o) => (o.cluster.replication_factor_max = 2), /must both be -1/],
    [
      (o) => (o.cluster.monitor_ping_interval = '0s'),
      /^cluster\.monitor_ping_interval: must be a positive duration/,
    ],
    [
      (o) => (o.cluster.listen_multiaddress = 'tcp/9096'),
      /^cluster\.listen_multiaddress: must be a multiaddress/,
    ],
    [
      (o) => (o.cluster.connection_manager = { low_water: 500 }),
      /low_water must be at most high_water/,
    ],
    [
      (o) => (o.cluster.pubsub = { d_factor: 'x' }),
      /^cluster\.pubsub\.d_factor: must be an integer/,
    ],
    [(o) => {
      o.cluster.pin_only_on_trusted_peers = true
      o.cluster.pin_only_on_untrusted_peers = true
    }, /cannot both be true/],
    [
      (o) => (o.consensus.raft.commit_retries = -1),
      /^consensus\.raft\.commit_retries: must be at least 0/,
    ],
    [
      (o) => (o.consensus.raft.heartbeat_timeout = 'soon'),
      /^consensus\.raft\.heartbeat_timeout: must be a duration/,
    ],
    [
      (o) => (o.api.restapi.max_header_bytes = 10),
      /^api\.restapi\.max_header_bytes: must be at least 4096/,
    ],
    [
      (o) => (o.api.restapi.basic_auth_credentials = {}),
      /^api\.restapi\.basic_auth_credentials: must not be an empty object/,
    ],
    [
      (o) => (o.api.restapi.ssl_cert_file = 'c.pem'),
      /^api\.restapi: ssl_cert_file and ssl_key_file must be set together/,
    ],
    [
      (o) => (o.api.pinsvcapi.http_listen_multiaddress = '/ip4/1/tcp/1'),
      /^api\.pinsvcapi\.http_listen_multiaddress: invalid multiaddress/,
    ],
    [
      (o) => (o.api.ipfsproxy.node_multiaddress = 5001),
      /^api\.ipfsproxy\.node_multiaddress: must be a multiaddress/,
    ],
    [
      (o) => (o.ipfs_connector.ipfshttp.pin_timeout = '0s'),
      /^ipfs_connector\.ipfshttp\.pin_timeout: must be a positive duration/,
    ],
    [
      (o) => (o.pin_tracker.stateless.concurrent_pins = -1),
      /^pin_tracker\.stateless\.concurrent_pins: must be at least 1/,
    ],
    [
      (o) => (o.monitor.pubsubmon.check_interval = '0s'),
      /^monitor\.pubsubmon\.check_interval: must be a positive/,
    ],
    [
      (o) => (o.allocator.balanced.allocate_by = []),
      /^allocator\.balanced: allocate_by must list at least one metric/,
    ],
    [
      (o) => (o.informer.disk.metric_type = 'size'),
      /^informer\.disk\.metric_type: invalid value "size" \(allowed: "freespace", "reposize"\)/,
    ],
    [(o) => (o.informer.tags.tags = ['x']), /^informer\.tags\.tags: must be an object of strings/],
    [
      (o) => (o.informer.pinqueue.weight_bucket_size = 0),
      /^informer\.pinqueue\.weight_bucket_size: must be at least 1/,
    ],
    [
      (o) => (o.observations.tracing.sampling_prob = 1.5),
      /^observations\.tracing\.sampling_prob: must be at most 1/,
    ],
    [
      (o) => (o.observations.metrics.prometheus_endpoint = 'localhost:8888'),
      /^observations\.metrics\.prometheus_endpoint: must be a multiaddress/,
    ],
  ]
  for (const [mut, re] of cases) {
    const msg = loadError(goWith(mut))
    assert.match(msg, re, `${mut}`)
  }
})

Deno.test('cluster.secret: the message says what is wrong and what a valid secret is', () => {
  const want = 'must be 64 hexadecimal characters (32 bytes, as "ipfs-cluster-service init" ' +
    'writes), or "" for no private network'
  // 64 characters, none of them hex: the length is right, the alphabet is not.
  assert.equal(
    loadError(goWith((o) => (o.cluster.secret = 'z'.repeat(64)))),
    `cluster.secret: ${want}; got 64 characters, and "z" (character 1) is not hexadecimal`,
  )
  assert.equal(
    loadError(goWith((o) => (o.cluster.secret = 'ab'.repeat(31) + 'aG'))),
    `cluster.secret: ${want}; got 64 characters, and "G" (character 64) is not hexadecimal`,
  )
  assert.equal(
    loadError(goWith((o) => (o.cluster.secret = 'ab'.repeat(16)))),
    `cluster.secret: ${want}; got 32 characters`,
  )
  // The same from the environment names the variable; the secret itself is never echoed.
  const msg = loadError(GO_TEXT, { CLUSTER_SECRET: 'q'.repeat(64) })
  assert.equal(
    msg,
    `CLUSTER_SECRET (cluster.secret): ${want}; got 64 characters, and "q" (character 1) is not ` +
      'hexadecimal',
  )
  assert.equal(
    loadError(GO_TEXT, { CLUSTER_SECRET: 'abc' }),
    `CLUSTER_SECRET (cluster.secret): ${want}; got 3 characters`,
  )
  assert.throws(
    () => defaultServiceConfig({}, { CLUSTER_SECRET: 'x'.repeat(64) }),
    (e: Error) =>
      e instanceof ConfigError && e.message.startsWith('CLUSTER_SECRET (cluster.secret)'),
  )
  // Upper-case hex is valid, as in the reference; an empty secret loads with its warning.
  assert.equal(loadError(goWith((o) => (o.cluster.secret = 'AB'.repeat(32)))), '')
  assert.deepEqual(loadWarned(goWith((o) => (o.cluster.secret = ''))).warnings, [
    'cluster: secret is empty: the cluster runs on an unprotected network (any peer may join)',
    ...UNSERVED_APIS,
  ])
})

Deno.test('cluster and consensus are required: missing or null is refused by name', () => {
  const cluster = /^cluster: the section is (missing|null); it holds the peer's name, secret and /
  assert.match(loadError(goWith((o) => delete o.cluster)), cluster)
  assert.match(loadError(goWith((o) => delete o.cluster)), /is missing/)
  assert.match(loadError(goWith((o) => (o.cluster = null))), /^cluster: the section is null;/)
  const consensus = 'consensus: no consensus is configured (allowed: consensus.raft, ' +
    'consensus.crdt); add "consensus": {"raft": {}} for Raft with its defaults (or {"crdt": {}}), ' +
    'or run "ipfs-cluster-service init"'
  for (
    const mut of [
      (o: O) => delete o.consensus,
      (o: O) => (o.consensus = null),
      (o: O) => (o.consensus = {}),
      (o: O) => (o.consensus.raft = null),
    ]
  ) {
    assert.equal(loadError(goWith(mut)), consensus, `${mut}`)
  }
  // An empty raft section is Raft with its defaults.
  assert.equal(parseServiceConfig(goWith((o) => (o.consensus.raft = {}))).raft?.commit_retries, 1)
})

Deno.test('other null sections and components are read as absent, and said so', () => {
  const { cfg, warnings } = loadWarned(goWith((o) => {
    o.api = null
    o.informer.disk = null
  }))
  assert.equal(cfg.restapi, undefined)
  assert.equal(cfg.disk, undefined)
  assert.ok(cfg.tags)
  assert.deepEqual(warnings, ['api: null, read as absent', 'informer.disk: null, read as absent'])
})

Deno.test('keys nobody knows are refused with "did you mean", at every level', () => {
  assert.equal(
    loadError(goWith((o) => (o.cluster.peer_name = 'x'))),
    'cluster.peer_name: unknown key; did you mean "peername"?',
  )
  assert.equal(
    loadError(goWith((o) => (o.cluster.pubsub.dfactor = 2))),
    'cluster.pubsub.dfactor: unknown key; did you mean "d_factor"?',
  )
  assert.equal(
    loadError(goWith((o) => (o.api.restapi.read_timout = '1s'))),
    'api.restapi.read_timout: unknown key; did you mean "read_timeout"?',
  )
  assert.match(
    loadError(goWith((o) => (o.api.restapi.listen = 'x'))),
    /^api\.restapi\.listen: unknown key \(allowed: http_listen_multiaddress, /,
  )
  assert.equal(
    loadError(goWith((o) => (o.api.restpi = {}))),
    'api.restpi: unknown component; did you mean "restapi"?',
  )
  assert.equal(
    loadError(goWith((o) => (o.api.grpc = {}))),
    'api.grpc: unknown component (allowed: ipfsproxy, pinsvcapi, restapi)',
  )
  assert.equal(
    loadError(goWith((o) => (o.informers = {}))),
    'informers: unknown section; did you mean "informer"?',
  )
  assert.match(
    loadError(goWith((o) => (o.sharding = {}))),
    /^sharding: unknown section \(allowed: source, cluster, consensus, api, /,
  )
  assert.match(loadError(goWith((o) => (o.toString = {}))), /^toString: unknown section/)
  assert.equal(
    loadError(goWith((o) => (o.consensus = { crdt: { batching: { max_batch_sise: 1 } } }))),
    'consensus.crdt.batching.max_batch_sise: unknown key; did you mean "max_batch_size"?',
  )
  assert.equal(
    loadError(
      goWith((o) => (o.datastore = { pebble: { pebble_options: { levels: [{ x: 1 }] } } })),
    ),
    'datastore.pebble.pebble_options.levels[0].x: unknown key (allowed: block_restart_interval, ' +
      'block_size, block_size_threshold, compression, filter_type, filter_policy, ' +
      'index_block_size, target_file_size)',
  )
  for (const top of ['consensus', 'api', 'informer', 'datastore', 'cluster', 'state']) {
    for (const v of ['"raft"', '[]', '5']) {
      assert.equal(loadError(`{"${top}": ${v}}`), `${top}: must be a JSON object`, `${top}: ${v}`)
    }
  }
  assert.match(loadError('{"cluster": '), /^service\.json is not valid JSON/)
  assert.equal(loadError('[]'), 'service.json must hold a JSON object')
})

Deno.test('keys and sections match case-insensitively, as Go struct fields do', () => {
  const cfg = parseServiceConfig(goWith((o) => {
    o.Cluster = o.cluster
    delete o.cluster
    o.Cluster.PeerName = 'cased'
    delete o.Cluster.peername
  }))
  assert.equal(cfg.cluster.peername, 'cased')
  // Component names are map keys in the reference: exact only.
  assert.match(loadError(goWith((o) => (o.api.RestAPI = {}))), /^api\.RestAPI: unknown component/)
})

Deno.test('a crdt config loads: consensus.crdt runs, datastore.* is checked and reported', () => {
  const crdt = goWith((o) => {
    o.consensus = { crdt: { cluster_name: 'ipfs-cluster', trusted_peers: ['*'] } }
    o.datastore = { pebble: { pebble_options: { cache_size_bytes: 1 } } }
  })
  const { cfg, warnings } = loadWarned(crdt)
  assert.equal(cfg.raft, undefined, 'no Raft')
  assert.equal(cfg.crdt?.cluster_name, 'ipfs-cluster')
  assert.deepEqual(warnings, [...UNSERVED_APIS, `datastore.pebble: ${DATASTORE_NOTE}`])
  // Both consensus sections: refused, as the reference refuses to start.
  assert.match(
    loadError(goWith((o) => (o.consensus.crdt = { cluster_name: 'x' }))),
    /^consensus: both consensus.raft and consensus.crdt are configured/,
  )
})

Deno.test('old-style service.json (IPFS Cluster ≤ 0.10 keys, as its own test configs) loads', () => {
  // Modelled on the reference's sharness/config/*/service.json: the identity inside `cluster`,
  // `replication_factor`, the `monbasic` monitor next to pubsubmon, "0h2m0s", keys left out.
  const old = {
    cluster: {
      id: 'QmdEtBsfumeH2V6dnx1fgn8zuW7XYjWdgJF4NEYpEBcTsg',
      peername: 'testname',
      private_key: 'CAASqAkwggSk',
      secret: GO.cluster.secret,
      leave_on_shutdown: false,
      listen_multiaddress: ['/ip4/0.0.0.0/tcp/9096', '/ip6/::/tcp/9096'],
      state_sync_interval: '1m0s',
      replication_factor: -1,
      monitor_ping_interval: '15s',
    },
    consensus: { raft: { heartbeat_timeout: '1s', snapshot_threshold: 8192 } },
    api: {
      restapi: {
        ssl_cert_file: '',
        ssl_key_file: '',
        http_listen_multiaddress: '/ip4/127.0.0.1/tcp/9094',
        read_timeout: '30s',
        basic_auth_credentials: { testuser: 'testpass', userwithoutpass: '' },
      },
    },
    ipfs_connector: {
      ipfshttp: { node_multiaddress: '/ip4/127.0.0.1/tcp/5001', pin_timeout: '0h2m0s' },
    },
    pin_tracker: { stateless: { max_pin_queue_size: 50000, concurrent_pins: 10 } },
    monitor: { monbasic: { check_interval: '15s' }, pubsubmon: { check_interval: '15s' } },
    informer: {
      disk: { metric_ttl: '30s', metric_type: 'reposize' },
      numpin: { metric_ttl: '10s' },
    },
  }
  const { cfg, warnings } = loadWarned(JSON.stringify(old))
  assert.equal(cfg.cluster.peername, 'testname')
  assert.equal(cfg.cluster.state_sync_interval, 60_000)
  assert.equal(cfg.cluster.replication_factor_min, -1)
  assert.equal(cfg.ipfshttp?.pin_timeout, 120_000)
  assert.equal(cfg.stateless?.max_pin_queue_size, 50000)
  assert.equal(cfg.pubsubmon?.check_interval, 15_000)
  assert.equal(cfg.disk?.metric_type, 'reposize')
  assert.deepEqual(cfg.restapi?.basic_auth_credentials, {
    testuser: 'testpass',
    userwithoutpass: '',
  })
  assert.deepEqual(warnings, [
    'cluster.id: IPFS Cluster 0.10 and older kept the identity here; identity.json holds it now, ' +
    'and this value is used only to create identity.json when that file is missing',
    'cluster.private_key: IPFS Cluster 0.10 and older kept the identity here; identity.json ' +
    'holds it now, and this value is used only to create identity.json when that file is missing',
    'cluster.replication_factor: IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): use ' +
    'replication_factor_min and replication_factor_max',
    'monitor.monbasic: the basic monitor of IPFS Cluster 0.10 and older; ignored (as 1.1.6 does): ' +
    'monitor.pubsubmon replaces it',
  ])
  // Other legacy keys of older releases load too, each said once.
  const older = loadWarned(goWith((o) => {
    o.consensus.raft.start_as_leader = false
    o.api.restapi.listen_multiaddress = '/ip4/127.0.0.1/tcp/9094'
    o.ipfs_connector.ipfshttp.proxy_listen_multiaddress = '/ip4/127.0.0.1/tcp/9095'
    o.monitor.pubsubmon.failure_threshold = 3
    o.pin_tracker.maptracker = { concurrent_pins: 10 }
    o.state = {}
  }))
  assert.deepEqual(older.warnings.map((w) => w.slice(0, w.indexOf(':'))), [
    'state',
    'consensus.raft.start_as_leader',
    'api.restapi.listen_multiaddress',
    'ipfs_connector.ipfshttp.proxy_listen_multiaddress',
    'monitor.pubsubmon.failure_threshold',
    'pin_tracker.maptracker',
  ])
})

Deno.test('a remote configuration (source) is rejected', () => {
  assert.match(
    loadError('{"source":"http://example.com/service.json"}'),
    /remote configurations are not supported/,
  )
})

Deno.test('save writes 0600 and load reads it back; a missing file says to run init', async () => {
  const dir = await Deno.makeTempDir()
  try {
    await assert.rejects(
      loadServiceConfig(dir),
      (e: Error) => e instanceof ConfigError && e.message.includes('ipfs-cluster-service init'),
    )
    const cfg = defaultServiceConfig({ peername: 'p', peers: ['12D3KooWx'] })
    await saveServiceConfig(dir, cfg)
    const st = await Deno.stat(join(dir, 'service.json'))
    assert.equal(st.mode! & 0o777, 0o600)
    const back = await loadServiceConfig(dir)
    assert.deepEqual(back, cfg)
    assert.deepEqual(back.raft?.init_peerset, ['12D3KooWx'])
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('defaultConfigDir: $IPFS_CLUSTER_PATH, else ~/.ipfs-cluster', () => {
  assert.equal(defaultConfigDir({ IPFS_CLUSTER_PATH: '/x', HOME: '/h' }), '/x')
  assert.equal(defaultConfigDir({ HOME: '/h' }), '/h/.ipfs-cluster')
})

/**
 * Runs the real `ipfs-cluster-service init` (1.1.6) in a new folder. `init` only writes files (no
 * network: checked with strace), so it needs no network namespace.
 */
async function goInit(args: string[]): Promise<string> {
  const dir = await Deno.makeTempDir()
  const out = await new Deno.Command(GO_SERVICE, {
    args: ['--config', dir, 'init', ...args],
    stdout: 'null',
    stderr: 'piped',
  }).output()
  assert.ok(out.success, new TextDecoder().decode(out.stderr))
  return dir
}

Deno.test({
  name: 'a folder made now by the real ipfs-cluster-service init --consensus raft loads',
  ignore: !haveGo,
  async fn() {
    const dir = await goInit(['--consensus', 'raft'])
    try {
      const text = await Deno.readTextFile(join(dir, 'service.json'))
      const warnings: string[] = []
      const cfg = await loadServiceConfig(dir, {}, (m) => warnings.push(m))
      assert.deepEqual(warnings, UNSERVED_APIS)
      assert.equal(
        serviceConfigToJSON(cfg),
        JSON.stringify(listForm(JSON.parse(text)), null, 2) + '\n',
      )
      const ident = await loadIdentity(dir)
      assert.equal(ident.id, JSON.parse(await Deno.readTextFile(join(dir, 'identity.json'))).id)
    } finally {
      await Deno.remove(dir, { recursive: true })
    }
  },
})

Deno.test({
  name: 'folders made by the real init with crdt and each datastore it offers load, with warnings',
  ignore: !haveGo,
  async fn() {
    // The reference's default consensus is crdt, its default datastore pebble.
    for (const datastore of [undefined, 'pebble', 'badger', 'badger3', 'leveldb']) {
      const args = ['--consensus', 'crdt', ...(datastore ? ['--datastore', datastore] : [])]
      const dir = await goInit(args)
      try {
        const text = await Deno.readTextFile(join(dir, 'service.json'))
        const json = JSON.parse(text)
        assert.deepEqual(Object.keys(json.datastore), [datastore ?? 'pebble'], args.join(' '))
        const warnings: string[] = []
        const cfg = await loadServiceConfig(dir, {}, (m) => warnings.push(m))
        assert.equal(cfg.raft, undefined)
        assert.deepEqual(cfg.crdt, crdtSection.defaults(), 'the defaults Go wrote')
        assert.deepEqual(warnings, [
          ...UNSERVED_APIS,
          `datastore.${datastore ?? 'pebble'}: ${DATASTORE_NOTE}`,
        ], args.join(' '))
        assert.equal(cfg.cluster.secret, json.cluster.secret)
        assert.equal(
          (await loadIdentity(dir)).id,
          JSON.parse(
            await Deno.readTextFile(join(dir, 'identity.json')),
          ).id,
        )
        // Every key the reference wrote is known: a misspelt one in the deepest object is not.
        const store = json.datastore[datastore ?? 'pebble']
        const options = Object.keys(store).find((k) => k.endsWith('_options'))!
        store[options].cache_size_bites = 1
        assert.match(
          loadError(JSON.stringify(json)),
          new RegExp(`^datastore\\.\\w+\\.${options}\\.cache_size_bites: unknown key`),
        )
      } finally {
        await Deno.remove(dir, { recursive: true })
      }
    }
  },
})

Deno.test('features this peer lacks are reported when turned on, not when left at defaults', () => {
  const { warnings } = loadWarned(goWith((o) => {
    delete o.api.ipfsproxy
    delete o.api.pinsvcapi
    // Stats and tracing are served now (src/observations/): turning them on says nothing.
    o.observations.metrics.enable_stats = true
    o.observations.tracing.enable_tracing = true
    o.observations.tracing.jaeger_agent_endpoint = '/ip4/10.0.0.1/udp/6831'
    o.api.restapi.libp2p_listen_multiaddress = ['/ip4/127.0.0.1/tcp/9098']
  }))
  assert.deepEqual(warnings, [
    'api.restapi.libp2p_listen_multiaddress: not implemented here, the value is ignored (the API ' +
    'is served over HTTP only, with no libp2p-http endpoint)',
    'observations.tracing.jaeger_agent_endpoint: not implemented here, the value is ignored ' +
    '(traces are exported over OTLP/HTTP: set otlp_endpoint (Jaeger takes OTLP on 4318))',
  ])
  // What init writes says nothing.
  const ours = loadWarned(serviceConfigToJSON(defaultServiceConfig({ secret: GO.cluster.secret })))
  assert.deepEqual(ours.warnings, [])
})
