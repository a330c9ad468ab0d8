/**
 * The first-start line: printed by the script the tasks run before `deno install --quiet` when the
 * folder has no node_modules yet, and not once it has.
 */
import { equal } from 'node:assert/strict'
import { join } from 'node:path'
import { FIRST_START_LINE, firstStartLine } from '../../cli/first_start.ts'
import { runCmd } from '../support/peer.ts'

const SCRIPT = new URL('../../cli/first_start.ts', import.meta.url).pathname

Deno.test('first start: one line while node_modules is missing, nothing once it is set up', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'first-start-' })
  try {
    equal(firstStartLine(dir), FIRST_START_LINE)
    // As the tasks run it: from the repository folder, reading node_modules only.
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: ['run', '--quiet', '--no-config', '--allow-read=node_modules', SCRIPT],
        cwd: dir,
        stdout: 'piped',
        stderr: 'piped',
      }).output()
    const first = await run()
    const dec = new TextDecoder()
    equal(first.code, 0)
    equal(dec.decode(first.stdout), '')
    equal(dec.decode(first.stderr), `${FIRST_START_LINE}\n`)
    await Deno.mkdir(join(dir, 'node_modules', '.deno'), { recursive: true })
    equal(firstStartLine(dir), undefined)
    const later = await run()
    equal(later.code, 0)
    equal(dec.decode(later.stderr), '')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('first start: the tasks run the script, then a quiet install, then the program', async () => {
  const cfg = JSON.parse(await Deno.readTextFile(new URL('../../deno.json', import.meta.url)))
  equal(cfg.nodeModulesDir, 'manual', 'no command installs (noisily) on its own')
  for (const task of ['start', 'service', 'ctl']) {
    const cmds = String(cfg.tasks[task]).split(' && ')
    equal(cmds[0], 'deno run --quiet --allow-read=node_modules cli/first_start.ts', task)
    equal(cmds[1], 'deno install --quiet', task)
    equal(cmds[2].startsWith('deno run --quiet '), true, task)
  }
  const r = await runCmd(Deno.execPath(), ['task', 'ctl', '--version'])
  equal(r.code, 0, r.stderr)
  equal(r.stdout, 'ipfs-cluster-ctl version 1.1.6\n')
})
