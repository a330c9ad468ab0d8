/**
 * Names of the multicodecs and multihash functions that `block/put` takes as query parameters
 * (`cid-codec`, `mhtype`). Only the codes IPFS content actually uses are listed; an unknown code
 * is an error with the reference's wording.
 *
 * @example
 * ```ts
 * blockPutQuery(parseCid('bafkrei…')) // 'allow-big-block=true&cid-codec=raw&mhlen=32&mhtype=sha2-256&pin=false'
 * ```
 */
import { IPFSError } from '../../errors.ts'
import type { CID } from '../../types/cid.ts'

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

const HASHES: ReadonlyMap<number, string> = new Map([
  [0x00, 'identity'],
  [0x11, 'sha1'],
  [0x12, 'sha2-256'],
  [0x13, 'sha2-512'],
  [0x14, 'sha3-512'],
  [0x15, 'sha3-384'],
  [0x16, 'sha3-256'],
  [0x17, 'sha3-224'],
  [0x1a, 'keccak-224'],
  [0x1b, 'keccak-256'],
  [0x1c, 'keccak-384'],
  [0x1d, 'keccak-512'],
  [0x1e, 'blake3'],
  [0x20, 'sha2-384'],
  [0xb220, 'blake2b-256'],
  [0xb240, 'blake2b-512'],
  [0xb260, 'blake2s-256'],
  [0x1012, 'sha2-256-trunc254-padded'],
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
  const mh = HASHES.get(prefix.multihash.code)
  if (!mh) {
    throw new IPFSError(
      `cannot find name for the blocks' Multihash type: ${prefix.multihash.code.toString(16)}`,
    )
  }
  return `allow-big-block=true&cid-codec=${codec}&mhlen=${prefix.multihash.size}` +
    `&mhtype=${mh}&pin=false`
}
