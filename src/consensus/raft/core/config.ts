/**
 * Configuration of one Raft node: identity, storage, injected randomness, timing in ticks and
 * the flow-control limits. `resolveConfig` fills defaults and validates with messages naming the
 * key.
 *
 * @example
 * ```ts
 * const cfg = resolveConfig({ id: 'a', storage, rand: seededRandom(7), electionTick: 10 })
 * ```
 *
 * @module
 */
import { type Logger, nullLogger } from '../../../util/log.ts'
import { RaftConfigError } from './errors.ts'
import type { Storage } from './storage.ts'
import type { NodeId } from './types.ts'

/** Options for `new RaftNode(config)`. Only `id`, `storage` and `rand` are required. */
export interface RaftNodeConfig {
  /** This node's identity; must not change across restarts. */
  id: NodeId
  /** The durable state to start from (and to read stable entries from). */
  storage: Storage
  /**
   * Source of randomness in `[0, 1)`, used only to spread election timeouts. Injected so that a
   * seeded run is reproducible; production may pass `Math.random`.
   */
  rand: () => number
  /**
   * Ticks without hearing from a leader before a follower starts an election. The actual timeout
   * is drawn from `[electionTick, 2 * electionTick)` each time, so that candidates rarely collide.
   * Must exceed `heartbeatTick`; 10× is customary. Default 10.
   */
  electionTick?: number
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTick?: number
  /**
   * The index the host's state machine has already applied (if it persists it); committed
   * entries after it are handed out again on restart. Default: the snapshot's index.
   */
  applied?: number
  /** Byte budget of the entries in one append message (at least one entry is sent). Default 1 MiB. */
  maxSizePerMsg?: number
  /** Entry count limit of one append message. Default 4096. */
  maxEntriesPerMsg?: number
  /** Appends in flight to one follower before the leader waits for acknowledgements. Default 256. */
  maxInflightMsgs?: number
  /** Bytes in flight to one follower before the leader waits (0 = no byte limit). Default 0. */
  maxInflightBytes?: number
  /**
   * Bytes of proposed-but-uncommitted entry payloads a leader accepts before dropping new
   * proposals with `ProposalDroppedError` (0 = unlimited). Back-pressure for the proposers.
   * Default 0.
   */
  maxUncommittedEntriesSize?: number
  /** Byte budget of `committedEntries` in one Ready. Default 4 MiB. */
  maxCommittedSizePerReady?: number
  /**
   * A leader steps down when it has not heard from a quorum within an election timeout, and a
   * follower that heard from a leader within it ignores vote requests. Default true.
   */
  checkQuorum?: boolean
  /**
   * Run a pre-vote round (which does not bump terms) before a real election, so a node that was
   * partitioned away cannot disrupt the cluster when it comes back. Default true.
   */
  preVote?: boolean
  /** Followers refuse proposals with `NotLeaderError` instead of forwarding them. Default false. */
  disableProposalForwarding?: boolean
  /** Where the core logs state changes (debug) and anomalies (warn). Default: discard. */
  logger?: Logger
}

/** A config with every default filled in. */
export type ResolvedConfig = Required<Omit<RaftNodeConfig, 'applied'>> & { applied?: number }

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RaftConfigError(`${name} must be a positive integer, got ${v}`)
  }
  return v
}

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RaftConfigError(`${name} must be a non-negative integer, got ${v}`)
  }
  return v
}

/** Fills defaults and validates; throws `RaftConfigError` naming the offending key. */
export function resolveConfig(c: RaftNodeConfig): ResolvedConfig {
  if (typeof c.id !== 'string' || c.id === '') {
    throw new RaftConfigError('id must be a non-empty string')
  }
  if (!c.storage) throw new RaftConfigError('storage is required')
  if (typeof c.rand !== 'function') {
    throw new RaftConfigError('rand must be a function returning numbers in [0, 1)')
  }
  const electionTick = positiveInt('electionTick', c.electionTick ?? 10)
  const heartbeatTick = positiveInt('heartbeatTick', c.heartbeatTick ?? 1)
  if (electionTick <= heartbeatTick) {
    throw new RaftConfigError(
      `electionTick (${electionTick}) must be greater than heartbeatTick (${heartbeatTick})`,
    )
  }
  if (c.applied !== undefined) nonNegativeInt('applied', c.applied)
  return {
    id: c.id,
    storage: c.storage,
    rand: c.rand,
    electionTick,
    heartbeatTick,
    applied: c.applied,
    maxSizePerMsg: positiveInt('maxSizePerMsg', c.maxSizePerMsg ?? 1 << 20),
    maxEntriesPerMsg: positiveInt('maxEntriesPerMsg', c.maxEntriesPerMsg ?? 4096),
    maxInflightMsgs: positiveInt('maxInflightMsgs', c.maxInflightMsgs ?? 256),
    maxInflightBytes: nonNegativeInt('maxInflightBytes', c.maxInflightBytes ?? 0),
    maxUncommittedEntriesSize: nonNegativeInt(
      'maxUncommittedEntriesSize',
      c.maxUncommittedEntriesSize ?? 0,
    ),
    maxCommittedSizePerReady: positiveInt(
      'maxCommittedSizePerReady',
      c.maxCommittedSizePerReady ?? 4 << 20,
    ),
    checkQuorum: c.checkQuorum ?? true,
    preVote: c.preVote ?? true,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    logger: c.logger ?? nullLogger,
  }
}
