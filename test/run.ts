/**
 * The test command (`deno task test`, what `.ci/run` runs): makes sure the real programs the tests
 * drive exist (Kubo, ipfs-cluster-ctl/-service 1.1.6, built from the Go module proxy when missing)
 * and the npm dependencies are installed, runs the static checks (`deno fmt --check`, `deno lint`, `deno task check`) when the whole suite
 * runs, then every test file, and ends with the line `N passed, N failed`, in which each static
 * check counts as one check.
 *
 * Usage: deno task test [deno test args, e.g. a path or --filter: then no static checks]
 *
 * @example
 * ```ts
 * summary(junitXml, true, ['deno lint']) // { line: '701 passed, 1 failed', code: 1 }
 * ```
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
  // Debian's prometheus and chromium, when missing (a no-op once there; it says what to install
  // when it cannot, and the tests that need them then fail with the same words).
  await new Deno.Command('bash', {
    args: [join(root, 'test', 'tools', 'install-debian-packages.sh')],
    stdout: 'inherit',
    stderr: 'inherit',
  }).output()
  const needed = ['ipfs', 'ipfs-cluster-ctl', 'ipfs-cluster-service', 'ipfs-cluster-follow']
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

/**
 * Installs the npm dependencies into node_modules (deno.json sets `nodeModulesDir: "manual"`: no
 * other command installs them), quietly; a no-op when they are up to date.
 */
async function ensureNpm(): Promise<void> {
  if (!(await exists(join(root, 'node_modules', '.deno')))) {
    console.error('test: installing the npm dependencies into node_modules (first run only)…')
  }
  const res = await new Deno.Command(deno, {
    args: ['install', '--quiet'],
    cwd: root,
    stdout: 'inherit',
    stderr: 'inherit',
  }).output()
  if (!res.success) console.error('test: deno install failed; tests needing npm packages will fail')
}

/** The static checks of a whole run: a name and the deno arguments. */
export const STATIC_CHECKS: [string, string[]][] = [
  ['deno fmt --check', ['fmt', '--check']],
  ['deno lint', ['lint']],
  ['deno task check', ['task', 'check']],
]

/**
 * Runs each static check in `dir` (their output goes to the terminal unless `quiet`, a status
 * line each to `log`); resolves to the names of the checks that failed.
 */
export async function staticChecks(
  dir: string,
  log: (line: string) => void = console.log,
  quiet = false,
): Promise<string[]> {
  const failed: string[] = []
  for (const [name, args] of STATIC_CHECKS) {
    const t = performance.now()
    const res = await new Deno.Command(deno, {
      args,
      cwd: dir,
      stdout: quiet ? 'null' : 'inherit',
      stderr: quiet ? 'null' : 'inherit',
    }).output()
    const secs = ((performance.now() - t) / 1000).toFixed(0)
    log(`check: ${name} ${res.success ? 'ok' : 'FAILED'} (${secs} s)`)
    if (!res.success) failed.push(name)
  }
  return failed
}

/**
 * The last line and the exit code: the tests' totals from the JUnit report (`xml`; a run that
 * failed without a report counts one failure), plus one check per static check when they ran
 * (`staticFailed` names those that failed).
 */
export function summary(
  xml: string,
  testsOk: boolean,
  staticFailed?: string[],
): { line: string; code: number } {
  // The top-level <testsuites> element carries the totals.
  const m = /<testsuites[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"(?:[^>]*\berrors="(\d+)")?/
    .exec(xml)
  let passed = 0
  let failed = testsOk ? 0 : 1
  if (m) {
    const total = Number(m[1])
    failed = Number(m[2]) + Number(m[3] ?? 0)
    const skipped = (xml.match(/<skipped/g) ?? []).length
    passed = total - failed - skipped
    if (!testsOk && failed === 0) failed = 1
  }
  if (staticFailed) {
    passed += STATIC_CHECKS.length - staticFailed.length
    failed += staticFailed.length
  }
  const ok = testsOk && !staticFailed?.length
  return { line: `${passed} passed, ${failed} failed`, code: ok ? 0 : 1 }
}

if (import.meta.main) {
  await ensureTools()
  await ensureNpm()
  const staticFailed = Deno.args.length === 0 ? await staticChecks(root) : undefined
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
  if (staticFailed?.length) console.log(`static checks failed: ${staticFailed.join(', ')}`)
  const { line, code } = summary(xml, status.success, staticFailed)
  console.log(line)
  Deno.exit(code)
}
