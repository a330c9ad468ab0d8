/**
 * Which peer acts for the cluster on a given CID when every peer could (reference §5.7): re-pinning
 * a dead peer's pins, unpinning an expired pin. Each peer answers alone, from the same list of
 * peers, so exactly the closest acts and no two peers send the same operation: the distance is the
 * XOR of BLAKE2b-256 of the CID's binary form and of the peer ID's binary form, compared as a
 * big-endian number. On a tie both peers act (as the reference's checker says yes then).
 *
 * @example
 * ```ts
 * const closest = closestChecker(self, members.filter((p) => p !== dead))
 * if (closest(pin.cid)) await repin(pin)
 * ```
 *
 * @module
 */
import { blake2b } from '@noble/hashes/blake2.js'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'

const hash = (bytes: Uint8Array) => blake2b(bytes, { dkLen: 32 })

/** XOR distance of two 32-byte hashes, compared byte by byte: -1, 0 or 1. */
function compareDistance(a: Uint8Array, b: Uint8Array, key: Uint8Array): number {
  for (let i = 0; i < key.length; i++) {
    const x = a[i] ^ key[i]
    const y = b[i] ^ key[i]
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/**
 * True for the CIDs this peer is closest to among `self` and `others` (peer IDs as strings;
 * `self` may be among them). Peer hashes are computed once.
 */
export function closestChecker(self: string, others: readonly string[]): (cid: string) => boolean {
  const mine = hash(base58btc.baseDecode(self))
  const theirs = others.filter((p) => p !== self).map((p) => hash(base58btc.baseDecode(p)))
  return (cid) => {
    const key = hash(CID.parse(cid).bytes)
    for (const t of theirs) if (compareDistance(mine, t, key) > 0) return false
    return true
  }
}
