/**
 * The index of requests (api/pinsvc/index.ts) over a real Deno KV state: it follows the apply
 * hooks, lists newest first within exclusive bounds, pages, counts without walking, and rebuilds
 * what it cannot trust — a first start, a pinset changed behind it, a restored snapshot, entries
 * of CIDs the pinset lost — while trusting itself after a clean stop.
 */
import assert from 'node:assert/strict'
import { type RequestIndex, requestIndex } from '../../../src/api/pinsvc/index.ts'
import { newRecordKey, recordRequestId, withRecord } from '../../../src/api/pinsvc/records.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import { formatTime } from '../../../src/types/time.ts'
import { newPin, type Pin } from '../../../src/types/pin.ts'
import { benchCid as cidOf } from '../../../bench/cids.ts'
import { manualClock, turn } from '../../support/manual_clock.ts'

const T0 = Date.UTC(2026, 0, 1) // ms

/** A recordless pin of CID n, committed at second n. */
function plainPin(n: number, name = `p${n}`): Pin {
  const pin = newPin(cidOf(n), { name })
  pin.timestamp = formatTime(T0 + n * 1000)
  return pin
}

interface Env {
  kv: Deno.Kv
  state: PinState
  applied: number
  index: RequestIndex
  logs: string[]
  /** Commits pins to the state (and, unless `silent`, tells the index as consensus would). */
  pin(pins: Pin[], silent?: boolean): Promise<void>
  unpin(pins: Pin[], silent?: boolean): Promise<void>
  reopen(): Promise<void>
}

async function env(): Promise<Env> {
  const kv = await Deno.openKv(':memory:')
  const state = kvState(kv)
  const logs: string[] = []
  const make = () =>
    requestIndex({
      kv,
      state,
      appliedIndex: () => state.appliedIndex(),
      log: {
        debug() {},
        info: (m) => logs.push(m),
        warn: (m) => logs.push(m),
        error: (m) => logs.push(m),
      },
    })
  const e: Env = {
    kv,
    state,
    applied: 0,
    index: make(),
    logs,
    async pin(pins, silent) {
      await state.apply(pins.map((pin) => ({ type: 'pin', pin })), ++e.applied)
      if (!silent) { for (const p of pins) e.index.onPin(p) }
    },
    async unpin(pins, silent) {
      await state.apply(pins.map((pin) => ({ type: 'unpin', pin })), ++e.applied)
      if (!silent) { for (const p of pins) e.index.onUnpin(p) }
    },
    async reopen() {
      await e.index.stop()
      e.index = make()
      logs.length = 0
      await e.index.open()
      await e.index.ready()
    },
  }
  await e.index.open()
  await e.index.ready()
  return e
}

async function done(e: Env) {
  await e.index.stop()
  e.kv.close()
}

async function ids(index: RequestIndex, opts: { before?: number; after?: number } = {}) {
  const out: string[] = []
  for await (const x of index.list(opts)) out.push(x.requestid)
  return out
}

Deno.test('index: follows pins and unpins, newest first, with a kept count', async () => {
  const e = await env()
  try {
    await e.pin([plainPin(1), plainPin(3), plainPin(2)])
    await e.index.settled()
    assert.deepEqual(await ids(e.index), [cidOf(3), cidOf(2), cidOf(1)])
    assert.equal(e.index.count(), 3)
    // A re-commit moves a pin's own request to its new timestamp (the reference's created).
    await e.pin([plainPin(9, 'moved')].map((p) => ({ ...p, cid: cidOf(1) })))
    await e.unpin([plainPin(2)])
    await e.index.settled()
    const listed = []
    for await (const x of e.index.list()) listed.push(x)
    assert.deepEqual(listed, [
      { created: (T0 + 9000) * 1000, requestid: cidOf(1), cid: cidOf(1), name: 'moved' },
      { created: (T0 + 3000) * 1000, requestid: cidOf(3), cid: cidOf(3), name: 'p3' },
    ])
    assert.equal(e.index.count(), 2)
    assert.equal(await e.index.countRange(), 2)
    assert.equal((await e.kv.get(['pinsvc', 'n'])).value, 2, 'the count is stored with the entries')
  } finally {
    await done(e)
  }
})

Deno.test('index: records of one CID are requests of their own', async () => {
  const e = await env()
  try {
    const base = plainPin(5, 'ops')
    await e.pin([base])
    const k1 = newRecordKey()
    const k2 = newRecordKey()
    const r1 = recordRequestId(base.cid, k1)
    const r2 = recordRequestId(base.cid, k2)
    const s1 = withRecord(
      base.cid,
      base,
      k1,
      { name: 'a', origins: [], meta: {} },
      (T0 + 6000) * 1000,
    )
    const p1: Pin = { ...base, ...s1, timestamp: formatTime(T0 + 6000) }
    const s2 = withRecord(
      base.cid,
      p1,
      k2,
      { name: 'b', origins: [], meta: {} },
      (T0 + 7000) * 1000 + 1,
    )
    const p2: Pin = { ...p1, ...s2, timestamp: formatTime(T0 + 7000) }
    await e.pin([p1])
    await e.pin([p2])
    await e.index.settled()
    assert.deepEqual(await ids(e.index), [r2, r1, cidOf(5)])
    assert.equal(e.index.count(), 3)
    // The second record goes.
    const s3 = { ...p2, metadata: { ...p2.metadata } }
    delete s3.metadata![`pinsvc/${k2}`]
    await e.pin([s3])
    assert.ok(await e.index.whenIndexed(cidOf(5), (s) => !s.has(r2), { timeoutMs: 5000 }))
    assert.deepEqual(await ids(e.index), [r1, cidOf(5)])
    await e.unpin([s3])
    await e.index.settled()
    assert.deepEqual(await ids(e.index), [])
    assert.equal(e.index.count(), 0)
  } finally {
    await done(e)
  }
})

Deno.test('index: exclusive bounds, and pages of 1000 by before cover everything once', async () => {
  const e = await env()
  try {
    const pins = Array.from({ length: 2500 }, (_, i) => plainPin(i + 1))
    for (let i = 0; i < pins.length; i += 500) await e.pin(pins.slice(i, i + 500))
    await e.index.settled()
    const us = (n: number) => (T0 + n * 1000) * 1000
    assert.deepEqual(await ids(e.index, { before: us(4), after: us(1) }), [cidOf(3), cidOf(2)])
    assert.deepEqual(await ids(e.index, { before: us(2), after: us(1) }), [])
    assert.equal(await e.index.countRange({ before: us(4), after: us(1) }), 2)
    assert.equal(await e.index.countRange({ before: us(101) }), 100, 'the older side, walked')
    assert.equal(await e.index.countRange({ before: us(2401) }), 2400, 'the newer side, walked')

    // Paging as Kubo's client does: every page's count is what is older than its `before`.
    const seen: string[] = []
    let before: number | undefined
    for (;;) {
      const count = await e.index.countRange({ before })
      assert.equal(count, 2500 - seen.length)
      const page: { created: number; requestid: string }[] = []
      for await (const x of e.index.list({ before })) {
        if (page.length === 1000) break
        page.push(x)
      }
      seen.push(...page.map((x) => x.requestid))
      if (page.length < 1000) break
      before = page[999].created
    }
    assert.equal(seen.length, 2500)
    assert.equal(new Set(seen).size, 2500)
    assert.deepEqual(seen.slice(0, 2), [cidOf(2500), cidOf(2499)])
  } finally {
    await done(e)
  }
})

Deno.test('index: counts at any point match a walk, through writes, splits and a restart', async () => {
  const e = await env()
  try {
    const us = (n: number) => (T0 + n * 1000) * 1000
    const alive = new Set<number>()
    const add = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1000) {
        const batch = []
        for (let n = i; n < Math.min(to, i + 1000); n++) {
          batch.push(plainPin(n))
          alive.add(n)
        }
        await e.pin(batch)
      }
      await e.index.settled()
    }
    /** Every count against what is alive, at bounds spread over the whole range. */
    const check = async (what: string) => {
      assert.ok(e.index.ranksReady(), what)
      const sorted = [...alive].sort((a, b) => a - b)
      const older = (n: number) => sorted.filter((x) => x < n).length
      for (const b of [0, 1, 2, 4095, 4096, 4097, 8191, 9000, 12_345, 19_999, 20_000, 25_000]) {
        assert.equal(await e.index.countRange({ before: us(b) }), older(b), `${what}: before ${b}`)
        assert.equal(
          await e.index.countRange({ before: us(b), after: us(b - 3000) }),
          older(b) - older(b - 2999),
          `${what}: ${b - 3000} < created < ${b}`,
        )
      }
      assert.equal(await e.index.countRange(), sorted.length)
    }
    await add(1, 12_000) // past the spacing of the checkpoints: the last gap is split as it grows
    await check('appended')
    // Gone from the middle, and some older than everything: the checkpoints above them move.
    for (let i = 3000; i < 7000; i += 2) alive.delete(i)
    await e.unpin(Array.from({ length: 2000 }, (_, k) => plainPin(3000 + 2 * k)))
    await add(12_000, 20_000)
    await e.index.settled()
    await check('after removals and more')
    await e.reopen() // a clean stop saves them; the next start loads them
    assert.ok(e.index.ranksReady())
    await check('after a restart')
  } finally {
    await done(e)
  }
})

Deno.test('index: rebuilt at the first start and when the pinset changed behind it', async () => {
  const e = await env()
  try {
    // Pins committed while no index followed (a peer without the API, a state import).
    await e.index.stop()
    await e.pin([plainPin(1), plainPin(2), plainPin(3)], true)
    await e.reopen() // the applied index moved past the mark: rebuilt
    assert.deepEqual(await ids(e.index), [cidOf(3), cidOf(2), cidOf(1)])
    assert.equal(e.index.count(), 3)

    // A clean stop and nothing applied since: trusted, nothing rebuilt.
    await e.reopen()
    assert.equal(e.index.rebuilding(), false)
    assert.ok(!e.logs.some((l) => l.includes('rebuilding')), e.logs.join('\n'))

    // Applied behind its back after a clean stop: the applied index moved, so it rebuilds.
    await e.index.stop()
    await e.unpin([plainPin(2)], true)
    await e.pin([plainPin(4)], true)
    await e.reopen()
    assert.ok(e.logs.some((l) => l.includes('the pinset changed since the last stop')))
    assert.deepEqual(await ids(e.index), [cidOf(4), cidOf(3), cidOf(1)])
    assert.equal(e.index.count(), 3)
    assert.equal((await e.kv.get(['pinsvc', 'c', cidOf(2)])).value, null, 'a lost CID is dropped')

    // An unclean stop (no mark): the next start does not trust it either.
    await e.kv.delete(['pinsvc', 'mark'])
    await e.pin([plainPin(5)], true)
    await e.index.stop()
    await e.kv.delete(['pinsvc', 'mark'])
    e.index = requestIndex({ kv: e.kv, state: e.state, appliedIndex: () => e.state.appliedIndex() })
    await e.index.open()
    await e.index.ready()
    assert.deepEqual(await ids(e.index), [cidOf(5), cidOf(4), cidOf(3), cidOf(1)])
  } finally {
    await done(e)
  }
})

Deno.test('index: a restored snapshot rebuilds it while hook events still land', async () => {
  const e = await env()
  try {
    const pins = Array.from({ length: 1500 }, (_, i) => plainPin(i + 1))
    await e.pin(pins)
    await e.index.settled()
    // The snapshot: a pinset of other CIDs, written without hooks.
    await e.state.clear()
    const restored = Array.from({ length: 1200 }, (_, i) => plainPin(i + 2000))
    await e.pin(restored, true)
    e.index.onRestore()
    assert.ok(e.index.rebuilding())
    // An operation applied while the rebuild walks: written between its steps.
    await e.pin([plainPin(5000)])
    await e.unpin([plainPin(2000)])
    await e.index.ready()
    await e.index.settled()
    const got = await ids(e.index)
    assert.equal(got.length, 1200)
    assert.equal(got[0], cidOf(5000))
    assert.ok(!got.includes(cidOf(2000)))
    assert.ok(!got.includes(cidOf(1)))
    assert.equal(e.index.count(), 1200)
    let n = 0
    for await (const _ of e.kv.list({ prefix: ['pinsvc', 'c'] })) n++
    assert.equal(n, 1200, 'no entry of the old pinset is left')
  } finally {
    await done(e)
  }
})

Deno.test('index: whenIndexed answers at once, after the write, or false at its deadline', async () => {
  const e = await env()
  try {
    const cid = cidOf(1)
    assert.equal(await e.index.whenIndexed(cid, (s) => !s.has(cid)), true, 'already true')
    const waiting = e.index.whenIndexed(cid, (s) => s.has(cid), { timeoutMs: 10_000 })
    await e.pin([plainPin(1)])
    assert.equal(await waiting, true)
    assert.equal(await e.index.whenIndexed(cid, (s) => s.has('never'), { timeoutMs: 1 }), false)
    const ac = new AbortController()
    const aborted = e.index.whenIndexed(cid, (s) => s.has('never'), { signal: ac.signal })
    ac.abort()
    assert.equal(await aborted, false)
  } finally {
    await done(e)
  }
})

Deno.test('index: steps aside while the peer serves, but not for a write someone waits for', async () => {
  const kv = await Deno.openKv(':memory:')
  const state = kvState(kv)
  const clock = manualClock()
  let busy = false
  const index = requestIndex({
    kv,
    state,
    appliedIndex: () => state.appliedIndex(),
    foreground: { busy: () => busy },
    clock,
  })
  /** Turns of the event loop (no time passes) until `fn` holds. */
  const until = async (what: string, fn: () => boolean) => {
    for (let i = 0; i < 10_000 && !fn(); i++) await turn()
    assert.ok(fn(), what)
  }
  try {
    await index.open()
    await index.ready()
    busy = true
    const pins = Array.from({ length: 600 }, (_, i) => plainPin(i + 1))
    await state.apply(pins.map((pin) => ({ type: 'pin', pin })))
    for (const p of pins) index.onPin(p)
    for (let i = 0; i < 200; i++) await turn()
    assert.equal(index.count(), 0, 'nothing written while the peer is busy and nobody waits')
    // A write of this API waits for its CID: its batch goes at once.
    assert.ok(await index.whenIndexed(cidOf(600), (s) => s.has(cidOf(600))))
    assert.equal(index.count(), 256)
    // Busy still: one more batch a gap (1 s, looked at every 25 ms) later.
    await until('waiting out a gap', () => clock.pending() > 0)
    await clock.advance(900)
    assert.equal(index.count(), 256)
    await clock.advance(150)
    await until('a batch a second while busy', () => index.count() === 512)
    // Idle: the rest at once (the wait looks every 25 ms).
    busy = false
    await clock.advance(25)
    await until('the rest once idle', () => index.count() === 600)
  } finally {
    await index.stop()
    kv.close()
  }
})

Deno.test('index: a rebuild steps aside too, unless a listing waits for it', async () => {
  const kv = await Deno.openKv(':memory:')
  const state = kvState(kv)
  const clock = manualClock()
  const index = requestIndex({
    kv,
    state,
    appliedIndex: () => state.appliedIndex(),
    foreground: { busy: () => true },
    clock,
  })
  try {
    const pins = Array.from({ length: 5000 }, (_, i) => plainPin(i + 1))
    await state.apply(pins.map((pin) => ({ type: 'pin', pin })))
    await index.open()
    for (let i = 0; i < 300; i++) await turn()
    assert.ok(index.rebuilding(), 'a step a second while the peer serves (no time passed)')
    assert.ok(index.rebuildProgress() < 5000)
    await index.ready() // a listing waiting: the rest goes at once, no time passing
    assert.equal(index.count(), 5000)
  } finally {
    await index.stop()
    kv.close()
  }
})
