/**
 * The reference client against this REST API: the real ipfs-cluster-ctl 1.1.6 (Go) drives the
 * server (over the fake cluster and a fake IPFS) through adds, pins, streams, errors and auth.
 * Skipped when the Go binary is not built (test/tools/build-go-tools.sh).
 */
import assert from 'node:assert/strict'
import { BIN, HAVE_BIN } from '../../cli/ctl/compat_support.ts'
import { restApi } from '../../../src/api/rest/server.ts'
import { defaultPinOptions } from '../../../src/types/mod.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { fakeIpfs } from '../../support/fake_ipfs.ts'
import { contentAdderOver, restConfig } from './helpers.ts'

async function ctl(host: string, args: string[]) {
  const out = await new Deno.Command(BIN, {
    args: ['--host', host, ...args],
    clearEnv: true,
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const dec = new TextDecoder()
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) }
}

async function withServer(
  overrides: Record<string, unknown>,
  fn: (host: string, cluster: ReturnType<typeof fakeCluster>) => Promise<void>,
) {
  const cluster = fakeCluster()
  const api = restApi(restConfig(overrides), {
    cluster,
    configDir: Deno.cwd(),
    peerId: FAKE_PEER_ID,
    add: contentAdderOver(cluster, fakeIpfs()),
  })
  await api.start()
  try {
    await fn(api.addresses()[0], cluster)
  } finally {
    await api.stop()
  }
}

Deno.test({
  name: 'ctl compat: add, pin, status, streams and errors through the Go ipfs-cluster-ctl',
  ignore: !HAVE_BIN,
  async fn() {
    await withServer({}, async (host) => {
      const dir = await Deno.makeTempDir()
      try {
        await Deno.mkdir(`${dir}/d/sub`, { recursive: true })
        await Deno.writeTextFile(`${dir}/hello.txt`, 'hello world\n')
        await Deno.writeTextFile(`${dir}/d/a.txt`, 'a\n')
        await Deno.writeTextFile(`${dir}/d/sub/b.txt`, 'b\n')
        let r = await ctl(host, ['add', `${dir}/hello.txt`])
        assert.equal(r.stdout, 'added QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o hello.txt\n')
        r = await ctl(host, ['add', '-r', '--cid-version', '1', `${dir}/d`])
        assert.equal(r.code, 0, r.stderr)
        assert.deepEqual(r.stdout.trimEnd().split('\n').map((l) => l.split(' ')[2]), [
          'd/a.txt',
          'd/sub/b.txt',
          'd/sub',
          'd',
        ])
        r = await ctl(host, [
          'pin',
          'add',
          '--no-status',
          '--name',
          'n1',
          'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
        ])
        assert.equal(r.code, 0, r.stderr)
        r = await ctl(host, ['pin', 'ls'])
        assert.equal(r.stdout.trimEnd().split('\n').length, 3)
        assert.match(r.stdout, /QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG \| n1 \| PIN/)
        r = await ctl(host, ['status', '--filter', 'pinned'])
        assert.equal(r.stdout.match(/PINNED/g)?.length, 3)
        r = await ctl(host, ['pin', 'ls', '--filter', 'meta-pin']) // 204: nothing, no error
        assert.deepEqual([r.code, r.stdout], [0, ''])
        r = await ctl(host, [
          'pin',
          'rm',
          '--no-status',
          'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
        ])
        assert.equal(r.code, 0, r.stderr)
        r = await ctl(host, ['pin', 'rm', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'])
        assert.notEqual(r.code, 0)
        assert.match(r.stdout + r.stderr, /Code: 404\s+Message: pin is not part of the pinset/)
        r = await ctl(host, ['peers', 'ls'])
        assert.match(r.stdout, new RegExp(`^${FAKE_PEER_ID} \\| fake-peer \\| Sees 0 other peers`))
        r = await ctl(host, ['version'])
        assert.equal(r.stdout, '1.1.6\n')
      } finally {
        await Deno.remove(dir, { recursive: true })
      }
    })
  },
})

Deno.test({
  name: 'ctl compat: basic auth and 401 messages through the Go ipfs-cluster-ctl',
  ignore: !HAVE_BIN,
  async fn() {
    await withServer({ basic_auth_credentials: { admin: 'secret' } }, async (host) => {
      let r = await ctl(host, ['id'])
      assert.notEqual(r.code, 0)
      assert.match(r.stdout + r.stderr, /Code: 401\s+Message: unauthorized: no auth provided/)
      r = await ctl(host, ['--force-http', '--basic-auth', 'admin:wrong', 'id'])
      assert.match(r.stdout + r.stderr, /unauthorized: access denied/)
      r = await ctl(host, ['--force-http', '--basic-auth', 'admin:secret', 'id'])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, new RegExp(`^${FAKE_PEER_ID} \\| fake-peer`))
    })
  },
})

Deno.test({
  name:
    'ctl compat: a stream cut after its first item is an error for the Go client (no trailer needed)',
  ignore: !HAVE_BIN,
  async fn() {
    await withServer({}, async (host, cluster) => {
      for (
        const c of [
          'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
          'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
        ]
      ) {
        await cluster.pin(c, defaultPinOptions())
      }
      cluster.fail.set('pinsNDJSON', new Error('state read failed'))
      cluster.failAfter = 1
      const r = await ctl(host, ['pin', 'ls'])
      assert.notEqual(r.code, 0)
      assert.match(r.stdout + r.stderr, /unexpected EOF/)
    })
  },
})
