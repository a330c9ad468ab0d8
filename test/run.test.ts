/**
 * The test command's verdict: formatting, lint and type errors fail a whole run as surely as a
 * failing test, and its last line counts each static check as one check.
 */
import { deepEqual } from 'node:assert/strict'
import { join } from 'node:path'
import { staticChecks, summary } from './run.ts'

const JUNIT = (tests: number, failures: number, skipped = 0) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="deno test" tests="${tests}" ` +
  `failures="${failures}" errors="0" time="1.0">\n` + '<skipped/>'.repeat(skipped) +
  '</testsuites>\n'

Deno.test('run: each static check counts once in "N passed, N failed"; any failure exits 1', () => {
  deepEqual(summary(JUNIT(10, 0), true, []), { line: '13 passed, 0 failed', code: 0 })
  deepEqual(summary(JUNIT(10, 0), true, ['deno fmt --check']), {
    line: '12 passed, 1 failed',
    code: 1,
  })
  deepEqual(summary(JUNIT(10, 2, 1), false, ['deno lint', 'deno task check']), {
    line: '8 passed, 4 failed',
    code: 1,
  })
  // A partial run (a path given) has no static checks; a crash without a report is one failure.
  deepEqual(summary(JUNIT(10, 0), true), { line: '10 passed, 0 failed', code: 0 })
  deepEqual(summary('', false, []), { line: '3 passed, 1 failed', code: 1 })
})

Deno.test('run: the static checks catch an unformatted file, a lint error and a type error', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'run-static-' })
  try {
    await Deno.writeTextFile(
      join(dir, 'deno.json'),
      JSON.stringify({ tasks: { check: 'deno check mod.ts' } }, null, 2) + '\n',
    )
    // deno's default style (this folder has no fmt settings): double quotes, semicolons.
    const cases: [string, string, string[]][] = [
      ['clean', 'export const answer: number = 42;\n', []],
      ['unformatted', 'export const answer:number=42;\n', ['deno fmt --check']],
      ['lint', 'export const answer: number = 42;\nlet unused = 1;\n', ['deno lint']],
      ['types', 'export const answer: number = "42";\n', ['deno task check']],
    ]
    for (const [what, source, failed] of cases) {
      await Deno.writeTextFile(join(dir, 'mod.ts'), source)
      const lines: string[] = []
      deepEqual(await staticChecks(dir, (l) => lines.push(l), true), failed, what)
      deepEqual(lines.map((l) => l.replace(/ \(\d+ s\)$/, '')), [
        `check: deno fmt --check ${failed.includes('deno fmt --check') ? 'FAILED' : 'ok'}`,
        `check: deno lint ${failed.includes('deno lint') ? 'FAILED' : 'ok'}`,
        `check: deno task check ${failed.includes('deno task check') ? 'FAILED' : 'ok'}`,
      ], what)
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
