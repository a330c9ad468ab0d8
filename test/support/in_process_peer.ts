/**
 * One in-process cluster peer over a KvCluster (test/consensus/raft/kv_cluster.ts): a real Raft
 * consensus on its own Deno KV, a real stateless tracker fed by the apply hooks beside the given
 * IPFS double, and a Cluster that reaches the other peers only through the RPC mesh, where its
 * handlers are served. For the multi-peer tests (cluster_multi, cluster_replication).
 *
 * @example
 * ```ts
 * const { node, tracker, cluster } = await inProcessPeer(kvc, mesh, { id, name, ipfs, monitor })
 * ```
 */
import { type AllocationRequest, Cluster } from '../../src/cluster.ts'
import { type ClusterConfig, clusterSection } from '../../src/cluster/config.ts'
import type { PeerMonitor } from '../../src/components.ts'
import { statelessSection } from '../../src/pintracker/config.ts'
import { type StatelessTracker, statelessTracker } from '../../src/pintracker/stateless.ts'
import { rpcHandlers } from '../../src/rpc/handlers.ts'
import type { KvCluster, TestNode } from '../consensus/raft/kv_cluster.ts'
import type { FakeIpfs } from './fake_ipfs.ts'
import type { RpcMesh } from './rpc_mesh.ts'

/** What one peer is made of. */
export interface InProcessPeerOptions {
  id: string
  name: string
  ipfs: FakeIpfs
  /** What the tracker reports of its IPFS daemon. */
  ipfsId: { id: string; addresses: string[] }
  monitor: PeerMonitor
  config?: Partial<ClusterConfig>
  allocate?: (req: AllocationRequest) => Promise<string[]>
  /** The peers its host is connected to (`Cluster.ConnectedPeers`); default none. */
  connectedPeers?: () => string[]
  /** Whether a caller may use its trusted RPC methods; default everyone. */
  isTrusted?: (caller: string) => boolean
}

/** Starts the peer's consensus, builds its tracker and Cluster, serves its RPC handlers. */
export async function inProcessPeer(
  kvc: KvCluster,
  mesh: RpcMesh,
  o: InProcessPeerOptions,
): Promise<{ node: TestNode; tracker: StatelessTracker; cluster: Cluster }> {
  const started: { node?: TestNode } = {}
  const tracker = statelessTracker(statelessSection.defaults(), {
    peerId: o.id,
    peername: () => o.name,
    ipfs: o.ipfs,
    state: () => started.node!.state,
    ipfsId: () => o.ipfsId,
    clock: kvc.clock,
  })
  const node = started.node = await kvc.start(o.id, {
    hooks: {
      onPin: (p) => void tracker.track(p).catch(() => {}),
      onUnpin: (p) => void tracker.untrack(p).catch(() => {}),
      onRestore: () => tracker.resync(),
    },
  })
  const cluster = new Cluster({
    config: { ...clusterSection.defaults(), peername: o.name, ...o.config },
    peerId: o.id,
    consensus: node.consensus,
    tracker,
    ipfs: o.ipfs,
    monitor: o.monitor,
    informers: [],
    rpc: mesh.client(o.id),
    allocate: o.allocate,
    clock: kvc.clock,
  })
  mesh.serve(
    o.id,
    rpcHandlers({
      cluster,
      tracker,
      ipfs: o.ipfs,
      consensus: node.consensus,
      connectedPeers: o.connectedPeers ?? (() => []),
    }),
    o.isTrusted ?? (() => true),
  )
  return { node, tracker, cluster }
}
