/**
 * ipfs-cluster-service run in-process through serviceMain with a fake CliIO: init, version/help,
 * state export/import/cleanup and the folder lock. (The daemon is tested with the cluster.)
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { serviceMain } from '../../../cli/service/main.ts'
import type { CliIO } from '../../../cli/io.ts'
import { acquireLock } from '../../../src/util/lock.ts'
import { loadServiceConfig } from '../../../src/service_config.ts'
import { loadIdentity } from '../../../src/config/identity.ts'

const OVERWRITE = 'The configuration file will be overwritten. Continue? [y/n]:'
const IMPORT = 'The pinset (state) of this peer will be replaced. Continue? [y/n]:'
const CLEANUP = 'The peer state will be removed.  Existing pins may be lost. Continue? [y/n]:'
const PEER1 = '12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const PEER2 = '12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7'
// `ipfs-cluster-service state export` of IPFS Cluster 1.1.6 after importing two pins.
const GO_EXPORT = [
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},"pin_update":null,"origins":[],"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
  '{"replication_factor_min":2,"replication_factor_max":3,"name":"d","mode":"direct","shard_size":0,"user_allocations":null,"expire_at":"2030-01-02T03:04:05Z","metadata":null,"pin_update":"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG","origins":["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7"],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","type":"pin","allocations":["12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ"],"max_depth":0,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
].join('\n') + '\n'

interface Run {
  code: number
  stdout: string
  stderr: string
  prompts: string[]
}

/** Runs the service CLI with scripted answers and stdin; env is only what is given (no CLUSTER_*). */
async function svc(
  args: string[],
  opts: { answers?: boolean[]; stdin?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const r: Run = { code: -1, stdout: '', stderr: '', prompts: [] }
  const answers = [...(opts.answers ?? [])]
  const io: CliIO = {
    stdout: (s) => void (r.stdout += s),
    stderr: (s) => void (r.stderr += s),
    env: { HOME: '/nonexistent', ...opts.env },
    stdin: () => new Blob([opts.stdin ?? '']).stream(),
    confirm(q) {
      r.prompts.push(q)
      return Promise.resolve(answers.shift() ?? false)
    },
    prompt(q) {
      r.prompts.push(q)
      return Promise.resolve('')
    },
  }
  r.code = await serviceMain(args, io)
  return r
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: 'svc-cli-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

/** A config folder after a successful `init`. */
async function initialized(dir: string) {
  const r = await svc(['-c', dir, 'init'])
  assert.equal(r.code, 0, r.stderr)
}

const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777

Deno.test('init writes service.json (raft, 0600), identity.json (0600) and an empty peerstore', () =>
  withDir(async (dir) => {
    const r = await svc(['--config', dir, 'init'])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, '')
    assert.deepEqual(r.prompts, [])
    assert.equal(
      r.stderr,
      `configuration written to ${join(dir, 'service.json')}.\n` +
        `new identity written to ${join(dir, 'identity.json')}\n` +
        `new empty peerstore written to ${join(dir, 'peerstore')}.\n`,
    )
    assert.equal(await mode(join(dir, 'service.json')), 0o600)
    assert.equal(await mode(join(dir, 'identity.json')), 0o600)
    assert.equal(await Deno.readTextFile(join(dir, 'peerstore')), '')
    const json = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
    assert.deepEqual(Object.keys(json.consensus), ['raft'])
    assert.equal(json.datastore, undefined)
    assert.match(json.cluster.secret, /^[0-9a-f]{64}$/)
    assert.deepEqual(json.consensus.raft.init_peerset, [])
    assert.ok(json.ipfs_connector.ipfshttp)
    const cfg = await loadServiceConfig(dir)
    assert.deepEqual(cfg.restapi?.http_listen_multiaddress, ['/ip4/127.0.0.1/tcp/9094'])
    assert.match((await loadIdentity(dir)).id, /^12D3KooW/)
    // init takes the lock only while it works.
    await (await acquireLock(dir)).release()
  }))

Deno.test('init over an existing config asks; "no" leaves every file as it was', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const before = await Deno.readTextFile(join(dir, 'service.json'))
    const ident = await Deno.readTextFile(join(dir, 'identity.json'))
    const r = await svc(['-c', dir, 'init'], { answers: [false] })
    assert.equal(r.code, 0)
    assert.deepEqual(r.prompts, [OVERWRITE])
    assert.equal(r.stderr, '')
    assert.equal(await Deno.readTextFile(join(dir, 'service.json')), before)
    assert.equal(await Deno.readTextFile(join(dir, 'identity.json')), ident)
  }))

Deno.test('init: "yes" or --force/-f rewrite the config and keep the identity', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const ident = await Deno.readTextFile(join(dir, 'identity.json'))
    const secretOf = async () =>
      JSON.parse(await Deno.readTextFile(join(dir, 'service.json'))).cluster.secret
    for (
      const [args, answers] of [
        [['-c', dir, 'init'], [true]],
        [['-c', dir, 'init', '--force'], []],
        [['-c', dir, 'init', '-f'], []],
        [['-c', dir, '-f', 'init'], []],
      ] as [string[], boolean[]][]
    ) {
      const old = await secretOf()
      const r = await svc(args, { answers })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.prompts.length, answers.length, args.join(' '))
      assert.notEqual(await secretOf(), old, 'a new config (new secret) was written')
      assert.ok(!r.stderr.includes('new identity'), 'the identity is not replaced')
      assert.equal(await Deno.readTextFile(join(dir, 'identity.json')), ident)
    }
  }))

Deno.test('init --randomports picks distinct, non-default ports for every listener', () =>
  withDir(async (dir) => {
    const r = await svc(['-c', dir, 'init', '--randomports'])
    assert.equal(r.code, 0, r.stderr)
    const cfg = await loadServiceConfig(dir)
    const addrs = [
      ...cfg.cluster.listen_multiaddress,
      ...cfg.restapi!.http_listen_multiaddress,
      ...cfg.pinsvcapi!.http_listen_multiaddress,
      ...cfg.ipfsproxy!.listen_multiaddress,
    ]
    const ports = addrs.map((a) => Number(/\/(?:tcp|udp)\/(\d+)/.exec(a)![1]))
    assert.equal(new Set(ports).size, ports.length, `distinct: ${ports}`)
    for (const p of ports) assert.ok(p > 0 && ![9094, 9095, 9096, 9097].includes(p), `port ${p}`)
    // The IPFS daemon address is not ours to move.
    assert.equal(cfg.ipfshttp?.node_multiaddress, '/ip4/127.0.0.1/tcp/5001')
    // With the embedded node, its swarm listeners too, none shared with another listener.
    const e = await svc(['-c', dir, 'init', '-f', '--randomports', '--ipfs', 'embedded'])
    assert.equal(e.code, 0, e.stderr)
    const ecfg = await loadServiceConfig(dir)
    const eaddrs = [
      ...ecfg.cluster.listen_multiaddress,
      ...ecfg.restapi!.http_listen_multiaddress,
      ...ecfg.embedded!.listen_multiaddress,
    ]
    const eports = eaddrs.map((a) => Number(/\/(?:tcp|udp)\/(\d+)/.exec(a)![1]))
    assert.equal(new Set(eports).size, eports.length, `distinct: ${eports}`)
  }))

Deno.test('init --peers writes the peerstore and raft init_peerset', () =>
  withDir(async (dir) => {
    const a = `/ip4/127.0.0.1/tcp/9096/p2p/${PEER1}`
    const b = `/dns4/peer2.example/tcp/9096/p2p/${PEER2}`
    const r = await svc(['-c', dir, 'init', '--peers', `${a}, ${b}`])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stderr.endsWith(`peerstore written to ${join(dir, 'peerstore')} with 2 entries.\n`))
    assert.equal(await Deno.readTextFile(join(dir, 'peerstore')), `${a}\n${b}\n`)
    const cfg = await loadServiceConfig(dir)
    assert.deepEqual(cfg.raft?.init_peerset, [PEER1, PEER2])
    const bad = await svc(['-c', dir, 'init', '-f', '--peers', '/ip4/1.2.3.4/tcp/1'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^error parsing peer multiaddress: \/ip4\/1\.2\.3\.4\/tcp\/1: /)
  }))

Deno.test('a bad --consensus or --datastore: one error line, exit 1, nothing written', () =>
  withDir(async (dir) => {
    const other = await svc(['-c', dir, 'init', '--consensus', 'paxos'])
    assert.equal(other.code, 1)
    assert.equal(
      other.stderr,
      "error choosing consensus: flag value must be set to 'raft' or 'crdt'\n",
    )
    const ds = await svc(['-c', dir, 'init', '--datastore', 'rocksdb'])
    assert.equal(ds.code, 1)
    // Word for word the reference's message.
    assert.equal(
      ds.stderr,
      "error choosing datastore: flag value must be set to 'leveldb', 'badger', 'badger3' or 'pebble'\n",
    )
    assert.deepEqual([...Deno.readDirSync(dir)], [])
    const ok = await svc(['-c', dir, 'init', '--consensus', 'raft', '--datastore', 'badger'])
    assert.equal(ok.code, 0, ok.stderr)
  }))

Deno.test('unknown flags and commands: one line on stderr, exit 1 (3 for an unknown subcommand)', () =>
  withDir(async (dir) => {
    for (
      const [args, code] of [
        [['-c', dir, 'init', '--bogus'], 1],
        [['-c', dir, '--bogus', 'init'], 1],
        [['-c', dir, 'frobnicate'], 1],
        [['-c', dir, 'state', 'export', '--nope'], 1],
        [['-c', dir, 'state', 'frob'], 3],
        [['-c', dir, 'help', 'frob'], 3],
      ] as const
    ) {
      const r = await svc([...args])
      assert.equal(r.code, code, args.join(' '))
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stdout, '')
    }
    const bad = await svc(['-c', dir, 'init', '--bogus'])
    assert.equal(bad.stderr, 'Incorrect Usage: flag provided but not defined: -bogus\n')
    assert.equal((await svc(['-c', dir, 'state', 'frob'])).stderr, "No help topic for 'frob'\n")
    assert.deepEqual([...Deno.readDirSync(dir)], [])
  }))

Deno.test('version, --version and -v print the reference version', async () => {
  const v = await svc(['version'])
  assert.deepEqual([v.code, v.stdout, v.stderr], [0, '1.1.6\n', ''])
  for (const flag of ['--version', '-v']) {
    const r = await svc([flag])
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'ipfs-cluster-service version 1.1.6\n', ''])
  }
})

Deno.test('no command prints the help on stderr and exits 1; help/-h on stdout, exit 0', async () => {
  const r = await svc([])
  assert.equal(r.code, 1)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, /^NAME:\n {3}ipfs-cluster-service - IPFS Cluster peer\n/)
  assert.match(r.stderr, /COMMANDS:[\s\S]*init[\s\S]*daemon[\s\S]*state[\s\S]*version/)
  for (const args of [['help'], ['-h'], ['--help']]) {
    const h = await svc(args)
    assert.equal(h.code, 0)
    assert.equal(h.stdout, r.stderr)
  }
})

Deno.test("--help, -h, help <cmd> and h <cmd> print every command's own page; nothing runs", () =>
  withDir(async (dir) => {
    const cfg = join(dir, 'cfg')
    // A held lock would fail any command that really ran.
    await Deno.mkdir(cfg)
    const lock = await acquireLock(cfg)
    try {
      const pages: [string[], RegExp[]][] = [
        [['init'], [
          /^USAGE:\n {3}ipfs-cluster-service init \[command options\] \[http-source-url\]$/m,
          /^DESCRIPTION:\n {3}\nThis command will initialize a new service\.json configuration file/m,
          /^ {3}--custom-secret, -s +prompt for the cluster secret \(when no source specified\)$/m,
          /^ {3}--peers value +comma-separated list of multiaddresses to init with \(see help\)$/m,
          /^ {3}--randomports +configure random ports to listen on instead of defaults$/m,
          /^ {3}--ipfs value +IPFS node: 'ipfshttp' .* or 'embedded' \(extension\) \(default: "ipfshttp"\)$/m,
        ]],
        [['daemon'], [
          /^USAGE:\n {3}ipfs-cluster-service daemon \[command options\] \[arguments\.\.\.\]$/m,
          /^ {3}--bootstrap value, -j value +join a cluster providing a comma-separated list of existing peers multiaddress\(es\)$/m,
          /^ {3}--no-trust +do not trust bootstrap peers \(only for "crdt" consensus\)$/m,
        ]],
        [['state', 'export'], [
          /^This command dumps the current cluster pinset \(state\) as a JSON file\. The$/m,
          /^ {3}--file value, -f value +writes to an output file$/m,
        ]],
        [['state', 'import'], [
          /^ {3}--replication-min value, --rmin value +Overwrite replication-factor-min for all pins on import \(default: 0\)$/m,
          /^ {3}--allocations value, --allocs value +Overwrite allocations for all pins on import\. Comma-separated list of peer IDs$/m,
        ]],
        [['state', 'cleanup'], [/^ {3}--force, -f +skip confirmation prompt$/m]],
        [['version'], [/^USAGE:\n {3}ipfs-cluster-service version \[arguments\.\.\.\]\n$/m]],
        [['state'], [
          /^USAGE:\n {3}ipfs-cluster-service state command \[command options\] \[arguments\.\.\.\]$/m,
          /^ {3}export +save the state to a JSON file$/m,
          /^ {3}import +load the state from a file produced by 'export'$/m,
          /^ {3}cleanup +remove persistent data$/m,
        ]],
        [['state', 'crdt'], [/^ {3}mark-dirty +Marks the CRDT-store as dirty$/m]],
      ]
      for (const [path, patterns] of pages) {
        const name = `NAME:\n   ipfs-cluster-service ${path.join(' ')} - `
        const ways = [[...path, '--help'], [...path, '-h'], ['help', ...path], ['h', ...path]]
        if (path[0] === 'state') ways.push(['state', 'help', ...path.slice(1)])
        if (path[0] !== 'state') ways.push([...path, 'extra', '--help'])
        let first: string | undefined
        for (const args of ways) {
          const r = await svc(['-c', cfg, ...args])
          assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
          assert.equal(r.stderr, '', args.join(' '))
          assert.ok(r.stdout.startsWith(name), `${args.join(' ')}:\n${r.stdout}`)
          for (const l of r.stdout.split('\n')) assert.ok(l.length <= 120, l)
          first ??= r.stdout
          assert.equal(r.stdout, first, `${args.join(' ')} prints the same page`)
        }
        for (const p of patterns) assert.match(first!, p, path.join(' '))
      }
      // A group without a subcommand shows its page, as the reference does.
      const group = await svc(['-c', cfg, 'state'])
      assert.deepEqual([group.code, group.stdout], [0, (await svc(['state', '--help'])).stdout])
      // Help needs no config folder at all.
      const none = await svc(['-c', join(dir, 'missing'), 'daemon', '--help'])
      assert.equal(none.code, 0, none.stderr)
    } finally {
      await lock.release()
    }
    assert.deepEqual([...Deno.readDirSync(cfg)].map((e) => e.name), ['cluster.lock'])
  }))

Deno.test('state export of an empty state prints nothing; state commands need a config', () =>
  withDir(async (dir) => {
    const none = await svc(['-c', dir, 'state', 'export'])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /^error exporting state: .*service\.json does not exist/)
    await initialized(dir)
    const r = await svc(['-c', dir, 'state', 'export'])
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', ''])
  }))

Deno.test('state commands say once what service.json holds that is ignored; typos fail them', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'service.json')
    const cfg = JSON.parse(await Deno.readTextFile(file))
    cfg.cluster.replication_factor = -1
    await Deno.writeTextFile(file, JSON.stringify(cfg))
    const r = await svc(['-c', dir, 'state', 'export'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stderr,
      /^\S+\tWARN\tconfig\tcluster\.replication_factor: IPFS Cluster 0\.9 and older; ignored .*\n$/,
    )
    cfg.cluster.peer_name = 'x'
    await Deno.writeTextFile(file, JSON.stringify(cfg))
    const bad = await svc(['-c', dir, 'state', 'export'])
    assert.equal(bad.code, 1)
    assert.ok(
      bad.stderr.endsWith(
        'error exporting state: cluster.peer_name: unknown key; did you mean "peername"?\n',
      ),
      bad.stderr,
    )
  }))

Deno.test('state import (file, -f) then export gives the Go export back, byte for byte', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, GO_EXPORT)
    const imp = await svc(['-c', dir, 'state', 'import', '-f', file])
    assert.equal(imp.code, 0, imp.stderr)
    assert.deepEqual(imp.prompts, [])
    assert.match(
      imp.stderr,
      /\tINFO\tservice\tstate successfully imported\. {2}Make sure all peers have consistent states\n$/,
    )
    const exp = await svc(['-c', dir, 'state', 'export'])
    assert.equal(exp.code, 0, exp.stderr)
    assert.equal(exp.stdout, GO_EXPORT)
    // --file writes the same NDJSON to a file.
    const out = join(dir, 'out.ndjson')
    const toFile = await svc(['-c', dir, 'state', 'export', '--file', out])
    assert.deepEqual([toFile.code, toFile.stdout], [0, ''])
    assert.equal(await Deno.readTextFile(out), GO_EXPORT)
  }))

Deno.test('state import asks; "no" keeps the state; stdin is read when no file is given', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const first = GO_EXPORT.split('\n')[0] + '\n'
    const no = await svc(['-c', dir, 'state', 'import'], { answers: [false], stdin: GO_EXPORT })
    assert.deepEqual([no.code, no.prompts], [0, [IMPORT]])
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, '')
    const yes = await svc(['-c', dir, 'state', 'import'], { answers: [true], stdin: first })
    assert.equal(yes.code, 0, yes.stderr)
    assert.equal(yes.stdout, 'reading from stdin, Ctrl-D to finish\n')
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, first)
  }))

Deno.test('state import of bad JSON exits 1 and leaves the existing state untouched', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, GO_EXPORT)
    assert.equal((await svc(['-c', dir, 'state', 'import', '-f', file])).code, 0)
    const good = GO_EXPORT.split('\n')[0]
    for (const bad of [`${good}\n{"cid": broken\n`, `${good}\n{"cid":"notacid"}\n`]) {
      await Deno.writeTextFile(file, bad)
      const r = await svc(['-c', dir, 'state', 'import', '-f', file])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^error importing state: line 2, column 1: /)
      assert.equal(r.stderr.split('\n').length, 2, 'one line')
      const fromStdin = await svc(['-c', dir, 'state', 'import', '-f'], { stdin: bad })
      assert.equal(fromStdin.code, 1)
      assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, GO_EXPORT)
    }
    const missing = await svc(['-c', dir, 'state', 'import', '-f', join(dir, 'nope')])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^error reading import file: /)
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, GO_EXPORT)
  }))

Deno.test('state import --rmin/--rmax/--allocs override every pin (only positive factors)', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, GO_EXPORT)
    const r = await svc([
      '-c',
      dir,
      'state',
      'import',
      '-f',
      '--rmin',
      '4',
      '--rmax',
      '6',
      '--allocs',
      `${PEER1},${PEER2}`,
      file,
    ])
    assert.equal(r.code, 0, r.stderr)
    const pins = (await svc(['-c', dir, 'state', 'export'])).stdout.trim().split('\n').map((l) =>
      JSON.parse(l)
    )
    assert.equal(pins.length, 2)
    for (const p of pins) {
      assert.equal(p.replication_factor_min, 4)
      assert.equal(p.replication_factor_max, 6)
      assert.deepEqual(p.allocations, [PEER1, PEER2])
    }
    // The long flag names; a non-positive factor leaves the pin's own (as the reference does).
    const long = await svc([
      '-c',
      dir,
      'state',
      'import',
      '--force',
      '--replication-min=-1',
      '--replication-max',
      '0',
      file,
    ])
    assert.equal(long.code, 0, long.stderr)
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, GO_EXPORT)
    const bad = await svc(['-c', dir, 'state', 'import', '-f', '--rmin', 'two', file])
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr, 'Incorrect Usage: invalid value "two" for flag -rmin: parse error\n')
  }))

Deno.test('state cleanup asks; "no" removes nothing; -f moves the data to rotated backups', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, GO_EXPORT)
    assert.equal((await svc(['-c', dir, 'state', 'import', '-f', file])).code, 0)
    const no = await svc(['-c', dir, 'state', 'cleanup'], { answers: [false] })
    assert.deepEqual([no.code, no.prompts, no.stderr], [0, [CLEANUP], ''])
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, GO_EXPORT)
    const yes = await svc(['-c', dir, 'state', 'cleanup', '-f'])
    assert.equal(yes.code, 0, yes.stderr)
    assert.deepEqual(yes.prompts, [])
    assert.match(yes.stderr, /\tINFO\tservice\tdata correctly cleaned up\n$/)
    // As the reference: the data folder went to a backup, raft.old.0.
    assert.match(
      yes.stderr,
      /\tINFO\traft\tcleaning and backing up Raft data folder \(.*\/raft\)\n/,
    )
    await Deno.stat(join(dir, 'raft.old.0', 'state.kv'))
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, '')
    // The global -f skips the prompt too; a folder with nothing in it is deleted, not kept.
    const again = await svc(['-c', dir, '-f', 'state', 'cleanup'])
    assert.equal(again.code, 0)
    assert.match(again.stderr, /\tINFO\traft\tcleaning empty Raft data folder \(/)
    await assert.rejects(Deno.stat(join(dir, 'raft.old.1')), Deno.errors.NotFound)
    // A second import and cleanup: the newest backup is raft.old.0, the older one raft.old.1.
    assert.equal((await svc(['-c', dir, 'state', 'import', '-f', file])).code, 0)
    assert.equal((await svc(['-c', dir, 'state', 'cleanup', '-f'])).code, 0)
    await Deno.stat(join(dir, 'raft.old.1', 'state.kv'))
  }))

Deno.test('a state command while the folder lock is held fails with exit 1 and the advice', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const lock = await acquireLock(dir)
    try {
      for (
        const args of [
          ['state', 'export'],
          ['state', 'import', '-f', '/dev/null'],
          ['state', 'cleanup', '-f'],
          ['init', '-f'],
        ]
      ) {
        const r = await svc(['-c', dir, ...args])
        assert.equal(r.code, 1, args.join(' '))
        assert.match(r.stderr, /is held by process \d+: another ipfs-cluster-service \(or a state/)
        assert.equal(r.stderr.split('\n').length, 2, 'one line')
      }
    } finally {
      await lock.release()
    }
    assert.equal((await svc(['-c', dir, 'state', 'export'])).code, 0)
  }))

Deno.test('a bad --loglevel fails before any command runs', () =>
  withDir(async (dir) => {
    await initialized(dir)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, GO_EXPORT)
    assert.equal((await svc(['-c', dir, 'state', 'import', '-f', file])).code, 0)
    const r = await svc(['-c', dir, '-l', 'loud', 'state', 'cleanup', '-f'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^error setting log level: invalid log level "loud"/)
    assert.equal((await svc(['-c', dir, 'state', 'export'])).stdout, GO_EXPORT)
    const env = await svc(['-c', dir, 'state', 'export'], { env: { IPFS_CLUSTER_LOG_LEVEL: 'x' } })
    assert.equal(env.code, 1)
    const ok = await svc(['-c', dir, '--loglevel', 'service:warn,info', 'state', 'cleanup', '-f'])
    assert.equal(ok.code, 0)
    assert.doesNotMatch(ok.stderr, /\tservice\t/, 'service:warn hides the INFO line')
    assert.match(ok.stderr, /^\S+\tINFO\traft\tcleaning and backing up Raft data folder \(/)
  }))

Deno.test('IPFS_CLUSTER_PATH is the default config folder; CLUSTER_PEERNAME applies at init', () =>
  withDir(async (dir) => {
    const r = await svc(['init'], { env: { IPFS_CLUSTER_PATH: dir, CLUSTER_PEERNAME: 'envname' } })
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await loadServiceConfig(dir)).cluster.peername, 'envname')
  }))
