/**
 * startObservations: what `daemon --stats` / `--tracing` and the config sections switch on, on a
 * real socket on 127.0.0.1, and that stop() turns everything off again.
 */
import { equal, match, ok } from 'node:assert/strict'
import { startObservations } from '../../src/observations/start.ts'
import { clusterMetrics } from '../../src/observations/metrics.ts'
import { tracingEnabled } from '../../src/observations/tracing.ts'
import { metricsSection, tracingSection } from '../../src/observations/config.ts'
import { recordingLogger } from '../support/log.ts'

Deno.test('--stats serves /metrics whatever the file says; stop() closes it and stats go off', async () => {
  const { log, lines } = recordingLogger()
  const obs = await startObservations({
    metrics: { ...metricsSection.defaults(), prometheus_endpoint: '/ip4/127.0.0.1/tcp/0' },
    stats: true,
    peername: 'p',
    env: {},
    log,
  })
  try {
    ok(clusterMetrics, 'the process-wide metrics are on')
    const port = Number(obs.endpoint!.split('/')[4])
    match(lines.join('\n'), new RegExp(`stats collection enabled on ${obs.endpoint}/http/metrics`))
    clusterMetrics!.ipfsPinAdd.inc()
    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    equal(res.status, 200)
    match(await res.text(), /^ipfscluster_pins_pin_add 1$/m)
  } finally {
    await obs.stop()
    await obs.stop() // idempotent
  }
  equal(clusterMetrics, undefined)
})

Deno.test('stats and tracing off by default: nothing starts', async () => {
  const { log, lines } = recordingLogger()
  const obs = await startObservations({ peername: 'p', env: {}, log })
  equal(obs.metrics, undefined)
  equal(obs.endpoint, undefined)
  equal(obs.tracing, false)
  equal(clusterMetrics, undefined)
  equal(tracingEnabled(), false)
  equal(lines.length, 0)
  await obs.stop()
})

Deno.test('--tracing: spans on, to the endpoint the environment names over the file; off at stop', async () => {
  const { log, lines } = recordingLogger()
  const obs = await startObservations({
    tracing: { ...tracingSection.defaults(), otlp_endpoint: 'http://127.0.0.1:2' },
    tracingFlag: true,
    peername: 'p',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' },
    log,
  })
  equal(obs.tracing, true)
  equal(tracingEnabled(), true)
  match(
    lines.join('\n'),
    /tracing enabled: OTLP to http:\/\/127\.0\.0\.1:1\/v1\/traces as cluster-daemon-p, sampling 0\.3/,
  )
  await obs.stop()
  equal(tracingEnabled(), false)
})
