/**
 * The deno.json tasks as users type them: `deno task service …`, `deno task start` and
 * `deno task ctl …` (the task strings themselves, so exactly their permissions) against a peer
 * whose REST API has TLS and basic auth on 127.0.0.1. A permission a command needs and its task
 * lacks fails here before it fails a user: ctl verifies the server's certificate with an extra CA
 * from NODE_EXTRA_CA_CERTS (Deno asks for sys access to read the CA store then), reads the file it
 * adds and writes the file `health graph --file` asks for.
 */
import { equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { freePort, runCmd, type RunResult, type StartTask, startTask } from '../support/peer.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const TLS = join(ROOT, 'test', 'fixtures', 'tls')

/** `deno task <args>` from the repository, as a user types it. */
function task(args: string[], env: Record<string, string>): Promise<RunResult> {
  return runCmd(Deno.execPath(), ['task', ...args], { env, timeoutMs: 120_000 })
}

Deno.test('tasks: deno task service, start and ctl work over TLS and basic auth with their own permissions', async (t) => {
  const dir = await Deno.makeTempDir({ prefix: 'tasks-' })
  const port = freePort()
  const maddr = `/ip4/127.0.0.1/tcp/${port}`
  const env = { IPFS_CLUSTER_PATH: join(dir, 'cluster') }
  let daemon: StartTask | undefined
  try {
    await t.step('deno task service init', async () => {
      const r = await task(['service', 'init', '--ipfs', 'embedded', '--randomports'], env)
      equal(r.code, 0, r.stderr)
      const file = join(env.IPFS_CLUSTER_PATH, 'service.json')
      const cfg = JSON.parse(await Deno.readTextFile(file))
      cfg.cluster.listen_multiaddress = ['/ip4/127.0.0.1/tcp/0']
      cfg.cluster.mdns_interval = '0s'
      Object.assign(cfg.api.restapi, {
        http_listen_multiaddress: maddr,
        ssl_cert_file: join(TLS, 'cert.pem'),
        ssl_key_file: join(TLS, 'key.pem'),
        basic_auth_credentials: { alice: 'secret' },
      })
      await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2))
    })

    await t.step('deno task start serves the configured peer', async () => {
      daemon = startTask(env)
      await daemon.ready(120_000)
    })

    // NODE_EXTRA_CA_CERTS makes ctl verify the server against the test CA (the certificate names
    // 127.0.0.1), and makes Deno read its CA store, which needs the sys permission.
    const ctlEnv = { ...env, NODE_EXTRA_CA_CERTS: join(TLS, 'ca.pem') }
    const ctl = (args: string[], auth = 'alice:secret') =>
      task(['ctl', '--host', maddr, '--https', '--basic-auth', auth, ...args], ctlEnv)

    let cid = ''
    await t.step('deno task ctl: id, add, pin ls, status, health graph --file', async () => {
      const id = await ctl(['id'])
      equal(id.code, 0, id.stderr)
      match(id.stdout, /^12D3KooW\S+ \| /)
      const file = join(dir, 'hello.txt')
      await Deno.writeTextFile(file, `hello over TLS ${crypto.randomUUID()}\n`)
      const add = await ctl(['add', file])
      equal(add.code, 0, add.stderr)
      cid = /^added (\S+) hello\.txt$/m.exec(add.stdout)?.[1] ?? ''
      ok(cid, add.stdout)
      const ls = await ctl(['pin', 'ls'])
      equal(ls.code, 0, ls.stderr)
      ok(ls.stdout.includes(cid), ls.stdout)
      const st = await ctl(['status', cid])
      equal(st.code, 0, st.stderr)
      match(st.stdout, /: PINNED \|/)
      const dot = join(dir, 'peers.dot')
      const graph = await ctl(['health', 'graph', '--file', dot])
      equal(graph.code, 0, graph.stderr)
      match(await Deno.readTextFile(dot), /^digraph cluster/)
      const wrong = await ctl(['id'], 'alice:wrong')
      ok(wrong.code !== 0)
      match(wrong.stdout + wrong.stderr, /401|[Uu]nauthorized/)
    })

    await t.step('deno task service state export after the daemon stops', async () => {
      const logs = daemon!.logs()
      equal(await daemon!.stop(), 0, logs)
      daemon = undefined
      const r = await task(['service', 'state', 'export'], env)
      equal(r.code, 0, r.stderr)
      equal(JSON.parse(r.stdout.trim()).cid, cid)
    })
  } finally {
    await daemon?.stop()
    await Deno.remove(dir, { recursive: true })
  }
})
