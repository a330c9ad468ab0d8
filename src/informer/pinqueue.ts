/**
 * The pinqueue informer: how many pins wait in this peer's tracker queue. Peers with shorter
 * queues weigh more: weight = −queued / weight_bucket_size (truncated), so peers whose queues
 * differ by less than a bucket weigh the same and other metrics decide between them.
 *
 * @example
 * ```ts
 * const [m] = await pinqueueInformer(pinqueueSection.defaults(), { tracker }).getMetrics()
 * m.value // '1500'
 * ```
 */
import type { Informer, PinTracker } from '../components.ts'
import { type Metric, newMetric } from '../types/metric.ts'
import type { PinqueueConfig } from './config.ts'
import { invalidMetric } from './metric.ts'

/** The metric name. */
export const PINQUEUE = 'pinqueue'

/** What the pinqueue informer needs. */
export interface PinqueueInformerDeps {
  tracker: Pick<PinTracker, 'pinQueueSize'>
  peerId?: string
  now?: () => number
}

/** Builds the pinqueue informer. */
export function pinqueueInformer(config: PinqueueConfig, deps: PinqueueInformerDeps): Informer {
  const now = deps.now ?? Date.now
  let stopped = false
  return {
    name: () => PINQUEUE,
    getMetrics(): Promise<Metric[]> {
      const peer = deps.peerId ?? ''
      if (stopped) return Promise.resolve([invalidMetric(PINQUEUE, peer, config.metric_ttl, now())])
      const queued = deps.tracker.pinQueueSize()
      const bucket = config.weight_bucket_size
      // `|| 0` turns -0 into 0: Go's integer division has no negative zero.
      const weight = (bucket > 0 ? Math.trunc(-queued / bucket) : -queued) || 0
      return Promise.resolve([
        newMetric(PINQUEUE, peer, String(queued), config.metric_ttl, now(), weight),
      ])
    },
    stop() {
      stopped = true
      return Promise.resolve()
    },
  }
}
