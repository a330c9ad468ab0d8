/**
 * CIDs as the cluster sees them: parsed with multiformats, printed the way Go's go-cid prints them
 * (v0 in base58btc, v1 in base32), and compared by multihash, because daemons answer with other
 * versions and bases than they were asked with (Helia lists v0 pins as v1, js-ipfs prints base58btc).
 *
 * @example
 * ```ts
 * const c = parseCid('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')
 * sameContent(c, parseCid(c.toV1().toString())) // true
 * ```
 */
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { ValidationError } from '../errors.ts'

export { CID }

const decoder = base32.decoder.or(base58btc.decoder).or(base36.decoder)

/** Parses a CID string in any common base; throws ValidationError with the reason. */
export function parseCid(s: string): CID {
  if (typeof s !== 'string' || s.length === 0) {
    throw new ValidationError('cid is empty')
  }
  try {
    if (s.startsWith('Qm') && s.length === 46) return CID.parse(s)
    return CID.parse(s, decoder)
  } catch (err) {
    throw new ValidationError(`invalid cid ${JSON.stringify(s)}: ${(err as Error).message}`)
  }
}

/** Like parseCid but returns undefined instead of throwing. */
export function tryParseCid(s: string): CID | undefined {
  try {
    return parseCid(s)
  } catch {
    return undefined
  }
}

/** The canonical string for a CID: base58btc for v0, base32 for v1 (as go-cid prints it). */
export function cidString(c: CID): string {
  return c.toString()
}

/** A key that is equal for two CIDs addressing the same bytes, whatever version, codec or base. */
export function multihashKey(c: CID): string {
  return base32.baseEncode(c.multihash.bytes)
}

/** True when both CIDs address the same content (same multihash). */
export function sameContent(a: CID, b: CID): boolean {
  return multihashKey(a) === multihashKey(b)
}

// A CID is normalized several times on its way in (the REST route, Cluster.pin, newPin) and a
// parse costs a few µs, a tenth of a pin's CPU at ingest (docs/performance.md): the strings seen
// last are remembered, as inputs and as canonical forms.
const RECENT_CIDS = 1024
const recentCids = new Map<string, string>()

function remember(s: string, canonical: string) {
  if (recentCids.size >= RECENT_CIDS) recentCids.delete(recentCids.keys().next().value!)
  recentCids.set(s, canonical)
}

/** Re-prints any CID string in canonical form; throws ValidationError on bad input. */
export function normalizeCid(s: string): string {
  const known = recentCids.get(s)
  if (known !== undefined) return known
  const canonical = parseCid(s).toString()
  remember(s, canonical)
  if (canonical !== s) remember(canonical, canonical)
  return canonical
}
