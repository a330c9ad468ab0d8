/**
 * The test command (`deno task test`): makes sure the real programs the tests drive exist (Kubo,
 * ipfs-cluster-ctl/-service 1.1.6, built from the Go module proxy when missing), runs every test
 * file, and ends with the line `N passed, N failed`.
 *
 * Usage: deno task test [deno test args, e.g. a path or --filter]
 */
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const tools = join(root, '.tools', 'bin')
const deno = Deno.execPath()

async function exists(p: string) {
  try {
    await Deno.stat(p)
    return true
  } catch {
    return false
  }
}

async function ensureTools(): Promise<void> {
  const needed = ['ipfs', 'ipfs-cluster-ctl', 'ipfs-cluster-service']
  const missing = []
  for (const n of needed) if (!(await exists(join(tools, n)))) missing.push(n)
  if (missing.length === 0) return
  if (missing.length === 1 && missing[0] === 'ipfs' && Deno.env.get('IPFS_BIN')) return
  console.error(`test: building ${missing.join(', ')} from the Go module proxy (first run only)…`)
  const t = performance.now()
  const res = await new Deno.Command('bash', {
    args: [join(root, 'test', 'tools', 'build-go-tools.sh')],
    stdout: 'inherit',
    stderr: 'inherit',
  }).output()
  console.error(`test: tools built in ${((performance.now() - t) / 1000).toFixed(0)} s`)
  if (!res.success) {
    console.error('test: building the Go tools failed; tests needing them will fail')
  }
}

await ensureTools()
const report = await Deno.makeTempFile({ suffix: '.xml' })
const args = Deno.args.length ? Deno.args : ['test/']
const child = new Deno.Command(deno, {
  args: ['test', '-A', '--junit-path=' + report, ...args],
  cwd: root,
  env: { PATH: `${tools}:${Deno.env.get('PATH') ?? ''}` },
  stdout: 'inherit',
  stderr: 'inherit',
}).spawn()
const status = await child.status
const xml = await Deno.readTextFile(report).catch(() => '')
await Deno.remove(report).catch(() => {})
// The top-level <testsuites> element carries the totals.
const m = /<testsuites[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"(?:[^>]*\berrors="(\d+)")?/.exec(
  xml,
)
let passed = 0
let failed = status.success ? 0 : 1
if (m) {
  const total = Number(m[1])
  failed = Number(m[2]) + Number(m[3] ?? 0)
  const skipped = (xml.match(/<skipped/g) ?? []).length
  passed = total - failed - skipped
  if (!status.success && failed === 0) failed = 1
}
console.log(`${passed} passed, ${failed} failed`)
Deno.exit(status.success ? 0 : 1)
