/**
 * `delegates` of a request: the multiaddresses of the IPFS daemons that hold (or will hold) its
 * CID — its allocations', every member's for a pin everywhere — so that a client connects to them
 * and the data flows at once (Kubo's `pin remote add` dials each). The members' IPFS addresses come
 * from `Cluster.ID` of every member (`cluster.peers()`), kept for `ttlMs` and refreshed in the
 * background after that: a page of 1,000 requests asks nobody.
 *
 * @example
 * ```ts
 * const delegates = delegatesCache(cluster, { clock })
 * await delegates.of(pin.allocations, signal) // ['/ip4/…/tcp/4001/p2p/12D3…', …]
 * ```
 *
 * @module
 */
import type { ClusterRPC } from '../../components.ts'
import { errorMessage } from '../../errors.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import { type Logger, nullLogger } from '../../util/log.ts'

/** At most this many delegates per request (the spec's bound). */
export const MAX_DELEGATES = 20

/** The IPFS addresses of the cluster's members, cached. */
export interface DelegatesCache {
  /**
   * The IPFS addresses of these cluster peers (every member's when `allocations` is empty: a
   * pin everywhere), at most MAX_DELEGATES, each ending in `/p2p/<IPFS peer ID>`.
   */
  of(allocations: readonly string[] | null, signal?: AbortSignal): Promise<string[]>
}

/** Builds the cache over the cluster's `peers()`. */
export function delegatesCache(
  cluster: Pick<ClusterRPC, 'peers'>,
  opts: { ttlMs?: number; clock?: Clock; log?: Logger } = {},
): DelegatesCache {
  const ttl = opts.ttlMs ?? 30_000
  const clock = opts.clock ?? systemClock
  const log = opts.log ?? nullLogger
  let byPeer = new Map<string, string[]>()
  let fetchedAt = -Infinity
  let refreshing: Promise<void> | undefined

  const refresh = (signal?: AbortSignal) => {
    refreshing ??= (async () => {
      const next = new Map<string, string[]>()
      try {
        for await (const id of cluster.peers(signal)) {
          if (id.error || !id.ipfs?.id) continue
          const suffix = `/p2p/${id.ipfs.id}`
          next.set(
            id.id,
            (id.ipfs.addresses ?? []).map((a) =>
              a.includes('/p2p/') || a.includes('/ipfs/') ? a : a + suffix
            ),
          )
        }
        byPeer = next
        fetchedAt = clock.now()
      } catch (err) {
        log.debug(`delegates: cannot list the members' IPFS addresses: ${errorMessage(err)}`)
      } finally {
        refreshing = undefined
      }
    })()
    return refreshing
  }

  return {
    async of(allocations, signal) {
      if (fetchedAt === -Infinity) await refresh(signal)
      else if (clock.now() - fetchedAt > ttl) void refresh()
      const peers = allocations && allocations.length > 0 ? allocations : [...byPeer.keys()]
      const out = new Set<string>()
      for (const p of peers) {
        for (const a of byPeer.get(p) ?? []) {
          if (out.size >= MAX_DELEGATES) return [...out]
          out.add(a)
        }
      }
      return [...out]
    },
  }
}
