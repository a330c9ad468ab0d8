/**
 * Metrics (informer output, ping) and alerts, as `GET /monitor/metrics/{name}` returns them.
 * `expire` and `received_at` are Unix nanoseconds, as in the reference.
 *
 * @example
 * ```ts
 * const m = newMetric('freespace', peer, '1000', 30_000, Date.now())
 * ```
 */

/** One metric sample from one peer. */
export interface Metric {
  name: string
  peer: string
  value: string
  expire: number
  valid: boolean
  weight: number
  partitionable: boolean
  received_at: number
}

/** An alert raised when a peer's metric expired. */
export interface Alert extends Metric {
  triggered_at: string
}

const NS_PER_MS = 1_000_000

/** Builds a valid metric that expires `ttlMs` after `now` (epoch ms). */
export function newMetric(
  name: string,
  peer: string,
  value: string,
  ttlMs: number,
  now: number,
  weight = 0,
  partitionable = false,
): Metric {
  return {
    name,
    peer,
    value,
    expire: (now + ttlMs) * NS_PER_MS,
    valid: true,
    weight,
    partitionable,
    received_at: now * NS_PER_MS,
  }
}

/** Milliseconds the metric is still valid for at `now` (epoch ms); negative once expired. */
export function metricTtlMs(m: Metric, now: number): number {
  return m.expire / NS_PER_MS - now
}

/** True when the metric has expired at `now` (epoch ms). */
export function metricExpired(m: Metric, now: number): boolean {
  return m.expire <= now * NS_PER_MS
}
