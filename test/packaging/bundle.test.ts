/**
 * `deno task bundle` output, run as the packages run it (outside the repository, so no deno.json
 * helps): the bundle task's own `deno bundle` commands write into a temporary folder, then the
 * bundle runs `service init`/`daemon` with the flags of the container's wrapper and `ctl`
 * against it, `state import` (its worker file beside the bundle), and `follow`; the container's
 * environment moves the REST API; and under the systemd unit's ExecStart flags the daemon tells a
 * fake NOTIFY_SOCKET READY=1 once it is ready (not while its IPFS daemon is down), STOPPING=1 on
 * SIGTERM.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { freePort, runCmd, taskFlags } from '../support/peer.ts'
import { startKubo } from '../support/kubo.ts'
import { waitFor } from '../support/wait.ts'
import { commandLine, notifySocket, ROOT, runFlags } from './support.ts'
import { spawnLogged } from '../support/spawn.ts'

const BUNDLE = 'ipfs-cluster.js'

/** Runs the bundle task's `deno bundle` commands with `dist/` replaced by `out`. */
async function bundleInto(out: string): Promise<void> {
  const task: string = JSON.parse(await Deno.readTextFile(join(ROOT, 'deno.json'))).tasks.bundle
  const commands = task.split('&&').map((c) => c.trim().split(/\s+/))
    .filter((w) => w[0] === 'deno' && w[1] === 'bundle')
  assert.ok(commands.length >= 2, `bundle task: ${task}`)
  for (const words of commands) {
    const args = words.slice(1).map((w) => w.startsWith('dist/') ? join(out, w.slice(5)) : w)
    const r = await runCmd(Deno.execPath(), args, { timeoutMs: 300_000 })
    assert.equal(r.code, 0, r.stderr)
  }
}

/** The flags the container's wrapper runs the bundle with. */
async function containerFlags(): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, 'packaging', 'Containerfile'))
  return runFlags(commandLine(text, BUNDLE), BUNDLE)
}

/** The Containerfile's ENV values (a `KEY=value \` continuation block). */
async function containerEnv(): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(join(ROOT, 'packaging', 'Containerfile'))
  const block = /^ENV ((?:.*\\\n)*.*)$/m.exec(text)![1]
  return Object.fromEntries(
    block.split(/\s*\\\n\s*|\s+/).filter((w) => w.includes('=')).map((w) => {
      const i = w.indexOf('=')
      return [w.slice(0, i), w.slice(i + 1)]
    }),
  )
}

/** `service init --randomports` in a new folder, listeners on 127.0.0.1; returns the folder. */
async function init(
  run: (args: string[]) => Promise<{ code: number; stderr: string }>,
  ipfs: string,
) {
  const dir = await Deno.makeTempDir({ prefix: 'bundle-peer-' })
  const r = await run(['service', '--config', dir, 'init', '--randomports', '--ipfs', ipfs])
  assert.equal(r.code, 0, r.stderr)
  const file = join(dir, 'service.json')
  await Deno.writeTextFile(
    file,
    (await Deno.readTextFile(file)).replaceAll('/ip4/0.0.0.0/', '/ip4/127.0.0.1/'),
  )
  return dir
}

Deno.test('deno task bundle: the bundle runs every mode outside the repository', async (t) => {
  const out = await Deno.makeTempDir({ prefix: 'bundle-' })
  const cwd = await Deno.makeTempDir({ prefix: 'bundle-cwd-' }) // no deno.json up from here
  try {
    await bundleInto(out)
    const bundle = join(out, BUNDLE)
    const flags = await containerFlags()
    const run = (args: string[], env?: Record<string, string>) =>
      runCmd(Deno.execPath(), ['run', ...flags, bundle, ...args], { env })
    const spawn = (args: string[], env?: Record<string, string>, f = flags) =>
      spawnLogged(Deno.execPath(), ['run', ...f, bundle, ...args], { cwd, env })

    await t.step('service init, state import, daemon (container env), ctl id', async () => {
      const dir = await init(run, 'embedded')
      // The import parses on a worker: the bundle finds it in import_worker.ts beside itself.
      const pins = join(dir, 'empty.json')
      await Deno.writeTextFile(pins, '')
      const imp = await run(['service', '--config', dir, 'state', 'import', '-f', pins])
      assert.equal(imp.code, 0, imp.stderr)
      assert.match(imp.stderr, /state successfully imported/)

      // The container's ENV names move the REST API (to a free port on loopback here).
      const port = await freePort()
      const env = await containerEnv()
      const rest = env.CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS
      assert.equal(rest, '/ip4/0.0.0.0/tcp/9094')
      const host = `/ip4/127.0.0.1/tcp/${port}`
      const daemon = spawn(['service', '--config', dir, 'daemon'], {
        CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS: host,
      })
      try {
        await daemon.waitLog('IPFS Cluster is READY')
        const id = JSON.parse(await Deno.readTextFile(join(dir, 'identity.json'))).id
        const r = await run(['ctl', '--host', host, 'id'])
        assert.equal(r.code, 0, r.stderr)
        assert.match(r.stdout, new RegExp(`^${id} \\|`))
        const v = await run(['ctl', '--host', host, '--enc', 'json', 'version'])
        assert.equal(v.code, 0, v.stderr)
        assert.match(JSON.parse(v.stdout).version, /^1\.1\.6/)
      } finally {
        assert.equal(await daemon.stop(), 0, daemon.logs())
      }
      await Deno.remove(dir, { recursive: true })
    })

    await t.step('follow: help, and the list of followed clusters', async () => {
      const home = await Deno.makeTempDir({ prefix: 'bundle-follow-' })
      const env = { IPFS_CLUSTER_PATH: home, HOME: home }
      const help = await run(['follow', '--help'], env)
      assert.equal(help.code, 0, help.stderr)
      assert.match(help.stdout, /ipfs-cluster-follow - IPFS Cluster Follower/)
      const list = await run(['follow'], env)
      assert.equal(list.code, 0, list.stderr)
      assert.match(list.stdout, /No clusters configured yet!/)
      const ls = await run(['follow', 'mycluster', 'list'], env)
      assert.equal(ls.code, 1)
      assert.match(ls.stdout + ls.stderr, /This cluster peer has not been initialized/)
      await Deno.remove(home, { recursive: true })
    })

    await t.step('systemd unit: READY=1 once IPFS answers, STOPPING=1 on SIGTERM', async () => {
      const unit = await Deno.readTextFile(join(ROOT, 'packaging', 'ipfs-cluster.service'))
      const execStart = commandLine(
        unit.split('\n').filter((l) => l.startsWith('ExecStart='))
          .join('\n'),
        BUNDLE,
      )
      assert.deepEqual(execStart.slice(-3), [
        '/usr/lib/ipfs-cluster/ipfs-cluster.js',
        'service',
        'daemon',
      ])
      const unitFlags = runFlags(execStart, BUNDLE)
      const ipfsPort = await freePort()
      const dir = await init(run, 'ipfshttp')
      const file = join(dir, 'service.json')
      const cfg = JSON.parse(await Deno.readTextFile(file))
      cfg.ipfs_connector.ipfshttp.node_multiaddress = `/ip4/127.0.0.1/tcp/${ipfsPort}`
      await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2))
      const host = [cfg.api.restapi.http_listen_multiaddress].flat()[0]
      const sock = await notifySocket()
      const daemon = spawn(['service', '--config', dir, 'daemon'], {
        NOTIFY_SOCKET: sock.path,
      }, unitFlags)
      let kubo: Awaited<ReturnType<typeof startKubo>> | undefined
      try {
        // The API answers while IPFS is down, and the peer is not ready: no READY=1 yet.
        await waitFor(async () => (await run(['ctl', '--host', host, 'id'])).code === 0, {
          what: 'the REST API',
          timeoutMs: 60_000,
        })
        assert.deepEqual(sock.messages(), [])
        assert.ok(!daemon.logs().includes('IPFS Cluster is READY'), daemon.logs())
        kubo = await startKubo({ config: { 'Addresses.API': `/ip4/127.0.0.1/tcp/${ipfsPort}` } })
        await waitFor(() => sock.messages().includes('READY=1'), {
          what: `READY=1 (daemon:\n${daemon.logs()})`,
          timeoutMs: 120_000,
        })
        await daemon.waitLog('IPFS Cluster is READY') // logs are buffered: may come later
        const id = await run(['ctl', '--host', host, '--enc', 'json', 'id'])
        assert.equal(JSON.parse(id.stdout).ipfs.id, kubo.peerId)
        assert.equal(await daemon.stop(), 0, daemon.logs())
        await waitFor(() => sock.messages().includes('STOPPING=1'), { what: 'STOPPING=1' })
        assert.deepEqual(sock.messages(), ['READY=1', 'STOPPING=1'])
        assert.ok(!daemon.logs().includes('NOTIFY_SOCKET'), daemon.logs())
      } finally {
        await daemon.stop()
        await kubo?.stop()
        await sock.stop()
        await Deno.remove(dir, { recursive: true })
      }
    })

    await t.step('without --unstable-net, NOTIFY_SOCKET gets one clear warning', async () => {
      const dir = await init(run, 'embedded')
      const sock = await notifySocket()
      const daemon = spawn(['service', '--config', dir, 'daemon'], { NOTIFY_SOCKET: sock.path })
      try {
        await daemon.waitLog('IPFS Cluster is READY')
        await daemon.waitLog('runs without --unstable-net')
      } finally {
        assert.equal(await daemon.stop(), 0, daemon.logs())
        await sock.stop()
      }
      assert.deepEqual(sock.messages(), [])
      assert.equal(daemon.logs().split('NOTIFY_SOCKET is set').length - 1, 1, daemon.logs())
      await Deno.remove(dir, { recursive: true })
    })
  } finally {
    await Deno.remove(out, { recursive: true })
    await Deno.remove(cwd, { recursive: true })
  }
})

Deno.test('the container wrapper runs the bundle with the service task flags and --unstable-kv', async () => {
  const flags = await containerFlags()
  assert.deepEqual(flags, [
    '--quiet',
    '--unstable-kv',
    ...taskFlags('service').filter((f) => f !== '--quiet'),
  ])
})
