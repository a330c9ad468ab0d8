import assert from 'node:assert/strict'
import { MetricsStore, MetricWindow, WINDOW_CAP } from '../../src/monitor/store.ts'
import { newMetric } from '../../src/types/metric.ts'

const T = 1_700_000_000_000

Deno.test('MetricWindow keeps the last 25 metrics, newest first', () => {
  const w = new MetricWindow()
  assert.equal(w.latest(), undefined)
  for (let i = 0; i < 30; i++) w.add(newMetric('m', 'p', String(i), 1000, T))
  assert.equal(WINDOW_CAP, 25)
  const all = w.all()
  assert.equal(all.length, 25)
  assert.equal(all[0].value, '29')
  assert.equal(all[24].value, '5')
  assert.equal(w.latest()?.value, '29')
})

Deno.test('latestValid: latest per peer, only valid and unexpired, ordered by peer', () => {
  const s = new MetricsStore()
  s.add(newMetric('freespace', 'pB', '1', 10_000, T), T)
  s.add(newMetric('freespace', 'pA', '1', 10_000, T), T)
  s.add(newMetric('freespace', 'pA', '2', 10_000, T + 5), T + 5) // newer value for pA
  s.add(newMetric('freespace', 'pC', '1', 100, T), T) // expires at T+100
  const invalid = newMetric('freespace', 'pD', '1', 10_000, T)
  invalid.valid = false
  s.add(invalid, T)
  const got = s.latestValid('freespace', T + 1000)
  assert.deepEqual(got.map((m) => [m.peer, m.value]), [['pA', '2'], ['pB', '1']])
  assert.equal(got[0].received_at, (T + 5) * 1_000_000, 'received_at is the receiver clock')
  assert.deepEqual(s.latestValid('other', T), [])
  assert.deepEqual(s.names(), ['freespace'])
  s.removePeer('pA')
  assert.deepEqual(s.latestValid('freespace', T + 1000).map((m) => m.peer), ['pB'])
})

Deno.test('add: a metric expiring before the latest one held is older (it came late): dropped', () => {
  const s = new MetricsStore()
  assert.ok(s.add(newMetric('freespace', 'pA', 'new', 10_000, T + 1000), T + 1000))
  assert.equal(s.add(newMetric('freespace', 'pA', 'old', 10_000, T), T + 1001), undefined)
  assert.equal(s.peerLatest('freespace', 'pA')?.value, 'new')
  // The same expiry (a repeat) and later ones are taken.
  assert.ok(s.add(newMetric('freespace', 'pA', 'again', 10_000, T + 1000), T + 1002))
  assert.ok(s.add(newMetric('freespace', 'pA', 'newer', 10_000, T + 2000), T + 2000))
  assert.equal(s.peerLatest('freespace', 'pA')?.value, 'newer')
})

Deno.test('latestValid: a repeated ask answers the same list until a metric arrives, a peer leaves or one expires', () => {
  const s = new MetricsStore()
  s.add(newMetric('freespace', 'pA', '1', 10_000, T), T)
  s.add(newMetric('freespace', 'pB', '1', 1_000, T), T) // expires at T + 1000
  const first = s.latestValid('freespace', T + 10)
  assert.equal(s.latestValid('freespace', T + 20), first, 'the same answer')
  assert.deepEqual(s.latestValid('freespace', T + 1000).map((m) => m.peer), ['pA'], 'pB expired')
  s.add(newMetric('freespace', 'pC', '1', 10_000, T + 1001), T + 1001)
  assert.deepEqual(s.latestValid('freespace', T + 1002).map((m) => m.peer), ['pA', 'pC'])
  s.removePeer('pA')
  assert.deepEqual(s.latestValid('freespace', T + 1003).map((m) => m.peer), ['pC'])
})
