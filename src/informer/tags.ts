/**
 * The tags informer: one partitionable metric `tag:<name>` per configured tag, so the balanced
 * allocator can spread replicas over groups (`allocate_by: ["tag:region", "freespace"]`).
 *
 * @example
 * ```ts
 * const ms = await tagsInformer({ metric_ttl: 30_000, tags: { region: 'eu' } }).getMetrics()
 * ms[0] // { name: 'tag:region', value: 'eu', partitionable: true, … }
 * ```
 */
import type { Informer } from '../components.ts'
import { type Metric, newMetric } from '../types/metric.ts'
import type { TagsConfig } from './config.ts'
import { invalidMetric } from './metric.ts'

/** The informer's name (its metrics are named `tag:<name>`). */
export const TAGS = 'tags'

/** What the tags informer needs. */
export interface TagsInformerDeps {
  peerId?: string
  now?: () => number
}

/** Builds the tags informer. With no tags it yields one invalid `tag:none` metric. */
export function tagsInformer(config: TagsConfig, deps: TagsInformerDeps = {}): Informer {
  const now = deps.now ?? Date.now
  return {
    name: () => TAGS,
    getMetrics(): Promise<Metric[]> {
      const peer = deps.peerId ?? ''
      const entries = Object.entries(config.tags ?? {})
      if (!entries.length) {
        return Promise.resolve([invalidMetric('tag:none', peer, config.metric_ttl, now(), true)])
      }
      return Promise.resolve(
        entries.map(([k, v]) => newMetric(`tag:${k}`, peer, v, config.metric_ttl, now(), 0, true)),
      )
    },
    stop: () => Promise.resolve(),
  }
}
