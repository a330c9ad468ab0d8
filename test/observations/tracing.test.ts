/**
 * tracing.ts and otlp.ts in this process, with the exporter's fetch injected: what is sampled,
 * how spans nest, what "not sampled" left for the tracker does, the OTLP JSON sent, the settings'
 * precedence, and that a collector away or slow costs spans, never the caller.
 */
import { deepEqual, equal, match, ok, rejects } from 'node:assert/strict'
import {
  disableTracing,
  enableTracing,
  rememberTrace,
  takeTrace,
  traced,
  tracedLeaf,
  tracedRoot,
  tracedUnder,
  traceOperation,
  tracingSettings,
  tracingStats,
} from '../../src/observations/tracing.ts'
import { SpanContext, SpanExporter } from '../../src/observations/otlp.ts'
import type { Logger } from '../../src/util/log.ts'
import { recordingLogger } from '../support/log.ts'

interface Sent {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: { key: string; value: { stringValue: string } }[]
  status?: { code: number; message: string }
}

/** A fetch that keeps every span posted to it (or fails, while `down`). */
function collector() {
  const spans: Sent[] = []
  const urls: string[] = []
  let down = false
  // deno-lint-ignore require-await -- a fetch: throws become rejections
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    urls.push(String(url))
    if (down) throw new TypeError('connection refused')
    const doc = JSON.parse(new TextDecoder().decode(init?.body as Uint8Array))
    for (const rs of doc.resourceSpans) {
      equal(rs.resource.attributes[0].value.stringValue, 'svc')
      for (const ss of rs.scopeSpans) spans.push(...ss.spans)
    }
    return new Response('{}')
  }) as typeof fetch
  return {
    fetch: f,
    spans,
    urls,
    setDown(v: boolean) {
      down = v
    },
  }
}

/** Tracing on with `sampling`, the dice given by `rolls` (then 0.5). */
function on(c: ReturnType<typeof collector>, sampling: number, rolls: number[] = [], log?: Logger) {
  enableTracing({
    url: 'http://collector/v1/traces',
    serviceName: 'svc',
    sampling,
    fetch: c.fetch,
    random: () => rolls.shift() ?? 0.5,
    log,
  })
}

const cidOf = (s: Sent) => s.attributes.find((a) => a.key === 'cid')?.value.stringValue

Deno.test('tracing: a sampled root and its steps are one trace; a leaf and an error are recorded', async () => {
  const c = collector()
  on(c, 0.3, [0.1])
  try {
    const out = await tracedRoot(
      'rest',
      'Qm1',
      null,
      () =>
        traced('cluster/Pin', 'Qm1', async () => {
          rememberTrace('Qm1')
          await tracedLeaf('consensus/LogPin', 'Qm1', () => Promise.resolve())
          await rejects(traced('step', 'Qm1', () => Promise.reject(new Error('boom'))), /boom/)
          equal(await traced('no cid', undefined, () => Promise.resolve(1)), 1) // no span
          return 7
        }),
    )
    equal(out, 7)
    // The tracker, from another async context, continues the trace.
    await traceOperation(
      takeTrace('Qm1'),
      'pintracker/Pin',
      'Qm1',
      () => tracedLeaf('ipfsconn/Pin', 'Qm1', () => Promise.resolve()),
    )
  } finally {
    await disableTracing()
  }
  const by = (n: string) => c.spans.find((s) => s.name === n)!
  equal(c.spans.length, 6, c.spans.map((s) => s.name).join())
  const rest = by('rest')
  equal(rest.parentSpanId, undefined)
  equal(rest.kind, 2)
  match(rest.traceId, /^[\da-f]{32}$/)
  match(rest.spanId, /^[\da-f]{16}$/)
  ok(c.spans.every((s) => s.traceId === rest.traceId), 'one trace')
  equal(by('cluster/Pin').parentSpanId, rest.spanId)
  equal(by('consensus/LogPin').parentSpanId, by('cluster/Pin').spanId)
  equal(by('step').parentSpanId, by('cluster/Pin').spanId)
  deepEqual(by('step').status, { code: 2, message: 'boom' })
  equal(by('pintracker/Pin').parentSpanId, by('cluster/Pin').spanId)
  equal(by('ipfsconn/Pin').parentSpanId, by('pintracker/Pin').spanId)
  equal(cidOf(by('ipfsconn/Pin')), 'Qm1')
  equal(new Set(c.spans.map((s) => s.spanId)).size, 6, 'distinct span ids')
  deepEqual(c.urls, ['http://collector/v1/traces'])
})

Deno.test('tracing: steps find their span by CID, while the tracker overlaps the request and beside another CID', async () => {
  const c = collector()
  on(c, 1)
  let trackerDone!: Promise<void>
  try {
    // The REST request for A is still open when the tracker starts on A (the commit applied
    // first); B's request runs at the same time.
    let applied!: () => void
    const commit = new Promise<void>((r) => applied = r)
    const restA = tracedRoot('rest A', 'A', null, () =>
      traced('cluster/Pin', 'A', async () => {
        rememberTrace('A')
        await tracedLeaf('consensus/LogPin', 'A', async () => {
          applied()
          await new Promise((r) => setTimeout(r, 5))
        })
      }))
    const restB = tracedRoot(
      'rest B',
      'B',
      null,
      () =>
        traced(
          'cluster/Pin',
          'B',
          () => tracedLeaf('consensus/LogPin', 'B', () => Promise.resolve()),
        ),
    )
    await commit
    trackerDone = traceOperation(takeTrace('A'), 'pintracker/Pin', 'A', async () => {
      await restA // the request ends while the tracker's operation is open
      await tracedLeaf('ipfsconn/Pin', 'A', () => Promise.resolve())
    })
    await Promise.all([restA, restB, trackerDone])
    // Everything ended: no span is left open for A or B.
    await traced('late', 'A', () => Promise.resolve())
    await tracedLeaf('late', 'B', () => Promise.resolve())
  } finally {
    await disableTracing()
  }
  const by = (n: string, cid: string) => c.spans.find((s) => s.name === n && cidOf(s) === cid)!
  equal(c.spans.length, 8, c.spans.map((s) => `${s.name} ${cidOf(s)}`).join())
  equal(by('cluster/Pin', 'A').parentSpanId, by('rest A', 'A').spanId)
  equal(by('consensus/LogPin', 'A').parentSpanId, by('cluster/Pin', 'A').spanId)
  equal(by('pintracker/Pin', 'A').parentSpanId, by('cluster/Pin', 'A').spanId)
  equal(by('ipfsconn/Pin', 'A').parentSpanId, by('pintracker/Pin', 'A').spanId)
  equal(by('cluster/Pin', 'B').parentSpanId, by('rest B', 'B').spanId)
  equal(by('consensus/LogPin', 'B').parentSpanId, by('cluster/Pin', 'B').spanId)
  ok(by('rest A', 'A').traceId !== by('rest B', 'B').traceId, 'two traces')
})

Deno.test('tracing: a request whose CID comes in its body files the pin under its span (tracedUnder)', async () => {
  const c = collector()
  on(c, 1)
  try {
    await tracedRoot(
      'pinsvcapi POST /pins',
      undefined,
      null,
      (span) =>
        tracedUnder(span, 'C', async () => {
          rememberTrace('C')
          await tracedLeaf('consensus/LogPin', 'C', () => Promise.resolve())
        }),
    )
    await traceOperation(
      takeTrace('C'),
      'pintracker/Pin',
      'C',
      () => tracedLeaf('ipfsconn/Pin', 'C', () => Promise.resolve()),
    )
    await tracedLeaf('late', 'C', () => Promise.resolve()) // the request ended: no span
    equal(await tracedUnder(undefined, 'D', () => Promise.resolve(5)), 5)
  } finally {
    await disableTracing()
  }
  const by = (n: string) => c.spans.find((s) => s.name === n)!
  deepEqual(c.spans.map((s) => s.name).sort(), [
    'consensus/LogPin',
    'ipfsconn/Pin',
    'pinsvcapi POST /pins',
    'pintracker/Pin',
  ])
  equal(by('consensus/LogPin').parentSpanId, by('pinsvcapi POST /pins').spanId)
  equal(by('pintracker/Pin').parentSpanId, by('pinsvcapi POST /pins').spanId)
  equal(by('ipfsconn/Pin').parentSpanId, by('pintracker/Pin').spanId)
})

Deno.test('tracing: a root the sampler drops makes no span below it, nor in the tracker', async () => {
  const c = collector()
  on(c, 0.3, [0.9, 0.0]) // the REST root is dropped; the tracker would sample its own
  try {
    await tracedRoot('rest', 'Qm2', undefined, () =>
      traced('cluster/Pin', 'Qm2', async () => {
        rememberTrace('Qm2')
        await tracedLeaf('consensus/LogPin', 'Qm2', () => Promise.resolve())
      }))
    await traceOperation(
      takeTrace('Qm2'),
      'pintracker/Pin',
      'Qm2',
      () => tracedLeaf('ipfsconn/Pin', 'Qm2', () => Promise.resolve()),
    )
    equal(takeTrace('Qm2'), undefined, 'taken once')
    // Nothing left (an entry another peer committed): the tracker starts a trace, sampled here.
    await traceOperation(
      takeTrace('Qm3'),
      'pintracker/Pin',
      'Qm3',
      () => tracedLeaf('ipfsconn/Pin', 'Qm3', () => Promise.resolve()),
    )
    // Steps outside any root: nothing.
    await traced('cluster/Pin', 'Qm4', () => Promise.resolve())
  } finally {
    await disableTracing()
  }
  deepEqual(c.spans.map((s) => `${s.name} ${cidOf(s)}`).sort(), [
    'ipfsconn/Pin Qm3',
    'pintracker/Pin Qm3',
  ])
})

Deno.test('tracing: a W3C traceparent is continued when sampled, obeyed when not, ignored when malformed', async () => {
  const c = collector()
  on(c, 0, [])
  const tid = '4bf92f3577b34da6a3ce929d0e0e4736'
  try {
    await tracedRoot('rest', 'a', `00-${tid}-00f067aa0ba902b7-01`, () => Promise.resolve())
    await tracedRoot('rest', 'b', `00-${tid}-00f067aa0ba902b7-00`, () => Promise.resolve())
    await tracedRoot(
      'rest',
      'c',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      () => Promise.resolve(),
    )
    await tracedRoot('rest', 'd', 'garbage', () => Promise.resolve())
  } finally {
    await disableTracing()
  }
  equal(c.spans.length, 1, c.spans.map(cidOf).join()) // sampling 0: only the caller's choice
  equal(c.spans[0].traceId, tid)
  equal(c.spans[0].parentSpanId, '00f067aa0ba902b7')
})

Deno.test('tracing: off, every entry point is the plain call', async () => {
  equal(tracingStats(), undefined)
  equal(await tracedRoot('rest', 'x', null, () => Promise.resolve(1)), 1)
  equal(await traced('x', 'x', () => Promise.resolve(2)), 2)
  equal(await tracedLeaf('x', 'x', () => Promise.resolve(3)), 3)
  rememberTrace('x')
  equal(takeTrace('x'), undefined)
  equal(await traceOperation(undefined, 'x', 'x', () => Promise.resolve(4)), 4)
})

Deno.test('otlp exporter: a collector away is logged once, costs the queued spans, and export resumes', async () => {
  const c = collector()
  const { log, lines } = recordingLogger()
  const ex = new SpanExporter({
    url: 'http://collector/v1/traces',
    serviceName: 'svc',
    fetch: c.fetch,
    log,
    maxQueue: 3,
  })
  const span = (i: number) =>
    ex.add(
      SpanContext.fromHex('a'.repeat(32), String(i).padStart(16, '0')),
      undefined,
      'n',
      1,
      1_700_000_000_000.5,
      1_700_000_000_001.25,
    )
  c.setDown(true)
  for (let i = 0; i < 5; i++) span(i) // two over the bound: dropped
  await ex.flush()
  span(5)
  await ex.flush()
  equal(lines.filter((l) => l.includes('failed')).length, 1, lines.join('\n'))
  match(lines.join('\n'), /trace export queue full: 2 spans dropped/)
  deepEqual(ex.stats, { exported: 0, dropped: 2, queued: 0 })
  c.setDown(false)
  span(6)
  await ex.shutdown()
  deepEqual(ex.stats, { exported: 1, dropped: 2, queued: 0 })
  match(lines.join('\n'), /works again/)
  equal(c.spans.length, 1)
  equal(c.spans[0].spanId, '0000000000000006')
  equal(
    (c.spans[0] as unknown as { startTimeUnixNano: string }).startTimeUnixNano,
    '1700000000000500000',
  )
  equal(
    (c.spans[0] as unknown as { endTimeUnixNano: string }).endTimeUnixNano,
    '1700000000001250000',
  )
})

Deno.test('otlp exporter: spans leave in order over many turns of its ring, in batches, with every field as written', async () => {
  const c = collector()
  const ex = new SpanExporter({
    url: 'http://collector/v1/traces',
    serviceName: 'svc "quoted"',
    fetch: (url, init) => {
      const body = new TextDecoder().decode(init?.body as Uint8Array)
      equal(
        JSON.parse(body).resourceSpans[0].resource.attributes[0].value.stringValue,
        'svc "quoted"',
      )
      return c.fetch(url, {
        ...init,
        body: new TextEncoder().encode(body.replace('svc \\"quoted\\"', 'svc')),
      })
    },
    maxQueue: 4,
    batchSize: 3,
  })
  const trace = '0123456789abcdef0011223344556677'
  const parent = SpanContext.fromHex(trace, 'ffff0000ffff0001')
  const long = 'b' + 'a'.repeat(100) // past the ring's inline CID bytes
  const odd = 'Qm"\\\u00e9\u2028' // JSON must escape it: kept as a string
  const cids = [long, odd, undefined, 'bafyshort']
  const written: { spanId: string; cid?: string; error?: string }[] = []
  for (let i = 0; i < 13; i++) {
    const spanId = (0xfff0 + i).toString(16).padStart(16, '0')
    const cid = cids[i % 4]
    const error = i % 5 === 0 ? `failed "${i}"\n` : undefined
    ex.add(
      SpanContext.fromHex(trace, spanId),
      i % 2 ? parent : undefined,
      `step ${i % 3}`,
      1,
      1e12 + i,
      1e12 + i + 0.5,
      cid,
      error,
    )
    written.push({ spanId, cid, error })
    if (i % 3 === 2) await ex.flush() // 3 in, 3 out: the 4 slots turn over several times
  }
  await ex.shutdown()
  deepEqual(ex.stats, { exported: 13, dropped: 0, queued: 0 })
  equal(c.urls.length, 5, 'four full batches of 3, then the last one')
  deepEqual(c.spans.map((s) => s.spanId), written.map((w) => w.spanId))
  c.spans.forEach((s, i) => {
    equal(s.traceId, trace)
    equal(s.parentSpanId, i % 2 ? 'ffff0000ffff0001' : undefined)
    equal(s.name, `step ${i % 3}`)
    equal(cidOf(s), written[i].cid)
    equal((s as unknown as { startTimeUnixNano: string }).startTimeUnixNano, `${1e12 + i}000000`)
    equal((s as unknown as { endTimeUnixNano: string }).endTimeUnixNano, `${1e12 + i}500000`)
    deepEqual(s.status, written[i].error ? { code: 2, message: written[i].error } : undefined)
  })
})

Deno.test('tracingSettings: service.json, with the OTEL_* environment winning', () => {
  const cfg = { sampling_prob: 0.3, service_name: 'cluster-daemon', otlp_endpoint: '' }
  deepEqual(tracingSettings(cfg, 'p1'), {
    url: 'http://localhost:4318/v1/traces',
    serviceName: 'cluster-daemon-p1',
    sampling: 0.3,
  })
  deepEqual(tracingSettings({ ...cfg, otlp_endpoint: 'http://h:4318/' }, ''), {
    url: 'http://h:4318/v1/traces',
    serviceName: 'cluster-daemon',
    sampling: 0.3,
  })
  const env: Record<string, string> = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://e:1',
    OTEL_SERVICE_NAME: 'mine',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.05',
  }
  deepEqual(tracingSettings({ ...cfg, otlp_endpoint: 'http://h:4318' }, 'p1', (k) => env[k]), {
    url: 'http://e:1/v1/traces',
    serviceName: 'mine',
    sampling: 0.05,
  })
  env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = 'http://t:2/custom'
  env.OTEL_TRACES_SAMPLER = 'always_off'
  deepEqual(tracingSettings(cfg, 'p1', (k) => env[k]).url, 'http://t:2/custom')
  equal(tracingSettings(cfg, 'p1', (k) => env[k]).sampling, 0)
  equal(tracingSettings(cfg, 'p1', (k) => ({ OTEL_TRACES_SAMPLER: 'always_on' })[k]).sampling, 1)
  equal(tracingSettings(cfg, 'p1', (k) => ({ OTEL_TRACES_SAMPLER_ARG: 'x' })[k]).sampling, 0.3)
})
