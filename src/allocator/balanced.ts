/**
 * The balanced allocator (reference §5.3): orders candidate peers by the `allocate_by` metrics,
 * spreading replicas across partitions. Peers are partitioned by the first metric — a
 * partitionable metric (a tag) groups peers with equal values and sums their weights, any other
 * metric gives each peer its own partition — then each partition by the next metric, and so on.
 * Partitions sort by weight desc, then aggregated weight of their sub-partitions desc, then value
 * asc; peers are then emitted round-robin across partitions, recursively.
 *
 * With `["tag:group", "freespace"]` the first peers come from different groups, each the peer
 * with the most free space in its group, the group with most free space first.
 *
 * @example
 * ```ts
 * const alloc = balancedAllocator({ allocate_by: ['tag:group', 'freespace'] })
 * const order = await alloc.allocate(cid, current, candidates, priority)
 * ```
 */
import type { PinAllocator } from '../components.ts'
import type { Metric } from '../types/metric.ts'
import type { BalancedConfig } from './config.ts'

interface Partition {
  value: string
  weight: number
  aggregatedWeight: number
  /** Peers of a bottom partition not chosen yet, in choosing order. */
  peers: string[]
  sub: Partitioned | undefined
}

interface Partitioned {
  partitions: Partition[]
  next: number
  noMore: boolean
}

/** Builds the balanced allocator. */
export function balancedAllocator(config: BalancedConfig): PinAllocator {
  const by = config.allocate_by ?? []
  return {
    metrics: () => [...by],
    allocate(_cid, _current, candidates, priority, limit = Infinity) {
      const first = sortedPeers(partitionMetrics(byName(priority), by), limit)
      const last = sortedPeers(partitionMetrics(byName(candidates), by), limit - first.length)
      return Promise.resolve([...first, ...last])
    },
    stop: () => Promise.resolve(),
  }
}

/** Metric name → peer → its metric. */
type MetricsByName = Map<string, Map<string, Metric>>

/** Peer → metrics becomes metric name → peer → metric. */
function byName(set: Map<string, Metric[]>): MetricsByName {
  const out: MetricsByName = new Map()
  for (const [peer, metrics] of set) {
    for (const m of metrics) {
      let byPeer = out.get(m.name)
      if (!byPeer) out.set(m.name, byPeer = new Map())
      byPeer.set(peer, m.peer ? m : { ...m, peer })
    }
  }
  return out
}

/**
 * Partitions the peers by `by[0]`, each partition recursively by the rest, and sorts them. A
 * partition's peers look their next metrics up by peer: no pass over every metric per partition.
 */
export function partitionMetrics(
  set: MetricsByName,
  by: string[],
  peers?: readonly string[],
): Partitioned {
  const [root, ...rest] = by
  if (root === undefined) return { partitions: [], next: 0, noMore: true }
  const rootMetrics = set.get(root)
  const metrics: Metric[] = []
  if (rootMetrics) {
    if (!peers) metrics.push(...rootMetrics.values())
    else {
      for (const p of peers) {
        const m = rootMetrics.get(p)
        if (m) metrics.push(m)
      }
    }
  }
  const partitions = partitionValues(metrics)
  if (rest.length) {
    for (const p of partitions) {
      if (p.peers.length === 1) {
        // One peer: its sub-partitions would be a chain of one partition each, adding each
        // further metric's weight. The same sums, without building the chain; a peer missing a
        // further metric ends its chain empty, so it is never chosen (as the chain would).
        const peer = p.peers[0]
        for (const name of rest) {
          const m = set.get(name)?.get(peer)
          if (!m) {
            p.peers = []
            break
          }
          p.aggregatedWeight += m.weight
        }
        continue
      }
      p.sub = partitionMetrics(set, rest, p.peers)
      for (const sp of p.sub.partitions) p.aggregatedWeight += sp.aggregatedWeight
    }
  }
  partitions.sort(comparePartitions)
  return { partitions, next: 0, noMore: false }
}

function comparePartitions(a: Partition, b: Partition): number {
  if (a.weight !== b.weight) return b.weight - a.weight
  if (a.aggregatedWeight !== b.aggregatedWeight) return b.aggregatedWeight - a.aggregatedWeight
  if (a.value !== b.value) return a.value < b.value ? -1 : 1
  // The reference leaves this tie to Go's map order; a fixed order keeps tests and peers agreeing.
  return a.peers[0] < b.peers[0] ? -1 : a.peers[0] > b.peers[0] ? 1 : 0
}

function partitionValues(metrics: Metric[]): Partition[] {
  const partitions: Partition[] = []
  const byValue = new Map<string, Partition>()
  for (const m of metrics) {
    // Non-partitionable metrics (freespace…) stay one peer per partition: grouping three peers
    // with 100 free would otherwise outweigh one peer with 200.
    if (!m.partitionable) {
      partitions.push({
        value: m.value,
        weight: m.weight,
        aggregatedWeight: m.weight,
        peers: [m.peer],
        sub: undefined,
      })
      continue
    }
    const p = byValue.get(m.value)
    if (p) {
      p.peers.push(m.peer)
      p.weight += m.weight
      p.aggregatedWeight += m.weight
    } else {
      const np: Partition = {
        value: m.value,
        weight: m.weight,
        aggregatedWeight: m.weight,
        peers: [m.peer],
        sub: undefined,
      }
      byValue.set(m.value, np)
      partitions.push(np)
    }
  }
  for (const p of byValue.values()) p.peers.sort()
  return partitions
}

/**
 * Every peer once (the first `limit` of them), never twice from one partition while another
 * still has peers.
 */
export function sortedPeers(pm: Partitioned, limit = Infinity): string[] {
  const out: string[] = []
  while (out.length < limit) {
    const p = chooseNext(pm)
    if (p === undefined) break
    out.push(p)
  }
  return out
}

function chooseNext(pm: Partitioned): string | undefined {
  const n = pm.partitions.length
  if (n === 0 || pm.noMore) return undefined
  for (let tried = 1; tried <= n; tried++) {
    const part = pm.partitions[pm.next]
    pm.next = (pm.next + 1) % n
    const peer = part.sub ? chooseNext(part.sub) : part.peers.shift()
    if (peer !== undefined) return peer
  }
  pm.noMore = true
  return undefined
}
