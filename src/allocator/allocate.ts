/**
 * Allocation (reference §5.3): which peers should hold a pin, from the peers' latest metrics and
 * the pin's replication factors. A pure function of its inputs; the allocator orders candidates.
 *
 * - rf_min + rf_max = 0 ⇒ `bad replication factors: 0/0`; both negative ⇒ `[]` (everywhere).
 * - Peers without every `allocate_by` metric, blacklisted peers, and (when asked) untrusted or
 *   trusted peers are not candidates. Current allocations with metrics are kept.
 * - needed = rf_min − current, wanted = rf_max − current. Over the maximum ⇒ keep the first
 *   current peers; at or above the minimum ⇒ the current allocations unchanged; too few
 *   candidates ⇒ `not enough peers to allocate CID…`; else current + the allocator's best.
 *
 * @example
 * ```ts
 * const peers = await allocate({
 *   cid, rfMin: 2, rfMax: 3, current: [], userAllocations: [], blacklist: [],
 *   metricsByName: new Map([['freespace', monitor.latestMetrics('freespace')]]),
 *   allocator: balancedAllocator({ allocate_by: ['freespace'] }),
 * })
 * ```
 */
import type { PeerMonitor, PinAllocator } from '../components.ts'
import { ClusterError } from '../errors.ts'
import type { Metric } from '../types/metric.ts'

/** Allocation failed: bad factors or not enough peers. Answered with HTTP 500, as the reference. */
export class AllocationError extends ClusterError {
  override name = 'AllocationError'
}

/** Everything an allocation depends on. */
export interface AllocateInput {
  cid: string
  rfMin: number
  rfMax: number
  /** Peers the pin is allocated to now (empty for a new pin). */
  current: string[]
  /** The user's preferred peers, tried first. */
  userAllocations: string[]
  /** Peers never to choose (a dead peer being re-pinned away from). */
  blacklist: string[]
  /** Latest valid metrics per `allocate_by` name (one per peer), as the monitor gives them. */
  metricsByName: Map<string, Metric[]>
  allocator: PinAllocator
  /** Trust test for `pin_only_on_trusted_peers` / `pin_only_on_untrusted_peers`. */
  isTrusted?: (peer: string) => boolean
  onlyTrusted?: boolean
  onlyUntrusted?: boolean
  log?: (msg: string) => void
}

/** The peers that should hold the pin, best first; `[]` means everywhere. */
export async function allocate(input: AllocateInput): Promise<string[]> {
  const { rfMin, rfMax } = input
  if (rfMin + rfMax === 0) throw new AllocationError(`bad replication factors: ${rfMin}/${rfMax}`)
  if (rfMin < 0 && rfMax < 0) return []

  const names = input.allocator.metrics()
  const blacklist = new Set(input.blacklist)
  const currentSet = new Set(input.current)
  const prioritySet = new Set(input.userAllocations)
  const byPeer = new Map<string, Metric[]>()
  for (const name of names) {
    for (const m of input.metricsByName.get(name) ?? []) {
      if (m.name !== name || blacklist.has(m.peer)) continue
      if (input.onlyTrusted && !input.isTrusted?.(m.peer)) continue
      if (input.onlyUntrusted && input.isTrusted?.(m.peer)) continue
      const list = byPeer.get(m.peer) ?? []
      list.push(m)
      byPeer.set(m.peer, list)
    }
  }
  // A peer needs every metric to be compared with the others.
  const complete = (peer: string) => byPeer.get(peer)?.length === names.length
  const current = new Map<string, Metric[]>()
  const priority = new Map<string, Metric[]>()
  const candidates = new Map<string, Metric[]>()
  // Current peers keep the order of the pin's allocation list.
  for (const p of input.current) if (complete(p)) current.set(p, byPeer.get(p)!)
  for (const [p, ms] of byPeer) {
    if (!complete(p) || currentSet.has(p)) continue
    if (prioritySet.has(p)) priority.set(p, ms)
    else candidates.set(p, ms)
  }

  const currentPeers = [...current.keys()]
  const needed = rfMin - currentPeers.length
  const wanted = rfMax - currentPeers.length
  if (wanted < 0) return currentPeers.slice(0, currentPeers.length + wanted)
  // Enough replicas already: leave the allocations alone, even those of peers lacking metrics.
  if (needed <= 0) return input.current

  const available = [...priority.keys(), ...candidates.keys()]
  if (available.length < needed) throw notEnough(input, needed, wanted, available)
  const ordered = await input.allocator.allocate(input.cid, current, candidates, priority, wanted)
  if (ordered.length < needed) throw notEnough(input, needed, wanted, ordered)
  return [...currentPeers, ...ordered.slice(0, Math.min(wanted, ordered.length))]
}

function notEnough(
  input: AllocateInput,
  needed: number,
  wanted: number,
  candidates: string[],
): AllocationError {
  input.log?.(
    `not enough candidates to allocate ${input.cid}: needed ${needed}, wanted ${wanted}, ` +
      `available ${candidates.length}: ${candidates.join(', ')}`,
  )
  return new AllocationError(
    `not enough peers to allocate CID. Needed at least: ${needed}. Wanted at most: ${wanted}. ` +
      `Available candidates: ${candidates.length}. See logs for more info.`,
  )
}

/** The allocation request as the cluster makes it (no metrics, no allocator). */
export type AllocationRequest =
  & Pick<AllocateInput, 'cid' | 'rfMin' | 'rfMax' | 'current' | 'userAllocations' | 'blacklist'>
  & {
    /**
     * Bytes a running add already sent to each peer (a sharded add allocating its next shard):
     * taken off their `freespace`, which lags behind until their next metric, so that the
     * shards spread instead of piling onto the peers that looked emptiest at the start.
     */
    sent?: ReadonlyMap<string, number>
  }

/**
 * Binds `allocate` to an allocator and a monitor: the function the cluster calls. Metrics are
 * read from the monitor at each call (latest valid, unexpired).
 *
 * @example
 * ```ts
 * const alloc = allocationFunction({ allocator, monitor })
 * pin.allocations = await alloc({ cid, rfMin, rfMax, current, userAllocations, blacklist: [] })
 * ```
 */
export function allocationFunction(
  deps: Pick<AllocateInput, 'allocator' | 'isTrusted' | 'onlyTrusted' | 'onlyUntrusted' | 'log'> & {
    monitor: Pick<PeerMonitor, 'latestMetrics'>
  },
): (req: AllocationRequest) => Promise<string[]> {
  return (req) => {
    const metricsByName = new Map<string, Metric[]>()
    for (const name of deps.allocator.metrics()) {
      let ms = deps.monitor.latestMetrics(name)
      const sent = req.sent
      if (name === 'freespace' && sent?.size) {
        ms = ms.map((m) => {
          const used = sent.get(m.peer) ?? 0
          if (!used) return m
          const left = Math.max(0, Number(m.value) - used)
          return { ...m, value: String(left), weight: left }
        })
      }
      metricsByName.set(name, ms)
    }
    return allocate({ ...deps, ...req, metricsByName })
  }
}
