/**
 * Finished spans and their export over OTLP/HTTP (JSON encoding, `POST <endpoint>/v1/traces`),
 * the way a collector, Jaeger (4318) or Tempo take them. Spans are sent in batches by a timer, one
 * request at a time: a pin costs a few stores into typed arrays, never a network write or an
 * encoding. A full queue drops new spans (counted, logged once a batch) rather than grow without
 * bound while the collector is away.
 *
 * The queue is a ring of typed arrays, not an array of span objects: a queued span waits up to a
 * second, long enough for V8 to promote every object it holds to the old generation, and those
 * promotions (and the collections that follow) were most of what tracing cost a peer under load
 * (docs/observability.md, Cost). Here a finished span leaves no object behind: its ids, times,
 * name and CID are copied into the ring, and the batch is written as bytes from there.
 *
 * @example
 * ```ts
 * const ex = new SpanExporter({ url: 'http://127.0.0.1:4318/v1/traces', serviceName: 'cluster-daemon-p1' })
 * const ctx = SpanContext.fromHex('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7')
 * ex.add(ctx, undefined, 'restapi POST /pins/{hash}', 2, startMs, endMs, cid)
 * await ex.shutdown() // sends what is queued
 * ```
 */
import { errorMessage } from '../errors.ts'
import { type Logger, nullLogger } from '../util/log.ts'

/**
 * A span's place in its trace, what its children point at: the trace id (128 bits, eight 16-bit
 * words shared by every span of the trace) and the span's own id (64 bits, four words). Words,
 * not hex strings: a context costs one small object, and its ids are written as hex only into
 * the export's bytes.
 */
export class SpanContext {
  constructor(
    /** The trace id's eight 16-bit words, most significant first. */
    readonly trace: Uint16Array,
    readonly s0: number,
    readonly s1: number,
    readonly s2: number,
    readonly s3: number,
  ) {}

  /** From the hex ids of a W3C `traceparent` (32 and 16 hex digits; not checked here). */
  static fromHex(traceId: string, spanId: string): SpanContext {
    const t = new Uint16Array(8)
    for (let i = 0; i < 8; i++) t[i] = parseInt(traceId.slice(i * 4, i * 4 + 4), 16)
    const w = (i: number) => parseInt(spanId.slice(i * 4, i * 4 + 4), 16)
    return new SpanContext(t, w(0), w(1), w(2), w(3))
  }
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

/** Words a ring slot holds: the trace (8), the span (4), its parent (4). */
const WORDS = 16
/** CID bytes a slot holds inline; a longer CID (or one JSON must escape) waits as a string. */
const CID_BYTES = 64
const HAS_PARENT = 4
const HAS_CID = 8
const KIND_MASK = 3

const encoder = new TextEncoder()
const ascii = (s: string) => encoder.encode(s)

/** Each 16-bit value's four lowercase hex digits, as ASCII: 256 KiB, built on first use. */
let HEX: Uint8Array | undefined
function hexTable(): Uint8Array {
  if (HEX) return HEX
  const t = new Uint8Array(65536 * 4)
  const d = ascii('0123456789abcdef')
  for (let v = 0; v < 65536; v++) {
    t[v * 4] = d[v >> 12]
    t[v * 4 + 1] = d[(v >> 8) & 15]
    t[v * 4 + 2] = d[(v >> 4) & 15]
    t[v * 4 + 3] = d[v & 15]
  }
  return HEX = t
}

// The fixed parts of the OTLP/JSON body (ExportTraceServiceRequest), as bytes.
const SPAN_OPEN = ascii('{"traceId":"')
const SPAN_ID = ascii('","spanId":"')
const PARENT_ID = ascii('","parentSpanId":"')
const NAME = ascii('","name":')
const KIND = ascii(',"kind":')
const START = ascii(',"startTimeUnixNano":"')
const END = ascii('000","endTimeUnixNano":"')
const ATTRS = ascii('000","attributes":[')
const CID_ATTR = ascii('{"key":"cid","value":{"stringValue":"')
const CID_ATTR_END = ascii('"}}')
const SPAN_CLOSE = ascii(']}')
const BODY_CLOSE = ascii(']}]}]}')

/** Queues finished spans in a ring and sends them in batches. */
export class SpanExporter {
  readonly #o: Required<Omit<ExporterOptions, 'log' | 'fetch'>>
  readonly #log: Logger
  readonly #fetch: typeof fetch
  readonly #head: Uint8Array

  // The ring: slot i of `#cap` holds one finished span.
  readonly #cap: number
  readonly #ids: Uint16Array
  readonly #times: Float64Array
  readonly #flags: Uint8Array
  readonly #names: Uint16Array
  readonly #cidLen: Uint8Array
  readonly #cids: Uint8Array
  /** Slots whose CID did not fit inline, and slots whose step failed (rare). */
  readonly #longCids = new Map<number, string>()
  readonly #errors = new Map<number, string>()
  #first = 0
  #count = 0

  /** Span names seen, by index, with their JSON bytes. */
  readonly #nameIndex = new Map<string, number>()
  readonly #nameJson: Uint8Array[] = []

  /** The body being written (reused: one send at a time). */
  #body: Uint8Array<ArrayBuffer> = new Uint8Array(256 * 1024)
  #at = 0

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
    const cap = this.#cap = this.#o.maxQueue
    this.#ids = new Uint16Array(cap * WORDS)
    this.#times = new Float64Array(cap * 2)
    this.#flags = new Uint8Array(cap)
    this.#names = new Uint16Array(cap)
    this.#cidLen = new Uint8Array(cap)
    this.#cids = new Uint8Array(cap * CID_BYTES)
    this.#head = ascii(
      `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{` +
        `"stringValue":${JSON.stringify(this.#o.serviceName)}}}]},"scopeSpans":[{"scope":{` +
        `"name":"ipfs-cluster"},"spans":[`,
    )
    hexTable()
  }

  /** Spans sent and accepted so far, spans dropped on a full queue, spans waiting. */
  get stats(): { exported: number; dropped: number; queued: number } {
    return { exported: this.#exported, dropped: this.#droppedTotal, queued: this.#count }
  }

  /**
   * Queues a finished span: `span` names it and its trace, `parent` the span it belongs to
   * (undefined for a trace's root). Times are ms since the epoch (fractions kept), as
   * `performance` gives them; `kind` is OTLP's SpanKind (1 internal, 2 server); `error` the
   * message of a failed step.
   */
  add(
    span: SpanContext,
    parent: SpanContext | undefined,
    name: string,
    kind: 1 | 2,
    startMs: number,
    endMs: number,
    cid?: string,
    error?: string,
  ): void {
    if (this.#count >= this.#cap) {
      this.#dropped++
      this.#droppedTotal++
      return
    }
    const slot = (this.#first + this.#count) % this.#cap
    this.#count++
    const ids = this.#ids
    const w = slot * WORDS
    ids.set(span.trace, w)
    ids[w + 8] = span.s0
    ids[w + 9] = span.s1
    ids[w + 10] = span.s2
    ids[w + 11] = span.s3
    let flags: number = kind
    if (parent) {
      flags |= HAS_PARENT
      ids[w + 12] = parent.s0
      ids[w + 13] = parent.s1
      ids[w + 14] = parent.s2
      ids[w + 15] = parent.s3
    }
    if (cid !== undefined) {
      flags |= HAS_CID
      this.#cidLen[slot] = this.#copyCid(slot, cid)
    }
    this.#flags[slot] = flags
    this.#times[slot * 2] = startMs
    this.#times[slot * 2 + 1] = endMs
    this.#names[slot] = this.#name(name)
    if (error !== undefined) this.#errors.set(slot, error)

    if (this.#count >= this.#o.batchSize) {
      // A batch is full: send it now, unless a send is under way (its loop takes full batches).
      if (!this.#sending && !this.#soon) this.#flushSoon(0, false)
    } else if (this.#timer === undefined) this.#flushSoon(this.#o.intervalMs, true)
  }

  /** Copies a CID into its slot when it fits and needs no JSON escape; else keeps the string. */
  #copyCid(slot: number, cid: string): number {
    const n = cid.length
    if (n <= CID_BYTES) {
      const out = this.#cids
      const at = slot * CID_BYTES
      let i = 0
      for (; i < n; i++) {
        const c = cid.charCodeAt(i)
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break
        out[at + i] = c
      }
      if (i === n) return n
    }
    this.#longCids.set(slot, cid)
    return 0
  }

  #name(name: string): number {
    let i = this.#nameIndex.get(name)
    if (i === undefined) {
      i = this.#nameJson.length
      // A name per route and step: a handful. Past 65,535 (never), they share the last index.
      if (i < 65535) {
        this.#nameIndex.set(name, i)
        this.#nameJson.push(ascii(JSON.stringify(name)))
      } else i = 65534
    }
    return i
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
    let owed = all ? this.#count : 0
    while (owed > 0 || this.#count >= this.#o.batchSize) {
      const n = Math.min(this.#count, this.#o.batchSize)
      owed -= n
      const body = this.#encode(n)
      this.#sending = this.#send(body, n)
      await this.#sending
      this.#sending = undefined
    }
    if (this.#count > 0 && this.#timer === undefined) {
      this.#flushSoon(this.#o.intervalMs, true)
    }
  }

  /** Writes the first `n` queued spans as the body of one request and frees their slots. */
  #encode(n: number): Uint8Array<ArrayBuffer> {
    this.#at = 0
    this.#put(this.#head)
    for (let k = 0; k < n; k++) {
      const slot = this.#first
      this.#first = (slot + 1) % this.#cap
      this.#count--
      if (k > 0) this.#byte(0x2c) // ,
      this.#span(slot)
    }
    this.#put(BODY_CLOSE)
    return this.#body.subarray(0, this.#at)
  }

  #span(slot: number): void {
    const w = slot * WORDS
    const flags = this.#flags[slot]
    const name = this.#nameJson[this.#names[slot]]
    // Room for everything below but the name, a long CID and an error, which reserve their own.
    this.#reserve(512 + name.length)
    this.#put(SPAN_OPEN)
    this.#hex(w, 8)
    this.#put(SPAN_ID)
    this.#hex(w + 8, 4)
    if (flags & HAS_PARENT) {
      this.#put(PARENT_ID)
      this.#hex(w + 12, 4)
    }
    this.#put(NAME)
    this.#put(name)
    this.#put(KIND)
    this.#byte(0x30 + (flags & KIND_MASK))
    this.#put(START)
    this.#micros(this.#times[slot * 2])
    this.#put(END)
    const end = this.#times[slot * 2 + 1]
    this.#micros(end)
    this.#put(ATTRS)
    if (flags & HAS_CID) {
      const len = this.#cidLen[slot]
      if (len > 0) {
        this.#put(CID_ATTR)
        this.#put(this.#cids.subarray(slot * CID_BYTES, slot * CID_BYTES + len))
        this.#put(CID_ATTR_END)
      } else {
        const cid = this.#longCids.get(slot) ?? ''
        this.#longCids.delete(slot)
        this.#put(ascii(`{"key":"cid","value":{"stringValue":${JSON.stringify(cid)}}}`))
      }
    }
    this.#put(SPAN_CLOSE)
    if (this.#errors.size > 0) {
      const error = this.#errors.get(slot)
      if (error !== undefined) {
        this.#errors.delete(slot)
        this.#at-- // reopen the span for its status and event
        const msg = JSON.stringify(error)
        this.#put(ascii(
          `,"status":{"code":2,"message":${msg}},"events":[{"name":"exception",` +
            `"timeUnixNano":"${Math.round(end * 1000)}000","attributes":[{"key":` +
            `"exception.message","value":{"stringValue":${msg}}}]}]}`,
        ))
      }
    }
  }

  #reserve(n: number): void {
    if (this.#at + n <= this.#body.length) return
    const grown = new Uint8Array(Math.max(this.#body.length * 2, this.#at + n))
    grown.set(this.#body.subarray(0, this.#at))
    this.#body = grown
  }

  #put(b: Uint8Array): void {
    this.#reserve(b.length)
    this.#body.set(b, this.#at)
    this.#at += b.length
  }

  #byte(b: number): void {
    this.#body[this.#at++] = b
  }

  /** `count` words of slot data from `from`, as hex. */
  #hex(from: number, count: number): void {
    const t = HEX!
    const out = this.#body
    let at = this.#at
    for (let i = from; i < from + count; i++) {
      const v = this.#ids[i] * 4
      out[at++] = t[v]
      out[at++] = t[v + 1]
      out[at++] = t[v + 2]
      out[at++] = t[v + 3]
    }
    this.#at = at
  }

  /** ms since the epoch → its whole µs in decimal (the caller adds the "000" of ns). */
  #micros(ms: number): void {
    let v = Math.round(ms * 1000)
    if (!(v > 0)) v = 0
    const out = this.#body
    const start = this.#at
    let at = start
    do {
      const q = Math.floor(v / 10)
      out[at++] = 0x30 + (v - q * 10)
      v = q
    } while (v > 0)
    out.subarray(start, at).reverse()
    this.#at = at
  }

  async #send(body: Uint8Array<ArrayBuffer>, n: number): Promise<void> {
    try {
      const res = await this.#fetch(this.#o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      })
      await res.body?.cancel()
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      this.#exported += n
      if (this.#failing) this.#log.info(`trace export to ${this.#o.url} works again`)
      this.#failing = false
    } catch (err) {
      // Logged once per outage, not once per batch: a peer without its collector keeps running.
      if (!this.#failing) {
        this.#log.warn(
          `trace export to ${this.#o.url} failed (${errorMessage(err)}): ` +
            `${n} spans lost; next failures are not logged until it works again`,
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
