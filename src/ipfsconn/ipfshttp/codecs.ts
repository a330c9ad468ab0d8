/**
 * Names of the multicodecs and multihash functions that `block/put` takes as query parameters
 * (`cid-codec`, `mhtype`; hash names are go-multihash's, from src/types/multihash.ts). Only the
 * codecs IPFS content actually uses are listed; an unknown code is an error with the reference's
 * wording.
 *
 * @example
 * ```ts
 * blockPutQuery(parseCid('bafkrei…')) // 'allow-big-block=true&cid-codec=raw&mhlen=32&mhtype=sha2-256&pin=false'
 * ```
 */
import { IPFSError } from '../../errors.ts'
import type { CID } from '../../types/cid.ts'
import { multihashName } from '../../types/multihash.ts'

const IDENTITY = 0x00

const CODECS: ReadonlyMap<number, string> = new Map([
  [0x51, 'cbor'],
  [0x55, 'raw'],
  [0x70, 'dag-pb'],
  [0x71, 'dag-cbor'],
  [0x72, 'libp2p-key'],
  [0x78, 'git-raw'],
  [0x85, 'dag-jose'],
  [0x0129, 'dag-json'],
  [0x0200, 'json'],
])

/**
 * The query of the single `block/put` request of a block stream, keys sorted as Go's
 * `url.Values.Encode` sorts them, so error messages carry the same path as the reference's.
 */
export function blockPutQuery(prefix: CID): string {
  const codec = CODECS.get(prefix.code)
  if (!codec) {
    throw new IPFSError(
      `cannot find name for the blocks' CID codec: ${prefix.code.toString(16)}`,
    )
  }
  const mh = multihashName(prefix.multihash.code)
  if (!mh) {
    throw new IPFSError(
      `cannot find name for the blocks' Multihash type: ${prefix.multihash.code.toString(16)}`,
    )
  }
  // An identity digest is as long as its block, which varies: -1 lets Kubo take each one whole.
  const mhlen = prefix.multihash.code === IDENTITY ? -1 : prefix.multihash.size
  return `allow-big-block=true&cid-codec=${codec}&mhlen=${mhlen}&mhtype=${mh}&pin=false`
}
