/**
 * `ipfs-cluster-service init --peers` run as a process with the service task's permissions,
 * beside the real IPFS Cluster 1.1.6 `ipfs-cluster-service init --consensus raft --peers` (in a
 * loopback-only network namespace): the same `init_peerset` and peerstore file; bad addresses
 * are one line and exit 1 with nothing written (the reference writes service.json first).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { runCmd, runMain, TOOLS_BIN } from '../../support/peer.ts'
import { loopbackNetns } from '../../support/netns.ts'

const PEER1 = '12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const PEER2 = '12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7'
const QM = 'QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL'
const GO_SERVICE = join(TOOLS_BIN, 'ipfs-cluster-service')

/** An environment without the caller's CLUSTER_* overrides. */
function env(dir: string): Record<string, string> {
  return {
    HOME: Deno.env.get('HOME') ?? '/',
    PATH: Deno.env.get('PATH') ?? '',
    IPFS_CLUSTER_PATH: dir,
  }
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: 'init-peers-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

async function written(dir: string) {
  const cfg = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
  return {
    initPeerset: cfg.consensus.raft.init_peerset as string[],
    peerstore: await Deno.readTextFile(join(dir, 'peerstore')),
  }
}

async function listing(dir: string): Promise<string[]> {
  const names: string[] = []
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name)
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err
  }
  return names.sort()
}

Deno.test('init --peers writes the init_peerset and peerstore that IPFS Cluster 1.1.6 writes', async (t) => {
  const netns = await loopbackNetns()
  const cases: [string, string[]][] = [
    ['two peers', [
      `/ip4/127.0.0.1/tcp/9096/p2p/${PEER1}`,
      `/dns4/p2.example/tcp/9096/p2p/${PEER2}`,
    ]],
    // /ipfs/ is /p2p/'s old name; a bare /p2p/<id> is a member without an address.
    ['old /ipfs/ and a bare /p2p/', [`/ip4/10.0.0.1/tcp/9096/ipfs/${QM}`, `/p2p/${PEER1}`]],
    ['one peer twice', [
      `/ip4/10.0.0.1/tcp/9096/p2p/${PEER1}`,
      `/ip4/10.0.0.2/tcp/9096/p2p/${PEER1}`,
    ]],
  ]
  for (const [name, peers] of cases) {
    await t.step(name, () =>
      withDir(async (root) => {
        const ours = join(root, 'ours')
        const r = await runMain(['service', 'init', '--peers', peers.join(', ')], {
          env: env(ours),
        })
        assert.equal(r.code, 0, r.stderr)
        const got = await written(ours)
        if (!netns) return // no namespace here: the Go program is not run outside one
        const theirs = join(root, 'go')
        const g = await runCmd(
          netns.cmd,
          netns.args(GO_SERVICE, ['init', '--consensus', 'raft', '--peers', peers.join(', ')]),
          { env: env(theirs) },
        )
        assert.equal(g.code, 0, g.stderr)
        const want = await written(theirs)
        assert.deepEqual(got.initPeerset, want.initPeerset)
        // Go orders peers by a map; with one address per peer or one peer, the lines agree.
        assert.deepEqual(got.peerstore.split('\n').sort(), want.peerstore.split('\n').sort())
        assert.match(r.stderr, /peerstore written to .* with \d+ entries\.\n$/)
      }))
  }
})

Deno.test('init --peers with a bad address: one line naming it, exit 1, nothing written', () =>
  withDir(async (root) => {
    const good = `/ip4/127.0.0.1/tcp/9096/p2p/${PEER1}`
    const bad: [string, RegExp][] = [
      ['garbage', /^error parsing peer multiaddress: garbage: not a multiaddress \(.+\)\n$/],
      [
        '/ip4/1.2.3.4/tcp/9096',
        /^error parsing peer multiaddress: \/ip4\/1\.2\.3\.4\/tcp\/9096: it does not end with \/p2p\/<peer ID>\n$/,
      ],
      [
        '/ip4/1.2.3.4/tcp/9096/p2p/notapeer',
        /^error parsing peer multiaddress: \/ip4\/1\.2\.3\.4\/tcp\/9096\/p2p\/notapeer: "notapeer" is not a peer ID\n$/,
      ],
      [`${good},`, /^error parsing peer multiaddress: : empty multiaddress\n$/],
    ]
    for (const [peers, line] of bad) {
      const dir = join(root, 'cfg')
      const r = await runMain(['service', 'init', '--peers', `${good},${peers}`], {
        env: env(dir),
      })
      assert.equal(r.code, 1, peers)
      assert.match(r.stderr, line)
      assert.deepEqual(await listing(dir), [], `nothing written for ${peers}`)
    }
  }))

Deno.test('init --help lists --peers as the reference does', async () => {
  const ours = await runMain(['service', 'init', '--help'])
  assert.equal(ours.code, 0)
  const line =
    /^ {3}--peers value +comma-separated list of multiaddresses to init with \(see help\)$/m
  assert.match(ours.stdout, line)
  const go = await runCmd(GO_SERVICE, ['init', '--help'])
  assert.match(go.stdout, line)
})

Deno.test('daemon --bootstrap with a bad address: one line naming it, exit 1, before anything starts', () =>
  withDir(async (root) => {
    const dir = join(root, 'cfg')
    for (
      const [arg, line] of [
        ['garbage', /^error parsing bootstrap multiaddress: garbage: not a multiaddress \(.+\)\n$/],
        [
          `/ip4/127.0.0.1/tcp/9096/p2p/${PEER1}, /ip4/127.0.0.1/tcp/9097`,
          /^error parsing bootstrap multiaddress: \/ip4\/127\.0\.0\.1\/tcp\/9097: it does not end with \/p2p\/<peer ID>\n$/,
        ],
      ] as const
    ) {
      const r = await runMain(['service', 'daemon', '--init', '--bootstrap', arg], {
        env: env(dir),
        timeoutMs: 30_000,
      })
      assert.equal(r.code, 1)
      assert.match(r.stderr, line)
      assert.deepEqual(await listing(dir), [], '--init wrote nothing either')
    }
  }))
