/**
 * `consensus.crdt`: the keys, defaults and JSON of IPFS Cluster 1.1.6 (what its init writes, what
 * a file without a key means), env overrides with Go's names, validation messages, and
 * `init --consensus crdt` writing exactly the section the Go binary writes.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { batchingEnabled, crdtSection, trustChecker } from '../../../src/consensus/crdt/config.ts'
import { ConfigError } from '../../../src/errors.ts'
import { parseServiceConfig } from '../../../src/service_config.ts'
import { serviceMain } from '../../../cli/service/main.ts'
import type { CliIO } from '../../../cli/io.ts'

const PEER = '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K'
const OTHER = 'QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL'

/** What `ipfs-cluster-service init --consensus crdt` (Go 1.1.6) writes. */
const GO_INIT = {
  cluster_name: 'ipfs-cluster',
  trusted_peers: ['*'],
  batching: { max_batch_size: 0, max_batch_age: '0s' },
  repair_interval: '1h0m0s',
}

/** Runs ipfs-cluster-service in-process; returns its exit code and stderr. */
async function service(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = ''
  const io: CliIO = {
    stdout: () => {},
    stderr: (s) => void (stderr += s),
    env: { HOME: '/nonexistent' },
    stdin: () => new Blob(['']).stream(),
    confirm: () => Promise.resolve(true),
    prompt: () => Promise.resolve(''),
  }
  return { code: await serviceMain(args, io), stderr }
}

function loadError(json: unknown, env: Record<string, string> = {}): string {
  try {
    crdtSection.load(json, env)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`)
    return err.message
  }
  assert.fail('loaded')
}

Deno.test('crdt config: the defaults are Go’s, and written as Go’s init writes them', () => {
  const cfg = crdtSection.defaults()
  assert.deepEqual(cfg, {
    cluster_name: 'ipfs-cluster',
    trusted_peers: ['*'],
    batching: { max_batch_size: 0, max_batch_age: 0, max_queue_size: 50_000 },
    repair_interval: 3_600_000,
    rebroadcast_interval: 60_000,
    peerset_metric: 'ping',
    datastore_namespace: '/c',
  })
  assert.deepEqual(crdtSection.toJSON(cfg), GO_INIT)
  assert.deepEqual(crdtSection.load(GO_INIT), cfg)
  assert.equal(batchingEnabled(cfg), false)
})

Deno.test('crdt config: non-default values are written, hidden keys appear when set', () => {
  const cfg = crdtSection.load({
    cluster_name: 'mine',
    trusted_peers: [PEER, OTHER],
    batching: { max_batch_size: 100, max_batch_age: '1m', max_queue_size: 10 },
    repair_interval: '0s',
    rebroadcast_interval: '10s',
    peerset_metric: 'freespace',
    datastore_namespace: '/x',
  })
  assert.equal(batchingEnabled(cfg), true)
  assert.deepEqual(crdtSection.toJSON(cfg), {
    cluster_name: 'mine',
    trusted_peers: [PEER, OTHER],
    batching: { max_batch_size: 100, max_batch_age: '1m0s', max_queue_size: 10 },
    repair_interval: '0s',
    rebroadcast_interval: '10s',
    peerset_metric: 'freespace',
    datastore_namespace: '/x',
  })
  // Batching needs both a size and an age.
  assert.equal(batchingEnabled(crdtSection.load({ batching: { max_batch_size: 5 } })), false)
  assert.equal(batchingEnabled(crdtSection.load({ batching: { max_batch_age: '1s' } })), false)
})

Deno.test('crdt config: what a file leaves out or empties means what it means to Go', () => {
  // No trusted_peers key: Go resets the list before reading, so only this peer is trusted.
  const cfg = crdtSection.load({ cluster_name: '' })
  assert.deepEqual(cfg.trusted_peers, [])
  assert.equal(cfg.cluster_name, 'ipfs-cluster', 'empty = default (SetIfNotDefault)')
  const trusted = trustChecker(cfg, PEER)
  assert.equal(trusted(PEER), true, 'self')
  assert.equal(trusted(OTHER), false)
  assert.equal(trustChecker(cfg, PEER, [OTHER])(OTHER), true, 'bootstrap peers, trusted at start')
  // "*" anywhere trusts all, and is written back alone.
  const all = crdtSection.load({ trusted_peers: [OTHER, '*'] })
  assert.deepEqual(all.trusted_peers, ['*'])
  assert.equal(trustChecker(all, PEER)('anyone'), true)
  const empties = crdtSection.load({
    peerset_metric: '',
    datastore_namespace: '',
    rebroadcast_interval: '',
    batching: { max_queue_size: 0 },
  })
  assert.equal(empties.peerset_metric, 'ping')
  assert.equal(empties.datastore_namespace, '/c')
  assert.equal(empties.rebroadcast_interval, 60_000)
  assert.equal(empties.batching.max_queue_size, 50_000)
})

Deno.test('crdt config: bad values are refused with the key and what is allowed', () => {
  assert.match(
    loadError({ trusted_peers: ['nope'] }),
    /^consensus\.crdt\.trusted_peers: .*"nope" is not a peer ID/,
  )
  assert.match(loadError({ trusted_peers: 'x' }), /^consensus\.crdt\.trusted_peers: must be a list/)
  assert.match(
    loadError({ rebroadcast_interval: '0s' }),
    /^consensus\.crdt\.rebroadcast_interval: must be a positive duration/,
  )
  assert.match(
    loadError({ repair_interval: '-1s' }),
    /^consensus\.crdt\.repair_interval: must not be negative/,
  )
  assert.match(
    loadError({ repair_interval: 'soon' }),
    /^consensus\.crdt\.repair_interval: must be a duration/,
  )
  assert.match(
    loadError({ batching: { max_queue_size: -1 } }),
    /^consensus\.crdt\.batching\.max_queue_size: must be positive, got -1/,
  )
  assert.match(
    loadError({ batching: { max_batch_age: 5 } }),
    /^consensus\.crdt\.batching\.max_batch_age: must be a duration/,
  )
  assert.match(loadError({ cluster_nam: 'x' }), /did you mean "cluster_name"/)
})

Deno.test('crdt config: env overrides with Go’s names, batching keys included', () => {
  const cfg = crdtSection.load(GO_INIT, {
    CLUSTER_CRDT_CLUSTERNAME: 'from-env',
    CLUSTER_CRDT_TRUSTEDPEERS: `${PEER},${OTHER}`,
    CLUSTER_CRDT_REBROADCASTINTERVAL: '5s',
    CLUSTER_CRDT_BATCHING_MAXBATCHSIZE: '20',
    CLUSTER_CRDT_BATCHING_MAXBATCHAGE: '2s',
  })
  assert.equal(cfg.cluster_name, 'from-env')
  assert.deepEqual(cfg.trusted_peers, [PEER, OTHER])
  assert.equal(cfg.rebroadcast_interval, 5_000)
  assert.deepEqual(cfg.batching, {
    max_batch_size: 20,
    max_batch_age: 2_000,
    max_queue_size: 50_000,
  })
  assert.match(
    loadError(GO_INIT, { CLUSTER_CRDT_BATCHING_MAXQUEUESIZE: '-3' }),
    /CLUSTER_CRDT_BATCHING_MAXQUEUESIZE \(consensus\.crdt\.batching\.max_queue_size\): must be positive/,
  )
})

Deno.test('service.json: consensus.crdt alone runs CRDT; with consensus.raft it is refused', () => {
  const base = { cluster: {}, consensus: { crdt: GO_INIT } }
  const cfg = parseServiceConfig(JSON.stringify(base))
  assert.equal(cfg.raft, undefined)
  assert.deepEqual(cfg.crdt, crdtSection.load(GO_INIT))
  const both = { cluster: {}, consensus: { crdt: GO_INIT, raft: {} } }
  assert.throws(
    () => parseServiceConfig(JSON.stringify(both)),
    /both consensus\.raft and consensus\.crdt are configured; a peer runs one consensus/,
  )
})

Deno.test('init --consensus crdt writes consensus.crdt as the Go init does, and no raft', async () => {
  const dir = await Deno.makeTempDir()
  try {
    const r = await service(['--config', dir, 'init', '--consensus', 'crdt'])
    assert.equal(r.code, 0, r.stderr)
    const json = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
    assert.deepEqual(json.consensus, { crdt: GO_INIT })
    assert.equal((await service(['--config', dir, 'init', '-f'])).code, 0)
    const again = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
    assert.deepEqual(Object.keys(again.consensus), ['raft'], 'the default is still Raft')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
