/**
 * The peer monitor: keeps the metrics this peer publishes and those other peers publish, answers
 * the latest valid metrics for allocation, and raises alerts every `check_interval` for peers
 * whose latest metric expired.
 *
 * Metrics travel through a `MetricsTransport` (pubsub_transport.ts: the gossipsub topic
 * `monitor.metrics`): `publish` sends this peer's metrics to the others, and the handler given to
 * `subscribe` receives theirs. The monitor stores its own metrics directly, so a transport must
 * not echo this peer's messages back.
 *
 * @example
 * ```ts
 * const mon = localMonitor(pubsubmonSection.defaults(), { peers: () => consensusPeers })
 * await mon.publishMetric(newMetric('ping', self, '', 30_000, Date.now()))
 * for await (const alert of mon.alerts(signal)) console.log(alert.peer, alert.name)
 * ```
 */
import type { PeerMonitor } from '../components.ts'
import { type Alert, type Metric, metricExpired } from '../types/metric.ts'
import { Checker } from './checker.ts'
import type { PubsubmonConfig } from './config.ts'
import { MetricsStore } from './store.ts'
import { type CancelTimer, type Clock, systemClock } from '../util/clock.ts'

/** How metrics travel between peers. */
export interface MetricsTransport {
  publish(m: Metric, signal?: AbortSignal): Promise<void>
  /** Registers the handler for metrics received from other peers; returns an unsubscribe. */
  subscribe(onMetric: (m: Metric) => void): () => void
}

/** What the monitor needs. */
export interface LocalMonitorDeps {
  /**
   * The current peerset: latest metrics are limited to it and the checker checks it. Without it
   * every peer with metrics counts (the CRDT way).
   */
  peers?: () => string[]
  transport?: MetricsTransport
  /** Time for metric expiry and the checker's interval (default: the system clock). */
  clock?: Clock
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void
}

/** The monitor, plus what transports and tests use. */
export interface LocalMonitor extends PeerMonitor {
  /** Stores a metric received from a peer (what the transport's handler calls). */
  logMetric(m: Metric): void
  /** Runs one check at once and returns the alerts it raised (the loop does this periodically). */
  check(): Alert[]
  /** Forgets a peer's metrics (it left the cluster). */
  removePeer(peer: string): void
}

/** Alerts buffered per listener, as the reference's alert channel. */
const ALERT_BUFFER = 256

interface Listener {
  queue: Alert[]
  wake: (() => void) | undefined
}

/** Builds the monitor and starts its checker loop. */
export function localMonitor(config: PubsubmonConfig, deps: LocalMonitorDeps = {}): LocalMonitor {
  const clock = deps.clock ?? systemClock
  const now = () => clock.now()
  const log = deps.log ?? (() => {})
  const store = new MetricsStore()
  const checker = new Checker(store)
  const listeners = new Set<Listener>()
  let stopped = false
  let cancelTimer: CancelTimer | undefined
  const unsubscribe = deps.transport?.subscribe((m) => logMetric(m))

  function logMetric(m: Metric): void {
    if (stopped) return
    // A metric older than the one held (it came late) neither replaces it nor ends an alert.
    if (store.add(m, now())) checker.reset(m.peer, m.name)
  }

  function emit(a: Alert): void {
    for (const l of listeners) {
      if (l.queue.length >= ALERT_BUFFER) {
        log('error', `alert channel full: dropping alert for ${a.peer} (${a.name})`)
        continue
      }
      l.queue.push(a)
      l.wake?.()
    }
  }

  function check(): Alert[] {
    let peers: string[] | undefined
    try {
      peers = deps.peers?.()
    } catch (err) {
      log('warn', `monitor: could not list peers: ${(err as Error).message}`)
      return []
    }
    const alerts = checker.check(peers, now())
    for (const a of alerts) emit(a)
    return alerts
  }

  const schedule = () => {
    cancelTimer = clock.timeout(config.check_interval, () => {
      if (stopped) return
      check()
      schedule()
    })
  }
  schedule()

  return {
    logMetric,
    check,
    removePeer: (peer) => store.removePeer(peer),

    async publishMetric(m: Metric, signal?: AbortSignal): Promise<void> {
      if (!m.valid || metricExpired(m, now())) {
        log('warn', `discarding invalid metric ${m.name} of ${m.peer}`)
        return
      }
      logMetric(m)
      await deps.transport?.publish(m, signal)
    },

    latestMetrics(name: string): Metric[] {
      const latest = store.latestValid(name, now())
      if (!deps.peers) return latest.slice()
      let peers: Set<string>
      try {
        peers = new Set(deps.peers())
      } catch {
        return []
      }
      return latest.filter((m) => peers.has(m.peer))
    },

    metricNames: () => store.names(),

    async *alerts(signal?: AbortSignal): AsyncIterable<Alert> {
      if (stopped) return
      const l: Listener = { queue: [], wake: undefined }
      listeners.add(l)
      const onAbort = () => l.wake?.()
      signal?.addEventListener('abort', onAbort)
      try {
        while (!stopped && !signal?.aborted) {
          const a = l.queue.shift()
          if (a) {
            yield a
            continue
          }
          await new Promise<void>((r) => (l.wake = r))
          l.wake = undefined
        }
      } finally {
        listeners.delete(l)
        signal?.removeEventListener('abort', onAbort)
      }
    },

    stop(): Promise<void> {
      if (stopped) return Promise.resolve()
      stopped = true
      cancelTimer?.()
      unsubscribe?.()
      for (const l of listeners) l.wake?.()
      return Promise.resolve()
    },
  }
}
