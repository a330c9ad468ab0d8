/**
 * The tracker's mark of a clean stop: a restart whose IPFS pinset is the one the last clean stop
 * left walks nothing; every other restart walks as before.
 */
import assert from 'node:assert/strict'
import { statelessSection } from '../../src/pintracker/config.ts'
import { type LogLevel, statelessTracker } from '../../src/pintracker/stateless.ts'
import type { PinTracker } from '../../src/components.ts'
import type { Pin } from '../../src/types/pin.ts'
import { formatTime } from '../../src/types/time.ts'
import { fakeIpfs } from '../support/fake_ipfs.ts'
import { type MapState, mapState, testPin, waitFor } from './helpers.ts'

const SELF = '12D3KooWSelfPeer'

/** IPFS, the state and the mark store outlive each tracker, as they outlive a process. */
function world() {
  const ipfs = fakeIpfs()
  const state = mapState()
  const store = { mark: undefined as string | undefined, puts: 0 }
  const lines: string[] = []
  const start = async (beforeStart?: (t: PinTracker) => void) => {
    const tracker = statelessTracker({ ...statelessSection.defaults(), concurrent_pins: 2 }, {
      peerId: SELF,
      peername: () => 'peer0',
      ipfs,
      state: () => state,
      log: (level: LogLevel, msg: string) => void lines.push(`${level.toUpperCase()} ${msg}`),
      syncMark: {
        put: (mark) => {
          store.puts++
          store.mark = mark
          return Promise.resolve()
        },
        take: () => {
          const m = store.mark
          store.mark = undefined
          return Promise.resolve(m)
        },
      },
    })
    beforeStart?.(tracker)
    await tracker.start()
    return tracker
  }
  return { ipfs, state, store, lines, start }
}

async function localPins(state: MapState, from: number, n: number): Promise<Pin[]> {
  const pins: Pin[] = []
  for (let i = from; i < from + n; i++) {
    const pin = await testPin(i, {
      allocations: [SELF],
      replication_factor_min: 1,
      replication_factor_max: 1,
      timestamp: formatTime(Date.now()),
    })
    state.put(pin)
    pins.push(pin)
  }
  return pins
}

/** Starts a tracker and waits for its start-up pass to end (its summary line). */
async function startAndSync(
  w: ReturnType<typeof world>,
  beforeStart?: (t: PinTracker) => void,
) {
  const before = w.lines.length
  const tracker = await w.start(beforeStart)
  await waitFor(() => w.lines.slice(before).some((l) => l.includes('start-up sync')), {
    what: 'the start-up summary',
  })
  return { tracker, line: w.lines.slice(before).find((l) => l.includes('start-up sync'))! }
}

Deno.test('a clean stop leaves a mark; a restart against the same IPFS pinset walks nothing', async () => {
  const w = world()
  const pins = await localPins(w.state, 0, 50)
  for (const p of pins.slice(0, 20)) w.ipfs.addPin(p.cid) // 30 missing: the pass pins them
  let { tracker } = await startAndSync(w)
  assert.equal(w.ipfs.pins.size, 50)
  // Pins and unpins after the pass keep the tracker's view of IPFS current.
  const later = await localPins(w.state, 100, 5)
  for (const p of later) await tracker.track(p)
  w.state.delete(pins[0].cid)
  await tracker.untrack(pins[0])
  await waitFor(() => w.ipfs.pins.size === 54 && tracker.operationCount() === 0, {
    what: 'the later pins and the unpin',
  })
  await tracker.stop()
  assert.equal(w.store.puts, 1, 'a mark was left')

  const scans = w.state.calls.scan
  const again = await startAndSync(w)
  tracker = again.tracker
  assert.match(again.line, /same pins as at the last clean stop/)
  assert.equal(w.state.calls.scan, scans, 'the state was not walked')
  assert.equal(w.store.mark, undefined, 'the mark was taken out at start')
  await tracker.stop()
  assert.equal(w.store.puts, 2, 'and a new one left at this clean stop')
})

Deno.test('a pin gone from IPFS while stopped: the digest differs, the pass walks and re-pins it', async () => {
  const w = world()
  const pins = await localPins(w.state, 0, 30)
  for (const p of pins) w.ipfs.addPin(p.cid)
  let { tracker } = await startAndSync(w)
  await tracker.stop()
  assert.ok(w.store.mark)
  w.ipfs.pins.delete([...w.ipfs.pins.keys()][7]) // `ipfs pin rm` behind the cluster's back
  const scans = w.state.calls.scan
  ;({ tracker } = await startAndSync(w))
  assert.ok(w.state.calls.scan > scans, 'the state was walked')
  await waitFor(() => w.ipfs.pins.size === 30, { what: 'the lost pin to be pinned again' })
  await tracker.stop()
})

Deno.test('no mark after a failure, with operations left, or after a crash', async () => {
  const w = world()
  const pins = await localPins(w.state, 0, 10)
  w.ipfs.failPin.add(pins[3].cid)
  let { tracker } = await startAndSync(w)
  await tracker.stop()
  assert.equal(w.store.puts, 0, 'a pin failed: IPFS does not hold every local pin')

  // The failure cleared, the next pass verifies everything: a mark again.
  w.ipfs.failPin.clear()
  ;({ tracker } = await startAndSync(w))
  assert.equal(w.ipfs.pins.size, 10)
  await tracker.stop()
  assert.equal(w.store.puts, 1) // An operation still running at the stop: no mark (the start took the last one out).
  ;({ tracker } = await startAndSync(w))
  assert.equal(w.store.mark, undefined)
  w.ipfs.holdPins()
  await tracker.track((await localPins(w.state, 20, 1))[0])
  await waitFor(() => w.ipfs.concurrency.current === 1, { what: 'the pin to be running' })
  await tracker.stop()
  assert.equal(w.store.puts, 1, 'no mark with an operation unfinished')
  // A crash (no stop at all) leaves no mark either: it was taken out at start.
  assert.equal(w.store.mark, undefined)
})

Deno.test('a pin IPFS already held, pinned again, counts twice: the next start walks (safe side)', async () => {
  const w = world()
  const pins = await localPins(w.state, 0, 10)
  for (const p of pins) w.ipfs.addPin(p.cid)
  let { tracker } = await startAndSync(w)
  await tracker.track({ ...pins[4], name: 'renamed' }) // `pin add` again with a new name
  await waitFor(() => tracker.operationCount() === 0, { what: 'the re-pin' })
  await tracker.stop()
  assert.equal(w.store.puts, 1)
  const scans = w.state.calls.scan
  ;({ tracker } = await startAndSync(w))
  assert.ok(w.state.calls.scan > scans, 'the state was walked')
  await tracker.stop()
})

Deno.test('a pinset replaced under the tracker (resync): no mark until the new pinset was walked', async () => {
  const w = world()
  await localPins(w.state, 0, 5)
  let { tracker } = await startAndSync(w)
  await waitFor(() => w.ipfs.pins.size === 5 && tracker.operationCount() === 0)
  // A restored snapshot: new pins in the state that never went through track, and a stop
  // before the pass that walks them is done. IPFS lacks them: a mark would be a lie.
  const gate = w.ipfs.holdPins()
  await localPins(w.state, 100, 3)
  tracker.resync()
  await waitFor(() => w.ipfs.concurrency.current > 0, { what: 'the pass to pin the new pins' })
  await tracker.stop()
  gate.release()
  assert.equal(w.store.puts, 0, 'stopped during the pass: no mark') // The next start walks, pins them, and a clean stop after that pass leaves a mark again.
  ;({ tracker } = await startAndSync(w))
  await waitFor(() => w.ipfs.pins.size === 8 && tracker.operationCount() === 0)
  await tracker.stop()
  assert.equal(w.store.puts, 1)
})

Deno.test('a snapshot restored before the tracker starts: the start-up pass walks despite the mark', async () => {
  const w = world()
  const pins = await localPins(w.state, 0, 5)
  for (const p of pins) w.ipfs.addPin(p.cid)
  let { tracker } = await startAndSync(w)
  await tracker.stop()
  assert.ok(w.store.mark, 'a clean stop left a mark')
  // The next process installs a snapshot before its tracker starts (a follower restarted behind
  // a compacted log): pins that never went through track, which the mark knows nothing of.
  await localPins(w.state, 100, 3)
  const scans = w.state.calls.scan
  let line
  ;({ tracker, line } = await startAndSync(w, (t) => t.resync()))
  assert.doesNotMatch(line, /same pins as at the last clean stop/)
  assert.ok(w.state.calls.scan > scans, 'the state was walked')
  await waitFor(() => w.ipfs.pins.size === 8, { what: 'the restored pins to be pinned' })
  await tracker.stop()
})
