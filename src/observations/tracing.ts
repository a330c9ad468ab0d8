/**
 * Tracing through Deno's built-in OpenTelemetry: spans made with `@opentelemetry/api`, exported
 * over OTLP by the runtime. Deno reads its telemetry settings (`OTEL_DENO`, the exporter's
 * `OTEL_EXPORTER_OTLP_*`, the sampler) once, at process start; a running peer cannot switch
 * them on. So `observations.tracing.enable_tracing` (or `daemon --tracing`) turns our spans on
 * only in a process started with `OTEL_DENO=true`; without it the daemon logs the environment to
 * start with (`tracingEnv`, from service.json's keys) and runs untraced. Re-executing itself
 * with that environment would need `--allow-run` for the deno binary, which the service task
 * does not grant (and a scoped `--allow-run=deno` does not match the binary behind a symlink).
 *
 * While tracing is off, `traced(name, cid, fn)` is `fn()`: no span, no context, no attributes.
 *
 * A pin's trace: the REST request's span (api/common/http_api.ts) → `cluster/Pin` →
 * `consensus/LogPin`; the commit reaches the tracker through the consensus apply loop, not the
 * caller's async context, so `cluster/Pin` leaves its context under the CID (`rememberTrace`)
 * and the tracker's operation takes it back (`takeTrace`): `pintracker/Pin` and the IPFS
 * request's `ipfsconn/Pin` join the same trace. Other peers apply the entry from the Raft log,
 * which carries no trace context: their tracker spans start traces of their own.
 *
 * @example
 * ```ts
 * await enableTracing()
 * await traced('cluster/Pin', cid, async () => { … })
 * ```
 */
import type { Context, Tracer } from '@opentelemetry/api'
import type { TracingConfig } from './config.ts'

type OtelApi = typeof import('@opentelemetry/api')

let api: OtelApi | undefined
let tracer: Tracer | undefined

/** Contexts left by `rememberTrace`, by CID; bounded (a commit that never reaches the tracker). */
const pending = new Map<string, Context>()
const MAX_PENDING = 4096

/** True when spans are made (tracing enabled in a process Deno traces). */
export function tracingEnabled(): boolean {
  return tracer !== undefined
}

/** True when Deno's OpenTelemetry runs in this process (`OTEL_DENO=true` at start). */
export function denoTelemetryOn(env: (k: string) => string | undefined): boolean {
  const v = env('OTEL_DENO')?.toLowerCase()
  return v === 'true' || v === '1'
}

/** Turns spans on (loads the API module). Idempotent. */
export async function enableTracing(): Promise<void> {
  if (tracer) return
  api = await import('@opentelemetry/api')
  tracer = api.trace.getTracer('ipfs-cluster')
}

/** Turns spans off again and forgets pending contexts. */
export function disableTracing(): void {
  tracer = undefined
  pending.clear()
}

/**
 * Runs `fn` in a span named `name` (with the CID as `cid` attribute when given), a child of
 * the active span. A rejection marks the span as an error. Without tracing: `fn()`.
 */
export function traced<T>(name: string, cid: string | undefined, fn: () => Promise<T>): Promise<T> {
  const t = tracer
  if (!t) return fn()
  const a = api!
  // Under a span the sampler dropped (Deno's own request span, sampled at sampling_prob), a child
  // would be dropped too: skip making it, the measured bulk of tracing's cost per request.
  const parent = a.trace.getActiveSpan()
  if (parent && !parent.isRecording()) return fn()
  return t.startActiveSpan(name, async (span) => {
    if (cid !== undefined) span.setAttribute('cid', cid)
    try {
      return await fn()
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err))
      span.setStatus({ code: a.SpanStatusCode.ERROR, message: String(err) })
      throw err
    } finally {
      span.end()
    }
  })
}

/** Leaves the active context under `cid`, for the step that continues it elsewhere. */
export function rememberTrace(cid: string): void {
  if (!tracer || !api!.trace.getActiveSpan()?.isRecording()) return
  if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!)
  pending.set(cid, api!.context.active())
}

/** Takes the context left under `cid` (once), or undefined. */
export function takeTrace(cid: string): unknown {
  if (!tracer) return undefined
  const ctx = pending.get(cid)
  if (ctx) pending.delete(cid)
  return ctx
}

/** Runs `fn` inside a context from `takeTrace` (as is without one). */
export function withTrace<T>(ctx: unknown, fn: () => T): T {
  if (!ctx || !api) return fn()
  return api.context.with(ctx as Context, fn)
}

/**
 * The environment that makes Deno export this peer's traces as service.json asks: OTLP to
 * `otlp_endpoint`, sampled at `sampling_prob` (children follow their parent's decision), the
 * service named `<service_name>-<peername>` as the reference names its Jaeger process. Values
 * the environment already holds are kept (`env`): OTEL_* set by the operator win.
 */
export function tracingEnv(
  cfg: Pick<TracingConfig, 'sampling_prob' | 'service_name' | 'otlp_endpoint'>,
  peername: string,
  env: (k: string) => string | undefined = () => undefined,
): Record<string, string> {
  const want: Record<string, string> = {
    OTEL_DENO: 'true',
    OTEL_SERVICE_NAME: peername ? `${cfg.service_name}-${peername}` : cfg.service_name,
    // '' keeps Deno's default (http://localhost:4318) or the operator's variable.
    ...(cfg.otlp_endpoint ? { OTEL_EXPORTER_OTLP_ENDPOINT: cfg.otlp_endpoint } : {}),
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(cfg.sampling_prob),
    // The peer logs to stderr already; Deno would also ship every console line as an OTLP log.
    OTEL_DENO_CONSOLE: 'ignore',
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(want)) out[k] = env(k) || v // empty counts as unset
  return out
}

/** `K=V …` of an environment, for a log line a user can paste before the command. */
export function envLine(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${/^[\w./:@-]*$/.test(v) ? v : `'${v}'`}`)
    .join(' ')
}
