/**
 * Metric gossip on 20 peers (issue 8): twenty cluster hosts in one process (real libp2p on
 * 127.0.0.1, gossipsub with the config's defaults) publish what a peer publishes with the default
 * config — a ping every 15 s (TTL 30 s), freespace, tags and pinqueue every 15 s, numpin every
 * 5 s — for a minute, and the bytes each peer's gossipsub streams moved (in + out) are reported
 * per minute. Run twice: with a small pinset's values, then a large one's (numpin 10,000,000,
 * a pinqueue of 100,000), to show the traffic does not grow with the pinset.
 *
 * @example
 * ```sh
 * deno run -A bench/gossip.ts [--peers 20] [--seconds 60]
 * ```
 */
import { parseArgs } from 'node:util'
import { newMetric } from '../src/types/metric.ts'
import {
  gossipBytes,
  type GossipPeer,
  gossipPeers,
  stopGossipPeers,
} from '../test/support/gossip_peers.ts'

/** Publishes the default config's metrics for `seconds`, staggered over peers. */
async function minuteOfMetrics(peers: GossipPeer[], seconds: number, pins: number) {
  const end = Date.now() + seconds * 1000
  let tick = 0
  while (Date.now() < end) {
    for (const [i, p] of peers.entries()) {
      const now = Date.now()
      // Each peer's own phase: peers do not start in step.
      const t = tick + i
      if (t % 15 === 0) {
        const ping = JSON.stringify({
          peer_name: `peer${i}`,
          ipfs_id: p.id,
          ipfs_addresses: [`/ip4/127.0.0.1/tcp/${4001 + i}/p2p/${p.id}`],
        })
        await p.monitor.publishMetric(newMetric('ping', p.id, ping, 30_000, now))
        const free = 500e9 - pins * 100_000
        await p.monitor.publishMetric(newMetric('freespace', p.id, String(free), 30_000, now, free))
        await p.monitor.publishMetric(newMetric('tag:group', p.id, 'default', 30_000, now, 0, true))
        const q = Math.min(pins / 100, 100_000)
        await p.monitor.publishMetric(newMetric('pinqueue', p.id, String(q), 30_000, now, -q))
      }
      if (t % 5 === 0) {
        await p.monitor.publishMetric(newMetric('numpin', p.id, String(pins), 10_000, now))
      }
    }
    tick++
    await new Promise((r) => setTimeout(r, 1000))
  }
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      peers: { type: 'string', default: '20' },
      seconds: { type: 'string', default: '60' },
    },
  })
  const n = Number(values.peers)
  const seconds = Number(values.seconds)
  const peers = await gossipPeers(n)
  try {
    // Let the mesh form (one heartbeat of 10 s) before counting.
    await minuteOfMetrics(peers, 12, 10)
    for (const pins of [10, 10_000_000]) {
      const before = peers.map(gossipBytes)
      await minuteOfMetrics(peers, seconds, pins)
      const perMin = peers.map((p, i) => (gossipBytes(p) - before[i]) * 60 / seconds)
      perMin.sort((a, b) => a - b)
      const mean = perMin.reduce((a, b) => a + b, 0) / n
      const views = peers.filter((p) => p.monitor.latestMetrics('ping').length === n).length
      console.log(
        `gossip, ${n} peers, numpin ${pins}: ${(mean / 1024).toFixed(1)} KiB per peer per minute ` +
          `(min ${(perMin[0] / 1024).toFixed(1)}, max ${(perMin[n - 1] / 1024).toFixed(1)}); ` +
          `${views}/${n} peers see every ping`,
      )
    }
  } finally {
    await stopGossipPeers(peers)
  }
}

if (import.meta.main) await main()
