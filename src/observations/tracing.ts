/**
 * Tracing: the peer's own spans, exported over OTLP/HTTP by otlp.ts. Not Deno's built-in
 * OpenTelemetry: with `OTEL_DENO=true` Deno instruments every request `Deno.serve` answers (header
 * copy, propagator, a span even when its sampler drops it, and its slow dispatch path) and ends a
 * recorded span in ~10 µs; measured on the peer's REST ingest that was +60 % CPU a pin at
 * sampling 0.3, against the 5 % this must stay under (docs/observability.md, Cost). Here a pin the
 * sampler drops costs one `Math.random()` and a Map entry, and a recorded span is a small context
 * object (its ids as 16-bit words) that dies young, its fields copied into the exporter's ring.
 *
 * While tracing is off, every entry point is one read of a module variable, then `fn()`.
 *
 * A pin's trace: the REST request's span (`tracedRoot`, in api/common/http_api.ts, where the
 * trace is sampled at `sampling_prob`, or continued from a W3C `traceparent` header) →
 * `cluster/Pin` → `consensus/LogPin`; steps below a root (`traced`) make spans only inside a
 * sampled trace. The commit reaches the tracker through the consensus apply loop, so `cluster/Pin`
 * leaves its context (or "not sampled") under the CID (`rememberTrace`) and the tracker's
 * operation takes it back (`takeTrace`, `traceOperation`): `pintracker/Pin` and the IPFS request's
 * `ipfsconn/Pin` join the same trace. Other peers apply the entry from the Raft log, which carries
 * no trace context: their tracker operations start traces of their own, sampled there.
 *
 * A step finds the span it belongs to by its CID, not through an async context: every span on a
 * pin's path is about one CID, and the open spans of each CID form a stack (`scopes`), the
 * innermost open one being the parent of the next step. That costs a Map lookup where
 * `AsyncLocalStorage` cost an async-context switch per span (~0.9 µs each in Deno 2.9, measured
 * on the peer under ingest), and no loop started inside a span carries that span on. The price:
 * two operations on the same CID at the same time (two clients pinning one CID at once) may file
 * a step under the other's trace, and a step without a CID makes no span. A request whose CID
 * comes in its body (the Pinning Service API's `POST /pins`) files its pin under its span with
 * `tracedUnder`; a pin by path (`POST /pins/ipfs/…`) files its span under the path, and the
 * cluster, once IPFS resolved it, files the pin under that (`openSpan`, `tracedUnder`).
 *
 * @example
 * ```ts
 * enableTracing({ url: 'http://127.0.0.1:4318/v1/traces', serviceName: 'cluster-daemon-p1', sampling: 0.3 })
 * await tracedRoot('restapi POST /pins/{hash}', cid, req.headers.get('traceparent'), async () =>
 *   await traced('cluster/Pin', cid, async () => { … }))
 * await disableTracing()
 * ```
 */
import { SpanContext, SpanExporter } from './otlp.ts'
import type { Logger } from '../util/log.ts'

/** What enableTracing needs. */
export interface TracingOptions {
  /** Full OTLP/HTTP traces URL (`http://host:4318/v1/traces`). */
  url: string
  serviceName: string
  /** Probability that a root starts a recorded trace (0…1). */
  sampling: number
  log?: Logger
  /** For tests: the exporter's fetch, flush period and randomness. */
  fetch?: typeof fetch
  intervalMs?: number
  random?: () => number
}

/** Left under a CID whose trace the sampler dropped: the tracker must not start another. */
const NOT_SAMPLED = Symbol('not sampled')

interface State {
  exporter: SpanExporter
  sampling: number
  random: () => number
}

let state: State | undefined

/** An open span that steps of its CID run under. */
class Scope extends SpanContext {
  /** The CID's innermost open span when this one opened. */
  outer: Scope | undefined
  closed = false
}

/** The innermost open span of each CID with a span open. */
const scopes = new Map<string, Scope>()

/** The innermost span of `cid` still open, or undefined. */
function openSpanOf(cid: string | undefined): Scope | undefined {
  if (cid === undefined || scopes.size === 0) return undefined
  let top = scopes.get(cid)
  while (top?.closed) top = top.outer
  return top
}

/** Contexts left by `rememberTrace`, by CID; bounded (a commit that never reaches the tracker). */
const pending = new Map<string, SpanContext | typeof NOT_SAMPLED>()
const MAX_PENDING = 4096

/** True when spans are made. */
export function tracingEnabled(): boolean {
  return state !== undefined
}

/** Turns tracing on (replacing an earlier exporter, which is flushed). */
export function enableTracing(o: TracingOptions): void {
  if (state) void state.exporter.shutdown()
  state = {
    exporter: new SpanExporter({
      url: o.url,
      serviceName: o.serviceName,
      log: o.log,
      fetch: o.fetch,
      intervalMs: o.intervalMs,
    }),
    sampling: Math.min(1, Math.max(0, o.sampling)),
    random: o.random ?? Math.random,
  }
}

/** Turns tracing off, forgets pending contexts and sends the spans still queued. */
export async function disableTracing(): Promise<void> {
  const s = state
  state = undefined
  pending.clear()
  scopes.clear()
  await s?.exporter.shutdown()
}

/** The exporter's counters (undefined while off). */
export function tracingStats(): { exported: number; dropped: number; queued: number } | undefined {
  return state?.exporter.stats
}

/**
 * Runs `fn` in a span named `name` (the CID as attribute `cid`), a child of the CID's innermost
 * open span, and the parent of the CID's steps until it ends; without an open span of the CID
 * (not in a sampled trace) or without a CID: `fn()`, no span. A rejection marks the span as an
 * error.
 */
export function traced<T>(name: string, cid: string | undefined, fn: () => Promise<T>): Promise<T> {
  const s = state
  if (!s) return fn()
  const parent = openSpanOf(cid)
  if (!parent) return fn()
  return run(s, parent.trace, parent, 1, name, cid, fn)
}

/**
 * `traced` for a step that makes no spans below it (the consensus proposal, the IPFS request):
 * the span is recorded without being pushed on its CID's stack.
 */
export function tracedLeaf<T>(
  name: string,
  cid: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const s = state
  if (!s) return fn()
  const parent = openSpanOf(cid)
  if (!parent) return fn()
  return run(s, parent.trace, parent, 1, name, cid, fn, true)
}

/**
 * Runs `fn` in a span that starts a trace: sampled at `sampling`, or continuing the caller's trace
 * when `traceparent` (a W3C header value) names a sampled one (one it names unsampled stays so).
 * With a CID, the steps of that CID run under it; `fn` gets the span when one is recorded (for
 * `tracedUnder`, when the CID is learnt later).
 */
export function tracedRoot<T>(
  name: string,
  cid: string | undefined,
  traceparent: string | null | undefined,
  fn: (span?: SpanContext) => Promise<T>,
): Promise<T> {
  const s = state
  if (!s) return fn()
  if (traceparent) {
    const m = TRACEPARENT.exec(traceparent)
    if (m && m[1] !== ZERO_TRACE && m[2] !== ZERO_SPAN) {
      if (!(parseInt(m[3], 16) & 1)) return fn()
      const caller = SpanContext.fromHex(m[1], m[2])
      return run(s, caller.trace, caller, 2, name, cid, fn)
    }
  }
  if (!sampled(s)) return fn()
  return run(s, newTraceId(), undefined, 2, name, cid, fn)
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})(?:-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

function sampled(s: State): boolean {
  return s.sampling >= 1 || (s.sampling > 0 && s.random() < s.sampling)
}

function run<T>(
  s: State,
  trace: Uint16Array,
  parent: SpanContext | undefined,
  kind: 1 | 2,
  name: string,
  cid: string | undefined,
  fn: (span: SpanContext) => Promise<T>,
  leaf = false,
): Promise<T> {
  if (poolAt + 4 > pool.length) refill()
  const p = pool
  const i = poolAt
  poolAt += 4
  if (leaf || cid === undefined) {
    return inSpan(
      s,
      new SpanContext(trace, p[i], p[i + 1], p[i + 2], p[i + 3]),
      parent,
      kind,
      name,
      cid,
      fn,
    )
  }
  const scope = new Scope(trace, p[i], p[i + 1], p[i + 2], p[i + 3])
  open(cid, scope)
  return inSpan(s, scope, parent, kind, name, cid, fn)
}

function open(cid: string, scope: Scope): void {
  scope.outer = scopes.get(cid)
  scopes.set(cid, scope)
}

/** The innermost open span filed under `key` (a CID, or a request's IPFS path), if any. */
export function openSpan(key: string): SpanContext | undefined {
  return state ? openSpanOf(key) : undefined
}

/**
 * Runs `fn` with the steps of `cid` filed under `span`, a request's span (from `tracedRoot`, or
 * `openSpan` of the path it named) whose CID was not in its path: the Pinning Service API's
 * body, an IPFS path resolved to a CID. Without a span (not sampled, tracing off): `fn()`.
 */
export function tracedUnder<T>(
  span: SpanContext | undefined,
  cid: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!state || !span) return fn()
  // The same ids as `span`: its steps point at it; nothing of its own is recorded.
  const scope = new Scope(span.trace, span.s0, span.s1, span.s2, span.s3)
  open(cid, scope)
  let p: Promise<T>
  try {
    p = fn()
  } catch (err) {
    close(scope, cid)
    return Promise.reject(err)
  }
  const done = () => close(scope, cid)
  p.then(done, done)
  return p
}

/**
 * Calls `fn` and records its span when the promise it returns settles. The caller gets that very
 * promise, not one wrapped around it: a traced step reaches its caller in as many microtask turns
 * as an untraced one, so the pins, proposals and commits that batch by turn batch the same
 * whether or not a trace was sampled (an async wrapper here split the IPFS pin batches from 9 to
 * 4 pins at sampling 0.3).
 */
function inSpan<T>(
  s: State,
  span: SpanContext,
  parent: SpanContext | undefined,
  kind: 1 | 2,
  name: string,
  cid: string | undefined,
  fn: (span: SpanContext) => Promise<T>,
): Promise<T> {
  const start = now()
  const end = (err?: unknown) => {
    const error = err === undefined ? undefined : err instanceof Error ? err.message : String(err)
    s.exporter.add(span, parent, name, kind, start, now(), cid, error)
    if (span instanceof Scope) close(span, cid!)
  }
  let p: Promise<T>
  try {
    p = fn(span)
  } catch (err) {
    end(err)
    return Promise.reject(err)
  }
  p.then(() => end(), (err) => end(err ?? new Error('rejected')))
  return p
}

/**
 * Ends a scope: off its CID's stack when it is the innermost, else marked (a step of the same CID
 * that began later is still open) and dropped when the spans above it end.
 */
function close(scope: Scope, cid: string): void {
  scope.closed = true
  if (scopes.get(cid) !== scope) return
  let top = scope.outer
  while (top?.closed) top = top.outer
  if (top) scopes.set(cid, top)
  else scopes.delete(cid)
}

/** Leaves the open span of `cid` (or "not sampled") under it, for the step that continues it elsewhere. */
export function rememberTrace(cid: string): void {
  if (!state) return
  if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!)
  pending.set(cid, openSpanOf(cid) ?? NOT_SAMPLED)
}

/** Takes what `rememberTrace` left under `cid` (once), or undefined. */
export function takeTrace(cid: string): unknown {
  if (!state || pending.size === 0) return undefined
  const ctx = pending.get(cid)
  if (ctx !== undefined) pending.delete(cid)
  return ctx
}

/**
 * Runs the tracker's step `fn` as span `name`: in the trace `takeTrace` gave back, without a span
 * when that trace was not sampled, or as the root of a trace of its own when nothing was left (an
 * entry another peer committed).
 */
export function traceOperation<T>(
  trace: unknown,
  name: string,
  cid: string,
  fn: () => Promise<T>,
): Promise<T> {
  const s = state
  if (!s || trace === NOT_SAMPLED) return fn()
  if (trace) {
    const t = trace as SpanContext
    return run(s, t.trace, t, 1, name, cid, fn)
  }
  if (!sampled(s)) return fn()
  return run(s, newTraceId(), undefined, 1, name, cid, fn)
}

const now = () => performance.timeOrigin + performance.now()

// Random ids: 16-bit words from a pool refilled 8 KiB at a time (one crypto call per ~700
// spans). A span id is four words in its context object; a trace id eight, in an array its spans
// share. (An all-zero id, which OTLP treats as absent, comes once in 2^64 spans: not checked.)
const pool = new Uint16Array(4096)
let poolAt = pool.length

function refill(): void {
  crypto.getRandomValues(pool)
  poolAt = 0
}

function newTraceId(): Uint16Array {
  if (poolAt + 8 > pool.length) refill()
  poolAt += 8
  return pool.slice(poolAt - 8, poolAt)
}

/**
 * Where traces go and how they are sampled: service.json's `observations.tracing`, with the
 * standard OpenTelemetry variables, when set, winning (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, a
 * full URL, or `OTEL_EXPORTER_OTLP_ENDPOINT`, a base; `OTEL_SERVICE_NAME`; `OTEL_TRACES_SAMPLER`
 * `always_on`/`always_off`/`traceidratio` and their `parentbased_` forms, with
 * `OTEL_TRACES_SAMPLER_ARG`).
 */
export function tracingSettings(
  cfg: { sampling_prob: number; service_name: string; otlp_endpoint: string },
  peername: string,
  env: (k: string) => string | undefined = () => undefined,
): { url: string; serviceName: string; sampling: number } {
  const base = (env('OTEL_EXPORTER_OTLP_ENDPOINT') || cfg.otlp_endpoint || 'http://localhost:4318')
    .replace(/\/+$/, '')
  const url = env('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') || `${base}/v1/traces`
  const serviceName = env('OTEL_SERVICE_NAME') ||
    (peername ? `${cfg.service_name}-${peername}` : cfg.service_name)
  let sampling = cfg.sampling_prob
  const sampler = env('OTEL_TRACES_SAMPLER')?.replace(/^parentbased_/, '')
  const arg = Number(env('OTEL_TRACES_SAMPLER_ARG') || NaN)
  if (sampler === 'always_on') sampling = 1
  else if (sampler === 'always_off') sampling = 0
  else if ((sampler === undefined || sampler === 'traceidratio') && arg >= 0 && arg <= 1) {
    sampling = arg
  }
  return { url, serviceName, sampling }
}
