/**
 * The adder's seam with the peer: what an add needs (`AdderDeps`), what it yields
 * (`AddedOutput`), and `contentAdder`, which binds them into the `AddContent` function the REST API
 * and the IPFS proxy call. The UnixFS importer (adder.ts) loads with the first add, not with the
 * peer (docs/performance.md).
 *
 * @example
 * ```ts
 * const add = contentAdder({ self, cluster, blockStream: (p, b, s) => rpc.upload(p, …) })
 * for await (const out of add(reader, params, signal)) …
 * ```
 */
import type { ClusterRPC } from '../components.ts'
import type { MultipartReader } from '../api/common/multipart.ts'
import type { AddParams } from './add_params.ts'
import type { AddedOutput } from '../types/added.ts'

export type { AddedOutput } from '../types/added.ts'

/** One block of an add, as it travels to an IPFS daemon. */
export interface Block {
  cid: string
  bytes: Uint8Array
}

/** What adding needs from the peer. */
export interface AdderDeps {
  /** This peer's ID (the destination of a `local` add). */
  self: string
  /** Allocates the content and pins its root (a prepared pin: allocations kept). */
  cluster: Pick<ClusterRPC, 'blockAllocate' | 'commitPin'>
  /** Stores blocks in a peer's IPFS daemon, this peer's own included, in one streaming call. */
  blockStream(peer: string, blocks: AsyncIterable<Block>, signal: AbortSignal): Promise<void>
}

/** Adds a multipart upload through the cluster: what the REST API and the IPFS proxy call. */
export type AddContent = (
  reader: MultipartReader,
  params: AddParams,
  signal: AbortSignal,
) => AsyncIterable<AddedOutput>

/** Binds the adder to a peer; the importer loads on the first call. */
export function contentAdder(deps: AdderDeps): AddContent {
  return async function* (reader, params, signal) {
    const { addMultipart } = await import('./adder.ts')
    yield* addMultipart(reader, params, deps, signal)
  }
}
