/**
 * Keeps the 3-peer bench (bench/cluster.ts) from rotting: runs `bench/main.ts --cluster-only` in its
 * tiniest mode against our daemon (3 peers formed by init_peerset, a fourth joining with
 * --bootstrap, 2,000 pins, 1 s loads) and checks that every cluster figure is produced and printed
 * in the table format. Figures are not judged here; a cluster that does not form fails the test
 * with the harness's one-line reason (after `wait_for_leader_timeout`, never a hang).
 */
import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTableRows } from '../../bench/report.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..')

Deno.test('bench: a tiny 3-peer run of ours prints every cluster figure', async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      'run',
      '-A',
      join(REPO, 'bench/main.ts'),
      '--cluster-only',
      '--quick',
      '--only',
      'ours',
      '--pins',
      '2000',
      '--seconds',
      '1',
      '--connections',
      '16',
    ],
    cwd: REPO,
    stdout: 'piped',
    stderr: 'piped',
    signal: AbortSignal.timeout(300_000),
  }).output()
  const stdout = new TextDecoder().decode(out.stdout)
  const stderr = new TextDecoder().decode(out.stderr)
  const errors = stdout.split('\n').filter((l) => l.startsWith('error: '))
  assert.deepEqual(errors, [], `the cluster measures failed:\n${errors.join('\n')}\n${stderr}`)
  assert.equal(out.code, 0, `bench exited ${out.code}\n${stdout}\n${stderr}`)

  const rows = parseTableRows(stdout)
  const expect: [string, string][] = [
    ['3 peers: ingest through a follower, 16 clients (pins/s)', '>= 3000'],
    ['3 peers: ingest through the leader, 16 clients (pins/s)', '>= 4000'],
    ['3 peers: CPU per pin through a follower, the three peers (µs)', '-'],
    ['3 peers: CPU per pin through the leader, the three peers (µs)', '-'],
    ['3 peers: ingest errors, follower + leader (non-2xx + socket)', '-'],
    ['3 peers: commit latency, 1 client through the leader, p50 (ms)', '< 2 ms'],
    ['3 peers: commit latency, 1 client through the leader, p99 (ms)', '-'],
    ['3 peers: kill -9 of the leader to a write acknowledged (s)', '< 3 s'],
    ['3 peers: kill -9 of the leader to a new leader in the logs (s)', '-'],
    ['state import into a founder, 2000 pins (s)', '-'],
    ['4th peer joins 2000 pins: READY (s)', '-'],
    ['4th peer joins 2000 pins: member and serves the last pin (s)', '< 30 s'],
    ['GET /pins, 2000 statuses from every peer (statuses/s)', '-'],
    ['largest RSS growth of a peer during that GET /pins (MiB)', '<= 16 MiB'],
  ]
  for (const [measure, target] of expect) {
    const cells = rows.get(measure)
    assert.ok(cells, `row "${measure}" missing:\n${stdout}`)
    assert.match(cells[1], /^-?\d+(\.\d+)?$/, `ours figure of "${measure}": ${cells[1]}`)
    assert.equal(cells[4], target)
  }
})
