/**
 * Turns on what `observations` asks for at a peer's start: the Prometheus endpoint when
 * `metrics.enable_stats` (or `daemon --stats`), our spans when `tracing.enable_tracing` (or
 * `daemon --tracing`), exported over OTLP/HTTP as the section and the OTEL_* environment say. `stop()` closes the endpoint and turns both off;
 * the daemon stops it last, after every component that records.
 *
 * @example
 * ```ts
 * const obs = await startObservations({ metrics: cfg.metrics, tracing: cfg.tracing, peername, env, log })
 * if (obs.metrics) obs.metrics.sources.peers = () => 3
 * await obs.stop()
 * ```
 */
import type { Logger } from '../util/log.ts'
import { type MetricsConfig, metricsSection, type TracingConfig, tracingSection } from './config.ts'
import { serveMetrics } from './endpoint.ts'
import { type ClusterMetrics, disableMetrics, enableMetrics } from './metrics.ts'
import { disableTracing, enableTracing, tracingSettings } from './tracing.ts'

/** What startObservations needs. */
export interface ObservationsOptions {
  metrics?: MetricsConfig
  tracing?: TracingConfig
  /** `daemon --stats`: stats on whatever the file says. */
  stats?: boolean
  /** `daemon --tracing`. */
  tracingFlag?: boolean
  peername: string
  /** The process environment (the operator's OTEL_* settings win over the section's). */
  env: Record<string, string>
  log: Logger
}

/** What is running. */
export interface Observations {
  /** The metrics to record into and to give sources to; undefined with stats off. */
  metrics?: ClusterMetrics
  /** Where /metrics is served, when it is. */
  endpoint?: string
  tracing: boolean
  stop(): Promise<void>
}

/** Starts the endpoint and tracing as configured. Throws ConfigError when the endpoint cannot listen. */
// deno-lint-ignore require-await -- kept async: callers await it, and a listen error rejects
export async function startObservations(o: ObservationsOptions): Promise<Observations> {
  const mcfg = o.metrics ?? metricsSection.defaults()
  const tcfg = o.tracing ?? tracingSection.defaults()
  let metrics: ClusterMetrics | undefined
  let endpoint: ReturnType<typeof serveMetrics> | undefined
  if (mcfg.enable_stats || o.stats) {
    metrics = enableMetrics()
    try {
      endpoint = serveMetrics({
        listen: mcfg.prometheus_endpoint,
        registry: metrics.registry,
        log: o.log,
      })
    } catch (err) {
      disableMetrics()
      throw err
    }
  }
  let tracing = false
  if (tcfg.enable_tracing || o.tracingFlag) {
    const t = tracingSettings(tcfg, o.peername, (k) => o.env[k])
    enableTracing({ ...t, log: o.log })
    tracing = true
    o.log.info(
      `tracing enabled: OTLP to ${t.url} as ${t.serviceName}, sampling ${t.sampling}`,
    )
  }
  let stopped: Promise<void> | undefined
  return {
    metrics,
    endpoint: endpoint?.address(),
    tracing,
    stop() {
      stopped ??= (async () => {
        await endpoint?.stop()
        if (metrics) disableMetrics()
        if (tracing) await disableTracing() // sends the spans still queued
      })()
      return stopped
    },
  }
}
