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
    allocate(_cid, _current, candidates, priority) {
      const first = sortedPeers(partitionMetrics(byName(priority), by))
      const last = sortedPeers(partitionMetrics(byName(candidates), by))
      return Promise.resolve([...first, ...last])
    },
    stop: () => Promise.resolve(),
  }
}

/** Peer → metrics becomes metric name → one metric per peer. */
function byName(set: Map<string, Metric[]>): Map<string, Metric[]> {
  const out = new Map<string, Metric[]>()
  for (const [peer, metrics] of set) {
    for (const m of metrics) {
      const list = out.get(m.name) ?? []
      list.push(m.peer ? m : { ...m, peer })
      out.set(m.name, list)
    }
  }
  return out
}

/** Partitions the set by `by[0]`, each partition recursively by the rest, and sorts them. */
export function partitionMetrics(set: Map<string, Metric[]>, by: string[]): Partitioned {
  const [root, ...rest] = by
  if (root === undefined) return { partitions: [], next: 0, noMore: true }
  const partitions = partitionValues(set.get(root) ?? [])
  if (rest.length) {
    for (const p of partitions) {
      const members = new Set(p.peers)
      const filtered = new Map<string, Metric[]>()
      for (const [name, metrics] of set) {
        if (name === root) continue
        const inPartition = metrics.filter((m) => members.has(m.peer))
        if (inPartition.length) filtered.set(name, inPartition)
      }
      p.sub = partitionMetrics(filtered, rest)
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

/** Every peer once, never twice from one partition while another still has peers. */
export function sortedPeers(pm: Partitioned): string[] {
  const out: string[] = []
  for (let p = chooseNext(pm); p !== undefined; p = chooseNext(pm)) out.push(p)
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
