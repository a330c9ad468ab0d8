/**
 * Keeps bench/startup.ts from rotting: warm starts only, from the Deno cache the tests already
 * filled (a cold start would download from npm), one run of each kind, and the rows it prints.
 * Figures are not judged here.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'

const REPO = new URL('../..', import.meta.url).pathname

Deno.test('bench: a warm-only startup run prints its rows', async () => {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ['info', '--json'],
    stdout: 'piped',
  }).output()
  const denoDir = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir as string
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      'run',
      '-A',
      join(REPO, 'bench/startup.ts'),
      '--no-cold',
      '--no-npx',
      '--runs',
      '1',
      '--deno-dir',
      denoDir,
    ],
    cwd: REPO,
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const stdout = new TextDecoder().decode(out.stdout)
  const stderr = new TextDecoder().decode(out.stderr)
  assert.equal(out.code, 0, `${stdout}\n${stderr}`)
  assert.match(stdout, /^warm task start to API, deno \(s, median\) +\| +\d+\.\d\d \|/m)
  assert.match(
    stdout,
    /^warm service daemon \(ipfshttp\) to API, deno \(s, median\) +\| +\d+\.\d\d \|/m,
  )
  assert.doesNotMatch(
    stdout,
    /^(cold|lines printed|warm task start to API, npx)/m,
    'skipped: no row',
  )
  assert.match(stdout, /^RESULT: \d+ PASS, \d+ FAIL$/m)
})
