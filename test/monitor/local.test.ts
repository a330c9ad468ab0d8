import assert from 'node:assert/strict'
import { REALERT_AFTER } from '../../src/monitor/checker.ts'
import { pubsubmonSection } from '../../src/monitor/config.ts'
import { localMonitor, type MetricsTransport } from '../../src/monitor/local.ts'
import { type Alert, type Metric, newMetric } from '../../src/types/metric.ts'
import { formatTime } from '../../src/types/time.ts'
import { manualClock } from '../support/manual_clock.ts'

const T0 = 1_700_000_000_000
// A long interval: tests drive checks by hand unless they test the loop.
const manual = { ...pubsubmonSection.defaults(), check_interval: 3_600_000 }

Deno.test('publishMetric stores valid metrics; latestMetrics filters by the peerset', async () => {
  const clock = manualClock(T0)
  let peers = ['self', 'other']
  const mon = localMonitor(manual, { clock, peers: () => peers })
  await mon.publishMetric(newMetric('freespace', 'self', '100', 30_000, clock.now(), 100))
  mon.logMetric(newMetric('freespace', 'other', '50', 30_000, clock.now(), 50))
  mon.logMetric(newMetric('freespace', 'stranger', '10', 30_000, clock.now(), 10))
  const invalid = newMetric('numpin', 'self', '', 30_000, clock.now())
  invalid.valid = false
  await mon.publishMetric(invalid)
  assert.deepEqual(mon.latestMetrics('freespace').map((m) => m.peer), ['other', 'self'])
  assert.deepEqual(mon.metricNames(), ['freespace'], 'invalid metrics are not stored')
  peers = ['self']
  assert.deepEqual(mon.latestMetrics('freespace').map((m) => m.peer), ['self'])
  await clock.advance(31_000)
  assert.deepEqual(mon.latestMetrics('freespace'), [], 'expired metrics are not latest')
  await mon.stop()
})

Deno.test('an expired metric raises one alert per failure streak', async () => {
  const clock = manualClock(T0)
  const mon = localMonitor(manual, { clock, peers: () => ['self', 'other'] })
  mon.logMetric(newMetric('ping', 'other', '', 1_000, clock.now()))
  await mon.publishMetric(newMetric('ping', 'self', '', 60_000, clock.now()))
  await clock.advance(500)
  assert.deepEqual(mon.check(), [])
  await clock.advance(1_000)
  const [alert, ...more] = mon.check()
  assert.equal(more.length, 0)
  assert.equal(alert.name, 'ping')
  assert.equal(alert.peer, 'other')
  assert.equal(alert.triggered_at, formatTime(clock.now()))
  assert.deepEqual(mon.check(), [], 'no second alert in the same streak')
  // A fresh metric ends the streak; expiring again alerts again.
  mon.logMetric(newMetric('ping', 'other', '', 1_000, clock.now()))
  assert.deepEqual(mon.check(), [])
  await clock.advance(2_000)
  assert.equal(mon.check().length, 1)
  await mon.stop()
})

Deno.test('a streak longer than 300 checks alerts again', async () => {
  const clock = manualClock(T0)
  const mon = localMonitor(manual, { clock, peers: () => ['other'] })
  mon.logMetric(newMetric('ping', 'other', '', 1_000, clock.now()))
  await clock.advance(2_000)
  let alerts = 0
  for (let i = 0; i < REALERT_AFTER + 1; i++) alerts += mon.check().length
  assert.equal(alerts, 2)
  await mon.stop()
})

Deno.test('peers outside the peerset are not checked; without a peerset all are', async () => {
  const clock = manualClock(T0)
  const scoped = localMonitor(manual, { clock, peers: () => [] })
  const open = localMonitor(manual, { clock })
  for (const mon of [scoped, open]) mon.logMetric(newMetric('ping', 'gone', '', 1_000, clock.now()))
  await clock.advance(2_000)
  assert.equal(scoped.check().length, 0)
  assert.equal(open.check().length, 1)
  await scoped.stop()
  await open.stop()
})

Deno.test('alerts() streams alerts raised by the periodic checker; stop ends it', async () => {
  const clock = manualClock(T0)
  const mon = localMonitor({ ...manual, check_interval: 5 }, { clock })
  mon.logMetric(newMetric('ping', 'other', '', 1_002, clock.now()))
  const got: Alert[] = []
  const reader = (async () => {
    for await (const a of mon.alerts()) {
      got.push(a)
      await mon.stop()
    }
  })()
  await clock.advance(1_000) // checks every 5 ms: the metric is still valid at the 1000 ms check
  assert.equal(got.length, 0)
  await clock.advance(5) // it expired at 1002 ms: the 1005 ms check raises the alert
  assert.equal(got.length, 1)
  await reader
  assert.equal(got[0].peer, 'other')
  assert.equal(got[0].triggered_at, formatTime(T0 + 1005))
  assert.equal(clock.pending(), 0, 'stop cancels the checker')
  await mon.stop()
})

Deno.test('alerts() ends when its signal aborts', async () => {
  const mon = localMonitor(manual)
  const ac = new AbortController()
  const reader = (async () => {
    for await (const _ of mon.alerts(ac.signal)) { /* none */ }
  })()
  ac.abort()
  await reader
  await mon.stop()
})

Deno.test('a transport carries published metrics out and received metrics in', async () => {
  const sent: Metric[] = []
  let deliver: (m: Metric) => void = () => {}
  let unsubscribed = false
  const transport: MetricsTransport = {
    publish: (m) => {
      sent.push(m)
      return Promise.resolve()
    },
    subscribe: (h) => {
      deliver = h
      return () => (unsubscribed = true)
    },
  }
  const mon = localMonitor(manual, { transport })
  const m = newMetric('freespace', 'self', '1', 30_000, Date.now())
  await mon.publishMetric(m)
  assert.deepEqual(sent, [m])
  deliver(newMetric('freespace', 'remote', '2', 30_000, Date.now()))
  assert.deepEqual(mon.latestMetrics('freespace').map((x) => x.peer), ['remote', 'self'])
  await mon.stop()
  await mon.stop()
  assert.equal(unsubscribed, true)
})
