/**
 * The RPC surface between cluster peers, on one page: every method another peer may call, its
 * arguments and results, and who may call it (the reference's policy table, §9). The wire
 * (`rpc/wire.ts`) carries these calls over libp2p streams; a call to this peer itself skips the
 * wire and the policy, as in the reference.
 *
 * Three shapes of call:
 * - `unary`: arguments → one result;
 * - `stream`: arguments → an async iterable of items (the callee streams);
 * - `upload`: arguments + an async iterable of inputs → one result (the caller streams).
 *
 * Policies: `open` = any peer that can connect (it knows the cluster secret); `trusted` = members
 * of the consensus peerset (`Consensus.isTrustedPeer`); `closed` = this peer only. Methods not in
 * the table do not exist remotely.
 *
 * @example
 * ```ts
 * const info = await rpc.call(peer, 'PinTracker.Status', [cid], { signal })
 * for await (const pi of rpc.stream(peer, 'PinTracker.StatusAll', [0], { signal })) …
 * ```
 *
 * @module
 */
import type { IPFSRepoStat, RepoGC } from '../components.ts'
import type { ID, PinInfo } from '../types/mod.ts'

/** A call with one result. */
export interface Unary<A extends unknown[], R> {
  kind: 'unary'
  args: A
  result: R
}
/** A call whose callee streams items back. */
export interface ServerStream<A extends unknown[], I> {
  kind: 'stream'
  args: A
  item: I
}
/** A call whose caller streams inputs; one result at the end. */
export interface Upload<A extends unknown[], I, R> {
  kind: 'upload'
  args: A
  input: I
  result: R
}

/** Every remote method, by the reference's `Service.Method` name. */
export interface RpcMethods {
  /** This peer's identity, cluster peers and IPFS daemon. */
  'Cluster.ID': Unary<[], ID>
  'Cluster.Version': Unary<[], string>
  /** Adds the given peer to the consensus peerset (used by a joining peer); returns our ID. */
  'Cluster.PeerAdd': Unary<[peer: string], ID>
  /** Removes a peer (its pins move first unless repinning is disabled). */
  'Cluster.PeerRemove': Unary<[peer: string], void>
  /** The peers this peer's cluster host is connected to (for `/health/graph`). */
  'Cluster.ConnectedPeers': Unary<[], string[]>
  'Cluster.RecoverLocal': Unary<[cid: string], PinInfo>
  'Cluster.RecoverAllLocal': ServerStream<[], PinInfo>
  'Cluster.RepoGCLocal': Unary<[], RepoGC>
  'PinTracker.Status': Unary<[cid: string], PinInfo>
  /** This peer's status of every tracked CID matching the filter mask (0 = all). */
  'PinTracker.StatusAll': ServerStream<[filter: number], PinInfo>
  'PinTracker.Recover': Unary<[cid: string], PinInfo>
  'IPFSConnector.SwarmPeers': Unary<[], string[]>
  'IPFSConnector.RepoStat': Unary<[], IPFSRepoStat>
  /** Stores blocks in this peer's IPFS daemon (adding across peers). */
  'IPFSConnector.BlockStream': Upload<[], { cid: string; bytes: Uint8Array }, void>
  'Consensus.AddPeer': Unary<[peer: string], void>
  'Consensus.RmPeer': Unary<[peer: string], void>
}

/** A remote method's name. */
export type RpcMethod = keyof RpcMethods
/** Methods by shape. */
export type UnaryMethod = {
  [M in RpcMethod]: RpcMethods[M] extends Unary<infer _A, infer _R> ? M : never
}[RpcMethod]
export type StreamMethod = {
  [M in RpcMethod]: RpcMethods[M] extends ServerStream<infer _A, infer _I> ? M : never
}[RpcMethod]
export type UploadMethod = {
  [M in RpcMethod]: RpcMethods[M] extends Upload<infer _A, infer _I, infer _R> ? M : never
}[RpcMethod]
export type ArgsOf<M extends RpcMethod> = RpcMethods[M]['args']
export type ResultOf<M extends UnaryMethod | UploadMethod> = RpcMethods[M] extends
  { result: infer R } ? R : never
export type ItemOf<M extends StreamMethod> = RpcMethods[M] extends ServerStream<infer _A, infer I>
  ? I
  : never
export type InputOf<M extends UploadMethod> = RpcMethods[M] extends
  Upload<infer _A, infer I, infer _R> ? I
  : never

/** Who may call a method from another peer. */
export type Policy = 'open' | 'trusted' | 'closed'

/**
 * The policy table, enforced in one place: the receiving side of the wire. Methods the reference
 * lists as closed are not remote methods here at all.
 */
export const POLICY: Readonly<Record<RpcMethod, Policy>> = {
  'Cluster.ID': 'open',
  'Cluster.Version': 'open',
  'Cluster.PeerAdd': 'open',
  'Cluster.PeerRemove': 'trusted',
  'Cluster.ConnectedPeers': 'trusted',
  'Cluster.RecoverLocal': 'trusted',
  'Cluster.RecoverAllLocal': 'trusted',
  'Cluster.RepoGCLocal': 'trusted',
  'PinTracker.Status': 'trusted',
  'PinTracker.StatusAll': 'trusted',
  'PinTracker.Recover': 'trusted',
  'IPFSConnector.SwarmPeers': 'trusted',
  'IPFSConnector.RepoStat': 'trusted',
  'IPFSConnector.BlockStream': 'trusted',
  'Consensus.AddPeer': 'trusted',
  'Consensus.RmPeer': 'trusted',
}

/** The shape of each method, for the wire (which frames to expect). */
export const KIND: Readonly<Record<RpcMethod, 'unary' | 'stream' | 'upload'>> = {
  'Cluster.ID': 'unary',
  'Cluster.Version': 'unary',
  'Cluster.PeerAdd': 'unary',
  'Cluster.PeerRemove': 'unary',
  'Cluster.ConnectedPeers': 'unary',
  'Cluster.RecoverLocal': 'unary',
  'Cluster.RecoverAllLocal': 'stream',
  'Cluster.RepoGCLocal': 'unary',
  'PinTracker.Status': 'unary',
  'PinTracker.StatusAll': 'stream',
  'PinTracker.Recover': 'unary',
  'IPFSConnector.SwarmPeers': 'unary',
  'IPFSConnector.RepoStat': 'unary',
  'IPFSConnector.BlockStream': 'upload',
  'Consensus.AddPeer': 'unary',
  'Consensus.RmPeer': 'unary',
}

/**
 * Streamed methods whose items are plain JSON values (no bytes, no `undefined` that matters): the
 * wire carries their batches as JSON text, several times faster than CBOR item by item
 * (docs/rpc.md). Items of other methods (blocks) travel as CBOR.
 */
export const JSON_ITEMS: ReadonlySet<RpcMethod> = new Set<RpcMethod>([
  'Cluster.RecoverAllLocal',
  'PinTracker.StatusAll',
])

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal
  /** Fails the call with a `TimeoutError` after this long; the callee sees the deadline too. */
  timeoutMs?: number
}

/** What a handler learns about its caller. */
export interface CallContext {
  /** The calling peer's ID (this peer's own for a local call). */
  peer: string
  /** Aborted when the caller aborts, its deadline passes or this peer stops. */
  signal: AbortSignal
}

/** The server side of one method. */
export type Handler<M extends RpcMethod> = RpcMethods[M] extends Unary<infer A, infer R>
  ? (args: A, ctx: CallContext) => Promise<R>
  : RpcMethods[M] extends ServerStream<infer A, infer I>
    ? (args: A, ctx: CallContext) => AsyncIterable<I>
  : RpcMethods[M] extends Upload<infer A, infer I, infer R>
    ? (args: A, input: AsyncIterable<I>, ctx: CallContext) => Promise<R>
  : never

/** What this peer serves: one handler per remote method. */
export type RpcHandlers = { [M in RpcMethod]: Handler<M> }

/**
 * Calls methods of any peer, this one included (then without the wire). Errors keep their class
 * across the wire (`ValidationError`, `NotFoundError`…); a peer that cannot be reached fails with
 * `RpcUnreachableError`, a refused call with `RpcForbiddenError` (rpc/errors.ts).
 */
export interface RpcClient {
  /** This peer's ID. */
  readonly self: string
  call<M extends UnaryMethod>(
    peer: string,
    method: M,
    args: ArgsOf<M>,
    opts?: CallOptions,
  ): Promise<ResultOf<M>>
  stream<M extends StreamMethod>(
    peer: string,
    method: M,
    args: ArgsOf<M>,
    opts?: CallOptions,
  ): AsyncIterable<ItemOf<M>>
  upload<M extends UploadMethod>(
    peer: string,
    method: M,
    args: ArgsOf<M>,
    input: AsyncIterable<InputOf<M>>,
    opts?: CallOptions,
  ): Promise<ResultOf<M>>
}
