/**
 * The numpin informer: how many recursive and direct pins the IPFS daemon holds, counted from a
 * streamed pin listing (never gathered). Informational: it carries no weight.
 *
 * @example
 * ```ts
 * const [m] = await numpinInformer(numpinSection.defaults(), { ipfs }).getMetrics()
 * m.value // '42'
 * ```
 */
import type { Informer, IPFSConnector } from '../components.ts'
import { type Metric, newMetric } from '../types/metric.ts'
import type { NumpinConfig } from './config.ts'
import { invalidMetric } from './metric.ts'

/** The metric name. */
export const NUMPIN = 'numpin'

/** What the numpin informer needs. */
export interface NumpinInformerDeps {
  ipfs: IPFSConnector
  peerId?: string
  now?: () => number
}

/**
 * Builds the numpin informer. Unlike the reference (whose connector lists only the first type
 * asked for, so it counts recursive pins only), direct pins count too.
 */
export function numpinInformer(config: NumpinConfig, deps: NumpinInformerDeps): Informer {
  const now = deps.now ?? Date.now
  let stopped = false
  return {
    name: () => NUMPIN,
    async getMetrics(signal?: AbortSignal): Promise<Metric[]> {
      const peer = deps.peerId ?? ''
      if (stopped) return [invalidMetric(NUMPIN, peer, config.metric_ttl, now())]
      let n = 0
      try {
        if (deps.ipfs.pinCount) n = await deps.ipfs.pinCount(signal)
        else {
          for (const type of ['recursive', 'direct'] as const) {
            for await (const _ of deps.ipfs.pinLs(type, signal)) n++
          }
        }
      } catch {
        const m = invalidMetric(NUMPIN, peer, config.metric_ttl, now())
        m.value = String(n)
        return [m]
      }
      return [newMetric(NUMPIN, peer, String(n), config.metric_ttl, now())]
    },
    stop() {
      stopped = true
      return Promise.resolve()
    },
  }
}
