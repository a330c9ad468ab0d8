/**
 * The one entry point: the mode comes from the first argument, or from the name the program was
 * invoked as (a link named ipfs-cluster-ctl / ipfs-cluster-service), and `deno bundle` makes one
 * file that runs both modes without the source tree.
 */
import { equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { runCmd, runMain } from '../support/peer.ts'

const ROOT = new URL('../..', import.meta.url).pathname
const MAIN = join(ROOT, 'cli', 'main.ts')

Deno.test('entry: first argument picks the mode; no mode is a usage error', async () => {
  const svc = await runMain(['service', 'version'])
  equal(svc.code, 0, svc.stderr)
  equal(svc.stdout, '1.1.6\n')
  const ctl = await runMain(['ctl', '--version'])
  equal(ctl.code, 0, ctl.stderr)
  match(ctl.stdout, /ipfs-cluster-ctl version 1\.1\.6/)
  const none = await runMain([])
  equal(none.code, 1)
  match(none.stderr, /usage: ipfs-cluster <service\|ctl\|follow>/)
})

Deno.test('entry: invoked through a link named ipfs-cluster-service / -ctl, picks that mode', async () => {
  const dir = await Deno.makeTempDir()
  try {
    for (const name of ['ipfs-cluster-service', 'ipfs-cluster-ctl']) {
      await Deno.symlink(Deno.execPath(), join(dir, name))
    }
    // The runtime runs under the link's name, so argv[0] is what a compiled binary would see.
    const svc = await runCmd(join(dir, 'ipfs-cluster-service'), ['run', '-A', MAIN, 'version'])
    equal(svc.code, 0, svc.stderr)
    equal(svc.stdout, '1.1.6\n')
    const ctl = await runCmd(join(dir, 'ipfs-cluster-ctl'), ['run', '-A', MAIN, '--version'])
    equal(ctl.code, 0, ctl.stderr)
    match(ctl.stdout, /ipfs-cluster-ctl version 1\.1\.6/)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('entry: deno bundle makes one file that runs service and ctl', async () => {
  const dir = await Deno.makeTempDir()
  try {
    const out = join(dir, 'ipfs-cluster.js')
    const b = await runCmd(Deno.execPath(), ['bundle', '--quiet', '--output', out, MAIN], {
      timeoutMs: 120_000,
    })
    equal(b.code, 0, b.stderr)
    ok((await Deno.stat(out)).size > 100_000)
    const cfg = join(dir, 'cfg')
    const init = await runCmd(Deno.execPath(), [
      'run',
      '-A',
      '--unstable-kv',
      out,
      'service',
      '--config',
      cfg,
      'init',
    ])
    equal(init.code, 0, init.stderr)
    ok((await Deno.stat(join(cfg, 'identity.json'))).isFile)
    const ctl = await runCmd(Deno.execPath(), ['run', '-A', out, 'ctl', '--version'])
    equal(ctl.code, 0, ctl.stderr)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
