/**
 * The disk informer: `freespace` (StorageMax − RepoSize; the more the better) or `reposize`
 * (RepoSize; the smaller the better), from the IPFS daemon's repo stat.
 *
 * @example
 * ```ts
 * const inf = diskInformer(diskSection.defaults(), { ipfs })
 * const [m] = await inf.getMetrics() // { name: 'freespace', value: '9000', weight: 9000, … }
 * ```
 */
import type { Informer, IPFSConnector } from '../components.ts'
import { type Metric, newMetric } from '../types/metric.ts'
import type { DiskConfig } from './config.ts'
import { invalidMetric } from './metric.ts'

/** What the disk informer needs. */
export interface DiskInformerDeps {
  ipfs: IPFSConnector
  /** Set on the metric; the cluster overwrites it with its own ID before publishing anyway. */
  peerId?: string
  now?: () => number
}

/** Builds the disk informer for `config.metric_type`. */
export function diskInformer(config: DiskConfig, deps: DiskInformerDeps): Informer {
  const now = deps.now ?? Date.now
  const name = config.metric_type
  let stopped = false
  return {
    name: () => name,
    async getMetrics(signal?: AbortSignal): Promise<Metric[]> {
      const peer = deps.peerId ?? ''
      if (stopped) return [invalidMetric(name, peer, config.metric_ttl, now())]
      let stat
      try {
        stat = await deps.ipfs.repoStat(signal)
      } catch {
        return [invalidMetric(name, peer, config.metric_ttl, now())]
      }
      if (name === 'reposize') {
        // Smaller repositories come first: the weight is the negated size.
        return [
          newMetric(name, peer, String(stat.repoSize), config.metric_ttl, now(), -stat.repoSize),
        ]
      }
      const free = stat.storageMax - stat.repoSize
      if (free <= 0) {
        // A full repository must not be chosen: the metric is sent as invalid (and so not sent).
        const m = newMetric(name, peer, '0', config.metric_ttl, now(), 0)
        m.valid = false
        return [m]
      }
      return [newMetric(name, peer, String(free), config.metric_ttl, now(), free)]
    },
    stop() {
      stopped = true
      return Promise.resolve()
    },
  }
}
