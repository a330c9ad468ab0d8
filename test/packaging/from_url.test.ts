/**
 * `deno run` from a URL, as docs/packaging.md (and the README) give it: the repository is served
 * over HTTP on 127.0.0.1 the way a code host serves it (`.ts` as TypeScript; no node_modules, no
 * .tools), and the documented line, with `<url>` replaced, runs `service init`, `service daemon`
 * (an embedded IPFS node), `ctl id`/`version` against that daemon and `follow --help`, from an
 * empty folder (no deno.json) with a fresh DENO_DIR: the npm packages come from the npm registry,
 * as for a user, and the cache is removed afterwards.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { freePort, runCmd } from '../support/peer.ts'
import { ROOT } from './support.ts'
import { spawnLogged } from '../support/spawn.ts'

const TYPES: Record<string, string> = {
  ts: 'application/typescript',
  js: 'application/javascript',
  json: 'application/json',
}

/** The documented command: the words of the line in docs/packaging.md up to `<url>/cli/main.ts`. */
async function documentedCommand(): Promise<string[]> {
  const doc = await Deno.readTextFile(join(ROOT, 'docs', 'packaging.md'))
  const line = doc.split('\n').find((l) => l.startsWith('deno run ') && l.includes('<url>/cli/'))
  assert.ok(line, 'docs/packaging.md has no "deno run … <url>/cli/main.ts" line')
  const words = line.split(/\s+/)
  return words.slice(0, words.indexOf('<url>/cli/main.ts') + 1)
}

Deno.test('the documented command names every unstable feature of deno.json', async () => {
  const cmd = await documentedCommand()
  const unstable: string[] = JSON.parse(await Deno.readTextFile(join(ROOT, 'deno.json'))).unstable
  for (const u of unstable) assert.ok(cmd.includes(`--unstable-${u}`), `--unstable-${u}`)
  assert.ok(cmd.includes('--import-map=<url>/packaging/import_map.json'))
})

Deno.test('deno run from a URL: service init and daemon, ctl and follow', async () => {
  const served: string[] = []
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: await freePort(), onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname)
      served.push(path)
      const top = path.split('/')[1]
      if (path.includes('..') || ['node_modules', '.tools', '.git'].includes(top)) {
        return new Response('not found', { status: 404 })
      }
      try {
        const body = await Deno.readFile(join(ROOT, path))
        const type = TYPES[path.split('.').pop()!] ?? 'text/plain'
        return new Response(body, { headers: { 'content-type': type } })
      } catch {
        return new Response('not found', { status: 404 })
      }
    },
  )
  const url = `http://127.0.0.1:${server.addr.port}`
  const cmd = (await documentedCommand()).map((w) => w.replaceAll('<url>', url))
  const home = await Deno.makeTempDir({ prefix: 'from-url-' })
  const env = { DENO_DIR: join(home, 'deno'), DENO_NO_UPDATE_CHECK: '1' }
  const cwd = join(home, 'cwd')
  await Deno.mkdir(cwd)
  const run = async (args: string[]) => {
    const r = await runCmd('bash', ['-c', 'cd "$0" && exec "$@"', cwd, ...cmd, ...args], {
      env,
      timeoutMs: 300_000,
    })
    if (/registry\.npmjs\.org/.test(r.stderr) && r.code !== 0) {
      throw new Error(`this test needs the npm registry (registry.npmjs.org):\n${r.stderr}`)
    }
    return r
  }
  assert.equal(cmd[0], 'deno')
  cmd[0] = Deno.execPath()
  const dir = join(home, 'peer')
  try {
    const init = await run([
      'service',
      '--config',
      dir,
      'init',
      '--randomports',
      '--ipfs',
      'embedded',
    ])
    assert.equal(init.code, 0, init.stderr)
    const file = join(dir, 'service.json')
    const text = await Deno.readTextFile(file)
    await Deno.writeTextFile(file, text.replaceAll('/ip4/0.0.0.0/', '/ip4/127.0.0.1/'))
    const host = [JSON.parse(text).api.restapi.http_listen_multiaddress].flat()[0]

    const daemon = spawnLogged(cmd[0], [...cmd.slice(1), 'service', '--config', dir, 'daemon'], {
      cwd,
      env,
    })
    try {
      await daemon.waitLog('IPFS Cluster is READY', 300_000)
      const peerId = JSON.parse(await Deno.readTextFile(join(dir, 'identity.json'))).id
      const id = await run(['ctl', '--host', host, 'id'])
      assert.equal(id.code, 0, id.stderr)
      assert.match(id.stdout, new RegExp(`^${peerId} \\| .* \\| Sees 0 other peers`))
      const version = await run(['ctl', '--host', host, '--enc', 'json', 'version'])
      assert.equal(version.code, 0, version.stderr)
      assert.match(JSON.parse(version.stdout).version, /^1\.1\.6/)
    } finally {
      assert.equal(await daemon.stop(), 0, daemon.logs())
    }
    const follow = await run(['follow', '--help'])
    assert.equal(follow.code, 0, follow.stderr)
    assert.match(follow.stdout, /ipfs-cluster-follow - IPFS Cluster Follower/)

    // The program came from the server, the import map too; nothing from a node_modules.
    assert.ok(served.includes('/cli/main.ts'))
    assert.ok(served.includes('/packaging/import_map.json'))
    assert.ok(served.some((p) => p.startsWith('/src/ipfsconn/embedded/')))
    assert.ok(!served.some((p) => p.startsWith('/node_modules')))
  } finally {
    await server.shutdown()
    await Deno.remove(home, { recursive: true })
  }
})
