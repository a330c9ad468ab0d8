/**
 * The `observations.metrics` and `observations.tracing` sections (env CLUSTER_METRICS_<KEY>,
 * CLUSTER_TRACING_<KEY>): the keys of IPFS Cluster 1.1.6 `observations/config.go`, plus
 * `otlp_endpoint`: traces leave over OTLP/HTTP (tracing.ts, otlp.ts), not to a Jaeger agent
 * over UDP. Metrics: metrics.ts and endpoint.ts.
 */
import { bool, type ConfigOf, defineSection, duration, maddr, num, str } from '../config/schema.ts'

/** `observations.metrics`. */
export const metricsSection = defineSection('observations.metrics', 'METRICS', {
  enable_stats: bool(false),
  prometheus_endpoint: maddr('/ip4/127.0.0.1/tcp/8888'),
  // Go's OpenCensus views were exported at this interval; here every scrape reads live values.
  reporting_interval: duration(30_000, { positive: true }),
})

/** An http(s) URL, or '' for OTEL_EXPORTER_OTLP_ENDPOINT's, else http://localhost:4318. */
function otlpUrl(v: string): string | undefined {
  if (v === '') return undefined
  try {
    const u = new URL(v)
    if (u.protocol === 'http:' || u.protocol === 'https:') return undefined
  } catch { /* reported below */ }
  return `invalid OTLP endpoint ${JSON.stringify(v)}: expected an http(s) URL such as ` +
    '"http://127.0.0.1:4318" (the collector\'s OTLP/HTTP port), or "" for the environment\'s'
}

/** `observations.tracing`. */
export const tracingSection = defineSection('observations.tracing', 'TRACING', {
  enable_tracing: bool(false),
  jaeger_agent_endpoint: {
    ...maddr('/ip4/0.0.0.0/udp/6831'),
    ignored: 'traces are exported over OTLP/HTTP: set otlp_endpoint (Jaeger takes OTLP on 4318)',
  },
  sampling_prob: num(0.3, { min: 0, max: 1 }),
  service_name: str('cluster-daemon'),
  otlp_endpoint: { ...str(''), omitDefault: true, check: otlpUrl },
})

export type MetricsConfig = ConfigOf<typeof metricsSection.fields>
export type TracingConfig = ConfigOf<typeof tracingSection.fields>
