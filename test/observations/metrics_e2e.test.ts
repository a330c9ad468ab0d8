/**
 * Stats on a real peer process (the service task's permissions) beside a real Kubo: pins made
 * through the REST API show in /metrics, and a real Prometheus scraping the peer answers PromQL
 * about them. Also: stats off serves nothing; a busy prometheus_endpoint is one start-up line.
 */
import { equal, match, ok } from 'node:assert/strict'
import { startKubo } from '../support/kubo.ts'
import { freePort, startPeerProcess } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'
import { findPrometheus, startPrometheus } from './prometheus_server.ts'

// deno-lint-ignore no-explicit-any
const withStats = (port: number) => (cfg: any) => {
  cfg.observations.metrics.enable_stats = true
  cfg.observations.metrics.prometheus_endpoint = `/ip4/127.0.0.1/tcp/${port}`
}

/** The value of one series in a text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return undefined
}

async function pinned(restUrl: string, cid: string): Promise<boolean> {
  const res = await fetch(`${restUrl}/pins/${cid}`)
  if (!res.ok) {
    await res.body?.cancel()
    return false
  }
  const g = await res.json()
  return Object.values(g.peer_map as Record<string, { status: string }>)
    .every((p) => p.status === 'pinned')
}

Deno.test('e2e metrics: a real Prometheus scrapes a peer and answers PromQL about its pins', async () => {
  await findPrometheus() // fails with the install command when missing
  const kubo = await startKubo()
  const port = freePort()
  const peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, edit: withStats(port) })
  let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined
  try {
    match(peer.logs(), new RegExp(`stats collection enabled on /ip4/127.0.0.1/tcp/${port}`))
    const enc = new TextEncoder()
    const cids: string[] = []
    for (let i = 0; i < 3; i++) {
      cids.push(await kubo.add(enc.encode(`metrics ${i} ${crypto.randomUUID()}`)))
    }
    for (const cid of cids) {
      const res = await fetch(`${peer.restUrl}/pins/${cid}`, { method: 'POST' })
      equal(res.status, 200, await res.text())
    }
    for (const cid of cids) {
      await waitFor(() => pinned(peer.restUrl, cid), { what: `${cid} pinned` })
    }

    // The endpoint itself: text format 0.0.4, the reference's names, route patterns not paths.
    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    equal(res.status, 200)
    match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    equal(sample(text, 'ipfscluster_pins_pin_add'), 3)
    equal(sample(text, 'ipfscluster_pins_pin_add_errors'), 0)
    equal(sample(text, 'ipfscluster_pins_op_duration_seconds_count{op="pin",result="ok"}'), 3)
    equal(
      sample(
        text,
        'ipfscluster_http_requests_total{api="restapi",route="/pins/{hash}",method="POST",code="200"}',
      ),
      3,
    )
    ok(!text.includes(cids[0]), 'no CID in any label')
    ok((sample(text, 'ipfscluster_raft_term') ?? 0) >= 1)
    ok((sample(text, 'ipfscluster_raft_commit_index') ?? 0) >= 3)
    ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0)
    match(text, /^ipfscluster_ipfs_request_duration_seconds_count\{endpoint="pin\/add"\} \d+$/m)
    match(text, /^# TYPE ipfscluster_pins_op_duration_seconds histogram$/m)
    // Anything but GET /metrics is a 4xx with a message; the endpoint keeps serving.
    const nf = await fetch(`http://127.0.0.1:${port}/nope`)
    equal(nf.status, 404)
    match(await nf.text(), /metrics are at \/metrics/)

    // A real Prometheus, scraping every second; polled until its data holds the pins.
    prom = await startPrometheus([`127.0.0.1:${port}`])
    const p = prom
    const value = async (q: string) => {
      const r = await p.query(q)
      return r.length === 1 ? Number(r[0].value[1]) : undefined
    }
    await waitFor(async () => (await value('up{job="cluster"}')) === 1, {
      what: 'prometheus to scrape the peer',
      timeoutMs: 60_000,
    })
    equal(await value('ipfscluster_pins_pin_add'), cids.length)
    equal(
      await value('sum(ipfscluster_pins_op_duration_seconds_count{op="pin",result="ok"})'),
      cids.length,
    )
    equal(
      await value('sum(ipfscluster_http_requests_total{route="/pins/{hash}",method="POST"})'),
      3,
    )
    equal(await value('ipfscluster_pins_pin_queued + ipfscluster_pins_pinning'), 0)
    // pins/ipfs_pins follows what Kubo holds (recursive and direct), as the reference's does.
    let kuboCount = 0
    for (const type of ['recursive', 'direct']) {
      const ls = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?type=${type}`, { method: 'POST' })
      kuboCount += Object.keys((await ls.json()).Keys ?? {}).length
    }
    ok(kuboCount >= cids.length)
    equal(await value('ipfscluster_pins_ipfs_pins'), kuboCount)

    // An add through the REST API: the reference's blocks_* counters.
    const fd = new FormData()
    const bytes = enc.encode(`added ${crypto.randomUUID()}`)
    fd.append('file', new Blob([bytes]), 'f.txt')
    const add = await fetch(`${peer.restUrl}/add?local=true`, { method: 'POST', body: fd })
    equal(add.status, 200)
    await add.text()
    const after = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    equal(sample(after, 'ipfscluster_blocks_put'), 1)
    equal(sample(after, 'ipfscluster_blocks_added'), 1)
    // One block: the file's bytes in their UnixFS node.
    ok((sample(after, 'ipfscluster_blocks_added_size') ?? 0) >= bytes.length)
    equal(sample(after, 'ipfscluster_blocks_put_errors'), 0)
  } finally {
    await prom?.stop()
    await peer.stop()
    await kubo.stop()
  }
})

Deno.test('e2e metrics: stats off serves no endpoint; a busy endpoint is one start-up line', async () => {
  const kubo = await startKubo()
  const port = freePort()
  const off = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    // deno-lint-ignore no-explicit-any
    edit: (cfg: any) => {
      cfg.observations.metrics.prometheus_endpoint = `/ip4/127.0.0.1/tcp/${port}`
    },
  })
  try {
    const refused = await Deno.connect({ hostname: '127.0.0.1', port }).then(
      (c) => {
        c.close()
        return false
      },
      (e) => e instanceof Deno.errors.ConnectionRefused,
    )
    ok(refused, 'nothing listens on prometheus_endpoint with stats off')
    ok(!off.logs().includes('stats collection enabled'))
  } finally {
    await off.stop()
  }
  // The port taken by another listener: the peer says which key and exits, as a busy API port.
  const busy = Deno.listen({ hostname: '127.0.0.1', port })
  try {
    let failed = ''
    try {
      const p = await startPeerProcess({ ipfs: kubo.apiMultiaddr, edit: withStats(port) })
      await p.stop()
    } catch (e) {
      failed = String(e)
    }
    match(failed, /observations\.metrics\.prometheus_endpoint/)
  } finally {
    busy.close()
    await kubo.stop()
  }
})
