/**
 * libp2p peer IDs as users and IPFS daemons write them: base58btc multihashes (`Qm…`, `12D3…`)
 * or CIDs with the libp2p-key codec, read as go-libp2p's `peer.Decode` reads them.
 *
 * @example
 * ```ts
 * parsePeerId('12D3KooW…') // '12D3KooW…'
 * isPeerId('notapeer') // false
 * ```
 */
import { base58btc } from 'multiformats/bases/base58'
import * as Digest from 'multiformats/hashes/digest'
import { tryParseCid } from './cid.ts'

/** The multicodec of a peer ID written as a CID. */
const LIBP2P_KEY = 0x72

/**
 * Reads a libp2p peer ID the way go-libp2p's `peer.Decode` does: a base58btc multihash (`Qm…`,
 * `12D3…`) or a CID with the libp2p-key codec. Returns its canonical base58btc form (what Go
 * prints), or undefined when `s` is not a peer ID.
 */
export function parsePeerId(s: unknown): string | undefined {
  if (typeof s !== 'string' || s.length === 0) return undefined
  if (s.startsWith('Qm') || s.startsWith('1')) {
    try {
      Digest.decode(base58btc.baseDecode(s))
      return s
    } catch {
      return undefined
    }
  }
  const cid = tryParseCid(s)
  return cid?.code === LIBP2P_KEY ? base58btc.baseEncode(cid.multihash.bytes) : undefined
}

/** True when `s` is a libp2p peer ID (see parsePeerId). */
export function isPeerId(s: unknown): s is string {
  return parsePeerId(s) !== undefined
}
