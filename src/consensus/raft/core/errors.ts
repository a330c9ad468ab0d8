/**
 * Named errors of the Raft core. Those a client can meet (no leader, proposal dropped, bad
 * membership change) extend the cluster's `ConsensusError` so the REST layer maps them without
 * string matching; storage errors and broken invariants are for the host.
 *
 * @example
 * ```ts
 * try {
 *   node.propose(data)
 * } catch (err) {
 *   if (err instanceof NoLeaderError) retryLater()
 * }
 * ```
 *
 * @module
 */
import { ConsensusError } from '../../../errors.ts'
import type { NodeId } from './types.ts'

/** No leader is known, so a proposal or read cannot be served or forwarded. */
export class NoLeaderError extends ConsensusError {
  override name = 'NoLeaderError'
  override status = 503
  constructor(message = 'no leader') {
    super(message)
  }
}

/** This node is not the leader and forwarding is disabled; `leader` says where to go. */
export class NotLeaderError extends ConsensusError {
  override name = 'NotLeaderError'
  override status = 503
  readonly leader: NodeId | null
  constructor(leader: NodeId | null) {
    super(leader === null ? 'not the leader' : `not the leader (leader is ${leader})`)
    this.leader = leader
  }
}

/**
 * The proposal was refused before entering the log: a leadership transfer is in progress, the
 * leader is being removed, or too many entries are uncommitted. Nothing was appended; retrying
 * later is safe.
 */
export class ProposalDroppedError extends ConsensusError {
  override name = 'ProposalDroppedError'
  override status = 503
}

/**
 * An operation was proposed but not applied within `network_timeout`, `commit_retries` + 1 times:
 * most often the leader it went to has lost its majority. It may still be applied later.
 */
export class CommitTimeoutError extends ConsensusError {
  override name = 'CommitTimeoutError'
  override status = 503
}

/** A membership change that breaks the one-server-at-a-time rules or makes no sense. */
export class ConfChangeError extends ConsensusError {
  override name = 'ConfChangeError'
  override status = 400
}

/**
 * Another membership change is not yet committed, or the leader has not yet committed an entry
 * of its own term. Retry once the log has caught up.
 */
export class ConfChangeInProgressError extends ConsensusError {
  override name = 'ConfChangeInProgressError'
  override status = 409
}

/**
 * A learner cannot be promoted yet: it does not hold everything committed. Promoting it now
 * would make the cluster wait for it to catch up before it can commit again. Retry later.
 */
export class LearnerBehindError extends ConsensusError {
  override name = 'LearnerBehindError'
  override status = 409
}

/** A leadership transfer request that cannot be honoured (unknown or non-voting target). */
export class TransferError extends ConsensusError {
  override name = 'TransferError'
  override status = 400
}

/** Storage: the requested index lies before the first available entry (compacted away). */
export class CompactedError extends Error {
  override name = 'CompactedError'
  constructor(message = 'requested index is unavailable due to compaction') {
    super(message)
  }
}

/** Storage: the requested index lies beyond the last entry. */
export class UnavailableError extends Error {
  override name = 'UnavailableError'
  constructor(message = 'requested entry at index is unavailable') {
    super(message)
  }
}

/** Storage: a snapshot older than the one already held was offered. */
export class SnapshotOutOfDateError extends Error {
  override name = 'SnapshotOutOfDateError'
  constructor(message = 'requested snapshot is older than the existing snapshot') {
    super(message)
  }
}

/** A configuration value is out of range; the message names the key. */
export class RaftConfigError extends Error {
  override name = 'RaftConfigError'
}

/** A message that is malformed or must not come from the network. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError'
}

/** The host broke the Ready/advance contract (e.g. called ready() twice without advance()). */
export class ReadyContractError extends Error {
  override name = 'ReadyContractError'
}

/**
 * A Raft safety invariant would be violated (e.g. truncating a committed entry). This means
 * corrupted storage or a bug; the node must stop rather than continue with a damaged log.
 */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError'
}
