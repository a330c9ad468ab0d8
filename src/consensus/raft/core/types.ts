/**
 * The data the Raft core speaks: log entries, persistent state, membership and the messages
 * peers exchange. Everything here is plain data (numbers, strings, Uint8Array) so that a
 * transport can encode it and a storage adapter can persist it without knowing the core.
 *
 * @example
 * ```ts
 * const e: Entry = { term: 2, index: 7, type: 'normal', data: new TextEncoder().encode('pin') }
 * ```
 *
 * @module
 */

/** A member's identity. In the cluster this is the libp2p peer ID string. */
export type NodeId = string

/** `normal` entries carry application data; `confChange` entries carry a membership change. */
export type EntryType = 'normal' | 'confChange'

/**
 * One log entry. `index` starts at 1; `term` is the leader's term when it was appended.
 * Two entries with the same index and term are identical, and so are all entries before them
 * (the Log Matching property the whole protocol rests on).
 */
export interface Entry {
  term: number
  index: number
  type: EntryType
  data: Uint8Array
}

/** What a client proposes: an entry before the leader assigns it a term and an index. */
export interface ProposalEntry {
  type: EntryType
  data: Uint8Array
}

/**
 * The state a node must make durable before it answers anyone: the current term, whom it voted
 * for in that term (or null) and the highest index it knows committed. Losing `term` or `vote`
 * lets a node vote twice in one term; `commit` is only an optimisation for restarts.
 */
export interface HardState {
  term: number
  vote: NodeId | null
  commit: number
}

/**
 * Membership. Voters elect leaders and count for commit quorums; learners only receive the log.
 * A node is in at most one of the two lists.
 */
export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

/**
 * Describes an application snapshot: it contains the effect of every entry up to and including
 * `index` (whose term is `term`), and `confState` is the membership as of `index`. The snapshot
 * bytes themselves never pass through the core.
 */
export interface SnapshotMeta {
  index: number
  term: number
  confState: ConfState
}

/** The kinds of membership change; exactly one server changes per change. */
export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode'

/**
 * A single-server membership change. `addVoter` on a current learner promotes it.
 */
export interface ConfChange {
  type: ConfChangeType
  id: NodeId
}

/** A node's role. `preCandidate` is the pre-vote phase, which does not bump the term. */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** Volatile state a host may want to observe (leader changes); it need not be persisted. */
export interface SoftState {
  leader: NodeId | null
  role: Role
}

/**
 * The answer to a linearizable read: once the local state machine has applied `index`, a read
 * issued with `ctx` may be served from local state.
 */
export interface ReadState {
  index: number
  ctx: string
}

interface MessageBase {
  from: NodeId
  to: NodeId
  /** The sender's term; 0 for node-local messages (proposals, reports from the host). */
  term: number
}

/** AppendEntries: `entries` follow the entry at (`index`, `logTerm`) in the leader's log. */
export interface AppendMessage extends MessageBase {
  type: 'append'
  index: number
  logTerm: number
  entries: Entry[]
  commit: number
}

/**
 * Answer to `append` (and to `snapshot`). On success `index` is the follower's last index now
 * known to match the leader. On rejection `index` is the rejected `append.index`, and
 * (`rejectHint`, `logTerm`) is the follower's best guess of where the logs may still agree:
 * the last index ≤ the probe whose term is ≤ the probe's term, so the leader can skip a whole
 * term of divergent entries in one round trip instead of one entry per round trip.
 */
export interface AppendResponse extends MessageBase {
  type: 'appendResp'
  index: number
  reject: boolean
  rejectHint: number
  logTerm: number
}

/**
 * RequestVote and its pre-vote twin. (`index`, `logTerm`) is the candidate's last entry.
 * `transfer` marks an election started by a leadership transfer, which voters honour even while
 * they still hear from a leader.
 */
export interface VoteMessage extends MessageBase {
  type: 'vote' | 'preVote'
  index: number
  logTerm: number
  transfer: boolean
}

/** Answer to `vote` / `preVote`. A granted pre-vote carries the term the candidate asked for. */
export interface VoteResponse extends MessageBase {
  type: 'voteResp' | 'preVoteResp'
  reject: boolean
}

/**
 * Leader heartbeat. `commit` is never above what the follower is known to hold, so a follower
 * can always adopt it. `ctx` tags a ReadIndex round.
 */
export interface HeartbeatMessage extends MessageBase {
  type: 'heartbeat'
  commit: number
  ctx?: string
}

/** Answer to `heartbeat`, echoing its ReadIndex `ctx`. */
export interface HeartbeatResponse extends MessageBase {
  type: 'heartbeatResp'
  ctx?: string
}

/**
 * InstallSnapshot. Emitted by a leader's core, it asks the host to stream the snapshot described
 * by `snapshot` to `to` (the bytes come from the host's snapshot store, see `snapshot_stream.ts`).
 * The receiving host steps the very same message into its core only after every chunk arrived
 * and the data is staged durably. The message is never sent over the wire as-is.
 */
export interface SnapshotMessage extends MessageBase {
  type: 'snapshot'
  snapshot: SnapshotMeta
}

/** A proposal a follower forwards to its leader. */
export interface ProposeMessage extends MessageBase {
  type: 'propose'
  entries: ProposalEntry[]
}

/** A ReadIndex request a follower forwards to its leader. */
export interface ReadIndexMessage extends MessageBase {
  type: 'readIndex'
  ctx: string
}

/** The leader's answer to a forwarded ReadIndex: serve `ctx` once `index` is applied. */
export interface ReadIndexResponse extends MessageBase {
  type: 'readIndexResp'
  index: number
  ctx: string
}

/** Asks the leader to hand leadership to `transferee`. */
export interface TransferLeaderMessage extends MessageBase {
  type: 'transferLeader'
  transferee: NodeId
}

/** Sent by a leader to a caught-up transferee: start an election now, skipping pre-vote. */
export interface TimeoutNowMessage extends MessageBase {
  type: 'timeoutNow'
}

/**
 * Host → own core: the snapshot stream to peer `from` finished (`ok`) or failed.
 * Like etcd's ReportSnapshot; never crosses the network.
 */
export interface SnapStatusMessage extends MessageBase {
  type: 'snapStatus'
  ok: boolean
}

/** Host → own core: peer `from` could not be reached; replication falls back to probing. */
export interface UnreachableMessage extends MessageBase {
  type: 'unreachable'
}

/** Every message the core consumes or produces. */
export type Message =
  | AppendMessage
  | AppendResponse
  | VoteMessage
  | VoteResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | SnapshotMessage
  | ProposeMessage
  | ReadIndexMessage
  | ReadIndexResponse
  | TransferLeaderMessage
  | TimeoutNowMessage
  | SnapStatusMessage
  | UnreachableMessage

/** The `type` tag of a message. */
export type MessageType = Message['type']

/** All message types, for validation and encoders. */
export const MESSAGE_TYPES: readonly MessageType[] = [
  'append',
  'appendResp',
  'vote',
  'preVote',
  'voteResp',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snapshot',
  'propose',
  'readIndex',
  'readIndexResp',
  'transferLeader',
  'timeoutNow',
  'snapStatus',
  'unreachable',
]

/** Messages a host reports to its own core; they must never arrive from the network. */
export const LOCAL_MESSAGE_TYPES: readonly MessageType[] = ['snapStatus', 'unreachable']
