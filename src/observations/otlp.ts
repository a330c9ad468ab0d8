/**
 * Finished spans and their export over OTLP/HTTP (JSON encoding, `POST <endpoint>/v1/traces`),
 * the way a collector, Jaeger (4318) or Tempo take them. Spans are queued as plain records and
 * sent in batches by a timer, one request at a time: a pin costs a push onto an array, never a
 * network write or an encoding. A full queue drops new spans (counted, logged once a batch) rather
 * than grow without bound while the collector is away.
 *
 * @example
 * ```ts
 * const ex = new SpanExporter({ url: 'http://127.0.0.1:4318/v1/traces', serviceName: 'cluster-daemon-p1' })
 * ex.add(span)
 * await ex.shutdown() // sends what is queued
 * ```
 */
import { errorMessage } from '../errors.ts'
import { type Logger, nullLogger } from '../util/log.ts'

/** A finished span. Times are ms since the epoch (fractions kept), as `performance` gives them. */
export interface SpanRecord {
  traceId: string
  spanId: string
  /** Undefined for a trace's root. */
  parentSpanId?: string
  name: string
  /** OTLP SpanKind: 1 internal, 2 server. */
  kind: 1 | 2
  startMs: number
  endMs: number
  cid?: string
  /** Set when the step failed: the error's message. */
  error?: string
}

/** What a SpanExporter needs. */
export interface ExporterOptions {
  /** The full traces URL (`…/v1/traces`). */
  url: string
  serviceName: string
  /** Flush period (default 1 s) and the batch size that flushes at once (default 512). */
  intervalMs?: number
  batchSize?: number
  /** Spans held at most while the collector is slow or away (default 8192). */
  maxQueue?: number
  /** Per request (default 10 s). */
  timeoutMs?: number
  log?: Logger
  fetch?: typeof fetch
}

/**
 * The OTLP/HTTP JSON body of `spans` (ExportTraceServiceRequest). Written as a string, not built as
 * objects for JSON.stringify: encoding was most of a recorded span's cost (and of its garbage).
 */
export function encodeSpans(spans: readonly SpanRecord[], serviceName: string): string {
  let out = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{` +
    `"stringValue":${JSON.stringify(serviceName)}}}]},"scopeSpans":[{"scope":{"name":` +
    `"ipfs-cluster"},"spans":[`
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]
    const end = unixNano(s.endMs)
    if (i > 0) out += ','
    out += `{"traceId":"${s.traceId}","spanId":"${s.spanId}",` +
      (s.parentSpanId ? `"parentSpanId":"${s.parentSpanId}",` : '') +
      `"name":${JSON.stringify(s.name)},"kind":${s.kind},` +
      `"startTimeUnixNano":"${unixNano(s.startMs)}","endTimeUnixNano":"${end}","attributes":[` +
      (s.cid === undefined
        ? ''
        : `{"key":"cid","value":{"stringValue":${JSON.stringify(s.cid)}}}`) +
      ']'
    if (s.error !== undefined) {
      const msg = JSON.stringify(s.error)
      out += `,"status":{"code":2,"message":${msg}},"events":[{"name":"exception",` +
        `"timeUnixNano":"${end}","attributes":[{"key":"exception.message","value":{` +
        `"stringValue":${msg}}}]}]`
    }
    out += '}'
  }
  return out + ']}]}]}'
}

/** ms since the epoch → the decimal string of ns OTLP/JSON takes (µs resolution; exact). */
function unixNano(ms: number): string {
  return `${Math.round(ms * 1000)}000`
}

/** Queues finished spans and sends them in batches. */
export class SpanExporter {
  readonly #o: Required<Omit<ExporterOptions, 'log' | 'fetch'>>
  readonly #log: Logger
  readonly #fetch: typeof fetch
  #queue: SpanRecord[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  /** The timer is the immediate one a full batch set. */
  #soon = false
  #sending: Promise<void> | undefined
  #dropped = 0
  #droppedTotal = 0
  #failing = false
  #exported = 0

  constructor(o: ExporterOptions) {
    this.#o = {
      url: o.url,
      serviceName: o.serviceName,
      intervalMs: o.intervalMs ?? 1000,
      batchSize: o.batchSize ?? 512,
      maxQueue: o.maxQueue ?? 8192,
      timeoutMs: o.timeoutMs ?? 10_000,
    }
    this.#log = o.log ?? nullLogger
    this.#fetch = o.fetch ?? fetch
  }

  /** Spans sent and accepted so far, and spans dropped on a full queue. */
  get stats(): { exported: number; dropped: number; queued: number } {
    return { exported: this.#exported, dropped: this.#droppedTotal, queued: this.#queue.length }
  }

  /** Queues a finished span. */
  add(span: SpanRecord): void {
    if (this.#queue.length >= this.#o.maxQueue) {
      this.#dropped++
      this.#droppedTotal++
      return
    }
    this.#queue.push(span)
    if (this.#queue.length >= this.#o.batchSize) {
      // A batch is full: send it now, unless a send is under way (its loop takes full batches).
      if (!this.#sending && !this.#soon) this.#flushSoon(0, false)
    } else if (this.#timer === undefined) this.#flushSoon(this.#o.intervalMs, true)
  }

  #flushSoon(ms: number, all: boolean): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#soon = ms === 0
    const t = setTimeout(() => {
      this.#timer = undefined
      this.#soon = false
      void this.flush(all)
    }, ms)
    Deno.unrefTimer(t) // queued spans never keep a process alive
    this.#timer = t
  }

  /**
   * Sends what is queued, batch by batch; with `all` false only full batches (the rest waits for
   * the timer: under load, requests stay few and full rather than back to back and small).
   * Resolves when done; never throws.
   */
  async flush(all = true): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#soon = false
    while (this.#sending) await this.#sending
    // `all` owes what is queued now; what comes in meanwhile goes in full batches or next time.
    let owed = all ? this.#queue.length : 0
    while (owed > 0 || this.#queue.length >= this.#o.batchSize) {
      const batch = this.#queue.splice(0, this.#o.batchSize)
      owed -= batch.length
      this.#sending = this.#send(batch)
      await this.#sending
      this.#sending = undefined
    }
    if (this.#queue.length > 0 && this.#timer === undefined) {
      this.#flushSoon(this.#o.intervalMs, true)
    }
  }

  async #send(batch: SpanRecord[]): Promise<void> {
    try {
      const res = await this.#fetch(this.#o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: encodeSpans(batch, this.#o.serviceName),
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      })
      await res.body?.cancel()
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      this.#exported += batch.length
      if (this.#failing) this.#log.info(`trace export to ${this.#o.url} works again`)
      this.#failing = false
    } catch (err) {
      // Logged once per outage, not once per batch: a peer without its collector keeps running.
      if (!this.#failing) {
        this.#log.warn(
          `trace export to ${this.#o.url} failed (${errorMessage(err)}): ` +
            `${batch.length} spans lost; next failures are not logged until it works again`,
        )
      }
      this.#failing = true
    }
    if (this.#dropped > 0) {
      this.#log.warn(`trace export queue full: ${this.#dropped} spans dropped`)
      this.#dropped = 0
    }
  }

  /** Sends what is queued; nothing is left pending. */
  shutdown(): Promise<void> {
    return this.flush()
  }
}
