/**
 * The connection rules of the HTTP APIs (conn_guard.ts) on a manual clock: each timeout closes
 * a connection exactly when Go's net/http would, for the reason it names, and never earlier;
 * the connection cap admits, refuses and drops; the default cap follows the open-files limit.
 */
import assert from 'node:assert/strict'
import {
  connDeadline,
  connGuard,
  type ConnTimeouts,
  defaultMaxConnections,
  estimatedMaxConnections,
  type Expiry,
  HEADROOM_PROBE,
  rateLimited,
  type TrackedConn,
} from '../../../src/api/common/conn_guard.ts'
import { manualClock } from '../../support/manual_clock.ts'
import { openFilesHeadroom, parseSoftNofile, softOpenFilesLimit } from '../../../src/util/rlimit.ts'

/** The shared manual clock, counting the timers armed on it. */
function manual() {
  const clock = manualClock(0)
  let armed = 0
  const timeout = clock.timeout
  clock.timeout = (ms, fn) => {
    armed++
    return timeout(ms, fn)
  }
  return Object.assign(clock, { armed: () => armed })
}

const GO_DEFAULTS: ConnTimeouts = { readHeader: 5000, read: 0, write: 0, idle: 120_000 }

function setup(timeouts: Partial<ConnTimeouts> = {}, max = 100) {
  const clock = manual()
  const guard = connGuard({
    timeouts: { ...GO_DEFAULTS, ...timeouts },
    maxConnections: max,
    maxRefusals: 1,
    clock,
  })
  const open = () => {
    const log: { at: number; why: Expiry }[] = []
    const a = guard.admit((why) => log.push({ at: clock.now(), why }))
    assert.equal(a.kind, 'serve')
    return { conn: (a as { conn: TrackedConn }).conn, log }
  }
  return { clock, guard, open }
}

Deno.test('guard: a connection without complete headers is closed at read_header_timeout, not before', async () => {
  const { clock, open } = setup()
  const c = open()
  await clock.advance(4999)
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 5000, why: 'header' }])
  c.conn.close()
  assert.equal(clock.pending(), 0)
})

Deno.test('guard: read_header_timeout 0 falls back to read_timeout; both 0 means no limit', async () => {
  const a = setup({ readHeader: 0, read: 3000 })
  const c = a.open()
  await a.clock.advance(3000)
  assert.deepEqual(c.log, [{ at: 3000, why: 'header' }])

  const b = setup({ readHeader: 0, read: 0 })
  const d = b.open()
  await b.clock.advance(365 * 86_400_000)
  assert.deepEqual(d.log, [])
  assert.equal(b.clock.pending(), 0)
})

Deno.test('guard: a keep-alive connection is closed idle_timeout after its last response', async () => {
  const { clock, open } = setup()
  const c = open()
  await clock.advance(1000)
  const r = c.conn.request(false)
  await clock.advance(500)
  r.done() // at 1500
  await clock.advance(120_000 - 1)
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 121_500, why: 'idle' }])
})

Deno.test('guard: idle_timeout 0 falls back to read_timeout; both 0 keeps idle connections', async () => {
  const a = setup({ idle: 0, read: 7000 })
  const c = a.open()
  c.conn.request(false).done()
  await a.clock.advance(7000)
  assert.deepEqual(c.log, [{ at: 7000, why: 'idle' }])

  const b = setup({ idle: 0, read: 0 })
  const d = b.open()
  d.conn.request(false).done()
  await b.clock.advance(86_400_000)
  assert.deepEqual(d.log, [])
})

Deno.test('guard: a request in flight is never cut by the header or idle timeouts', async () => {
  const { clock, open } = setup()
  const c = open()
  await clock.advance(100)
  const r = c.conn.request(true) // a long upload or a long stream
  await clock.advance(3_600_000)
  assert.deepEqual(c.log, [])
  r.done()
  await clock.advance(120_000)
  assert.deepEqual(c.log, [{ at: 3_720_100, why: 'idle' }])
})

Deno.test('guard: a busy keep-alive connection touches the timer about once per timeout, not per request', async () => {
  const { clock, open } = setup()
  const c = open()
  for (let i = 0; i < 10_000; i++) {
    const r = c.conn.request(false)
    await clock.advance(10)
    r.done()
    await clock.advance(20)
  }
  assert.deepEqual(c.log, [])
  assert.ok(clock.armed() <= 5, `armed ${clock.armed()} timers for 10,000 requests`)
  c.conn.close()
  assert.equal(clock.pending(), 0)
})

Deno.test('guard: write_timeout counts from the headers to the end of the response', async () => {
  const { clock, open } = setup({ write: 2000 })
  const c = open()
  await clock.advance(300)
  const r = c.conn.request(false)
  await clock.advance(1999)
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 2300, why: 'write' }])
  r.done() // too late: already closed, and nothing more happens
  await clock.advance(200_000)
  assert.equal(c.log.length, 1)

  const d = open()
  const s = d.conn.request(false)
  await clock.advance(1999)
  s.done()
  await clock.advance(5000)
  assert.deepEqual(d.log, [])
})

Deno.test('guard: read_timeout counts from the accept for the first request, from the headers after', async () => {
  const { clock, open } = setup({ read: 10_000 })
  const c = open()
  await clock.advance(4000)
  c.conn.request(true) // body still coming
  await clock.advance(5999)
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 10_000, why: 'read' }])

  const d = open() // accepted at 10,000
  const first = d.conn.request(true)
  first.bodyDone()
  await clock.advance(30_000) // a slow handler: the body was read, read_timeout no longer applies
  assert.deepEqual(d.log, [])
  first.done()
  await clock.advance(1000)
  d.conn.request(true) // the second request: from its headers
  await clock.advance(9999)
  assert.deepEqual(d.log, [])
  await clock.advance(1)
  assert.deepEqual(d.log, [{ at: 51_000, why: 'read' }])
})

Deno.test('guard: a body left unread by its handler still counts against read_timeout until the next request', async () => {
  const { clock, open } = setup({ read: 10_000 })
  const c = open()
  const r = c.conn.request(true)
  await clock.advance(100)
  r.done() // answered without reading the body; the client may still be sending it
  await clock.advance(9899)
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 10_000, why: 'read' }])

  const d = open() // at 10,000
  const s = d.conn.request(true)
  s.done()
  await clock.advance(500)
  d.conn.request(false).done() // the engine parsed the next request: the body was all there
  await clock.advance(60_000)
  assert.deepEqual(d.log, [])
})

Deno.test('guard: h2 streams in flight: the earliest deadline wins; idle only once all are done', async () => {
  const { clock, open } = setup({ write: 5000 })
  const c = open()
  const a = c.conn.request(false) // at 0, deadline 5000
  await clock.advance(1000)
  const b = c.conn.request(false) // at 1000, deadline 6000
  a.done()
  a.done() // idempotent
  await clock.advance(4999) // 5999
  assert.deepEqual(c.log, [])
  await clock.advance(1)
  assert.deepEqual(c.log, [{ at: 6000, why: 'write' }])
  b.done()

  assert.deepEqual(
    connDeadline(GO_DEFAULTS, {
      acceptedAt: 0,
      seen: 2,
      lastDoneAt: 50,
      requests: [{ startedAt: 60, readFrom: 60, bodyDone: true }],
    }),
    undefined,
  )
})

Deno.test('guard: max_connections are served, the next ones refused (then dropped), and a close frees a slot', () => {
  const { guard, open } = setup({}, 2)
  const c1 = open()
  open()
  assert.equal(guard.open, 2)
  const r = guard.admit(() => {})
  assert.equal(r.kind, 'refuse')
  assert.equal(guard.admit(() => {}).kind, 'drop') // maxRefusals 1 in progress
  if (r.kind === 'refuse') {
    r.release()
    r.release() // idempotent
  }
  assert.equal(guard.refusing, 0)
  assert.equal(guard.admit(() => {}).kind, 'refuse')
  c1.conn.close()
  c1.conn.close() // idempotent: frees one slot, once
  assert.equal(guard.open, 1)
  assert.equal(guard.admit(() => {}).kind, 'serve')
  assert.equal(guard.admit(() => {}).kind, 'drop')
})

Deno.test('guard: the default cap is a quarter of the soft open-files limit, 16 to 4096', () => {
  assert.equal(defaultMaxConnections(256), 64)
  assert.equal(defaultMaxConnections(1024), 256)
  assert.equal(defaultMaxConnections(20), 16)
  assert.equal(defaultMaxConnections(1_048_576), 4096)
  assert.equal(defaultMaxConnections(Infinity), 4096)
  const limits =
    'Limit                     Soft Limit           Hard Limit           Units     \n' +
    'Max cpu time              unlimited            unlimited            seconds   \n' +
    'Max open files            256                  524288               files     \n'
  assert.equal(parseSoftNofile(limits), 256)
  assert.equal(parseSoftNofile(limits.replace('256 ', 'unlimited')), Infinity)
  assert.equal(parseSoftNofile('Max processes 10 10 processes\n'), undefined)
})

Deno.test('guard: an unknown limit is estimated from free descriptors, once, when 16 connections are open', () => {
  let asked = 0
  const guard = connGuard({
    timeouts: GO_DEFAULTS,
    maxConnections: 16,
    settleMax: () => {
      asked++
      return estimatedMaxConnections(60, guard.open)
    },
  })
  for (let i = 0; i < 16; i++) assert.equal(guard.admit(() => {}).kind, 'serve')
  assert.equal(asked, 0, 'nothing counted below the provisional cap')
  assert.equal(guard.admit(() => {}).kind, 'serve', '(60 free + 16 open) / 4 = 19')
  assert.equal(asked, 1)
  assert.equal(guard.maxConnections, 19)
  assert.equal(guard.admit(() => {}).kind, 'serve')
  assert.equal(guard.admit(() => {}).kind, 'serve')
  assert.equal(guard.admit(() => {}).kind, 'refuse')
  assert.equal(asked, 1, 'settled once')

  assert.equal(estimatedMaxConnections(HEADROOM_PROBE, 16), 1024, 'at most 1024 when estimated')
  assert.equal(estimatedMaxConnections(10, 16), 16)
  assert.equal(estimatedMaxConnections(undefined, 16), 256, 'no count: 1024 descriptors assumed')
})

Deno.test('rlimit: /proc/self/limits is read under -A; the headroom counts what can still be opened', () => {
  const proc = parseSoftNofile(Deno.readTextFileSync('/proc/self/limits'))
  assert.ok(proc !== undefined)
  assert.equal(softOpenFilesLimit(), proc)
  const free = openFilesHeadroom(64)
  assert.equal(free, 64, 'this test process has far more than 64 descriptors free')
  const held: Deno.FsFile[] = []
  try {
    const before = openFilesHeadroom(proc)!
    for (let i = 0; i < 10; i++) held.push(Deno.openSync('/dev/null'))
    assert.equal(openFilesHeadroom(proc), before - 10)
  } finally {
    for (const f of held) f.close()
  }
})

Deno.test('rateLimited: one line per interval, with the count of those held back', async () => {
  const clock = manual()
  const lines: string[] = []
  const log = rateLimited(10_000, (l) => lines.push(l), clock)
  log('refused')
  for (let i = 0; i < 500; i++) log('refused')
  await clock.advance(9999)
  log('refused')
  assert.deepEqual(lines, ['refused'])
  await clock.advance(1)
  log('refused')
  assert.deepEqual(lines, ['refused', 'refused (501 more since the last report)'])
})
