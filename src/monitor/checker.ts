/**
 * The checker: finds peers whose latest metric expired and raises one alert per failure streak
 * (a fresh metric from the peer ends the streak; a streak lasting 300 checks alerts again).
 *
 * @example
 * ```ts
 * const checker = new Checker(store)
 * const alerts = checker.check(['peerA', 'peerB'], Date.now())
 * ```
 */
import type { Alert, Metric } from '../types/metric.ts'
import { metricExpired } from '../types/metric.ts'
import { formatTime } from '../types/time.ts'
import type { MetricsStore } from './store.ts'

/** After this many failed checks in one streak the peer is alerted again, as the reference. */
export const REALERT_AFTER = 300

/** Alert bookkeeping over a store. */
export class Checker {
  /** Failed checks per peer, per metric name, in the current streak. */
  #failed = new Map<string, Map<string, number>>()

  constructor(private readonly store: MetricsStore) {}

  /**
   * Checks the given peers (or, without a peerset, every peer with a valid latest metric) and
   * returns the alerts to raise now.
   */
  check(peers: string[] | undefined, now: number): Alert[] {
    const alerts: Alert[] = []
    const consider = (m: Metric | undefined, name: string, peer: string) => {
      if (!m || !metricExpired(m, now)) return
      const a = this.#alert(m, name, peer, now)
      if (a) alerts.push(a)
    }
    if (peers) {
      for (const name of this.store.names()) {
        for (const peer of peers) consider(this.store.peerLatest(name, peer), name, peer)
      }
    } else {
      for (const m of this.store.allLatest()) consider(m, m.name, m.peer)
    }
    return alerts
  }

  /** Ends a peer's failure streak for a metric (a fresh metric arrived). */
  reset(peer: string, name: string): void {
    const byName = this.#failed.get(peer)
    if (!byName) return
    byName.delete(name)
    if (!byName.size) this.#failed.delete(peer)
  }

  #alert(latest: Metric, name: string, peer: string, now: number): Alert | undefined {
    let byName = this.#failed.get(peer)
    if (!byName) this.#failed.set(peer, byName = new Map())
    const n = (byName.get(name) ?? 0) + 1
    byName.set(name, n)
    if (n >= REALERT_AFTER) this.reset(peer, name)
    if (n > 1) return undefined
    return { ...latest, triggered_at: formatTime(now) }
  }
}
