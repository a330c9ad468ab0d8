/**
 * ipfs-cluster-follow (cli/follow/) in-process, beside the real ipfs-cluster-follow 1.1.6 when
 * test/tools/build-go-tools.sh built it (run in a loopback-only network namespace): the help
 * pages, the list of followed clusters, `init`'s folder and output, `list` and `info` of a peer
 * that is not running, and every refusal as one line on stderr with exit 1 — unknown flags and
 * subcommands, a folder that exists, a missing or bad URL, and at `run` a source that answers
 * 404, a Raft configuration, two consensus sections, an unreachable source, a source pointing to
 * another source (the configurations served by Deno.serve on 127.0.0.1, IPFS a real Kubo), and
 * IPFS that never comes up.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import type { CliIO } from '../../../cli/io.ts'
import { followMain } from '../../../cli/follow/main.ts'
import { followCtx } from '../../../cli/follow/commands.ts'
import { run } from '../../../cli/follow/run.ts'
import { loadIdentity } from '../../../src/config/identity.ts'
import { defaultServiceConfig, serviceConfigToJSON } from '../../../src/service_config.ts'
import { openKvState } from '../../../src/state/kv_state.ts'
import { newPin } from '../../../src/types/pin.ts'
import { defaultPinOptions } from '../../../src/types/mod.ts'
import { type KuboDaemon, startKubo } from '../../support/kubo.ts'
import { loopbackNetns } from '../../support/netns.ts'
import { runCmd, TOOLS_BIN } from '../../support/peer.ts'

const GO_BIN = join(TOOLS_BIN, 'ipfs-cluster-follow')
const HAVE_GO = (() => {
  try {
    return Deno.statSync(GO_BIN).isFile
  } catch {
    return false
  }
})()
const MAIN = new URL('../../../cli/main.ts', import.meta.url).pathname

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Our ipfs-cluster-follow, in-process; env is only what is given. */
async function follow(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r: Run = { code: -1, stdout: '', stderr: '' }
  const io: CliIO = {
    stdout: (s) => void (r.stdout += s),
    stderr: (s) => void (r.stderr += s),
    env: { HOME: '/nonexistent', ...env },
    stdin: () => new Blob(['']).stream(),
    confirm: () => Promise.resolve(false),
    prompt: () => Promise.resolve(''),
  }
  r.code = await followMain(args, io)
  return r
}

/** The Go ipfs-cluster-follow in a loopback-only namespace (it dials nothing beyond). */
async function goFollow(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const netns = await loopbackNetns()
  if (!netns) throw new Error('no network namespace for the Go follower')
  const out = await new Deno.Command(netns.cmd, {
    args: netns.args(GO_BIN, args),
    env: { HOME: '/nonexistent', PATH: Deno.env.get('PATH') ?? '', ...env },
    clearEnv: true,
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const dec = new TextDecoder()
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: 'follow-cli-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

/** An HTTP server on 127.0.0.1 answering `routes[path]` (404 otherwise). */
function serve(routes: Record<string, string>) {
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, (req) => {
    const body = routes[new URL(req.url).pathname]
    return body === undefined
      ? new Response('404 page not found', { status: 404 })
      : new Response(body, { headers: { 'content-type': 'application/json' } })
  })
  return { base: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() }
}

const crdtConfig = () => serviceConfigToJSON(defaultServiceConfig({ consensus: 'crdt' }))

Deno.test({
  name: "follow help: every page is the reference's (the app page lists -c besides)",
  ignore: !HAVE_GO,
  async fn() {
    const pages = [
      ['--help'],
      ['help'],
      ['-h'],
      ['--version'],
      ['myc', '--help'],
      ['myc', 'help'],
      ['myc', 'help', 'run'],
      ['myc', 'info', '--help'],
      ['myc', 'init', '--help'],
      ['myc', 'run', '--help'],
      ['myc', 'list', '--help'],
    ]
    for (const args of pages) {
      const [go, ours] = [await goFollow(args), await follow(args)]
      equal(ours.code, go.code, args.join(' '))
      const cOption =
        /--config FOLDER, -c FOLDER {2}(.*)\n {3}--help, -h {18}(.*)\n {3}--version, -v {15}/
      const normalized = ours.stdout.replace(
        cOption,
        '--config FOLDER  $1\n   --help, -h       $2\n   --version, -v    ',
      )
      if (args[0].startsWith('-h') || args[0] === '--help' || args[0] === 'help') {
        ok(cOption.test(ours.stdout), 'the app page lists -c')
      }
      equal(normalized, go.stdout, args.join(' '))
    }
  },
})

Deno.test('follow: no clusters, then the configured ones (folders with a service.json)', async () => {
  await withDir(async (root) => {
    const none = await follow(['--config', root])
    equal(none.code, 0)
    match(none.stdout, /^\nNo clusters configured yet!\n/)
    // IPFS_CLUSTER_PATH is the default of --config.
    for (const name of ['zeta', 'alpha']) {
      equal(
        (await follow([name, 'init', 'http://127.0.0.1:1/c.json'], {
          IPFS_CLUSTER_PATH: root,
        })).code,
        0,
      )
    }
    await Deno.mkdir(join(root, 'not-a-cluster'))
    const two = await follow(['-c', root])
    equal(
      two.stdout,
      'Configurations found for 2 follower peers. For info and help, try running:\n\n' +
        'ipfs-cluster-follow "alpha"\nipfs-cluster-follow "zeta"\n\n' +
        'Tip: "ipfs-cluster-follow --help" for help and examples.\n',
    )
    if (HAVE_GO) {
      deepEqual(await goFollow(['--config', root]), { ...two, stderr: '' })
    }
  })
})

Deno.test("follow init: the reference's folder (private), source-only service.json, new identity", async () => {
  await withDir(async (root) => {
    const url = 'http://127.0.0.1:1/service.json'
    const ours = await follow(['--config', join(root, 'ts'), 'myc', 'init', url])
    equal(ours.code, 0, ours.stderr)
    const dir = join(root, 'ts', 'myc')
    equal(
      ours.stdout,
      `Identity written to ${dir}/identity.json.\nConfiguration written to ${dir}/service.json.\n` +
        'Cluster "myc" follower peer initialized.\n\n' +
        'You can now use "ipfs-cluster-follow myc run" to start a follower peer for this cluster.\n' +
        '(Remember to start your IPFS daemon before)\n',
    )
    deepEqual(JSON.parse(await Deno.readTextFile(join(dir, 'service.json'))), { source: url })
    ok((await loadIdentity(dir)).id.startsWith('12D3KooW'))
    const files = async (d: string) =>
      (await Array.fromAsync(Deno.readDir(d))).map((e) => e.name).sort()
    deepEqual(await files(dir), ['identity.json', 'service.json'])
    equal((await Deno.stat(dir)).mode! & 0o777, 0o700)
    equal((await Deno.stat(join(dir, 'service.json'))).mode! & 0o777, 0o600)
    equal((await Deno.stat(join(dir, 'identity.json'))).mode! & 0o777, 0o600)
    if (HAVE_GO) {
      const go = await goFollow(['--config', join(root, 'go'), 'myc', 'init', url])
      equal(go.code, 0, go.stderr)
      equal(
        ours.stdout.replaceAll(join(root, 'ts'), 'DIR'),
        go.stdout.replaceAll(join(root, 'go'), 'DIR'),
      )
      const goDir = join(root, 'go', 'myc')
      deepEqual(await files(goDir), await files(dir))
      deepEqual(
        JSON.parse(await Deno.readTextFile(join(goDir, 'service.json'))),
        JSON.parse(await Deno.readTextFile(join(dir, 'service.json'))),
      )
      equal((await Deno.stat(goDir)).mode! & 0o777, 0o700)
      ok((await loadIdentity(goDir)).id.startsWith('12D3KooW'), 'the same identity.json form')
    }
  })
})

Deno.test('follow init: a DNSLink name goes through the gateway, with the scheme the reference lacks', async () => {
  await withDir(async (root) => {
    const r = await follow(['-c', root, 'a', 'init', 'example.org'])
    equal(r.code, 0, r.stderr)
    match(
      r.stdout,
      /^example\.org will be assumed to be an DNSLink-powered address: \/ipns\/example\.org\.\nIt will be resolved using the local IPFS daemon's gateway \(127\.0\.0\.1:8080\)\./,
    )
    const source = async (n: string) =>
      JSON.parse(await Deno.readTextFile(join(root, n, 'service.json'))).source
    // The reference writes "127.0.0.1:8080/ipns/example.org", which its HTTP client refuses.
    equal(await source('a'), 'http://127.0.0.1:8080/ipns/example.org')
    equal(
      (await follow(['-c', root, 'b', 'init', '--gateway', 'https://gw.example', 'x.org'])).code,
      0,
    )
    equal(await source('b'), 'https://gw.example/ipns/x.org')
    equal(
      (await follow(['-c', root, 'c', 'init', 'y.org'], { IPFS_GATEWAY: '127.0.0.1:9' })).code,
      0,
    )
    equal(await source('c'), 'http://127.0.0.1:9/ipns/y.org')
  })
})

Deno.test("follow: bad input is one line on stderr and exit 1; a missing cluster is the reference's text", async () => {
  await withDir(async (root) => {
    equal((await follow(['-c', root, 'myc', 'init', 'http://127.0.0.1:1/x'])).code, 0)
    const cases: [string[], RegExp][] = [
      [
        ['myc', 'init', 'http://127.0.0.1:1/x'],
        /^Configuration for this cluster already exists\. Please delete .*\/myc if you wish to re-initialize\.\n$/,
      ],
      [['other', 'init'], /^configuration URL not provided\n$/],
      [
        ['other', 'init', 'http://'],
        /^invalid configuration URL "http:\/\/": give an http:\/\/ or https:\/\/ URL/,
      ],
      [['--bogus'], /^Incorrect Usage: flag provided but not defined: -bogus\n$/],
      [['myc', 'run', '--bogus'], /^Incorrect Usage: flag provided but not defined: -bogus\n$/],
      [
        ['myc', 'frobnicate'],
        /^ipfs-cluster-follow myc: unknown subcommand "frobnicate" \(info, init, run, list;/,
      ],
      [['myc', 'help', 'frobnicate'], /^Incorrect Usage: No help topic for 'frobnicate'\n$/],
      [['--config'], /^Incorrect Usage: flag needs an argument: -config\n$/],
    ]
    for (const [args, err] of cases) {
      const r = await follow(args[0] === '--config' ? args : ['-c', root, ...args])
      equal(r.code, 1, args.join(' '))
      match(r.stderr, err, args.join(' '))
      equal(r.stderr.trimEnd().split('\n').length, 1, args.join(' '))
    }
    ok(!(await Array.fromAsync(Deno.readDir(root))).some((e) => e.name === 'other'))
    for (const sub of ['info', 'list', 'run']) {
      const r = await follow(['-c', root, 'nope', sub])
      equal(r.code, 1)
      equal(
        r.stdout,
        '\nThis cluster peer has not been initialized.\n\n' +
          'Try running "ipfs-cluster-follow nope init <config-url>" first.\n',
      )
      if (HAVE_GO && sub !== 'run') deepEqual(await goFollow(['--config', root, 'nope', sub]), r)
    }
  })
})

Deno.test({
  name: 'follow run: refuses a configuration it cannot follow, in one line, before starting a peer',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kubo: KuboDaemon = await startKubo()
    const raft = serviceConfigToJSON(defaultServiceConfig({ consensus: 'raft' }))
    const both = JSON.parse(crdtConfig())
    both.consensus.raft = {}
    const http = serve({
      '/crdt.json': crdtConfig(),
      '/raft.json': raft,
      '/both.json': JSON.stringify(both),
      '/redirect.json': JSON.stringify({ source: 'http://127.0.0.1:1/crdt.json' }),
    })
    try {
      await withDir(async (root) => {
        const env = { CLUSTER_IPFSHTTP_NODEMULTIADDRESS: kubo.apiMultiaddr }
        const cases: [string, string, RegExp][] = [
          [
            'missing',
            `${http.base}/missing.json`,
            /unsuccessful request \(404\): 404 page not found$/,
          ],
          [
            'raft',
            `${http.base}/raft.json`,
            /uses consensus\.raft; ipfs-cluster-follow follows CRDT clusters only \(consensus\.crdt\)$/,
          ],
          [
            'both',
            `${http.base}/both.json`,
            /has 2 consensus sections \(consensus\.crdt, consensus\.raft\); a follower needs exactly one: consensus\.crdt$/,
          ],
          [
            'redirect',
            `${http.base}/redirect.json`,
            /points to another source \("http:\/\/127\.0\.0\.1:1\/crdt\.json"\)/,
          ],
          [
            'unreachable',
            'http://127.0.0.1:1/crdt.json',
            /failed retrieving configuration source \(http:\/\/127\.0\.0\.1:1\/crdt\.json\): /,
          ],
        ]
        for (const [name, url, err] of cases) {
          const r = await follow(['-c', root, name, 'run', '--init', url], env)
          equal(r.code, 1, `${name}: ${r.stdout}`)
          equal(r.stderr.trimEnd().split('\n').length, 1, `${name}: ${r.stderr}`)
          match(r.stderr, new RegExp(`^reading the configurations in ${root}/${name}: `), name)
          match(r.stderr.trimEnd(), err, name)
          match(
            r.stdout,
            /Checking if IPFS is online \(will wait for 2 minutes\)\.\.\.\nwaiting for IPFS to become available on \/ip4\/127\.0\.0\.1\/tcp\/\d+\.\.\.\n$/,
          )
          ok(
            !(await Array.fromAsync(Deno.readDir(join(root, name)))).some((e) => e.name === 'crdt'),
            'no state was made',
          )
        }
      })
    } finally {
      await http.close()
      await kubo.stop()
    }
  },
})

Deno.test("follow run: IPFS that does not come up is the reference's timeout", async () => {
  await withDir(async (root) => {
    let stdout = ''
    const io: CliIO = {
      stdout: (s) => void (stdout += s),
      stderr: () => {},
      env: { CLUSTER_IPFSHTTP_NODEMULTIADDRESS: '/ip4/127.0.0.1/tcp/1' },
      stdin: () => new Blob(['']).stream(),
      confirm: () => Promise.resolve(false),
      prompt: () => Promise.resolve(''),
    }
    const ctx = followCtx(root, 'myc', io, '127.0.0.1:8080')
    let err: unknown
    try {
      await run(ctx, { init: 'http://127.0.0.1:1/x', ipfsWaitMs: 0 })
    } catch (e) {
      err = e
    }
    equal((err as Error)?.message, 'timed out waiting for IPFS to be available')
    match(stdout, /waiting for IPFS to become available on \/ip4\/127\.0\.0\.1\/tcp\/1\.\.\.\n$/)
  })
})

Deno.test({
  name: 'follow list and info of a peer that is not running: the state on disk, the source, IPFS',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kubo = await startKubo()
    const http = serve({ '/crdt.json': crdtConfig() })
    try {
      await withDir(async (root) => {
        const env = { CLUSTER_IPFSHTTP_NODEMULTIADDRESS: kubo.apiMultiaddr }
        equal((await follow(['-c', root, 'myc', 'init', `${http.base}/crdt.json`])).code, 0)
        const empty = await follow(['-c', root, 'myc', 'list'])
        deepEqual(empty, { code: 0, stdout: '', stderr: '' })

        // What a follower that ran keeps: its pinset view in <folder>/crdt/state.kv.
        const cid = await kubo.add(new TextEncoder().encode(`listed ${crypto.randomUUID()}`))
        await Deno.mkdir(join(root, 'myc', 'crdt'))
        const state = await openKvState(join(root, 'myc', 'crdt', 'state.kv'))
        await state.apply([{
          type: 'pin',
          pin: newPin(cid, { ...defaultPinOptions(), name: 'a file' }),
        }])
        await state.close()
        const listed = await follow(['-c', root, 'myc', 'list'])
        equal(listed.code, 0, listed.stderr)
        equal(listed.stdout, `offline              ${cid} a file\n`)

        const dir = join(root, 'myc')
        const inf = await follow(['-c', root, 'myc', 'info'], env)
        equal(inf.code, 0, inf.stderr)
        equal(
          inf.stdout,
          'Information about follower peer for Cluster "myc":\n\n' +
            `Config folder: ${dir}\nConfig source URL: Available (${http.base}/crdt.json)\n` +
            'Cluster Peer online: false\nIPFS peer online: true\n',
        )
        // `<name>` alone is `info`.
        equal((await follow(['-c', root, 'myc'], env)).stdout, inf.stdout)
        await http.close()
        const down = await follow(['-c', root, 'myc', 'info'], {
          CLUSTER_IPFSHTTP_NODEMULTIADDRESS: '/ip4/127.0.0.1/tcp/1',
        })
        equal(
          down.stdout,
          'Information about follower peer for Cluster "myc":\n\n' +
            `Config folder: ${dir}\n` +
            `Config source URL: failed retrieving configuration source (${http.base}/crdt.json)\n` +
            'Cluster Peer online: false\nIPFS peer online: false\n',
        )
      })
    } finally {
      await http.close().catch(() => {})
      await kubo.stop()
    }
  },
})

Deno.test('follow: a link named ipfs-cluster-follow picks the follow mode (argv[0])', async () => {
  await withDir(async (dir) => {
    await Deno.symlink(Deno.execPath(), join(dir, 'ipfs-cluster-follow'))
    const r = await runCmd(join(dir, 'ipfs-cluster-follow'), ['run', '-A', MAIN, '--version'])
    equal(r.code, 0, r.stderr)
    equal(r.stdout, 'ipfs-cluster-follow version 1.1.6\n')
  })
})
