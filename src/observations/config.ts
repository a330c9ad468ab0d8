/**
 * The `observations.metrics` and `observations.tracing` sections (env CLUSTER_METRICS_<KEY>,
 * CLUSTER_TRACING_<KEY>): the keys of IPFS Cluster 1.1.6 `observations/config.go`. Neither
 * Prometheus metrics nor Jaeger tracing is implemented here: the sections load and round-trip,
 * and turning either on is reported at load.
 */
import { bool, type ConfigOf, defineSection, duration, maddr, num, str } from '../config/schema.ts'

/** `observations.metrics`. */
export const metricsSection = defineSection('observations.metrics', 'METRICS', {
  enable_stats: { ...bool(false), ignored: 'no Prometheus endpoint is served here' },
  prometheus_endpoint: maddr('/ip4/127.0.0.1/tcp/8888'),
  reporting_interval: duration(30_000, { positive: true }),
})

/** `observations.tracing`. */
export const tracingSection = defineSection('observations.tracing', 'TRACING', {
  enable_tracing: { ...bool(false), ignored: 'no traces are exported here' },
  jaeger_agent_endpoint: maddr('/ip4/0.0.0.0/udp/6831'),
  sampling_prob: num(0.3, { min: 0, max: 1 }),
  service_name: str('cluster-daemon'),
})

export type MetricsConfig = ConfigOf<typeof metricsSection.fields>
export type TracingConfig = ConfigOf<typeof tracingSection.fields>
