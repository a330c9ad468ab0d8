/**
 * The metrics store: for each (metric name, peer) a ring of the last 25 metrics received, so the
 * monitor can answer "latest valid metric of every peer" and the checker can spot expired ones.
 *
 * @example
 * ```ts
 * const store = new MetricsStore()
 * store.add(newMetric('freespace', peer, '100', 30_000, Date.now()), Date.now())
 * store.latestValid('freespace', Date.now()) // [that metric]
 * ```
 */
import { type Metric, metricExpired } from '../types/metric.ts'

/** Metrics kept per (name, peer), as in the reference. */
export const WINDOW_CAP = 25

const NS_PER_MS = 1_000_000

/** A fixed-size ring of metrics, newest last. */
export class MetricWindow {
  #ring: Metric[] = []
  #next = 0

  constructor(readonly capacity = WINDOW_CAP) {}

  add(m: Metric): void {
    this.#ring[this.#next] = m
    this.#next = (this.#next + 1) % this.capacity
  }

  /** The newest metric, or undefined when none was added. */
  latest(): Metric | undefined {
    if (!this.#ring.length) return undefined
    return this.#ring[(this.#next - 1 + this.capacity) % this.capacity]
  }

  /** Every metric held, newest first. */
  all(): Metric[] {
    const out: Metric[] = []
    for (let i = 1; i <= this.#ring.length; i++) {
      out.push(this.#ring[(this.#next - i + this.capacity) % this.capacity])
    }
    return out
  }
}

/** Metrics by name, then by peer. */
export class MetricsStore {
  #byName = new Map<string, Map<string, MetricWindow>>()
  /**
   * `latestValid` answers by name, kept until a metric of that name arrives or a peer is removed
   * (`#version`), or the first of them expires: every pin's allocation asks, metrics change
   * every few seconds.
   */
  #latest = new Map<string, { list: Metric[]; version: number; until: number }>()
  #version = 0

  /**
   * Stores a metric, stamping `received_at` with the receiver's clock (epoch ms `now`). One that
   * expires before the peer's latest of that name is older than it — gossip delivers two
   * messages of one peer by different paths, in either order — and is dropped: undefined.
   */
  add(m: Metric, now: number): Metric | undefined {
    let byPeer = this.#byName.get(m.name)
    if (!byPeer) this.#byName.set(m.name, byPeer = new Map())
    let w = byPeer.get(m.peer)
    if (!w) byPeer.set(m.peer, w = new MetricWindow())
    const latest = w.latest()
    if (latest && m.expire < latest.expire) return undefined
    const stored = { ...m, received_at: now * NS_PER_MS }
    w.add(stored)
    this.#version++
    return stored
  }

  /**
   * The latest metric of each peer for a name, when valid and unexpired; by peer, then expiry.
   * The list is shared with later calls until it changes: read it, do not change it.
   */
  latestValid(name: string, now: number): readonly Metric[] {
    const cached = this.#latest.get(name)
    if (cached && cached.version === this.#version && now * NS_PER_MS < cached.until) {
      return cached.list
    }
    const out: Metric[] = []
    let until = Infinity
    for (const w of this.#byName.get(name)?.values() ?? []) {
      const m = w.latest()
      if (m && m.valid && !metricExpired(m, now)) {
        out.push(m)
        if (m.expire < until) until = m.expire
      }
    }
    out.sort((a, b) => a.peer === b.peer ? a.expire - b.expire : a.peer < b.peer ? -1 : 1)
    this.#latest.set(name, { list: out, version: this.#version, until })
    return out
  }

  /** The latest metric of a peer for a name, expired or not. */
  peerLatest(name: string, peer: string): Metric | undefined {
    return this.#byName.get(name)?.get(peer)?.latest()
  }

  /** Every metric held for a peer and name, newest first. */
  peerAll(name: string, peer: string): Metric[] {
    return this.#byName.get(name)?.get(peer)?.all() ?? []
  }

  /** The latest valid metric of every (name, peer), expired or not. */
  allLatest(): Metric[] {
    const out: Metric[] = []
    for (const byPeer of this.#byName.values()) {
      for (const w of byPeer.values()) {
        const m = w.latest()
        if (m?.valid) out.push(m)
      }
    }
    return out
  }

  /** Names of every metric received. */
  names(): string[] {
    return [...this.#byName.keys()]
  }

  /** Forgets a peer (it left the cluster). */
  removePeer(peer: string): void {
    for (const byPeer of this.#byName.values()) byPeer.delete(peer)
    this.#version++
  }
}
