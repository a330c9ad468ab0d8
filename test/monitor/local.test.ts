import assert from 'node:assert/strict'
import { REALERT_AFTER } from '../../src/monitor/checker.ts'
import { pubsubmonSection } from '../../src/monitor/config.ts'
import { localMonitor, type MetricsTransport } from '../../src/monitor/local.ts'
import { type Alert, type Metric, newMetric } from '../../src/types/metric.ts'
import { formatTime } from '../../src/types/time.ts'

const T0 = 1_700_000_000_000
// A long interval: tests drive checks by hand unless they test the loop.
const manual = { ...pubsubmonSection.defaults(), check_interval: 3_600_000 }

Deno.test('publishMetric stores valid metrics; latestMetrics filters by the peerset', async () => {
  let t = T0
  let peers = ['self', 'other']
  const mon = localMonitor(manual, { now: () => t, peers: () => peers })
  await mon.publishMetric(newMetric('freespace', 'self', '100', 30_000, t, 100))
  mon.logMetric(newMetric('freespace', 'other', '50', 30_000, t, 50))
  mon.logMetric(newMetric('freespace', 'stranger', '10', 30_000, t, 10))
  const invalid = newMetric('numpin', 'self', '', 30_000, t)
  invalid.valid = false
  await mon.publishMetric(invalid)
  assert.deepEqual(mon.latestMetrics('freespace').map((m) => m.peer), ['other', 'self'])
  assert.deepEqual(mon.metricNames(), ['freespace'], 'invalid metrics are not stored')
  peers = ['self']
  assert.deepEqual(mon.latestMetrics('freespace').map((m) => m.peer), ['self'])
  t += 31_000
  assert.deepEqual(mon.latestMetrics('freespace'), [], 'expired metrics are not latest')
  await mon.stop()
})

Deno.test('an expired metric raises one alert per failure streak', async () => {
  let t = T0
  const mon = localMonitor(manual, { now: () => t, peers: () => ['self', 'other'] })
  mon.logMetric(newMetric('ping', 'other', '', 1_000, t))
  await mon.publishMetric(newMetric('ping', 'self', '', 60_000, t))
  t += 500
  assert.deepEqual(mon.check(), [])
  t += 1_000
  const [alert, ...more] = mon.check()
  assert.equal(more.length, 0)
  assert.equal(alert.name, 'ping')
  assert.equal(alert.peer, 'other')
  assert.equal(alert.triggered_at, formatTime(t))
  assert.deepEqual(mon.check(), [], 'no second alert in the same streak')
  // A fresh metric ends the streak; expiring again alerts again.
  mon.logMetric(newMetric('ping', 'other', '', 1_000, t))
  assert.deepEqual(mon.check(), [])
  t += 2_000
  assert.equal(mon.check().length, 1)
  await mon.stop()
})

Deno.test('a streak longer than 300 checks alerts again', async () => {
  let t = T0
  const mon = localMonitor(manual, { now: () => t, peers: () => ['other'] })
  mon.logMetric(newMetric('ping', 'other', '', 1_000, t))
  t += 2_000
  let alerts = 0
  for (let i = 0; i < REALERT_AFTER + 1; i++) alerts += mon.check().length
  assert.equal(alerts, 2)
  await mon.stop()
})

Deno.test('peers outside the peerset are not checked; without a peerset all are', async () => {
  let t = T0
  const scoped = localMonitor(manual, { now: () => t, peers: () => [] })
  const open = localMonitor(manual, { now: () => t })
  for (const mon of [scoped, open]) mon.logMetric(newMetric('ping', 'gone', '', 1_000, t))
  t += 2_000
  assert.equal(scoped.check().length, 0)
  assert.equal(open.check().length, 1)
  await scoped.stop()
  await open.stop()
})

Deno.test('alerts() streams alerts raised by the periodic checker; stop ends it', async () => {
  let t = T0
  const mon = localMonitor({ ...manual, check_interval: 5 }, { now: () => t })
  mon.logMetric(newMetric('ping', 'other', '', 1_000, t))
  t += 2_000
  const got: Alert[] = []
  const reader = (async () => {
    for await (const a of mon.alerts()) {
      got.push(a)
      await mon.stop()
    }
  })()
  await reader
  assert.equal(got.length, 1)
  assert.equal(got[0].peer, 'other')
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
