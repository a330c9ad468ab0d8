/**
 * What this peer serves to the other members (and to itself): one small handler per remote
 * method of rpc/methods.ts, each a call into the Cluster or one of this peer's components. The
 * wire (or an in-process client) applies the policy table before a handler runs.
 *
 * @example
 * ```ts
 * const handlers = rpcHandlers({ cluster, tracker, ipfs, consensus, connectedPeers: () => host.peers() })
 * await handlers['PinTracker.Status'](['bafy…'], { peer, signal })
 * ```
 *
 * @module
 */
import type { Consensus, IPFSConnector, PinTracker } from '../components.ts'
import type { Cluster } from '../cluster.ts'
import { normalizeCid } from '../types/cid.ts'
import type { RpcHandlers } from './methods.ts'

/** What the handlers call: this peer's Cluster and components. */
export interface RpcHandlerDeps {
  cluster: Cluster
  tracker: PinTracker
  ipfs: IPFSConnector
  consensus: Consensus
  /** The peers this peer's cluster host is connected to now (for `/health/graph`). */
  connectedPeers: () => string[]
}

/** Builds this peer's handlers. */
export function rpcHandlers(d: RpcHandlerDeps): RpcHandlers {
  const { cluster, tracker, ipfs, consensus } = d
  return {
    'Cluster.ID': (_args, ctx) => cluster.id(ctx.signal),
    'Cluster.Version': () => Promise.resolve(cluster.version()),
    'Cluster.PeerAdd': ([peer], ctx) => cluster.peerAdd(peer, ctx.signal),
    'Cluster.PeerRemove': ([peer], ctx) => cluster.peerRemove(peer, ctx.signal),
    'Cluster.ConnectedPeers': () => Promise.resolve(d.connectedPeers()),
    'Cluster.RecoverLocal': ([cid], ctx) => tracker.recover(normalizeCid(cid), ctx.signal),
    'Cluster.RecoverAllLocal': (_args, ctx) => tracker.recoverAll(ctx.signal),
    'Cluster.RepoGCLocal': (_args, ctx) => cluster.repoGCLocal(ctx.signal),
    'PinTracker.Status': ([cid], ctx) => tracker.status(normalizeCid(cid), ctx.signal),
    'PinTracker.StatusAll': ([filter], ctx) => tracker.statusAll(filter, ctx.signal),
    'PinTracker.Recover': ([cid], ctx) => tracker.recover(normalizeCid(cid), ctx.signal),
    'IPFSConnector.SwarmPeers': (_args, ctx) => ipfs.swarmPeers(ctx.signal),
    'IPFSConnector.RepoStat': (_args, ctx) => ipfs.repoStat(ctx.signal),
    'IPFSConnector.BlockStream': (_args, blocks, ctx) => ipfs.blockStream(blocks, ctx.signal),
    'Consensus.AddPeer': ([peer], ctx) => consensus.addPeer(peer, ctx.signal),
    'Consensus.RmPeer': ([peer], ctx) => consensus.rmPeer(peer, ctx.signal),
  }
}
