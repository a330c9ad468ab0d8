/**
 * Keeps the bench from rotting: runs `bench/main.ts` in its tiniest mode against our daemon only
 * (2,000 pins, 1 s of ingest, the catch-up measures included) and checks that every figure is
 * produced and printed in the table format docs/performance.md describes. Figures themselves are
 * not judged here (a tiny run on a busy machine says nothing about the targets); a daemon that
 * does not start fails the test.
 */
import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTableRows } from '../../bench/report.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..')

Deno.test('bench: a tiny run against our daemon prints every figure in the table format', async () => {
  const json = await Deno.makeTempFile({ prefix: 'bench-smoke-', suffix: '.json' })
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '-A',
        join(REPO, 'bench/main.ts'),
        '--quick',
        '--only',
        'ours',
        '--pins',
        '2000',
        '--seconds',
        '1',
        '--connections',
        '16',
        '--json',
        json,
      ],
      cwd: REPO,
      stdout: 'piped',
      stderr: 'piped',
      signal: AbortSignal.timeout(180_000),
    }).output()
    const stdout = new TextDecoder().decode(out.stdout)
    const stderr = new TextDecoder().decode(out.stderr)
    assert.equal(out.code, 0, `bench exited ${out.code}\n${stdout}\n${stderr}`)

    const lines = stdout.trimEnd().split('\n')
    assert.match(
      lines[0],
      /^ipfs-cluster bench: 2000 pins \(small state 200\), ingest 1 s over 16 connections/,
    )
    assert.match(lines[1], /^machine: \d+ cores /)
    assert.match(
      lines[2],
      /^baseline: bare Deno\.serve answering 200, same client \((wrk|deno-fetch)\), same run: \d+ req\/s/,
    )
    const header = lines.find((l) => l.startsWith('measure '))
    assert.ok(header, stdout)
    assert.deepEqual(header.split('|').map((c) => c.trim()), [
      'measure',
      'ours',
      'IPFS Cluster 1.1.6',
      'ours/Go',
      'target',
      'result',
    ])

    const rows = parseTableRows(stdout)
    const expect: [string, string][] = [
      ['ingest POST /pins/{cid}, 16 clients (pins/s)', '>= 5000'],
      ['ingest CPU per pin, all threads (µs)', '-'],
      ['GET /allocations, 2000 pins (pins/s)', '>= 200000'],
      ['GET /allocations, 200 pins (pins/s)', '-'],
      ['peak RSS listing 200 pins (MiB)', '-'],
      ['peak RSS listing 2000 pins (MiB)', '-'],
      ['peak RSS growth 200 -> 2000 pins (MiB)', '<= 16 MiB'],
      ['restart to GET /id 200, 2000 pins (s)', '< 1 s'],
      ['restart to GET /allocations/<cid> 200, 2000 pins (s)', '< 1 s'],
      ['state import, 2000 pins (s)', '-'],
      ['state import, 2000 pins: peak RSS (MiB)', '-'],
      ['first start after state import to ready, 2000 pins, IPFS holding none (s)', '-'],
      ['restart to ready, 2000 pins, IPFS holding none (s)', '< 1 s'],
      ['catch-up of 2000 pins: peak RSS, API idle (MB)', '< 300 MB'],
      ['peak RSS during the API loads of the catch-up (MB)', '-'],
      ['peak RSS under the POST load, caught up (MB)', '-'],
      ['catch-up of 2000 pins: time (s)', '-'],
      ['GET /allocations during catch-up, 2000 pins (pins/s)', '>= 100000'],
      ['GET /allocations idle, same peer (pins/s)', '-'],
      ['POST /pins during catch-up (pins/s)', '-'],
      ['POST /pins idle, same peer (pins/s)', '-'],
      ['POST /pins during catch-up / idle', '>= 0.5'],
      ['start-up sync, IPFS holds all 2000 pins: CPU (s)', '< 5 s'],
      ['start-up sync, IPFS holds all 2000 pins: until idle (s)', '-'],
    ]
    for (const [measure, target] of expect) {
      const cells = rows.get(measure)
      assert.ok(cells, `row "${measure}" missing:\n${stdout}`)
      assert.match(cells[1], /^-?\d+(\.\d+)?$/, `ours figure of "${measure}": ${cells[1]}`)
      assert.equal(cells[2], '-', 'no Go figure with --only ours')
      assert.equal(cells[3], '-', 'no ratio with --only ours')
      assert.equal(cells[4], target)
      assert.match(cells[5], target === '-' ? /^-$/ : /^(PASS|FAIL)$/)
    }
    const last = lines[lines.length - 1]
    const m = /^RESULT: (\d+) PASS, (\d+) FAIL$/.exec(last)
    assert.ok(m, `last line: ${last}`)
    assert.equal(
      Number(m[1]) + Number(m[2]),
      14,
      'five issue-2, one issue-6 import, four Raft and four catch-up figures have targets',
    )
    const raft = lines.indexOf('raft (issue 3): three in-process nodes with real Deno KV storage')
    assert.ok(raft > 0, 'the Raft section is printed')
    for (
      const label of [
        'raw KV: atomic commits of 100 sets',
        'Raft log, 3 peers, 64 proposers, 1 entry each',
        'Raft log, 3 peers, 1 proposer: commit latency',
        'pinset consensus, 1 peer, 64 proposers',
      ]
    ) {
      assert.ok(lines.slice(raft).some((l) => l.startsWith(label)), `${label} is printed`)
    }

    const report = JSON.parse(await Deno.readTextFile(json))
    assert.equal(report.results.ours.errors.length, 0)
    assert.equal(report.results.ours.large.lines, 2000, 'the listing streamed every pin')
    assert.equal(report.results.ours.small.lines, 200)
    assert.ok(report.results.ours.ingest.load.ok > 0, 'some pins were taken')
    assert.ok(report.results.ours.ingest.committed >= report.results.ours.ingest.load.ok)
    assert.ok(report.results.ours.backlog.importRss > 0, 'the import was sampled')
    assert.equal(report.rows.length, rows.size)
    assert.deepEqual(report.catchup.ours.errors, [])
  } finally {
    await Deno.remove(json).catch(() => {})
  }
})
