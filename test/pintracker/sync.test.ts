/**
 * The tracker's sync pass (start-up sync, recover): the backlog is a cursor over the state, a
 * window of operations at a time; statuses and pinQueueSize cover the pins it has not reached;
 * new pins go first; failures are logged rate-limited and summarized.
 */
import assert from 'node:assert/strict'
import { statelessSection } from '../../src/pintracker/config.ts'
import {
  type LogLevel,
  type StatelessTracker,
  statelessTracker,
  SYNC_WINDOW,
} from '../../src/pintracker/stateless.ts'
import type { Pin } from '../../src/types/pin.ts'
import { parseStatusFilter } from '../../src/types/status.ts'
import { formatTime } from '../../src/types/time.ts'
import { systemClock } from '../../src/util/clock.ts'
import { type FakeIpfs, fakeIpfs } from '../support/fake_ipfs.ts'
import { collect, type MapState, mapState, testPin, waitFor } from './helpers.ts'

const SELF = '12D3KooWSelfPeer'
const OTHER = '12D3KooWOtherPeer'
const T0 = Date.parse('2026-03-01T10:00:00Z')
const OLD = formatTime(T0 - 48 * 3_600_000) // older than priority_pin_max_age

interface Setup {
  tracker: StatelessTracker
  ipfs: FakeIpfs
  state: MapState
  lines: string[]
  clock: { advance(ms: number): void }
  [Symbol.asyncDispose](): Promise<void>
}

function setup(concurrentPins = 4): Setup {
  const ipfs = fakeIpfs()
  const state = mapState()
  const lines: string[] = []
  let t = T0
  const tracker = statelessTracker({
    ...statelessSection.defaults(),
    concurrent_pins: concurrentPins,
  }, {
    peerId: SELF,
    peername: () => 'peer0',
    ipfs,
    state: () => state,
    clock: { now: () => t, sleep: (ms, signal) => systemClock.sleep(ms, signal) },
    log: (level: LogLevel, msg: string) => void lines.push(`${level.toUpperCase()} ${msg}`),
  })
  return {
    tracker,
    ipfs,
    state,
    lines,
    clock: { advance: (ms) => void (t += ms) },
    [Symbol.asyncDispose]: () => tracker.stop(),
  }
}

/** `n` old pins allocated here, stored in the state (none in IPFS). */
async function backlog(s: Setup, n: number, from = 0): Promise<Pin[]> {
  const pins: Pin[] = []
  for (let i = from; i < from + n; i++) {
    const pin = await testPin(i, { allocations: [SELF], timestamp: OLD })
    s.state.put(pin)
    pins.push(pin)
  }
  return pins
}

const byKey = (pins: Pin[]) => pins.map((p) => p.cid).sort()
const count = async (s: Setup, filter: string) =>
  (await collect(s.tracker.statusAll(parseStatusFilter(filter)))).length

Deno.test('a backlog is walked a window at a time; statuses and pinQueueSize cover the rest', async () => {
  await using s = setup(4)
  const N = 3 * SYNC_WINDOW
  const pins = await backlog(s, N)
  const gate = s.ipfs.holdPins()
  await s.tracker.start()
  const running = 3 // concurrent_pins − 1: one worker stays free for new pins
  // Once the first walk has counted everything: the window, the running ones, and the rest.
  await waitFor(() => s.tracker.pinQueueSize() === N - running, { what: 'the backlog counted' })
  assert.equal(s.ipfs.concurrency.current, running)
  assert.ok(
    s.tracker.operationCount() <= SYNC_WINDOW + running,
    `${s.tracker.operationCount()} operations held for a backlog of ${N}`,
  )
  // The last pin in key order is not reached: queued, as of the start of the pass.
  const last = await s.tracker.status(byKey(pins).at(-1)!)
  assert.equal(last.status, 'pin_queued')
  assert.equal(last.timestamp, formatTime(T0))
  assert.equal(last.attempt_count, 0)
  assert.equal(await count(s, 'queued'), N - running)
  assert.equal(await count(s, 'pinning'), running)
  assert.equal(await count(s, 'unexpectedly_unpinned'), 0)

  let most = 0
  gate.release()
  await waitFor(() => {
    most = Math.max(most, s.tracker.operationCount())
    return s.ipfs.pins.size === N
  }, { what: 'every pin' })
  assert.ok(most <= SYNC_WINDOW + 4, `at most a window of operations (saw ${most})`)
  await waitFor(() => s.tracker.operationCount() === 0)
  assert.equal(s.tracker.pinQueueSize(), 0)
  assert.equal(await count(s, 'pinned'), N)
})

Deno.test('statuses while the pass runs: reached, not reached, remote, sharded, lost behind the cursor', async () => {
  await using s = setup(2)
  const missing = await backlog(s, 2 * SYNC_WINDOW)
  const held = await testPin(100_000, { allocations: [SELF], timestamp: OLD })
  s.state.put(held)
  s.ipfs.addPin(held.cid)
  const remote = await testPin(100_001, { allocations: [OTHER], timestamp: OLD })
  const meta = await testPin(100_002, { type: 'meta-pin', allocations: [], timestamp: OLD })
  s.state.put(remote)
  s.state.put(meta)
  const gate = s.ipfs.holdPins()
  await s.tracker.start()
  await waitFor(() => s.tracker.pinQueueSize() === 2 * SYNC_WINDOW - 1, { what: 'counted' })
  assert.equal((await s.tracker.status(held.cid)).status, 'pinned')
  assert.equal((await s.tracker.status(remote.cid)).status, 'remote')
  assert.equal((await s.tracker.status(meta.cid)).status, 'sharded')
  // The first pin in key order was reached (queued or running); take one the pass has passed
  // and that IPFS has lost since: the reference's unexpectedly_unpinned, not queued.
  const keys = byKey([...missing, held])
  const reached = keys.indexOf(held.cid) < SYNC_WINDOW ? held : undefined
  if (reached) {
    s.ipfs.pins.clear()
    const pi = await s.tracker.status(held.cid)
    assert.equal(pi.status, 'unexpectedly_unpinned')
    assert.equal(pi.error, 'the item should be pinned but it is not')
  }
  const all = await collect(s.tracker.statusAll(0))
  assert.equal(all.length, 2 * SYNC_WINDOW + 3)
  const statuses = new Set(all.map((p) => p.status))
  assert.deepEqual(
    [...statuses].sort(),
    ['pin_queued', 'pinning', 'remote', 'sharded', reached ? 'unexpectedly_unpinned' : 'pinned']
      .sort(),
  )
  gate.release()
})

Deno.test('new pins are not starved by a backlog: one worker is always left to them', async () => {
  await using s = setup(2)
  await backlog(s, 50)
  s.ipfs.holdPins() // the backlog's pins never finish in this test
  await s.tracker.start()
  await waitFor(() => s.ipfs.concurrency.current === 1, { what: 'a backlog pin running' })
  await new Promise((r) => setTimeout(r, 20))
  assert.equal(s.ipfs.concurrency.current, 1, 'the backlog holds one worker of two')
  const fresh = await testPin(999, { allocations: [SELF], timestamp: formatTime(T0) })
  s.state.put(fresh)
  await s.tracker.track(fresh)
  await waitFor(() => s.ipfs.pinOrder.includes(fresh.cid), { what: 'the new pin to start' })
  assert.equal(s.ipfs.concurrency.current, 2)
  assert.equal((await s.tracker.status(fresh.cid)).priority_pin, true)
})

Deno.test('recoverAll of a backlog streams every missing pin as queued, holding a window', async () => {
  await using s = setup(4)
  const N = 2 * SYNC_WINDOW
  const pins = await backlog(s, N)
  const gate = s.ipfs.holdPins()
  const rec = await collect(s.tracker.recoverAll())
  assert.deepEqual(rec.map((p) => p.cid).sort(), byKey(pins))
  assert.ok(rec.every((p) => p.status === 'pin_queued'))
  assert.ok(s.tracker.operationCount() <= SYNC_WINDOW, `${s.tracker.operationCount()} operations`)
  assert.ok(s.lines.includes(`INFO recover: ${N} items re-queued`), s.lines.join('\n'))
  assert.ok(!s.lines.some((l) => l.includes('Restarting')), 'no line per pin')
  await s.tracker.start()
  gate.release()
  await waitFor(() => s.ipfs.pins.size === N, { what: 'every pin' })
})

Deno.test('failing pins at start: one line for the failure, one summary with the count and the command', async () => {
  await using s = setup(4)
  const N = 300
  await backlog(s, N)
  s.ipfs.failAll.pin = 'routing: not found'
  await s.tracker.start()
  await waitFor(() => s.lines.some((l) => l.includes('start-up sync')), { what: 'the summary' })
  const [first] = s.lines
  assert.match(first, /^ERROR pin (\S+): routing: not found$/)
  assert.deepEqual(s.lines.slice(1), [
    `ERROR pin: routing: not found (and ${N - 1} more pin failures like it since ${
      formatTime(T0)
    })`,
    `ERROR start-up sync: ${N} of ${N} pins were not pinned in IPFS and were queued: 0 pinned, ` +
    `${N} failed (first error: routing: not found); ` +
    'list them with: ipfs-cluster-ctl status --filter pin_error',
  ])
  assert.equal(await count(s, 'pin_error'), N)

  // Recovered within the interval: the same failures are counted, not logged again.
  const before = s.lines.length
  await collect(s.tracker.recoverAll())
  await waitFor(() => s.lines.length >= before + 3, { what: 'the recover summary' })
  const again = s.lines.slice(before)
  assert.equal(again.filter((l) => /^ERROR pin \S+:/.test(l)).length, 0, again.join('\n'))
  assert.ok(again.includes(`INFO recover: ${N} items re-queued`), again.join('\n'))
  assert.ok(again.some((l) => l.startsWith(`ERROR recover: ${N} of ${N} pins`)), again.join('\n'))

  // After the interval, the next failure is logged again, with the count since.
  s.clock.advance(60_000)
  const mark = s.lines.length
  await collect(s.tracker.recoverAll())
  await waitFor(() => s.lines.slice(mark).some((l) => l.startsWith('ERROR recover')))
  const logged = s.lines.slice(mark).filter((l) => /^ERROR pin \S+: routing: not found/.test(l))
  assert.equal(logged.length, 1, s.lines.slice(mark).join('\n'))
  for (const l of s.lines) assert.doesNotMatch(l, /pin (\S+): pin \1:/, 'no doubled prefix')
})

Deno.test('while the API is busy, catch-up operations wait for their turn; new pins do not', async () => {
  const busy = { v: true }
  const held: { ms: number; release: () => void }[] = []
  const ipfs = fakeIpfs()
  const state = mapState()
  const tracker = statelessTracker({ ...statelessSection.defaults(), concurrent_pins: 4 }, {
    peerId: SELF,
    peername: () => 'peer0',
    ipfs,
    state: () => state,
    foreground: { busy: () => busy.v },
    clock: {
      now: () => T0,
      sleep: (ms, signal) =>
        new Promise((resolve, reject) => {
          held.push({ ms, release: () => resolve() })
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
        }),
    },
  })
  try {
    const s = { state } as Setup
    const pins = await backlog(s, 20)
    await tracker.start()
    // One catch-up pin went at once; then each of the three workers catch-up operations may
    // hold waits its turn, 10 ms after the one before.
    await waitFor(() => held.length === 3, { what: 'paced steps' })
    assert.deepEqual(held.map((h) => h.ms), [10, 20, 30])
    assert.equal(ipfs.pinOrder.length, 1)
    const fresh = await testPin(999, { allocations: [SELF], timestamp: formatTime(T0) })
    state.put(fresh)
    await tracker.track(fresh)
    await waitFor(() => ipfs.isPinned(fresh.cid), { what: 'the new pin, without waiting' })
    assert.equal(ipfs.pinOrder.filter((c) => c !== fresh.cid).length, 1, 'the backlog waits')
    // The API goes quiet: what waited goes on, and the rest at full speed.
    busy.v = false
    for (const h of held.splice(0)) h.release()
    await waitFor(() => pins.every((p) => ipfs.isPinned(p.cid)), { what: 'the whole backlog' })
    assert.equal(held.length, 0, 'no waits once the API is quiet')
  } finally {
    await tracker.stop()
  }
})

Deno.test('the count of what a pass owes tells local pins from the rest, with or without parsing', async () => {
  await using s = setup(4)
  let n = 0
  const put = async (count: number, fields: Partial<Pin>) => {
    for (let i = 0; i < count; i++) s.state.put(await testPin(n++, { timestamp: OLD, ...fields }))
  }
  await put(1100, { allocations: [SELF] }) // local: its text names this peer
  await put(300, { allocations: [], replication_factor_min: -1, replication_factor_max: -1 })
  await put(200, { allocations: [OTHER] }) // remote: decided from the text
  await put(50, { allocations: [OTHER], name: `copy of ${SELF}` }) // remote, once parsed
  await put(10, {
    type: 'meta-pin',
    allocations: [],
    replication_factor_min: -1,
    replication_factor_max: -1,
  })
  s.ipfs.holdPins()
  await s.tracker.start()
  const running = 3
  await waitFor(() => s.tracker.pinQueueSize() === 1400 - running, { what: 'the count' })
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(s.tracker.pinQueueSize(), 1400 - running)
  assert.equal(await count(s, 'queued'), 1400 - running)
  assert.equal(await count(s, 'remote'), 250)
  assert.equal(await count(s, 'sharded'), 10)
})
