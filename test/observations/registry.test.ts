/**
 * The metrics registry and its text exposition (format 0.0.4), the /metrics handler, the
 * cluster metric set's scrape-time readings, and the tracing environment built from service.json.
 */
import { equal, match, ok, throws } from 'node:assert/strict'
import {
  escapeLabelValue,
  EXPOSITION_CONTENT_TYPE,
  formatValue,
  MetricNameError,
  Registry,
} from '../../src/observations/registry.ts'
import { metricsHandler } from '../../src/observations/endpoint.ts'
import {
  clusterMetrics,
  disableMetrics,
  enableMetrics,
  newClusterMetrics,
} from '../../src/observations/metrics.ts'
import { tracingSection } from '../../src/observations/config.ts'

/** The sample lines of a rendering (no comments), as a map from series to value. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), line.slice(at + 1))
  }
  return out
}

Deno.test('registry: counters, gauges and labels render as Prometheus text 0.0.4', () => {
  const reg = new Registry()
  const c = reg.counter('requests_total', 'Requests\nserved \\ here', ['route', 'code'])
  c.inc(1, '/pins/{cid}', '200')
  c.inc(2, '/pins/{cid}', '200')
  c.inc(1, '/id', '500')
  c.inc(-5, '/id', '500') // counters never go down
  const g = reg.gauge('temperature', 'A gauge')
  g.set(3.5)
  g.inc(-1)
  const text = reg.render()
  ok(text.endsWith('\n'))
  match(text, /^# HELP requests_total Requests\\nserved \\\\ here\n# TYPE requests_total counter\n/)
  match(text, /# TYPE temperature gauge\ntemperature 2.5\n/)
  const s = samples(text)
  equal(s.get('requests_total{route="/pins/{cid}",code="200"}'), '3')
  equal(s.get('requests_total{route="/id",code="500"}'), '1')
})

Deno.test('registry: histograms are cumulative, with +Inf, _sum and _count', () => {
  const reg = new Registry()
  const h = reg.histogram('op_seconds', 'Durations', ['op'], [0.1, 1, 10])
  for (const v of [0.05, 0.1, 0.5, 5, 50]) h.observe(v, 'pin')
  const s = samples(reg.render())
  equal(s.get('op_seconds_bucket{op="pin",le="0.1"}'), '2') // le is inclusive
  equal(s.get('op_seconds_bucket{op="pin",le="1"}'), '3')
  equal(s.get('op_seconds_bucket{op="pin",le="10"}'), '4')
  equal(s.get('op_seconds_bucket{op="pin",le="+Inf"}'), '5')
  equal(s.get('op_seconds_count{op="pin"}'), '5')
  equal(Number(s.get('op_seconds_sum{op="pin"}')), 55.65)
  equal(h.count('pin'), 5)
})

Deno.test('registry: label values are escaped; special values are spelled out', () => {
  equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
  equal(formatValue(NaN), 'NaN')
  equal(formatValue(Infinity), '+Inf')
  equal(formatValue(-Infinity), '-Inf')
  const reg = new Registry()
  reg.gauge('g', 'h', ['name']).set(1, 'say "hi"\n')
  ok(reg.render().includes('g{name="say \\"hi\\"\\n"} 1'))
})

Deno.test('registry: bad names, reserved labels, duplicates and wrong label counts are refused', () => {
  const reg = new Registry()
  throws(() => reg.counter('bad-name', 'x'), MetricNameError)
  throws(() => reg.counter('ok_name', 'x', ['bad-label']), MetricNameError)
  throws(() => reg.counter('ok_name2', 'x', ['__reserved']), MetricNameError)
  throws(() => reg.histogram('h', 'x', ['le']), MetricNameError)
  reg.gauge('twice', 'x')
  throws(() => reg.gauge('twice', 'x'), MetricNameError)
  const c = reg.counter('labelled', 'x', ['a', 'b'])
  throws(() => c.inc(1, 'only-one'), /expected 2 label values \(a, b\), got 1/)
})

Deno.test('registry: a reading that throws leaves its family out, not the scrape', () => {
  const reg = new Registry()
  reg.gauge('broken', 'x', [], () => {
    throw new Error('no reading')
  })
  reg.gauge('fine', 'y').set(7)
  const text = reg.render()
  match(text, /^# broken: not collected: Error: no reading$/m)
  ok(!text.includes('# TYPE broken'))
  equal(samples(text).get('fine'), '7')
})

Deno.test('metrics handler: GET /metrics is the exposition; other paths and methods are 4xx', async () => {
  const reg = new Registry()
  reg.counter('c_total', 'x').inc(4)
  const h = metricsHandler(reg)
  const ok200 = h(new Request('http://x/metrics'))
  equal(ok200.status, 200)
  equal(ok200.headers.get('content-type'), EXPOSITION_CONTENT_TYPE)
  match(await ok200.text(), /^c_total 4$/m)
  const head = h(new Request('http://x/metrics', { method: 'HEAD' }))
  equal(head.status, 200)
  const nf = h(new Request('http://x/other'))
  equal(nf.status, 404)
  match(await nf.text(), /not found: \/other \(metrics are at \/metrics\)/)
  const post = h(new Request('http://x/metrics', { method: 'POST', body: 'x' }))
  equal(post.status, 405)
  equal(post.headers.get('allow'), 'GET, HEAD')
})

Deno.test('cluster metrics: reference names, scrape-time readings from the sources', () => {
  const m = newClusterMetrics({
    trackerStatus: () => [['pin_queued', 4], ['pinning', 2], ['unpin_error', 1]],
    queueLengths: () => [['pin', 3], ['sync', 0]],
    peers: () => 5,
    raftStatus: () => ({ term: 7, commit: 42 }),
    informerMetrics: () => [
      { name: 'numpin', peer: 'P1', value: '12', received_at: 10_000 * 1e6 },
      { name: 'tags', peer: 'P1', value: 'not a number', received_at: 9_000 * 1e6 },
    ],
    now: () => 12_500,
  })
  m.ipfsPinAdd.inc()
  m.httpRequests.inc(1, 'restapi', '/pins/{cid}', 'POST', '200')
  const s = samples(m.registry.render())
  equal(s.get('ipfscluster_pins_pin_queued'), '4')
  equal(s.get('ipfscluster_pins_pinning'), '2')
  equal(s.get('ipfscluster_pins_pin_error'), '0')
  equal(s.get('ipfscluster_pins_by_status{status="unpin_error"}'), '1')
  equal(s.get('ipfscluster_pintracker_queue_length{queue="pin"}'), '3')
  equal(s.get('ipfscluster_peers'), '5')
  equal(s.get('ipfscluster_raft_term'), '7')
  equal(s.get('ipfscluster_raft_commit_index'), '42')
  equal(s.get('ipfscluster_pins_pin_add'), '1')
  equal(
    s.get(
      'ipfscluster_http_requests_total{api="restapi",route="/pins/{cid}",method="POST",code="200"}',
    ),
    '1',
  )
  equal(s.get('ipfscluster_informer_value{name="numpin",peer="P1"}'), '12')
  equal(s.get('ipfscluster_informer_value{name="tags",peer="P1"}'), undefined)
  equal(s.get('ipfscluster_informer_metric_age_seconds{name="numpin",peer="P1"}'), '2.5')
  equal(s.get('ipfscluster_informer_metric_age_seconds{name="tags",peer="P1"}'), '3.5')
  ok(Number(s.get('process_resident_memory_bytes')) > 0)
  ok(Number(s.get('deno_heap_used_bytes')) > 0)
})

Deno.test('cluster metrics: off until enabled, one set while on, off again after', () => {
  equal(clusterMetrics, undefined)
  const a = enableMetrics({ peers: () => 1 })
  const b = enableMetrics({ peers: () => 2 })
  equal(a, b)
  equal(clusterMetrics, a)
  equal(samples(a.registry.render()).get('ipfscluster_peers'), '2')
  disableMetrics()
  equal(clusterMetrics, undefined)
})

Deno.test('tracing config: otlp_endpoint must be an http(s) URL; jaeger_agent_endpoint is reported', () => {
  const warnings: string[] = []
  const cfg = tracingSection.load(
    { otlp_endpoint: 'https://otel.example:4318', jaeger_agent_endpoint: '/ip4/1.2.3.4/udp/6831' },
    {},
    (w) => warnings.push(w),
  )
  equal(cfg.otlp_endpoint, 'https://otel.example:4318')
  match(warnings.join('\n'), /jaeger_agent_endpoint: not implemented here.*otlp_endpoint/)
  throws(
    () => tracingSection.load({ otlp_endpoint: 'udp://x:1' }, {}, () => {}),
    /otlp_endpoint.*expected an http\(s\) URL/,
  )
})
