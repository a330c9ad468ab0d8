/**
 * Output compatibility with the real ipfs-cluster-ctl 1.1.6: both CLIs run the same command
 * lines against the same fake REST API (fake_cluster.ts), and their stdout and exit codes must be
 * identical. The Go binary comes from test/tools/build-go-tools.sh (`.tools/bin/ipfs-cluster-ctl`,
 * or $IPFS_CLUSTER_CTL); without it these tests are skipped.
 * Set CTL_COMPAT_HOST=<multiaddr> to run the same command lines against a real daemon instead of the
 * fake (then only read-only commands run).
 */
import { equal } from 'node:assert/strict'
import { HAVE_BIN, same } from './compat_support.ts'
import {
  CIDS,
  errorResponse,
  type FakeCluster,
  gpiFixture,
  type Handler,
  jsonResponse,
  MISSING_CID,
  PEERS,
  startFakeCluster,
} from './fake_cluster.ts'

const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url)

function fake(routes?: Handler, opts: { cert?: string; key?: string } = {}): FakeCluster {
  const t0 = Date.now() // one clock for the fixture, so both CLIs see the same metrics
  return startFakeCluster(routes, { now: () => t0, ...opts })
}

const REAL_HOST = Deno.env.get('CTL_COMPAT_HOST')

Deno.test({
  name: 'compat: read commands print exactly what ipfs-cluster-ctl prints',
  ignore: !HAVE_BIN,
  async fn() {
    await using srv = fake()
    const host = REAL_HOST ?? srv.maddr
    const lines: string[][] = [
      ['id'],
      ['peers', 'ls'],
      ['pin', 'ls'],
      ['pin', 'ls', '--filter', 'pin'],
      ['status'],
      ['status', '--local', '--filter', 'pinned,error'],
      ['version'],
      ['health', 'metrics'],
      ['health', 'metrics', 'freespace'],
      ['health', 'alerts'],
      ['health', 'bandwidth'],
      ['health', 'graph'],
      ['health', 'graph', '--all-ipfs-peers'],
      ['ipfs', 'gc'],
      ['commands'],
    ]
    if (!REAL_HOST) {
      lines.push(
        ['pin', 'ls', CIDS[0]],
        ['status', CIDS[0]],
        ['status', CIDS[0], CIDS[1]],
        ['recover'], // not read-only: a real peer re-queues and changes the output
        ['recover', CIDS[0]],
        ['pin', 'add', '--no-status', CIDS[0]],
        ['pin', 'add', '--ns', '--name', 'n1', '-r', '2', `/ipfs/${CIDS[1]}`],
        ['pin', 'rm', '--ns', CIDS[0]],
        ['pin', 'update', '--ns', CIDS[0], CIDS[1]],
        ['peers', 'rm', PEERS[1]],
      )
    }
    for (const enc of ['text', 'json']) {
      for (const l of lines) await same(host, [`--enc=${enc}`, ...l])
    }
  },
})

Deno.test({
  name: 'compat: errors (API, transport, usage, bad input) give the same stdout and exit code',
  ignore: !HAVE_BIN || !!REAL_HOST,
  async fn() {
    await using srv = fake((_req, url) => {
      if (url.pathname === `/pins/${CIDS[2]}`) return errorResponse(500, 'tracker is down')
      if (url.pathname === '/version') return new Response('not json', { status: 502 })
    })
    for (const enc of ['text', 'json']) {
      const e = `--enc=${enc}`
      await same(srv.maddr, [e, 'pin', 'ls', MISSING_CID])
      await same(srv.maddr, [e, 'status', CIDS[2]]) // zero status printed, then the error
      await same(srv.maddr, [e, 'version'])
      await same('/ip4/127.0.0.1/tcp/1', [e, 'id'])
      await same('/ip4/127.0.0.1/tcp/1', [e, 'peers', 'ls'])
    }
    await same(srv.maddr, ['pin', 'ls', 'notacid'])
    await same(srv.maddr, ['status', 'notacid'])
    await same(srv.maddr, ['status', '--filter', 'bogus'])
    await same(srv.maddr, ['pin', 'add'])
    await same(srv.maddr, ['pin', 'add', '--allocs', 'nope', CIDS[0]])
    await same(srv.maddr, ['pin', 'add', '--metadata', 'novalue', CIDS[0]])
    await same(srv.maddr, ['pin', 'add', '--expire-in', 'soon', CIDS[0]])
    await same(srv.maddr, ['peers', 'rm', 'nope'])
    await same(srv.maddr, ['--enc', 'xml', 'id'])
    await same(srv.maddr, ['nonexistent'])
    await same(srv.maddr, ['pin', 'nonexistent'])
    await same(srv.maddr, ['--version'])
  },
})

Deno.test({
  name: 'compat: pin add/rm print the status after a second, or after --wait',
  ignore: !HAVE_BIN || !!REAL_HOST,
  async fn() {
    const allPinned = () => {
      const g = gpiFixture(0) as { peer_map: Record<string, { status: string; error: string }> }
      for (const v of Object.values(g.peer_map)) [v.status, v.error] = ['pinned', '']
      return g
    }
    await using srv = fake((req, url) => {
      if (req.method === 'GET' && url.pathname === `/pins/${CIDS[0]}`) {
        return jsonResponse(allPinned())
      }
      if (req.method === 'GET' && url.pathname === `/pins/${CIDS[1]}`) {
        return jsonResponse(gpiFixture(1, 'pin_error'))
      }
    })
    await same(srv.maddr, ['pin', 'add', CIDS[0]])
    await same(srv.maddr, ['pin', 'add', '--wait', '--wl', '1', CIDS[0]])
    await same(srv.maddr, ['--enc=json', 'pin', 'add', '--wait', '--wt', '5s', CIDS[0]])
    await same(srv.maddr, ['pin', 'add', '--wait', CIDS[1]])
    await same(srv.maddr, ['pin', 'rm', CIDS[1]])
  },
})

Deno.test({
  name: 'compat: https, certificate checks, basic auth and timeouts',
  ignore: !HAVE_BIN || !!REAL_HOST,
  async fn() {
    const cert = await Deno.readTextFile(new URL('cert.pem', TLS_DIR))
    const key = await Deno.readTextFile(new URL('key.pem', TLS_DIR))
    const auth: Handler = (req) => {
      if (req.headers.get('authorization') !== `Basic ${btoa('testuser:testpass')}`) {
        return errorResponse(401, 'unauthorized: access denied')
      }
    }
    await using tls = fake(auth, { cert, key })
    await same(tls.maddr, [
      '--https',
      '--no-check-certificate',
      '--basic-auth',
      'testuser:testpass',
      'id',
    ])
    await same(tls.maddr, ['--https', '--basic-auth', 'testuser:testpass', 'id'])
    await same(tls.maddr, ['--no-check-certificate', '--basic-auth', 'testuser:wrong', 'version'])
    await same(tls.maddr, ['--no-check-certificate', 'version'], {
      CLUSTER_CREDENTIALS: 'testuser:testpass',
    })
    await using plain = fake(auth)
    await same(plain.maddr, ['--basic-auth', 'testuser:testpass', 'version']) // implies https
    await same(plain.maddr, ['--force-http', '--basic-auth', 'testuser:testpass', 'version'])
    await same(plain.maddr, ['-f', '--basic-auth', 'testuser', 'version'])
    await same(plain.maddr, ['-f', 'version'])
    let release!: () => void
    const hang = new Promise<void>((r) => release = r)
    await using slow = fake(async (_req, url) => {
      if (url.pathname === '/id') {
        await hang
        return jsonResponse({})
      }
    })
    try {
      // Go words a client timeout in three ways, depending on a race inside net/http.
      const timeout = (s: string) =>
        s.replace(
          /(net\/http: request canceled|context deadline exceeded)( \(Client\.Timeout[^)]*\))?/,
          'TIMEOUT',
        )
      await same(slow.maddr, ['--timeout', '1', 'id'], {}, timeout)
    } finally {
      release()
    }
  },
})

Deno.test({
  name: 'compat: add sends the same query and multipart body, and prints the same output',
  ignore: !HAVE_BIN || !!REAL_HOST,
  async fn() {
    const dir = await Deno.makeTempDir()
    await Deno.mkdir(`${dir}/d/sub`, { recursive: true })
    await Deno.writeTextFile(`${dir}/d/b.txt`, 'bbb')
    await Deno.writeTextFile(`${dir}/d/a b.txt`, 'aaa')
    await Deno.writeTextFile(`${dir}/d/.hidden`, 'h')
    await Deno.writeTextFile(`${dir}/d/sub/c.txt`, 'c')
    // Whole-ms mtimes: Deno's stat has no nanoseconds, Go sends them.
    for (const f of ['d', 'd/b.txt', 'd/a b.txt', 'd/.hidden', 'd/sub', 'd/sub/c.txt']) {
      await Deno.utime(`${dir}/${f}`, 1700000000, 1700000000.25)
    }
    const seen: string[] = []
    await using srv = fake((req, url, body) => {
      if (url.pathname !== '/add') return
      const b = /boundary=(\S+)/.exec(req.headers.get('content-type') ?? '')?.[1] ?? '?'
      seen.push(url.search + '\n' + body.replaceAll(b, 'BOUNDARY'))
      return new Response(
        JSON.stringify({ name: 'd/a b.txt', cid: CIDS[2], size: 3 }) + '\n' +
          JSON.stringify({ name: 'd', cid: CIDS[1], bytes: 7, allocations: [PEERS[0]] }) + '\n',
        { headers: { 'Content-Type': 'application/json' } },
      )
    })
    try {
      for (
        const args of [
          ['add', '-r', `${dir}/d`],
          ['add', '-r', '-H', '-w', '--name', 'n', '--metadata', 'k=v', '--rmin', '1', `${dir}/d`],
          ['add', '-q', '--cid-version', '1', `${dir}/d/b.txt`, `${dir}/d/a b.txt`],
          ['add', '-Q', '--layout', 'trickle', '--no-pin', `${dir}/d/b.txt`],
          ['--enc=json', 'add', '--no-stream', `${dir}/d/b.txt`],
          ['--enc=json', 'add', '-Q', '--no-stream', `${dir}/d/b.txt`],
        ]
      ) {
        seen.length = 0
        await same(srv.maddr, args)
        equal(seen.length, 2)
        equal(seen[1], seen[0], `request of: ${args.join(' ')}`)
      }
    } finally {
      await Deno.remove(dir, { recursive: true })
    }
  },
})
