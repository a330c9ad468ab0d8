/**
 * Tracing on a real peer process beside a real Kubo: Deno's OpenTelemetry (OTEL_DENO=true,
 * OTLP/HTTP JSON) exports to a small OTLP receiver in the test, and a pin made through the REST
 * API is one trace: the REST request's span → cluster/Pin → consensus/LogPin, and
 * pintracker/Pin → ipfsconn/Pin under cluster/Pin.
 */
import { equal, match, ok } from 'node:assert/strict'
import { startKubo } from '../support/kubo.ts'
import { freePort, startPeerProcess } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  attributes?: { key: string; value: { stringValue?: string } }[]
}

/** An OTLP/HTTP receiver on 127.0.0.1 keeping every span it is sent (JSON encoding). */
function otlpReceiver() {
  const spans: OtlpSpan[] = []
  const paths: string[] = []
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: freePort(), onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname
      paths.push(path)
      const body = await req.text()
      if (path === '/v1/traces') {
        const doc = JSON.parse(body)
        for (const rs of doc.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []))
        }
      }
      return Response.json({})
    },
  )
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    spans,
    paths,
    stop: () => server.shutdown(),
  }
}

const attr = (s: OtlpSpan, key: string) =>
  s.attributes?.find((a) => a.key === key)?.value.stringValue

Deno.test('e2e tracing: a pin is one trace, REST → consensus → tracker → IPFS', async () => {
  const receiver = otlpReceiver()
  const kubo = await startKubo()
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    // deno-lint-ignore no-explicit-any
    edit: (cfg: any) => {
      cfg.observations.tracing.enable_tracing = true
    },
    env: {
      OTEL_DENO: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'cluster-test',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_DENO_CONSOLE: 'ignore',
    },
  })
  try {
    match(peer.logs(), /tracing enabled: OTLP to http:\/\/127\.0\.0\.1:\d+ as cluster-test/)
    const cid = await kubo.add(new TextEncoder().encode(`traced ${crypto.randomUUID()}`))
    const res = await fetch(`${peer.restUrl}/pins/${cid}`, { method: 'POST' })
    equal(res.status, 200, await res.text())
    // Spans leave in batches: wait for the last step's.
    await waitFor(
      () => receiver.spans.some((s) => s.name === 'ipfsconn/Pin' && attr(s, 'cid') === cid),
      { what: 'the ipfsconn/Pin span', timeoutMs: 60_000 },
    )
    const root = receiver.spans.find((s) => s.name === 'cluster/Pin' && attr(s, 'cid') === cid)
    ok(root, 'a cluster/Pin span')
    const trace = receiver.spans.filter((s) => s.traceId === root.traceId)
    const one = (name: string) => {
      const found = trace.filter((s) => s.name === name)
      equal(found.length, 1, `one ${name} span in the trace (${trace.map((s) => s.name)})`)
      return found[0]
    }
    const rest = one('restapi POST /pins/{hash}')
    const logPin = one('consensus/LogPin')
    const track = one('pintracker/Pin')
    const ipfs = one('ipfsconn/Pin')
    equal(root.parentSpanId, rest.spanId, 'cluster/Pin under the REST request')
    equal(logPin.parentSpanId, root.spanId, 'consensus/LogPin under cluster/Pin')
    equal(track.parentSpanId, root.spanId, 'the tracker continues the trace of cluster/Pin')
    equal(ipfs.parentSpanId, track.spanId, 'the IPFS request under the tracker operation')
    for (const s of [root, logPin, track, ipfs]) equal(attr(s, 'cid'), cid, s.name)
  } finally {
    await peer.stop()
    await kubo.stop()
    await receiver.stop()
  }
})

Deno.test("e2e tracing: enabled without Deno's telemetry, the peer says how to start it and runs", async () => {
  const kubo = await startKubo()
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    // deno-lint-ignore no-explicit-any
    edit: (cfg: any) => {
      cfg.observations.tracing.enable_tracing = true
      cfg.observations.tracing.otlp_endpoint = 'http://127.0.0.1:4318'
      cfg.cluster.peername = 'p1'
    },
    env: { OTEL_DENO: '' },
  })
  try {
    match(
      peer.logs(),
      /tracing is enabled but this process was not started with Deno's OpenTelemetry on: no traces are exported\. Start the daemon with OTEL_DENO=true OTEL_SERVICE_NAME=cluster-daemon-p1 OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/127\.0\.0\.1:4318 OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0\.3 OTEL_DENO_CONSOLE=ignore/,
    )
    const r = await fetch(`${peer.restUrl}/id`)
    equal(r.status, 200)
    await r.body?.cancel()
  } finally {
    await peer.stop()
    await kubo.stop()
  }
})
