/**
 * Tracing on a real peer process beside a real Kubo, switched on by service.json alone (no OTEL_*
 * variable): the peer exports over OTLP/HTTP JSON to a small receiver in the test, and a pin made
 * through the REST API is one trace: the REST request's span → cluster/Pin → consensus/LogPin, and
 * pintracker/Pin → ipfsconn/Pin under cluster/Pin. A caller's W3C traceparent is continued, and
 * its "not sampled" is obeyed down to the tracker.
 */
import { equal, match, ok } from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import { startKubo } from '../support/kubo.ts'
import { freePort, startPeerProcess } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes?: { key: string; value: { stringValue?: string } }[]
}

/** An OTLP/HTTP receiver on 127.0.0.1 keeping every span it is sent (JSON encoding). */
function otlpReceiver() {
  const spans: OtlpSpan[] = []
  const paths: string[] = []
  const services: string[] = []
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: freePort(), onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname
      paths.push(path)
      const body = await req.text()
      if (path === '/v1/traces') {
        const doc = JSON.parse(body)
        for (const rs of doc.resourceSpans ?? []) {
          for (const a of rs.resource?.attributes ?? []) {
            if (a.key === 'service.name') services.push(a.value.stringValue)
          }
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
    services,
    stop: () => server.shutdown(),
  }
}

const attr = (s: OtlpSpan, key: string) =>
  s.attributes?.find((a) => a.key === key)?.value.stringValue

/** A peer (and its Kubo) tracing every trace to `receiver`, from service.json alone. */
async function tracedPeer(receiver: ReturnType<typeof otlpReceiver>) {
  const kubo = await startKubo()
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    // deno-lint-ignore no-explicit-any
    edit: (cfg: any) => {
      cfg.observations.tracing.enable_tracing = true
      cfg.observations.tracing.sampling_prob = 1
      cfg.observations.tracing.otlp_endpoint = receiver.url
      cfg.cluster.peername = 'p1'
    },
    env: {},
  }).catch(async (err) => {
    await kubo.stop()
    throw err
  })
  return { kubo, peer }
}

/** The spans of the trace `root` is in, one of each name asked for. */
function traceOf(receiver: ReturnType<typeof otlpReceiver>, root: OtlpSpan) {
  const trace = receiver.spans.filter((s) => s.traceId === root.traceId)
  return (name: string) => {
    const found = trace.filter((s) => s.name === name)
    equal(found.length, 1, `one ${name} span in the trace (${trace.map((s) => s.name)})`)
    return found[0]
  }
}

const ipfsSpanOf = (receiver: ReturnType<typeof otlpReceiver>, cid: string) =>
  waitFor(
    () => receiver.spans.some((s) => s.name === 'ipfsconn/Pin' && attr(s, 'cid') === cid),
    { what: `the ipfsconn/Pin span of ${cid}`, timeoutMs: 60_000 },
  )

Deno.test('e2e tracing: a pin is one trace, REST → consensus → tracker → IPFS', async () => {
  const receiver = otlpReceiver()
  const { kubo, peer } = await tracedPeer(receiver)
  try {
    match(
      peer.logs(),
      /tracing enabled: OTLP to http:\/\/127\.0\.0\.1:\d+\/v1\/traces as cluster-daemon-p1, sampling 1/,
    )
    const cid = await kubo.add(new TextEncoder().encode(`traced ${crypto.randomUUID()}`))
    const res = await fetch(`${peer.restUrl}/pins/${cid}`, { method: 'POST' })
    equal(res.status, 200, await res.text())
    // Spans leave in batches: wait for the last step's.
    await ipfsSpanOf(receiver, cid)
    const root = receiver.spans.find((s) => s.name === 'cluster/Pin' && attr(s, 'cid') === cid)
    ok(root, 'a cluster/Pin span')
    const one = traceOf(receiver, root)
    const rest = one('restapi POST /pins/{hash}')
    const logPin = one('consensus/LogPin')
    const track = one('pintracker/Pin')
    const ipfs = one('ipfsconn/Pin')
    equal(rest.parentSpanId, undefined, 'the REST request starts the trace')
    equal(rest.kind, 2, 'the REST span is a server span')
    equal(root.parentSpanId, rest.spanId, 'cluster/Pin under the REST request')
    equal(logPin.parentSpanId, root.spanId, 'consensus/LogPin under cluster/Pin')
    equal(track.parentSpanId, root.spanId, 'the tracker continues the trace of cluster/Pin')
    equal(ipfs.parentSpanId, track.spanId, 'the IPFS request under the tracker operation')
    for (const s of [rest, root, logPin, track, ipfs]) {
      equal(attr(s, 'cid'), cid, s.name)
      ok(BigInt(s.startTimeUnixNano) <= BigInt(s.endTimeUnixNano), `${s.name} ends after it starts`)
    }
    ok(
      BigInt(rest.startTimeUnixNano) <= BigInt(root.startTimeUnixNano) &&
        BigInt(root.endTimeUnixNano) <= BigInt(rest.endTimeUnixNano),
      'cluster/Pin within the REST request',
    )
    ok(receiver.services.every((s) => s === 'cluster-daemon-p1'), `${receiver.services}`)

    // Steps find their trace by the canonical CID: a CID written another way (v1 in base58btc
    // here; the pinset holds it in base32) is still one trace from the request to IPFS.
    const v1 = CID.parse(await kubo.add(new TextEncoder().encode(`v1 ${crypto.randomUUID()}`)))
      .toV1()
    const r1 = await fetch(`${peer.restUrl}/pins/${v1.toString(base58btc)}`, { method: 'POST' })
    equal(r1.status, 200, await r1.text())
    await ipfsSpanOf(receiver, v1.toString())
    const rest1 = receiver.spans.find((s) =>
      s.name === 'restapi POST /pins/{hash}' && attr(s, 'cid') === v1.toString()
    )
    ok(rest1, 'the REST span, under the canonical CID')
    const one1 = traceOf(receiver, rest1)
    equal(one1('cluster/Pin').parentSpanId, rest1.spanId)
    equal(one1('ipfsconn/Pin').parentSpanId, one1('pintracker/Pin').spanId)

    // A pin by path: the CID is known once IPFS resolved the path, and its steps still join the
    // request's trace.
    const byPath = await kubo.add(new TextEncoder().encode(`path ${crypto.randomUUID()}`))
    const r3 = await fetch(`${peer.restUrl}/pins/ipfs/${byPath}`, { method: 'POST' })
    equal(r3.status, 200, await r3.text())
    await ipfsSpanOf(receiver, byPath)
    const rest3 = receiver.spans.find((s) =>
      s.name === 'restapi POST /pins/{keyType:ipfs|ipns|ipld}/{path:.*}' &&
      attr(s, 'cid') === `/ipfs/${byPath}`
    )
    ok(rest3, 'the REST span of the path, filed under the path')
    const one3 = traceOf(receiver, rest3)
    equal(one3('cluster/Pin').parentSpanId, rest3.spanId)
    equal(one3('ipfsconn/Pin').parentSpanId, one3('pintracker/Pin').spanId)

    // The Pinning Service API's CID is in the body: its pin's steps join the request's trace.
    const cfg = JSON.parse(await Deno.readTextFile(`${peer.configDir}/service.json`))
    const [, host, port] = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(
      [cfg.api.pinsvcapi.http_listen_multiaddress].flat()[0],
    )!
    const svc = await kubo.add(new TextEncoder().encode(`svc ${crypto.randomUUID()}`))
    const r2 = await fetch(`http://${host}:${port}/pins`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid: svc }),
    })
    equal(r2.status, 202, await r2.text())
    await ipfsSpanOf(receiver, svc)
    const rest2 = receiver.spans.find((s) => s.name === 'pinsvcapi POST /pins')
    ok(rest2, 'the Pinning Service request span')
    const one2 = traceOf(receiver, rest2)
    equal(one2('consensus/LogPin').parentSpanId, rest2.spanId)
    equal(one2('pintracker/Pin').parentSpanId, rest2.spanId)
    equal(attr(one2('ipfsconn/Pin'), 'cid'), svc)
  } finally {
    await peer.stop()
    await kubo.stop()
    await receiver.stop()
  }
})

Deno.test("e2e tracing: a caller's traceparent is continued, and its 'not sampled' reaches the tracker", async () => {
  const receiver = otlpReceiver()
  const { kubo, peer } = await tracedPeer(receiver)
  try {
    // Sampled by the caller: the REST span is a child of the caller's span, in the caller's trace.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const callerSpan = '00f067aa0ba902b7'
    const a = await kubo.add(new TextEncoder().encode(`a ${crypto.randomUUID()}`))
    const ra = await fetch(`${peer.restUrl}/pins/${a}`, {
      method: 'POST',
      headers: { traceparent: `00-${traceId}-${callerSpan}-01` },
    })
    equal(ra.status, 200, await ra.text())
    await ipfsSpanOf(receiver, a)
    const rest = receiver.spans.find((s) =>
      s.name === 'restapi POST /pins/{hash}' && attr(s, 'cid') === a
    )
    ok(rest, 'a REST span')
    equal(rest.traceId, traceId)
    equal(rest.parentSpanId, callerSpan)
    const one = traceOf(receiver, rest)
    equal(one('pintracker/Pin').parentSpanId, one('cluster/Pin').spanId)

    // Not sampled by the caller: no span of that pin anywhere, though this peer samples every
    // trace it starts (the tracker must not start one of its own for it).
    const b = await kubo.add(new TextEncoder().encode(`b ${crypto.randomUUID()}`))
    const rb = await fetch(`${peer.restUrl}/pins/${b}`, {
      method: 'POST',
      headers: { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00` },
    })
    equal(rb.status, 200, await rb.text())
    await waitFor(async () => {
      const r = await fetch(`${peer.restUrl}/pins/${b}`)
      return (await r.text()).includes('"pinned"')
    }, { what: `${b} pinned`, timeoutMs: 60_000 })
    // Spans leave in the order they end: once a later pin's last span is in, b's would be too.
    const c = await kubo.add(new TextEncoder().encode(`c ${crypto.randomUUID()}`))
    const rc = await fetch(`${peer.restUrl}/pins/${c}`, { method: 'POST' })
    equal(rc.status, 200, await rc.text())
    await ipfsSpanOf(receiver, c)
    // (The test's own status polls, GET /pins/{hash}, are traces of their own.)
    const ofB = receiver.spans.filter((s) =>
      attr(s, 'cid') === b && !s.name.startsWith('restapi GET')
    )
    equal(ofB.map((s) => s.name).join(), '')
  } finally {
    await peer.stop()
    await kubo.stop()
    await receiver.stop()
  }
})
