/**
 * The alerts half of a PeerMonitor double: alerts a test raises, handed out in order to the
 * listener of `alerts(signal)` until the signal aborts.
 *
 * @example
 * ```ts
 * const q = alertQueue()
 * const monitor: PeerMonitor = { ...rest, alerts: q.alerts }
 * q.raise({ ...newMetric('ping', peer, '', 1000, now), triggered_at: 'now' })
 * ```
 */
import type { Alert } from '../../src/types/metric.ts'

/** Raised alerts and the listener that takes them. */
export function alertQueue() {
  const queue: Alert[] = []
  let wake: (() => void) | undefined
  return {
    raise(a: Alert): void {
      queue.push(a)
      wake?.()
    },
    async *alerts(signal?: AbortSignal): AsyncGenerator<Alert> {
      while (!signal?.aborted) {
        const a = queue.shift()
        if (a) {
          yield a
          continue
        }
        await new Promise<void>((r) => {
          wake = r
          signal?.addEventListener('abort', () => r(), { once: true })
        })
      }
    },
  }
}
