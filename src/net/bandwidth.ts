/**
 * Bytes per libp2p protocol on the cluster host, for `GET /health/bandwidth` (the reference's
 * bandwidth reporter): libp2p hands every negotiated protocol stream to its `metrics` component
 * (`trackProtocolStream`), and this one counts what each stream receives (its `message` events)
 * and sends (its `send`), by protocol. Rates are bytes a second averaged over the last
 * `RATE_WINDOW_S` seconds, from totals sampled every second on the injected clock. Every other
 * metric libp2p registers is accepted and dropped.
 *
 * @example
 * ```ts
 * const bw = bandwidthMeter({ clock })
 * createLibp2p({ …, metrics: bw.metrics })
 * bw.byProtocol() // { '/meshsub/1.2.0': { total_in, total_out, rate_in, rate_out }, … }
 * bw.stop()
 * ```
 *
 * @module
 */
import type { Metrics, Stream } from '@libp2p/interface'
import type { BandwidthStats } from '../components.ts'
import { type Clock, systemClock } from '../util/clock.ts'

/** Seconds the rates are averaged over. */
export const RATE_WINDOW_S = 10

interface Counter {
  in: number
  out: number
  /** Totals at each of the last samples, oldest first (one a second). */
  samples: [number, number][]
}

/** The meter: libp2p's `metrics` factory, and the figures. */
export interface BandwidthMeter {
  metrics: () => Metrics
  byProtocol(): Record<string, BandwidthStats>
  stop(): void
}

/** What every registration returns: an object whose every method does nothing. */
const noop: unknown = new Proxy(function () {}, {
  get: (_t, key) => (key === 'then' ? undefined : noop),
  apply: () => noop,
})

/** Builds a meter; its sampling timer runs until `stop`. */
export function bandwidthMeter(opts: { clock?: Clock } = {}): BandwidthMeter {
  const clock = opts.clock ?? systemClock
  const counters = new Map<string, Counter>()
  const counter = (protocol: string) => {
    let c = counters.get(protocol)
    if (!c) counters.set(protocol, c = { in: 0, out: 0, samples: [] })
    return c
  }
  let stopped = false
  let cancel = () => {}
  const sample = () => {
    if (stopped) return
    for (const c of counters.values()) {
      c.samples.push([c.in, c.out])
      if (c.samples.length > RATE_WINDOW_S + 1) c.samples.shift()
    }
    cancel = clock.timeout(1000, sample)
  }
  sample()

  const metrics = new Proxy({
    trackProtocolStream(stream: Stream) {
      const c = counter(stream.protocol ?? 'unknown')
      // Received bytes are seen as the stream dispatches them: a 'message' listener of our own
      // would make the stream deliver data before the protocol's handler listens, which loses it.
      const dispatch = stream.dispatchEvent.bind(stream)
      stream.dispatchEvent = (e) => {
        if (e.type === 'message') {
          c.in += (e as unknown as { data: { byteLength: number } }).data.byteLength
        }
        return dispatch(e)
      }
      const send = stream.send.bind(stream)
      stream.send = (data) => {
        c.out += data.byteLength
        return send(data)
      }
    },
    trackMultiaddrConnection() {},
    // Tracing wraps a function: the function itself, untraced.
    traceFunction: <F>(_name: string, fn: F): F => fn,
    createTrace: () => undefined,
  }, {
    // registerMetric, registerCounterGroup…: accepted, ignored.
    get: (t, key) => (key in t ? t[key as keyof typeof t] : key === 'then' ? undefined : noop),
  }) as unknown as Metrics

  return {
    metrics: () => metrics,
    byProtocol() {
      const out: Record<string, BandwidthStats> = {}
      for (const [p, c] of counters) {
        const first = c.samples[0] ?? [c.in, c.out]
        const span = Math.max(1, c.samples.length)
        out[p] = {
          total_in: c.in,
          total_out: c.out,
          rate_in: (c.in - first[0]) / span,
          rate_out: (c.out - first[1]) / span,
        }
      }
      return out
    },
    stop() {
      stopped = true
      cancel()
    },
  }
}
