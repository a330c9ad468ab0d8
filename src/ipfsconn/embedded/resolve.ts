/**
 * IPFS path resolution for the embedded node: `/ipfs/<cid>/<sub/path>` (also `/ipld/…` or a
 * bare `<cid>/…`) walks UnixFS directories (HAMT-sharded too) and dag-cbor/dag-json links to
 * the CID at the end of the path. A path without segments after the CID is answered without
 * touching any block, as the reference's connector does. IPNS needs name records and routing
 * the embedded node does not have, so `/ipns/` paths get a clear error.
 *
 * @example
 * ```ts
 * await resolvePath('/ipfs/bafy…/docs/a.txt', blockstore) // 'bafkrei…'
 * ```
 */
import { walkPath } from 'ipfs-unixfs-exporter'
import { parseCid } from '../../types/cid.ts'
import { errorMessage, IPFSError, ValidationError } from '../../errors.ts'
import type { BlockSource } from './walker.ts'

/** Resolves an IPFS path to the canonical string of the CID it ends at. */
export async function resolvePath(
  path: string,
  blocks: BlockSource,
  signal?: AbortSignal,
): Promise<string> {
  const p = path.trim()
  if (p === '') throw new ValidationError('cannot resolve an empty path')
  if (p.startsWith('/ipns/')) {
    throw new IPFSError(
      `cannot resolve ${p}: the embedded IPFS node does not support IPNS (use an /ipfs/ path)`,
    )
  }
  let rest: string
  if (p.startsWith('/ipfs/')) rest = p.slice('/ipfs/'.length)
  else if (p.startsWith('/ipld/')) rest = p.slice('/ipld/'.length)
  else if (p.startsWith('/')) {
    throw new ValidationError(`invalid path ${JSON.stringify(p)}: unknown namespace`)
  } else rest = p
  const [rootText, ...segments] = rest.split('/')
  const root = parseCid(rootText)
  const sub = segments.filter((s) => s !== '')
  if (sub.length === 0) return root.toString()
  let last = root
  try {
    // The exporter's blockstore type wants the full Pair shape; only `get` is ever called.
    const store = blocks as Parameters<typeof walkPath>[1]
    for await (const entry of walkPath(`${root}/${sub.join('/')}`, store, { signal })) {
      last = entry.cid
    }
  } catch (err) {
    signal?.throwIfAborted()
    throw new IPFSError(`cannot resolve ${p}: ${errorMessage(err)}`)
  }
  return last.toString()
}
