/**
 * A small Prometheus registry: counters, gauges and histograms with labels, and their text
 * exposition (format 0.0.4). Pure: no I/O, no clock; the endpoint (endpoint.ts) serves
 * `render()`. npm prom-client needs Node internals (cluster, perf_hooks) and does far more than
 * a peer needs; this is the part we use.
 *
 * Children are cached by their label values, so a hot path pays one Map lookup per sample.
 *
 * @example
 * ```ts
 * const reg = new Registry()
 * const reqs = reg.counter('http_requests_total', 'HTTP requests', ['route'])
 * reqs.labels('/pins/{cid}').inc()
 * reg.render() // '# HELP http_requests_total HTTP requests\n# TYPE … counter\nhttp_requests_total{route="/pins/{cid}"} 1\n'
 * ```
 */

/** Default histogram buckets, in seconds: 1 ms to 60 s. */
export const SECONDS_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
]

/** One line family of the exposition. */
interface Family {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge' | 'histogram'
  /** Appends this family's sample lines (without HELP/TYPE). */
  write(out: string[]): void
}

/** Reads a value at scrape time: one `[labelValues, value]` per series. */
export type Collect = () => Iterable<readonly [readonly string[], number]>

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A metric or label name Prometheus would reject: a programming error, found at registration. */
export class MetricNameError extends Error {
  override name = 'MetricNameError'
}

/** Formats a sample value as Prometheus reads it (NaN, +Inf, -Inf spelled out). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** `{a="x",b="y"}` or '' without labels; `extra` is appended (the `le` of a bucket). */
function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  if (names.length === 0) return extra ? `{${extra}}` : ''
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`)
  if (extra) parts.push(extra)
  return `{${parts.join(',')}}`
}

/** Label-keyed children of one instrument. */
class Children<C> {
  readonly #map = new Map<string, { values: readonly string[]; child: C }>()
  constructor(
    readonly labelNames: readonly string[],
    private readonly make: () => C,
    eager = true,
  ) {
    // A series without labels exists from the start: a counter never hit reads 0, not absent.
    if (eager && labelNames.length === 0) this.get([])
  }

  get(values: readonly string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new MetricNameError(
        `expected ${this.labelNames.length} label values (${
          this.labelNames.join(', ')
        }), got ${values.length}`,
      )
    }
    // \u0000 cannot appear in a route, a method name or a status: a safe separator.
    const key = values.length === 1 ? values[0] : values.join('\u0000')
    let e = this.#map.get(key)
    if (!e) {
      e = { values: [...values], child: this.make() }
      this.#map.set(key, e)
    }
    return e.child
  }

  entries(): Iterable<{ values: readonly string[]; child: C }> {
    return this.#map.values()
  }
}

/** A counter's series. */
export interface CounterChild {
  inc(by?: number): void
  value(): number
}

/** A monotonically increasing count. */
export class Counter implements Family {
  readonly type = 'counter' as const
  readonly #children: Children<{ v: number }>
  constructor(readonly name: string, readonly help: string, labelNames: readonly string[]) {
    this.#children = new Children(labelNames, () => ({ v: 0 }))
  }

  /** The series of these label values (created at 0 on first use). */
  labels(...values: string[]): CounterChild {
    const c = this.#children.get(values)
    return {
      inc(by = 1) {
        if (by > 0) c.v += by
      },
      value: () => c.v,
    }
  }

  /** Adds to the series without labels (or with these values). */
  inc(by = 1, ...values: string[]): void {
    if (by > 0) this.#children.get(values).v += by
  }

  write(out: string[]): void {
    for (const { values, child } of this.#children.entries()) {
      out.push(
        `${this.name}${labelText(this.#children.labelNames, values)} ${formatValue(child.v)}`,
      )
    }
  }
}

/** A value that goes up and down; set directly or read at scrape time (`collect`). */
export class Gauge implements Family {
  readonly type = 'gauge' as const
  readonly #children: Children<{ v: number }>
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    private readonly collect?: Collect,
  ) {
    // A read-at-scrape gauge has no stored series of its own to show.
    this.#children = new Children(labelNames, () => ({ v: 0 }), !collect)
  }

  set(v: number, ...values: string[]): void {
    this.#children.get(values).v = v
  }

  inc(by = 1, ...values: string[]): void {
    this.#children.get(values).v += by
  }

  value(...values: string[]): number {
    return this.#children.get(values).v
  }

  write(out: string[]): void {
    const names = this.#children.labelNames
    for (const { values, child } of this.#children.entries()) {
      out.push(`${this.name}${labelText(names, values)} ${formatValue(child.v)}`)
    }
    if (this.collect) {
      for (const [values, v] of this.collect()) {
        out.push(`${this.name}${labelText(names, values)} ${formatValue(v)}`)
      }
    }
  }
}

/** A histogram's series. */
interface HistogramSeries {
  counts: Float64Array
  sum: number
  count: number
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram implements Family {
  readonly type = 'histogram' as const
  readonly #children: Children<HistogramSeries>
  readonly buckets: readonly number[]
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = SECONDS_BUCKETS,
  ) {
    if (labelNames.includes('le')) throw new MetricNameError(`${name}: "le" is reserved`)
    this.buckets = [...buckets].sort((a, b) => a - b)
    this.#children = new Children(labelNames, () => ({
      counts: new Float64Array(this.buckets.length),
      sum: 0,
      count: 0,
    }))
  }

  /** Records one observation in the series of these label values. */
  observe(v: number, ...values: string[]): void {
    const s = this.#children.get(values)
    const b = this.buckets
    // Non-cumulative here; render() accumulates. Few buckets: a linear scan beats a search.
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        s.counts[i]++
        break
      }
    }
    s.sum += v
    s.count++
  }

  /** Count of observations in the series (tests). */
  count(...values: string[]): number {
    return this.#children.get(values).count
  }

  write(out: string[]): void {
    const names = this.#children.labelNames
    for (const { values, child } of this.#children.entries()) {
      let acc = 0
      for (let i = 0; i < this.buckets.length; i++) {
        acc += child.counts[i]
        const le = `le="${formatValue(this.buckets[i])}"`
        out.push(`${this.name}_bucket${labelText(names, values, le)} ${acc}`)
      }
      out.push(`${this.name}_bucket${labelText(names, values, 'le="+Inf"')} ${child.count}`)
      out.push(`${this.name}_sum${labelText(names, values)} ${formatValue(child.sum)}`)
      out.push(`${this.name}_count${labelText(names, values)} ${child.count}`)
    }
  }
}

/** The set of metric families of a process, rendered together. */
export class Registry {
  readonly #families = new Map<string, Family>()

  #add<F extends Family>(f: F, labelNames: readonly string[]): F {
    if (!NAME.test(f.name)) throw new MetricNameError(`invalid metric name ${f.name}`)
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith('__')) {
        throw new MetricNameError(`${f.name}: invalid label name ${l}`)
      }
    }
    if (this.#families.has(f.name)) throw new MetricNameError(`${f.name} registered twice`)
    this.#families.set(f.name, f)
    return f
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames), labelNames)
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: Collect): Gauge {
    return this.#add(new Gauge(name, help, labelNames, collect), labelNames)
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets?: readonly number[],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets), labelNames)
  }

  /**
   * The text exposition of every family (format 0.0.4). A family whose scrape-time collector
   * throws is left out with a comment, so one broken reading never fails the whole scrape.
   */
  render(): string {
    const out: string[] = []
    for (const f of this.#families.values()) {
      const lines: string[] = []
      try {
        f.write(lines)
      } catch (err) {
        out.push(`# ${f.name}: not collected: ${escapeHelp(String(err))}`)
        continue
      }
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`, ...lines)
    }
    return out.join('\n') + '\n'
  }
}

/** The content type of `render()`'s output. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
