/**
 * A request's status in the spec's four words, from its CID's status on every peer (reference
 * §12): the peers' statuses are OR-ed, then an error anywhere is `failed`, else a queued pin
 * `queued`, else `pinning`, else `pinned`. Where the reference answers `undefined` (and skips the
 * item, or 404s), a request this API holds is `queued`: its CID is in the pinset and no peer has
 * pinned it yet or failed (peers that have not applied it yet say `unpinned`, a pin awaiting
 * recovery `unexpectedly_unpinned`). Kubo's client refuses any word outside the four.
 *
 * @example
 * ```ts
 * svcStatusOf(gpi) // 'pinned'
 * parseSvcStatuses('queued,pinning') // SVC_STATUS_BITS.queued | SVC_STATUS_BITS.pinning
 * ```
 *
 * @module
 */
import { ValidationError } from '../../errors.ts'
import type { GlobalPinInfo } from '../../types/pininfo.ts'
import { STATUS_BITS } from '../../types/status.ts'

/** The spec's statuses. */
export type SvcStatus = 'queued' | 'pinning' | 'pinned' | 'failed'

/** The spec's statuses, in its order. */
export const SVC_STATUSES: readonly SvcStatus[] = ['queued', 'pinning', 'pinned', 'failed']

/** A bit per status, for filters. */
export const SVC_STATUS_BITS: Readonly<Record<SvcStatus, number>> = {
  queued: 1,
  pinning: 2,
  pinned: 4,
  failed: 8,
}

/** The status of a CID as the API shows it, from the peers' statuses. */
export function svcStatusOf(gpi: Pick<GlobalPinInfo, 'peer_map'>): SvcStatus {
  let mask = 0
  for (const p of Object.values(gpi.peer_map)) mask |= STATUS_BITS[p.status] ?? 0
  if (mask & STATUS_BITS.error) return 'failed'
  if (mask & STATUS_BITS.pin_queued) return 'queued'
  if (mask & STATUS_BITS.pinning) return 'pinning'
  if (mask & STATUS_BITS.pinned) return 'pinned'
  return 'queued'
}

/**
 * Parses the `status` filter: a comma list of the spec's statuses. An unknown word is a 400
 * naming it (the reference drops unknown words while one is known).
 */
export function parseSvcStatuses(s: string | null): number {
  if (s === null || s === '') return 0
  let mask = 0
  for (const raw of s.split(',')) {
    const word = raw.trim()
    if (word === '') continue
    const bit = SVC_STATUS_BITS[word as SvcStatus]
    if (bit === undefined) {
      throw new ValidationError(
        `status: unknown status ${JSON.stringify(word)} (allowed: ${SVC_STATUSES.join(', ')})`,
      )
    }
    mask |= bit
  }
  return mask
}

/** True when a status passes a filter mask (0 = every status). */
export function svcStatusMatches(st: SvcStatus, mask: number): boolean {
  return mask === 0 || (SVC_STATUS_BITS[st] & mask) !== 0
}
