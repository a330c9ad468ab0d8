/**
 * N cluster hosts in one process, each with a peer monitor on the gossipsub metrics topic, for the
 * metric-view tests and bench/gossip.ts: real libp2p on 127.0.0.1 with one cluster secret, each
 * host dialled to a few others (a ring plus random chords), every monitor answering for all N.
 *
 * @example
 * ```ts
 * const peers = await gossipPeers(20, { heartbeatMs: 1000 })
 * await peers[0].monitor.publishMetric(newMetric('ping', peers[0].id, '', 30_000, Date.now()))
 * await stopGossipPeers(peers)
 * ```
 */
import '../../src/deno_shim.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type ClusterHost, startHost } from '../../src/net/host.ts'
import { DEFAULT_PUBSUB } from '../../src/net/pubsub.ts'
import { type LocalMonitor, localMonitor } from '../../src/monitor/local.ts'
import { pubsubMetrics } from '../../src/monitor/pubsub_transport.ts'
import { seededRandom } from '../../src/consensus/raft/core/prng.ts'

/** One peer: its host and monitor. */
export interface GossipPeer {
  id: string
  host: ClusterHost
  monitor: LocalMonitor
}

/** Starts `n` connected peers; `heartbeatMs` is gossipsub's heartbeat (the config's 10 s default). */
export async function gossipPeers(
  n: number,
  opts: { heartbeatMs?: number; chords?: number; seed?: number } = {},
): Promise<GossipPeer[]> {
  const hosts: ClusterHost[] = []
  for (let i = 0; i < n; i++) {
    hosts.push(
      await startHost({
        privateKey: await generateKeyPair('Ed25519'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        secret: 'd'.repeat(64),
        pubsub: { ...DEFAULT_PUBSUB, heartbeatMs: opts.heartbeatMs ?? DEFAULT_PUBSUB.heartbeatMs },
      }),
    )
  }
  const ids = hosts.map((h) => h.peerId)
  const peers = hosts.map((host) => ({
    id: host.peerId,
    host,
    monitor: localMonitor({ check_interval: 3_600_000 }, {
      peers: () => ids,
      transport: pubsubMetrics({ pubsub: host.pubsub }),
    }),
  }))
  const rand = seededRandom(opts.seed ?? 20)
  for (let i = 0; i < n; i++) {
    await hosts[i].connect(hosts[(i + 1) % n].addresses()[0])
    for (let c = 0; c < (opts.chords ?? 1); c++) {
      const j = Math.floor(rand() * n)
      if (j !== i) await hosts[i].connect(hosts[j].addresses()[0])
    }
  }
  return peers
}

/** Stops every monitor, then every host. */
export async function stopGossipPeers(peers: GossipPeer[]): Promise<void> {
  for (const p of peers) await p.monitor.stop()
  await Promise.all(peers.map((p) => p.host.stop({ save: false })))
}

/** Bytes the peer's gossipsub streams sent and received so far. */
export function gossipBytes(p: GossipPeer): number {
  let n = 0
  for (const [proto, s] of Object.entries(p.host.bandwidth())) {
    if (proto.startsWith('/meshsub/') || proto.startsWith('/floodsub/')) {
      n += s.total_in + s.total_out
    }
  }
  return n
}
