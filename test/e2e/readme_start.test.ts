/**
 * The README's main job: `deno task start` (with exactly the task's permissions) initializes a
 * fresh config folder with the embedded IPFS node and serves a working single-peer cluster that
 * `deno task ctl` drives — add a file, see it pinned.
 */
import { equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { freePort, runCmd, startTask } from '../support/peer.ts'

Deno.test('README: deno task start serves a cluster that deno task ctl drives', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'readme-start-' })
  const port = freePort()
  const env = {
    IPFS_CLUSTER_PATH: join(dir, 'cluster'),
    // Same defaults as the README, moved off the well-known ports so a real peer may run here.
    CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS: `/ip4/127.0.0.1/tcp/${port}`,
    CLUSTER_LISTENMULTIADDRESS: '/ip4/127.0.0.1/tcp/0',
    CLUSTER_EMBEDDED_LISTENMULTIADDRESS: '/ip4/127.0.0.1/tcp/0',
  }
  const start = startTask(env)
  try {
    await start.ready(60_000)
    const ctl = (args: string[]) =>
      runCmd(Deno.execPath(), ['task', 'ctl', '--host', `/ip4/127.0.0.1/tcp/${port}`, ...args], {
        env,
      })
    const file = join(dir, 'hello.txt')
    await Deno.writeTextFile(file, `hello from the README ${crypto.randomUUID()}\n`)
    const add = await ctl(['add', file])
    equal(add.code, 0, add.stderr)
    const m = /^added (\S+) hello\.txt$/m.exec(add.stdout)
    ok(m, add.stdout)
    const st = await ctl(['status', m![1]])
    equal(st.code, 0, st.stderr)
    match(st.stdout, /: PINNED \|/)
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, 'cluster', 'service.json')))
    ok(cfg.ipfs_connector.embedded, 'the start task configures the embedded IPFS node')
  } finally {
    await start.stop()
    await Deno.remove(dir, { recursive: true })
  }
})
