/**
 * Lenient readers for what IPFS daemons answer. Kubo, js-ipfs and doubles disagree on small
 * things (numbers sent as strings, `null` vs `[]`, CIDs as strings or `{"/": …}` links, CIDs in
 * other bases than asked), so every field goes through one of these instead of a bare cast.
 *
 * @example
 * ```ts
 * toCount('615063', 'RepoSize') // 615063
 * pinStatusFromType('indirect through QmX…') // 'indirect'
 * ```
 */
import type { IPFSPinStatus } from '../../components.ts'
import { IPFSError, ValidationError } from '../../errors.ts'
import { isCanonicalCid, parseCid, tryParseCid } from '../../types/cid.ts'

/** Kubo's pin type strings; `indirect through <cid>` counts as indirect. */
export function pinStatusFromType(t: unknown): IPFSPinStatus | undefined {
  if (typeof t !== 'string') return undefined
  if (t.startsWith('indirect')) return 'indirect'
  if (t.startsWith('recursive')) return 'recursive'
  if (t === 'direct') return 'direct'
  return undefined
}

/**
 * The `type` to ask `pin/ls` for a pin of this depth: -1 recursive, 0 direct, and for a
 * depth-limited pin (n > 0) `all`: its node is pinned direct here (see the connector's
 * `#pinToDepth`), recursively by the reference.
 */
export function pinTypeForDepth(maxDepth: number): 'recursive' | 'direct' | 'all' {
  return maxDepth < 0 ? 'recursive' : maxDepth === 0 ? 'direct' : 'all'
}

/** Whether a status satisfies a pin of this depth (a depth-limited pin: direct or recursive). */
export function isPinnedAtDepth(status: IPFSPinStatus, maxDepth: number): boolean {
  if (maxDepth < 0) return status === 'recursive'
  if (maxDepth === 0) return status === 'direct'
  return status === 'direct' || status === 'recursive'
}

/**
 * The pin/add options of a recursive or direct pin. (The reference sends `max-depth=n` for a
 * depth-limited one, which Kubo ignores; the connector pins those block by block instead.)
 */
export function pinAddArgs(maxDepth: number): string {
  return maxDepth === 0 ? 'recursive=false' : 'recursive=true'
}

/** A non-negative count sent as a number or a numeric string; absent = 0. */
export function toCount(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0
  const n = typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new IPFSError(`IPFS sent an invalid ${field}: ${JSON.stringify(v)}`)
  }
  return n
}

/** A CID sent as a string or as an IPLD link `{"/": "…"}`; returned in canonical form. */
export function cidFromJson(v: unknown): string | undefined {
  const s = typeof v === 'string'
    ? v
    : v && typeof v === 'object' && typeof (v as Record<string, unknown>)['/'] === 'string'
    ? (v as Record<string, string>)['/']
    : undefined
  if (s === undefined || s === '') return undefined
  // Kubo sends canonical strings: checking one is ~50× cheaper than parsing it (a million-pin
  // `pin/ls` is parsed at every start-up sync).
  if (isCanonicalCid(s)) return s
  return tryParseCid(s)?.toString()
}

/** Peer IDs in Kubo's answers are read as everywhere else in the cluster. */
export { isPeerId } from '../../types/peer_id.ts'

/** A Kubo error object sent as a stream value (`{"Message","Code","Type":"error"}`), if it is one. */
export function streamErrorOf(v: unknown): string | undefined {
  if (v && typeof v === 'object' && (v as Record<string, unknown>).Type === 'error') {
    const m = (v as Record<string, unknown>).Message
    return typeof m === 'string' ? m : JSON.stringify(v)
  }
  return undefined
}

/**
 * The input of Resolve, as the reference reads it: a path in the `/ipfs/`, `/ipns/` or `/ipld/`
 * namespace, or else taken as relative to `/ipfs/`. A bare `/ipfs/<cid>` needs no daemon call.
 */
export function resolveTarget(path: string): { cid: string } | { path: string } {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new ValidationError('invalid path "": path is empty')
  }
  let p = path.trim()
  if (!/^\/(ipfs|ipns|ipld)\//.test(p)) p = '/ipfs/' + p.replace(/^\/+/, '')
  const segments = p.split('/').slice(1)
  while (segments.length > 2 && segments[segments.length - 1] === '') segments.pop()
  if (segments.length < 2 || segments[1] === '') {
    throw new ValidationError(
      `invalid path ${JSON.stringify(path)}: path does not have enough components`,
    )
  }
  if (segments[0] !== 'ipns') {
    const root = tryParseCid(segments[1])
    if (!root) {
      throw new ValidationError(
        `invalid path ${JSON.stringify(path)}: invalid cid ${JSON.stringify(segments[1])}`,
      )
    }
    if (segments.length === 2) return { cid: root.toString() }
  }
  return { path: '/' + segments.join('/') }
}

/** The root CID of a resolved path; it must be immutable (`/ipfs/` or `/ipld/`). */
export function cidOfResolvedPath(resolved: unknown): string {
  if (typeof resolved !== 'string') {
    throw new IPFSError(`invalid path in resolve response: ${JSON.stringify(resolved)}`)
  }
  const m = /^\/(ipfs|ipld|ipns)\/([^/]+)/.exec(resolved)
  if (!m) throw new IPFSError(`invalid path in resolve response: ${JSON.stringify(resolved)}`)
  if (m[1] === 'ipns') throw new IPFSError(`resolved path is mutable: ${resolved}`)
  try {
    return parseCid(m[2]).toString()
  } catch (err) {
    throw new IPFSError(`invalid path in resolve response: ${(err as Error).message}`)
  }
}
