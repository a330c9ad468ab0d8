/**
 * Metrics over the cluster hosts' gossipsub (real libp2p hosts on 127.0.0.1 with a cluster
 * secret): three peers in a line (a–b–c) each see every peer's latest metric, c receiving a's
 * through b; what a metric carries crosses unchanged but for `received_at`, which the receiver
 * stamps; a payload that is not a metric is dropped without harm; a stopped monitor unsubscribes.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type ClusterHost, startHost } from '../../src/net/host.ts'
import { DEFAULT_PUBSUB } from '../../src/net/pubsub.ts'
import { type LocalMonitor, localMonitor } from '../../src/monitor/local.ts'
import { METRICS_TOPIC, pubsubMetrics } from '../../src/monitor/pubsub_transport.ts'
import { newMetric } from '../../src/types/metric.ts'
import { waitFor } from '../support/wait.ts'

interface Peer {
  host: ClusterHost
  monitor: LocalMonitor
  logs: string[]
}

async function line(n: number): Promise<Peer[]> {
  const hosts = await Promise.all(
    Array.from({ length: n }, async () =>
      startHost({
        privateKey: await generateKeyPair('Ed25519'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        secret: 'b'.repeat(64),
        // A fast heartbeat so that the mesh forms within the test (the default is 10 s).
        pubsub: { ...DEFAULT_PUBSUB, heartbeatMs: 100 },
      })),
  )
  const ids = hosts.map((h) => h.peerId)
  const peers = hosts.map((host) => {
    const logs: string[] = []
    const monitor = localMonitor({ check_interval: 3_600_000 }, {
      peers: () => ids,
      transport: pubsubMetrics({ pubsub: host.pubsub, log: (l, m) => logs.push(`${l} ${m}`) }),
    })
    return { host, monitor, logs }
  })
  for (let i = 1; i < n; i++) await hosts[i].connect(hosts[i - 1].addresses()[0])
  return peers
}

async function stop(peers: Peer[]) {
  for (const p of peers) await p.monitor.stop()
  await Promise.all(peers.map((p) => p.host.stop({ save: false })))
}

Deno.test('pubsub metrics: three peers in a line each hold every peer’s latest ping', async () => {
  const peers = await line(3)
  try {
    const ids = peers.map((p) => p.host.peerId).sort()
    const sent = new Map<string, number>()
    await waitFor(async () => {
      // Published again until every monitor holds every peer's (the mesh forms meanwhile).
      for (const p of peers) {
        const m = newMetric(
          'ping',
          p.host.peerId,
          `{"peer_name":"${p.host.peerId.slice(-4)}"}`,
          60_000,
          Date.now(),
        )
        sent.set(p.host.peerId, m.expire)
        await p.monitor.publishMetric(m)
      }
      await new Promise((r) => setTimeout(r, 100))
      return peers.every((p) => p.monitor.latestMetrics('ping').length === 3)
    }, { what: 'every ping on every peer' })
    for (const p of peers) {
      const got = p.monitor.latestMetrics('ping')
      assert.deepEqual(got.map((m) => m.peer), ids)
      for (const m of got) {
        assert.equal(m.value, `{"peer_name":"${m.peer.slice(-4)}"}`)
        assert.equal(m.valid, true)
        assert.ok(m.received_at > 0 && m.received_at <= Date.now() * 1e6)
        assert.ok(Math.abs(m.expire - sent.get(m.peer)!) < 1e6, 'expire crosses as sent')
      }
    }
    // The end peers are not connected: c heard a through b.
    const [a, , c] = peers
    assert.equal(c.host.libp2p.getConnections(a.host.libp2p.peerId).length, 0)
  } finally {
    await stop(peers)
  }
})

Deno.test('pubsub metrics: a payload that is not a metric is dropped; later metrics still arrive; a stopped monitor unsubscribes', async () => {
  const peers = await line(2)
  const [a, b] = peers
  try {
    let n = 0
    await waitFor(async () => {
      await a.monitor.publishMetric(
        newMetric('freespace', a.host.peerId, String(++n), 60_000, Date.now(), n),
      )
      await new Promise((r) => setTimeout(r, 50))
      return b.monitor.latestMetrics('freespace').length === 1
    }, { what: "a's first metric at b" })
    await a.host.pubsub.publish(METRICS_TOPIC, new TextEncoder().encode('not msgpack'))
    await waitFor(
      () => b.logs.some((l) => l.startsWith(`debug metric from ${a.host.peerId} dropped:`)),
      {
        what: 'the dropped payload',
      },
    )
    await a.monitor.publishMetric(
      newMetric('freespace', a.host.peerId, 'last', 60_000, Date.now(), 7),
    )
    await waitFor(() => b.monitor.latestMetrics('freespace')[0]?.value === 'last', {
      what: 'the next metric',
    })
    assert.equal(b.monitor.latestMetrics('freespace')[0].weight, 7)

    await b.monitor.stop()
    assert.ok(!b.host.pubsub.getTopics().includes(METRICS_TOPIC), 'unsubscribed')
  } finally {
    await stop(peers)
  }
})

Deno.test('pubsub metrics: a peer that starts listening is announced to the others', async () => {
  const [a, b] = await line(2)
  const c = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: 'b'.repeat(64),
  })
  const seen: string[] = []
  const off = pubsubMetrics({ pubsub: a.host.pubsub }).onNewSubscriber((p) => seen.push(p))
  try {
    await c.connect(a.host.addresses()[0])
    // Connected but not listening yet: nothing.
    await new Promise((r) => setTimeout(r, 200))
    assert.ok(!seen.includes(c.peerId))
    const monitor = localMonitor({ check_interval: 3_600_000 }, {
      transport: pubsubMetrics({ pubsub: c.pubsub }),
    })
    await waitFor(() => seen.includes(c.peerId), { what: "c's subscription at a" })
    await monitor.stop()
  } finally {
    off()
    await c.stop({ save: false })
    await stop([a, b])
  }
})
