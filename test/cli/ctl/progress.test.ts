/**
 * `ctl add`'s progress bar: the frame it draws (bytes, rate, ETA), its pace, and — with a real
 * ctl process — that it appears on a terminal (a pseudo-terminal from util-linux `script`) and not
 * when stderr is a pipe, where scripts read only the outputs.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import {
  binaryBytes,
  progressBar,
  renderProgress,
  shortDuration,
} from '../../../cli/ctl/progress.ts'
import { manualClock } from '../../support/manual_clock.ts'
import { fakeIpfs } from '../../support/fake_ipfs.ts'
import { testApi } from '../../api/rest/helpers.ts'
import { mainArgs, runCmd } from '../../support/peer.ts'

Deno.test('progress: units, durations and one frame of the bar', () => {
  equal(binaryBytes(512), '512 B')
  equal(binaryBytes(1536), '1.5 KiB')
  equal(binaryBytes(1 << 30), '1.0 GiB')
  equal(binaryBytes(300 * 1024 * 1024), '300 MiB')
  equal(shortDuration(5.4), '5s')
  equal(shortDuration(75), '1m15s')
  equal(shortDuration(3725), '1h2m5s')
  const half = renderProgress({ sent: 512 << 20, total: 1 << 30, elapsedMs: 4000 }, 80)
  equal(half.length <= 80, true)
  match(half, /^\[=+> +\] {2}50% 512 MiB \/ 1\.0 GiB {2}128 MiB\/s {2}ETA 4s$/)
  const full = renderProgress({ sent: 1 << 30, total: 1 << 30, elapsedMs: 8000 }, 80)
  match(full, /^\[=+\] 100% 1\.0 GiB \/ 1\.0 GiB {2}128 MiB\/s {2}ETA 0s$/)
  equal(
    renderProgress({ sent: 3 << 20, elapsedMs: 1000 }),
    '3.0 MiB  3.0 MiB/s',
    'no total (a URL): bytes and rate only',
  )
})

Deno.test('progress: redraws at most every interval, always the last frame, wipes at the end', async () => {
  const clock = manualClock(0)
  const out: string[] = []
  const bar = progressBar({ total: 1000, write: (s) => void out.push(s), clock, intervalMs: 200 })
  bar.update(100)
  await clock.advance(50)
  bar.update(200) // within the interval: not drawn
  await clock.advance(200)
  bar.update(600)
  bar.update(1000) // the end is always drawn
  await bar.done()
  equal(out.length, 4, JSON.stringify(out))
  match(out[0], /^\r\[=.* {2}10% 100 B \/ 1000 B/)
  match(out[1], / {2}60% 600 B/)
  match(out[2], /^\r\[=+\] 100%/)
  deepEqual(out[3], '\r' + ' '.repeat(out[2].length - 1) + '\r')
})

Deno.test({
  name: 'ctl add: a progress bar on a terminal, none through a pipe',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir()
    const { api } = testApi({}, { ipfs: fakeIpfs() })
    await api.start()
    try {
      const file = join(dir, 'big.bin')
      await Deno.writeFile(file, crypto.getRandomValues(new Uint8Array(65536)).map((b) => b))
      const host = api.addresses()[0]
      const ctlArgs = mainArgs(['ctl', '--host', host, 'add', file])
      const piped = await runCmd(Deno.execPath(), ctlArgs)
      equal(piped.code, 0, piped.stderr)
      equal(piped.stderr, '', 'no bar when stderr is not a terminal')
      match(piped.stdout, /^added \S+ big\.bin\n$/)

      // `script` runs the command on a pseudo-terminal and copies what it wrote to stdout.
      const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
      const line = [Deno.execPath(), ...ctlArgs].map(quote).join(' ')
      const tty = await runCmd('script', ['-qec', line, '/dev/null'])
      equal(tty.code, 0, tty.stdout + tty.stderr)
      match(tty.stdout, /\[=+\] 100% 64\.\d KiB \/ 64\.0 KiB/, JSON.stringify(tty.stdout))
      ok(tty.stdout.includes('added '), tty.stdout)
    } finally {
      await api.stop()
      await Deno.remove(dir, { recursive: true })
    }
  },
})
