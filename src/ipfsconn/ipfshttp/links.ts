/**
 * The links of a block, read by the connector for depth-limited pins: Kubo has no such pin (its
 * `max-depth` option was never merged, and Kubo ignores the unknown option the reference sends,
 * pinning the whole DAG), so the connector pins each block within the depth itself and needs the
 * children of the blocks above the last level. Shard nodes are dag-cbor; dag-pb and raw blocks are
 * read too.
 *
 * @example
 * ```ts
 * blockLinks(shardCid, await ipfs.blockGet(shardCid)) // ['bafkrei…', 'bafkrei…', …]
 * ```
 */
import * as dagPb from '@ipld/dag-pb'
import * as cborg from 'cborg'
import { CID } from 'multiformats/cid'
import { IPFSError } from '../../errors.ts'
import { parseCid } from '../../types/cid.ts'

const RAW = 0x55
const DAG_PB = 0x70
const DAG_CBOR = 0x71

/** Every CID a block links to, in the order its codec lists them (repeats kept once). */
export function blockLinks(cid: string, bytes: Uint8Array): string[] {
  const code = parseCid(cid).code
  try {
    switch (code) {
      case RAW:
        return []
      case DAG_PB:
        return unique(dagPb.decode(bytes).Links.map((l) => l.Hash.toString()))
      case DAG_CBOR:
        return unique(cborLinks(bytes))
    }
  } catch (err) {
    throw new IPFSError(`cannot read the links of ${cid}: ${(err as Error).message}`)
  }
  throw new IPFSError(
    `cannot pin ${cid} to a limited depth: blocks of codec 0x${code.toString(16)} are not read`,
  )
}

function cborLinks(bytes: Uint8Array): string[] {
  const tags: cborg.TagDecoder[] = []
  tags[42] = (decode) => {
    const b = decode()
    if (!(b instanceof Uint8Array) || b[0] !== 0) throw new Error('malformed link (tag 42)')
    return CID.decode(b.subarray(1))
  }
  const out: string[] = []
  const walk = (v: unknown) => {
    if (v instanceof CID) out.push(v.toString())
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
      Object.values(v).forEach(walk)
    }
  }
  walk(cborg.decode(bytes, { tags }))
  return out
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)]
}
