/**
 * Re-hashing a UnixFS DAG as it is built: ipfs-unixfs-importer hashes every block with sha2-256,
 * so for another hash function (`add --hash`) each block is hashed again as it comes out of the
 * importer, children before parents, and each dag-pb node gets its links pointed at the children's
 * new CIDs and their new cumulative sizes (`Tsize`: longer digests make bigger nodes) before it is
 * hashed. The result is the DAG Kubo builds with that hash function, block for block.
 *
 * One entry per block of the add is kept (importer CID → new CID and size), about 150 bytes per
 * block: ~0.6 MB per GiB added with 256 KiB chunks.
 *
 * @example
 * ```ts
 * const r = new Rehasher(await loadHasher(0x14)!)
 * const { cid, bytes } = await r.block(importerCid, importerBytes) // what goes to IPFS
 * r.get(rootCid) // { cid, size } of the root, for the output
 * ```
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import type { MultihashHasher } from 'multiformats/hashes/interface'
import { ValidationError } from '../errors.ts'

const IDENTITY = 0x00
/** Kubo refuses identity CIDs holding more than this many bytes (boxo verifcid). */
const MAX_IDENTITY_DIGEST = 128

/** A block as re-hashed: its new CID and the size of the DAG under it (itself included). */
export interface Rehashed {
  cid: CID
  size: number
}

/** Re-hashes the blocks of one add; see the module doc. */
export class Rehasher {
  readonly #done = new Map<string, Rehashed>()

  constructor(readonly hasher: MultihashHasher) {}

  /** The new CID and bytes of a block; every child of a dag-pb node must have come before it. */
  async block(cid: CID, bytes: Uint8Array): Promise<{ cid: CID; bytes: Uint8Array }> {
    let data = bytes
    let size = bytes.length
    if (cid.code === dagPb.code) {
      const node = dagPb.decode(bytes)
      if (node.Links.length > 0) {
        let linked = 0
        const links = node.Links.map((l) => {
          const child = this.#done.get(l.Hash.toString())
          if (!child) throw new Error(`re-hashing: ${cid} links to ${l.Hash}, not seen before it`)
          linked += child.size
          const link: dagPb.PBLink = { ...l, Hash: child.cid }
          if (l.Tsize !== undefined) link.Tsize = child.size
          return link
        })
        data = dagPb.encode({ ...node, Links: links })
        size = data.length + linked
      }
    }
    if (this.hasher.code === IDENTITY && data.length > MAX_IDENTITY_DIGEST) {
      throw new ValidationError(
        `digest too large: identity digest got ${data.length} bytes, maximum ${MAX_IDENTITY_DIGEST}`,
      )
    }
    const out = CID.create(cid.version, cid.code, await this.hasher.digest(data))
    this.#done.set(cid.toString(), { cid: out, size })
    return { cid: out, bytes: data }
  }

  /** What a block the importer named `cid` became. */
  get(cid: CID | string): Rehashed | undefined {
    return this.#done.get(cid.toString())
  }
}
