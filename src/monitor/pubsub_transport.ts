/**
 * Metrics between peers: the gossipsub topic `monitor.metrics` of the cluster host, each message
 * one metric in the Go peer's msgpack form (metric_codec.ts), as IPFS Cluster 1.1.6's pubsubmon
 * sends them. Any signed message on the topic is taken (the reference registers no validator
 * there); the monitor decides what a metric counts for (its peerset filter). A payload that does
 * not decode is dropped, with one debug line.
 *
 * @example
 * ```ts
 * const transport = pubsubMetrics({ pubsub: host.pubsub, log })
 * const monitor = localMonitor(cfg, { transport, peers })
 * ```
 *
 * @module
 */
import type { GossipSub } from '../net/pubsub.ts'
import type { Message, SubscriptionChangeData } from '@libp2p/gossipsub'
import type { MetricsTransport } from './local.ts'
import { decodeMetric, encodeMetric } from './metric_codec.ts'
import { errorMessage } from '../errors.ts'
import type { Metric } from '../types/metric.ts'

/** The reference's topic for metrics (`pubsubmon.PubsubTopic`). */
export const METRICS_TOPIC = 'monitor.metrics'

/** What the transport needs. */
export interface PubsubMetricsDeps {
  pubsub: GossipSub
  log?: (level: 'debug' | 'warn', msg: string) => void
}

/** The metrics transport, and word of peers that start listening to it. */
export interface PubsubMetrics extends MetricsTransport {
  /**
   * Calls `cb` with the peer ID of each peer that subscribes to the topic (a peer that starts,
   * returns or connects); returns an unsubscribe.
   */
  onNewSubscriber(cb: (peer: string) => void): () => void
}

/** The monitor's transport over the host's gossipsub. */
export function pubsubMetrics(deps: PubsubMetricsDeps): PubsubMetrics {
  const { pubsub } = deps
  const log = deps.log ?? (() => {})
  return {
    async publish(m: Metric): Promise<void> {
      // Receivers stamp `received_at` themselves; a Go peer sends it empty.
      await pubsub.publish(METRICS_TOPIC, encodeMetric({ ...m, received_at: 0 }))
    },

    onNewSubscriber(cb: (peer: string) => void): () => void {
      const onChange = (evt: CustomEvent<SubscriptionChangeData>) => {
        const joined = evt.detail.subscriptions.some((s) =>
          s.topic === METRICS_TOPIC && s.subscribe
        )
        if (joined) cb(evt.detail.peerId.toString())
      }
      pubsub.addEventListener('subscription-change', onChange)
      return () => pubsub.removeEventListener('subscription-change', onChange)
    },

    subscribe(onMetric: (m: Metric) => void): () => void {
      const onMessage = (evt: CustomEvent<Message>) => {
        const msg = evt.detail
        if (msg.topic !== METRICS_TOPIC) return
        let m: Metric
        try {
          m = decodeMetric(msg.data)
        } catch (err) {
          const from = msg.type === 'signed' ? msg.from.toString() : 'an unsigned sender'
          log('debug', `metric from ${from} dropped: ${errorMessage(err)}`)
          return
        }
        onMetric(m)
      }
      pubsub.addEventListener('message', onMessage)
      pubsub.subscribe(METRICS_TOPIC)
      return () => {
        pubsub.removeEventListener('message', onMessage)
        try {
          pubsub.unsubscribe(METRICS_TOPIC)
        } catch {
          // the host stopped first
        }
      }
    },
  }
}
