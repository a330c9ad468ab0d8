/**
 * ctlMain in-process against the fake API: help and usage handling, exit codes, the injected
 * sleep of `pin add`, `--wait` deadlines, `add` output modes, `health graph --file`.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { type CtlIO, ctlMain } from '../../../cli/ctl/main.ts'
import { COMMANDS } from '../../../cli/ctl/commands.ts'
import {
  CIDS,
  errorResponse,
  gpiFixture,
  jsonResponse,
  PEERS,
  pinFixture,
  startFakeCluster,
  streamResponse,
} from './fake_cluster.ts'
import { recordingClock } from '../../support/manual_clock.ts'

interface Run {
  code: number
  stdout: string
  stderr: string
  sleeps: number[]
  files: Record<string, string>
}

/** Runs ctl on a clock whose sleeps return at once (recorded in `sleeps`). */
async function ctl(args: string[], extra: Partial<CtlIO> = {}): Promise<Run> {
  const clock = recordingClock()
  const r: Run = { code: -1, stdout: '', stderr: '', sleeps: clock.sleeps, files: {} }
  r.code = await ctlMain(args, {
    stdout: (s) => {
      r.stdout += s
    },
    stderr: (s) => {
      r.stderr += s
    },
    env: {},
    clock,
    writeFile: (path, text) => {
      r.files[path] = text
      return Promise.resolve()
    },
    ...extra,
  })
  return r
}

Deno.test('ctl: --version and help texts (≤120 columns, urfave sections)', async () => {
  const v = await ctl(['--version'])
  deepEqual([v.code, v.stdout], [0, 'ipfs-cluster-ctl version 1.1.6\n'])
  for (const args of [['--help'], ['-h'], ['help'], ['h'], []]) {
    const r = await ctl(args)
    equal(r.code, 0, args.join(' '))
    for (const section of ['USAGE:', 'COMMANDS:', 'GLOBAL OPTIONS:']) ok(r.stdout.includes(section))
    for (const l of r.stdout.split('\n')) ok(l.length <= 120, l)
  }
  const paths: string[][] = []
  for (const c of COMMANDS.filter((c) => !c.hidden)) {
    paths.push([c.name])
    for (const s of c.subcommands ?? []) paths.push([c.name, s.name])
  }
  for (const p of paths) {
    const ways = [[...p, '--help'], [...p, '-h'], ['help', ...p], ['h', ...p]]
    if (p.length === 2) ways.push([p[0], 'help', p[1]])
    for (const args of ways) {
      const r = await ctl(args)
      equal(r.code, 0, args.join(' '))
      ok(r.stdout.startsWith(`NAME:\n   ipfs-cluster-ctl ${p.join(' ')} - `), args.join(' '))
      for (const l of r.stdout.split('\n')) ok(l.length <= 120, l)
    }
  }
  const group = await ctl(['pin'])
  equal(group.code, 0)
  match(group.stdout, /COMMANDS:\n {3}add +Pin an item in the cluster\n/)
  const opts = await ctl(['pin', 'add', '--help'])
  match(
    opts.stdout,
    /--replication value, -r value +Sets a custom replication factor .*\(default: 0\)\n/,
  )
  match(opts.stdout, /--wait-timeout value, --wt value +.*\(default: 0s\)\n/)
})

Deno.test('ctl: usage errors are one line on stderr and exit 1; unknown commands exit 3', async () => {
  for (
    const [args, line] of [
      [['--bogus', 'id'], 'Incorrect Usage: flag provided but not defined: -bogus\n'],
      [
        ['pin', 'add', '--bogus', CIDS[0]],
        'Incorrect Usage: flag provided but not defined: -bogus\n',
      ],
      [
        ['--timeout', 'x', 'id'],
        'Incorrect Usage: invalid value "x" for flag -timeout: parse error\n',
      ],
      [['status', '--filter'], 'Incorrect Usage: flag needs an argument: -filter\n'],
    ] as const
  ) {
    const r = await ctl([...args])
    deepEqual([r.code, r.stdout, r.stderr], [1, '', line])
  }
  const r = await ctl(['bogus'])
  deepEqual([r.code, r.stdout, r.stderr], [3, '', "No help topic for 'bogus'\n"])
  const sub = await ctl(['health', 'bogus'])
  deepEqual([sub.code, sub.stderr], [3, "No help topic for 'bogus'\n"])
})

Deno.test('ctl: bad global settings fail before any request', async () => {
  const cases: [string[], string][] = [
    [['--enc', 'xml', 'id'], 'error : unsupported encoding\n'],
    [
      ['--host', 'localhost:9094', 'id'],
      'error parsing host multiaddress: failed to parse multiaddr "localhost:9094": must begin with /\n',
    ],
    [['--secret', 'zz', 'id'], 'error parsing secret: encoding/hex: invalid byte in secret\n'],
  ]
  for (const [args, stderr] of cases) {
    const r = await ctl(args)
    deepEqual([r.code, r.stdout, r.stderr], [1, '', stderr])
  }
  const p2p = await ctl(['--host', `/ip4/127.0.0.1/tcp/9096/p2p/${PEERS[0]}`, 'id'])
  equal(p2p.code, 1)
  match(p2p.stderr, /^error creating API client: libp2p-http API endpoints .* are not supported/)
})

Deno.test('ctl: pin add sleeps a second (injectable) and then prints the status', async () => {
  await using srv = startFakeCluster()
  const r = await ctl([
    '--host',
    srv.maddr,
    'pin',
    'add',
    CIDS[0],
    '--name',
    'x',
    '--metadata',
    'a=b=c',
  ])
  equal(r.code, 0)
  deepEqual(r.sleeps, [1000])
  deepEqual(srv.requests.map((q) => `${q.method} ${q.path}`), [
    `POST /pins/ipfs/${CIDS[0]}`,
    `GET /pins/${CIDS[0]}`,
  ])
  equal(srv.requests[0].query.get('name'), 'x')
  equal(srv.requests[0].query.get('meta-a'), 'b=c')
  equal(srv.requests[1].query.get('local'), 'false')
  ok(r.stdout.startsWith(`${CIDS[0]} | my pin:\n`))
})

Deno.test('ctl: --wait past --wait-timeout exits 62 (deadline)', async () => {
  let polls = 0
  await using srv = startFakeCluster((req, url) => {
    if (req.method === 'GET' && url.pathname === `/pins/${CIDS[0]}`) {
      polls++
      const g = gpiFixture(0, 'pinning') as { peer_map: Record<string, { status: string }> }
      for (const v of Object.values(g.peer_map)) v.status = 'pinning'
      return jsonResponse(g)
    }
  })
  const r = await ctl(['--host', srv.maddr, 'pin', 'add', '--wait', '--wt', '1200ms', CIDS[0]])
  deepEqual([r.code, r.stdout, r.stderr], [
    62,
    '',
    'error waiting for pin status: context deadline exceeded\n',
  ])
  // Polled at 1 s (pinning); the deadline at 1.2 s cut the second pause short.
  equal(polls, 1)
  deepEqual(r.sleeps, [1000, 1000])
})

Deno.test('ctl: add prints each added item, -q the CIDs, -Q the last, --no-stream an array', async () => {
  const dir = await Deno.makeTempDir()
  await Deno.writeTextFile(`${dir}/a.txt`, 'a')
  await using srv = startFakeCluster((_req, url) => {
    if (url.pathname !== '/add') return
    return new Response(
      JSON.stringify({ name: 'a.txt', cid: CIDS[0], size: 1 }) + '\n' +
        JSON.stringify({ name: '', cid: CIDS[1] }) + '\n',
      { headers: { 'Content-Type': 'application/json' } },
    )
  })
  const h = ['--host', srv.maddr]
  equal(
    (await ctl([...h, 'add', `${dir}/a.txt`])).stdout,
    `added ${CIDS[0]} a.txt\nadded ${CIDS[1]} \n`,
  )
  equal((await ctl([...h, 'add', '-q', `${dir}/a.txt`])).stdout, `${CIDS[0]}\n${CIDS[1]}\n`)
  equal((await ctl([...h, 'add', '-Q', `${dir}/a.txt`])).stdout, `${CIDS[1]}\n`)
  const json = await ctl([...h, '--enc=json', 'add', '--no-stream', `${dir}/a.txt`])
  deepEqual(JSON.parse(json.stdout), [{ name: 'a.txt', cid: CIDS[0], size: 1 }, {
    name: '',
    cid: CIDS[1],
  }])
  const q = srv.requests.at(-1)!.query
  deepEqual([q.get('wrap-with-directory'), q.get('cid-version'), q.get('raw-leaves')], [
    'false',
    '0',
    'false',
  ])
  await ctl([...h, 'add', '--hash', 'sha3-512', `${dir}/a.txt`, `${dir}/a.txt`])
  const q2 = srv.requests.at(-1)!.query
  deepEqual([q2.get('wrap-with-directory'), q2.get('cid-version'), q2.get('raw-leaves')], [
    'true',
    '1',
    'true',
  ])
  const noR = await ctl([...h, 'add', dir])
  deepEqual([noR.code, noR.stderr], [
    1,
    `error : ${dir} is a directory, but Recursive option is not set\n`,
  ])
  const car = await ctl([...h, 'add', '--format', 'car', '-w', `${dir}/a.txt`])
  deepEqual(
    [car.code, car.stderr],
    [1, 'error : only a single CAR file can be added and wrap-with-directory is not supported\n'],
  )
  equal((await ctl([...h, 'add'])).stderr, 'error : need at least one path\n')
  await Deno.remove(dir, { recursive: true })
})

Deno.test('ctl: health graph --file writes the dot file; json peers ls prints one object per peer', async () => {
  await using srv = startFakeCluster()
  const r = await ctl(['--host', srv.maddr, 'health', 'graph', '-f', '/tmp/x.dot'])
  equal(r.stdout, '')
  ok(r.files['/tmp/x.dot'].startsWith('digraph cluster {\n'))
  const p = await ctl(['--host', srv.maddr, '--enc=json', 'peers', 'ls'])
  equal(p.stdout.split('\n}\n').filter((s) => s.trim()).length, 3)
  const st = await ctl(['--host', srv.maddr, 'status', '--filter', 'bogus'])
  deepEqual([st.code, st.stderr], [1, 'error parsing filter flag: invalid filter name\n'])
})

Deno.test('ctl: text output escapes control characters from the server (no forged lines)', async () => {
  const evil = 'x\r\nX-Injected: 1\u001b[2J'
  await using srv = startFakeCluster((_req, url) => {
    const p = url.pathname
    if (p === '/allocations') {
      return streamResponse([pinFixture(0, { name: evil }), pinFixture(1, { name: 'plain' })])
    }
    if (p === '/monitor/metrics') return jsonResponse(['freespace', evil])
    if (p === '/version') return errorResponse(500, `boom\n${evil}`)
    if (p === '/health/graph') {
      return jsonResponse({
        cluster_id: PEERS[0],
        id_to_peername: { [PEERS[0]]: evil },
        cluster_links: { [PEERS[0]]: [] },
        cluster_to_ipfs: {},
        ipfs_links: {},
      })
    }
    return undefined
  })
  const h = ['--host', srv.maddr]
  const ls = await ctl([...h, 'pin', 'ls'])
  equal(ls.code, 0, ls.stderr)
  const lines = ls.stdout.trimEnd().split('\n')
  equal(lines.length, 2, ls.stdout)
  ok(lines[0].includes(' | x\\r\\nX-Injected: 1\\x1b[2J | PIN | '), lines[0])
  ok(lines[1].includes(' | plain | PIN | '), 'ordinary names print as they are')
  ok(!lines.some((l) => l.startsWith('X-Injected')))
  const names = await ctl([...h, 'health', 'metrics'])
  equal(names.stdout, 'freespace\nx\\r\\nX-Injected: 1\\x1b[2J\n')
  const v = await ctl([...h, 'version'])
  deepEqual(
    [v.code, v.stdout],
    [2, 'An error occurred:\n  Code: 500\n  Message: boom\\nx\\r\\nX-Injected: 1\\x1b[2J\n'],
  )
  const g = await ctl([...h, 'health', 'graph'])
  ok(g.stdout.includes('<B> x\\r\\nX-Injected: 1\\x1b[2J </B>'), g.stdout)
  // Errors on stderr stay one line whatever the user or the server put in them.
  const bad = await ctl(['--host', '/ip4/1.2.3.4/tcp/x\nX-Injected: 1', 'id'])
  deepEqual([bad.code, bad.stderr.split('\n').length], [1, 2])
  ok(bad.stderr.includes('x\\nX-Injected: 1'), bad.stderr)
  const topic = await ctl(['no\nsuch'])
  deepEqual([topic.code, topic.stderr], [3, "No help topic for 'no\\nsuch'\n"])
})
