/**
 * Small helpers shared by the core's files: entry sizes for batching limits and membership
 * comparisons.
 *
 * @module
 */
import type { ConfState, Entry, NodeId } from './types.ts'

/**
 * Fixed per-entry overhead counted on top of the payload, so that flow control also limits
 * batches of empty entries (roughly what an encoded term + index + type cost on the wire).
 */
export const ENTRY_OVERHEAD = 16

/** The size an entry counts for in `maxSizePerMsg` and similar byte limits. */
export function entrySize(e: { data: Uint8Array }): number {
  return e.data.byteLength + ENTRY_OVERHEAD
}

/** Sum of `entrySize` over `ents`. */
export function entriesSize(ents: readonly { data: Uint8Array }[]): number {
  let n = 0
  for (const e of ents) n += entrySize(e)
  return n
}

/**
 * The longest prefix of `ents` whose size stays within `maxSize`, but never fewer than one entry:
 * an entry larger than the limit must still make progress.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents
  let size = entrySize(ents[0])
  let n = 1
  for (; n < ents.length; n++) {
    size += entrySize(ents[n])
    if (size > maxSize) break
  }
  return n === ents.length ? ents : ents.slice(0, n)
}

/** A deep copy of a ConfState, sorted so two equal memberships compare equal. */
export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters].sort(), learners: [...cs.learners].sort() }
}

/** True when both describe the same membership. */
export function confStateEquals(a: ConfState, b: ConfState): boolean {
  const x = cloneConfState(a)
  const y = cloneConfState(b)
  return x.voters.join('\0') === y.voters.join('\0') &&
    x.learners.join('\0') === y.learners.join('\0')
}

/** True if `id` is a voter or a learner of `cs`. */
export function isMember(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.learners.includes(id)
}
