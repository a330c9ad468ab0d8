/**
 * How a peer enters and leaves the cluster, apart from the Raft mechanics: joining through a
 * member (`daemon --bootstrap`, `cluster.bootstrap`), leaving on shutdown (`--leave`,
 * `leave_on_shutdown`) and watching the peerset for this peer's removal (reference §5.8). All
 * reach other peers only through the RPC client.
 *
 * A joining peer first dials every member the remote knows an address of: the leader, which
 * adds it, has no other way to reach it (no DHT here).
 *
 * Why the watch and the leave ask other peers: a Raft leader stops replicating to a peer once it
 * has applied that peer's removal, so the removed peer may never apply the entry that removed it.
 * It then sits without a leader. After a few quiet rounds the watch asks the members it knew
 * whether they still count it; a member answers from its applied configuration, which holds
 * only committed changes, so "not in my peerset" from every member that answers is a removal
 * that happened.
 *
 * @example
 * ```ts
 * const remote = await join(['/ip4/10.0.0.1/tcp/9096/p2p/12D3…'], { connect, rpc, log })
 * const why = await watchRemoval({ self, consensus, rpc, clock, intervalMs: 5000, signal })
 * await leaveCluster({ self, consensus, rpc, clock, intervalMs: 5000, signal })
 * ```
 *
 * @module
 */
import type { Consensus } from '../components.ts'
import { ClusterError, errorMessage } from '../errors.ts'
import type { RpcClient } from '../rpc/methods.ts'
import type { Clock } from '../util/clock.ts'
import type { Logger } from '../util/log.ts'

/** Joining failed through every address given; the message says why for each. */
export class JoinError extends ClusterError {
  override name = 'JoinError'
}

/** What `join` needs. */
export interface JoinDeps {
  /** Dials a multiaddr (adding it to the peerstore); resolves with the remote peer ID. */
  connect(addr: string, signal?: AbortSignal): Promise<string>
  rpc: RpcClient
  log: Logger
  signal?: AbortSignal
  /** Bound on one member's `Cluster.PeerAdd` (adding a learner and promoting it). */
  timeoutMs?: number
}

/**
 * Asks the first member that answers, among `addrs` in order, to add this peer to the cluster.
 * Resolves with that member's peer ID; rejects with one `JoinError` naming every address tried
 * and why it failed.
 */
export async function join(addrs: string[], deps: JoinDeps): Promise<string> {
  const failures: string[] = []
  for (const addr of addrs) {
    deps.signal?.throwIfAborted()
    try {
      const remote = await deps.connect(addr, deps.signal)
      deps.log.info(`joining the cluster through ${remote}`)
      await connectMembers(remote, deps)
      await deps.rpc.call(remote, 'Cluster.PeerAdd', [deps.rpc.self], {
        signal: deps.signal,
        timeoutMs: deps.timeoutMs,
      })
      return remote
    } catch (err) {
      if (deps.signal?.aborted) throw err
      failures.push(`${addr}: ${errorMessage(err)}`)
      deps.log.warn(`cannot join through ${addr}: ${errorMessage(err)}`)
    }
  }
  throw new JoinError(
    `could not join the cluster through ${addrs.length === 1 ? 'its' : 'any'} bootstrap ` +
      `address (${failures.join('; ')}); check that the address is a running member's ` +
      `cluster address (with /p2p/) and that both peers share the cluster secret`,
  )
}

/**
 * Dials every member the remote peer knows an address of (its `Cluster.ID`'s
 * `cluster_peers_addresses`), best effort. The Raft leader must reach this peer to add it, and a
 * leader other than the remote has no address of it; a connection opened from here is one it
 * can use (and identify gives it this peer's listen addresses for later dials).
 */
async function connectMembers(remote: string, deps: JoinDeps): Promise<void> {
  const id = await deps.rpc.call(remote, 'Cluster.ID', [], {
    signal: deps.signal,
    timeoutMs: deps.timeoutMs,
  })
  await Promise.all(
    (id.cluster_peers_addresses ?? []).map((a) =>
      deps.connect(a, deps.signal).catch((err) =>
        deps.log.debug(`joining: cannot connect to member ${a}: ${errorMessage(err)}`)
      )
    ),
  )
}

/** What `watchRemoval` needs. */
export interface WatchDeps {
  self: string
  consensus: Pick<Consensus, 'peers' | 'leader'>
  rpc: RpcClient
  clock: Clock
  /** `cluster.peer_watch_interval`. */
  intervalMs: number
  signal: AbortSignal
  /** Quiet rounds (no leader) before asking the other members (default 3). */
  askAfterRounds?: number
  /** Called with the peerset each time it changes (the host forgets departed peers). */
  onPeers?(peers: string[], departed: string[]): void
  /**
   * The peers this peer knew before watching (its peerstore): those outside the first peerset
   * it reads departed too, e.g. while this peer was down, or before its first round.
   */
  known?: string[]
  log?: Logger
}

/**
 * Resolves with a sentence once this peer is no longer a member of the cluster; until then
 * watches every `intervalMs`. It starts counting only once this peer has been in the peerset (a
 * joining peer is not "removed" before it was added). Rejects only with the signal's reason.
 */
export async function watchRemoval(d: WatchDeps): Promise<string> {
  let wasMember = false
  let known: string[] = d.known ?? []
  let quiet = 0
  const askAfter = d.askAfterRounds ?? 3
  // The first look is at once: a peer removed within its first interval (right after it became
  // ready) must have been seen as a member to be seen removed.
  for (let first = true;; first = false) {
    if (!first) await d.clock.sleep(d.intervalMs, d.signal)
    let peers: string[]
    try {
      peers = await d.consensus.peers(d.signal)
    } catch {
      continue // consensus not open yet, or stopping: the signal ends the loop
    }
    if (peers.includes(d.self)) {
      wasMember = true
      const departed = known.filter((p) => !peers.includes(p))
      if (departed.length || peers.length !== known.length) d.onPeers?.(peers, departed)
      known = peers
    } else if (wasMember) {
      return 'this peer was removed from the cluster'
    }
    if (!wasMember) continue
    const hasLeader = await d.consensus.leader(d.signal).then(() => true, () => false)
    quiet = hasLeader ? 0 : quiet + 1
    if (quiet < askAfter) continue
    quiet = 0
    if (await removedByOthers(d, known)) {
      return 'the other members no longer count this peer in the cluster (it was removed)'
    }
  }
}

/** What `leaveCluster` needs. */
export interface LeaveDeps {
  self: string
  consensus: Pick<Consensus, 'peers' | 'rmPeer'>
  rpc: RpcClient
  clock: Clock
  /** How often to ask the other members (`cluster.peer_watch_interval`). */
  intervalMs: number
  signal: AbortSignal
  log?: Logger
}

/**
 * Removes this peer from the cluster (`--leave`, `leave_on_shutdown`). Resolves once the
 * removal happened: applied here, or — since the leader stops replicating to a peer once it has
 * applied that peer's removal, so a follower may never apply it (see the module comment) — once
 * the other members no longer count this peer. Rejects with rmPeer's error otherwise.
 */
export async function leaveCluster(d: LeaveDeps): Promise<void> {
  const others = (await d.consensus.peers(d.signal)).filter((p) => p !== d.self)
  const done = new AbortController()
  const signal = AbortSignal.any([d.signal, done.signal])
  const ask = { ...d, signal }
  const removal = d.consensus.rmPeer(d.self, signal)
  const seen = (async () => {
    for (;;) {
      await d.clock.sleep(d.intervalMs, signal)
      if (await removedByOthers(ask, others)) return
    }
  })()
  seen.catch(() => {})
  try {
    await Promise.race([removal, seen])
  } catch (err) {
    if (d.signal.aborted || !(await removedByOthers(ask, others))) throw err
  } finally {
    done.abort()
    removal.catch(() => {})
  }
}

/** True when at least one other member answers and none of those answering counts us. */
async function removedByOthers(
  d: Pick<WatchDeps, 'self' | 'rpc' | 'signal' | 'intervalMs' | 'log'>,
  known: string[],
): Promise<boolean> {
  const others = known.filter((p) => p !== d.self)
  const answers = await Promise.all(
    others.map((p) =>
      d.rpc.call(p, 'Cluster.ID', [], { signal: d.signal, timeoutMs: d.intervalMs })
        .then((id) => id.error ? undefined : id.cluster_peers, () => undefined)
    ),
  )
  const heard = answers.filter((a): a is string[] => a !== undefined)
  if (heard.length === 0) return false
  const removed = heard.every((peers) => !peers.includes(d.self))
  if (removed) d.log?.warn(`no member that answered counts this peer any more`)
  return removed
}
