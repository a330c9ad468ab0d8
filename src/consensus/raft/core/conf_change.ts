/**
 * Membership changes, one server at a time (Raft thesis §4.1).
 *
 * A `confChange` log entry carries both the change and the *whole* membership that results from
 * it. A node's membership is that of the latest `confChange` entry in its log — committed or not —
 * or, if there is none, that of its snapshot. Using the latest entry of the log (rather than the
 * latest applied one) is what makes single-server changes safe: the election restriction ties a
 * node's membership to its log, so any two memberships that can be in use at once differ by one
 * server and their majorities overlap. Carrying the whole membership, rather than a delta, means a
 * node that joins from an empty log and receives only the tail of the log still derives it right.
 *
 * The leader accepts a new change only when the previous one is committed and it has committed an
 * entry of its own term (the fix for the single-server change bug Ongaro described in 2015).
 *
 * @module
 */
import { ConfChangeError, RaftInvariantError } from './errors.ts'
import type { ConfChange, ConfChangeType, ConfState } from './types.ts'
import { cloneConfState } from './util.ts'

/** What a `confChange` log entry holds. */
export interface ConfChangeRecord {
  change: ConfChange
  /** The membership after the change. */
  conf: ConfState
}

const CHANGE_TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode']
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Throws `ConfChangeError` unless `cc` is a well-formed change. */
export function validateConfChange(cc: ConfChange): void {
  if (typeof cc !== 'object' || cc === null) {
    throw new ConfChangeError('conf change must be an object')
  }
  if (!CHANGE_TYPES.includes(cc.type)) {
    throw new ConfChangeError(
      `invalid conf change type ${JSON.stringify(cc.type)} (allowed: ${CHANGE_TYPES.join(', ')})`,
    )
  }
  if (typeof cc.id !== 'string' || cc.id === '') {
    throw new ConfChangeError('conf change id must be a non-empty string')
  }
}

/** Encodes a proposed change (what a follower forwards; the leader fills in the membership). */
export function encodeConfChangeProposal(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ change: { type: cc.type, id: cc.id } }))
}

/** Decodes a proposed change; throws `ConfChangeError` if malformed. */
export function decodeConfChangeProposal(data: Uint8Array): ConfChange {
  let v: unknown
  try {
    v = JSON.parse(decoder.decode(data))
  } catch {
    throw new ConfChangeError('conf change proposal is not valid JSON')
  }
  const change = (v as { change?: ConfChange })?.change
  validateConfChange(change as ConfChange)
  return { type: change!.type, id: change!.id }
}

/** Encodes the data of a `confChange` log entry. */
export function encodeConfChangeEntry(rec: ConfChangeRecord): Uint8Array {
  return encoder.encode(JSON.stringify({ change: rec.change, conf: cloneConfState(rec.conf) }))
}

/**
 * Decodes the data of a `confChange` log entry, e.g. when the host applies it to learn which
 * peer joined or left. A malformed entry in the log means corruption: `RaftInvariantError`.
 *
 * @example
 * ```ts
 * for (const e of ready.committedEntries) {
 *   if (e.type === 'confChange') console.log(decodeConfChangeEntry(e.data).change)
 * }
 * ```
 */
export function decodeConfChangeEntry(data: Uint8Array): ConfChangeRecord {
  try {
    const v = JSON.parse(decoder.decode(data)) as ConfChangeRecord
    validateConfChange(v.change)
    if (!Array.isArray(v.conf?.voters) || !Array.isArray(v.conf?.learners)) throw new Error()
    return { change: v.change, conf: cloneConfState(v.conf) }
  } catch {
    throw new RaftInvariantError('malformed confChange entry in the log')
  }
}

/**
 * The membership after applying `cc` to `cs`, or `ConfChangeError` when the change is not a
 * single-server change of the current membership.
 */
export function applyConfChange(cs: ConfState, cc: ConfChange): ConfState {
  validateConfChange(cc)
  const voters = new Set(cs.voters)
  const learners = new Set(cs.learners)
  switch (cc.type) {
    case 'addVoter':
      if (voters.has(cc.id)) throw new ConfChangeError(`${cc.id} is already a voter`)
      learners.delete(cc.id)
      voters.add(cc.id)
      break
    case 'addLearner':
      if (voters.has(cc.id)) {
        throw new ConfChangeError(`${cc.id} is a voter; demoting a voter is not supported`)
      }
      if (learners.has(cc.id)) throw new ConfChangeError(`${cc.id} is already a learner`)
      learners.add(cc.id)
      break
    case 'removeNode':
      if (!voters.has(cc.id) && !learners.has(cc.id)) {
        throw new ConfChangeError(`${cc.id} is not a member`)
      }
      if (voters.has(cc.id) && voters.size === 1) {
        throw new ConfChangeError(`cannot remove ${cc.id}: it is the last voter`)
      }
      voters.delete(cc.id)
      learners.delete(cc.id)
      break
  }
  return cloneConfState({ voters: [...voters], learners: [...learners] })
}
