/**
 * The invalid metric informers return when they cannot measure (IPFS down, stopped): the cluster
 * does not publish it, so the peer's previous metric expires and allocators stop choosing it.
 *
 * @example
 * ```ts
 * invalidMetric('freespace', peer, 30_000, Date.now()).valid // false
 * ```
 */
import { type Metric, newMetric } from '../types/metric.ts'

/** A metric marked invalid, with an empty value. */
export function invalidMetric(
  name: string,
  peer: string,
  ttlMs: number,
  now: number,
  partitionable = false,
): Metric {
  const m = newMetric(name, peer, '', ttlMs, now, 0, partitionable)
  m.valid = false
  return m
}
