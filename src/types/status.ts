/**
 * TrackerStatus: the per-peer state of a pin, as bit flags so that filters ("error", "queued",
 * "pinned,pin_error") are masks. Names and bits follow IPFS Cluster 1.x exactly.
 *
 * @example
 * ```ts
 * const f = parseStatusFilter('error')
 * statusMatches('pin_error', f) // true
 * ```
 */
import { ValidationError } from '../errors.ts'

/** A single status name as it appears in JSON. */
export type TrackerStatus =
  | 'undefined'
  | 'cluster_error'
  | 'pin_error'
  | 'unpin_error'
  | 'pinned'
  | 'pinning'
  | 'unpinning'
  | 'unpinned'
  | 'remote'
  | 'pin_queued'
  | 'unpin_queued'
  | 'sharded'
  | 'unexpectedly_unpinned'

/** Bit of each status; composites `error` and `queued` are unions. */
export const STATUS_BITS: Readonly<Record<string, number>> = Object.freeze({
  undefined: 0,
  cluster_error: 1 << 1,
  pin_error: 1 << 2,
  unpin_error: 1 << 3,
  pinned: 1 << 4,
  pinning: 1 << 5,
  unpinning: 1 << 6,
  unpinned: 1 << 7,
  remote: 1 << 8,
  pin_queued: 1 << 9,
  unpin_queued: 1 << 10,
  sharded: 1 << 11,
  unexpectedly_unpinned: 1 << 12,
  error: (1 << 1) | (1 << 2) | (1 << 3),
  queued: (1 << 9) | (1 << 10),
})

/** Every real (single-bit) status name, in bit order. */
export const TRACKER_STATUSES: readonly TrackerStatus[] = [
  'cluster_error',
  'pin_error',
  'unpin_error',
  'pinned',
  'pinning',
  'unpinning',
  'unpinned',
  'remote',
  'pin_queued',
  'unpin_queued',
  'sharded',
  'unexpectedly_unpinned',
]

/** Statuses that count as errors (a `--wait` stops on them). */
export const ERROR_STATUSES: ReadonlySet<string> = new Set([
  'undefined',
  'cluster_error',
  'pin_error',
  'unpin_error',
])

/**
 * Parses a comma list of status names into a mask. Unknown names are ignored, as in the reference;
 * a non-empty list that yields no bit (only unknown names, or just `undefined`) is an error
 * (`invalid filter value`), as the reference answers. Empty means "all" (0).
 */
export function parseStatusFilter(s: string | null | undefined): number {
  if (!s) return 0
  let mask = 0
  for (const part of s.split(',')) {
    const name = part.trim()
    // hasOwn: names like `constructor` must not match Object.prototype.
    if (Object.hasOwn(STATUS_BITS, name)) mask |= STATUS_BITS[name]
  }
  if (mask === 0) throw new ValidationError('invalid filter value')
  return mask
}

/** True when a status matches a filter mask (0 matches everything). */
export function statusMatches(status: string, filter: number): boolean {
  const bit = Object.hasOwn(STATUS_BITS, status) ? STATUS_BITS[status] : 0
  return filter === 0 || bit === 0 || (bit & filter) !== 0
}

/** True when the filter can match any of the given statuses. */
export function filterCanMatch(filter: number, ...statuses: TrackerStatus[]): boolean {
  return statuses.some((s) => statusMatches(s, filter))
}
