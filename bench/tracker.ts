/**
 * The pin tracker alone: how fast `track` takes pins and how fast they reach an IPFS that
 * answers at once (the in-process double of the tests), without HTTP, Raft or Deno KV. The
 * ceiling the tracker puts on ingest; bench/main.ts measures the whole peer.
 *
 * @example
 * ```sh
 * deno run -A bench/tracker.ts             # 100,000 pins, three runs
 * deno run -A bench/tracker.ts --pins 20000 --runs 1
 * ```
 */
import { parseArgs } from 'node:util'
import { statelessSection } from '../src/pintracker/config.ts'
import { statelessTracker } from '../src/pintracker/stateless.ts'
import { formatTime } from '../src/types/time.ts'
import { fakeIpfs } from '../test/support/fake_ipfs.ts'
import { mapState, testPin } from '../test/pintracker/helpers.ts'
import { waitFor } from '../test/support/wait.ts'

const SELF = '12D3KooWBenchTrackerPeer'

async function run(n: number): Promise<{ trackPerS: number; endToEndPerS: number }> {
  const ipfs = fakeIpfs()
  const state = mapState()
  const tracker = statelessTracker(statelessSection.defaults(), {
    peerId: SELF,
    peername: () => 'bench',
    ipfs,
    state: () => state,
  })
  try {
    await tracker.start()
    const now = formatTime(Date.now())
    const pins = []
    for (let i = 0; i < n; i++) pins.push(await testPin(i, { allocations: [SELF], timestamp: now }))
    const t0 = performance.now()
    for (const p of pins) await tracker.track(p)
    const tracked = performance.now() - t0
    await waitFor(() => ipfs.pins.size === n, { what: 'every pin', timeoutMs: 600_000 })
    const total = performance.now() - t0
    return { trackPerS: n / (tracked / 1000), endToEndPerS: n / (total / 1000) }
  } finally {
    await tracker.stop()
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      pins: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '3' },
    },
  })
  const n = Number(values.pins)
  for (let r = 1; r <= Number(values.runs); r++) {
    const x = await run(n)
    console.log(
      `run ${r}: ${n} pins: track ${Math.round(x.trackPerS)} pins/s, ` +
        `in IPFS ${Math.round(x.endToEndPerS)} pins/s end to end`,
    )
  }
}
