/**
 * The peer's Prometheus metrics: one registry, the instruments the components record into, and
 * the readings taken at scrape time (tracker counts, queues, peers, metric ages, process).
 *
 * `clusterMetrics` is undefined until the daemon turns stats on (`enableMetrics`). Every
 * instrumentation point reads it first (`clusterMetrics?.…`): with stats off that is one
 * property read, no label string or closure is built, so metrics cost nothing when off. It is a
 * process-wide handle, as the reference's OpenCensus views and the OpenTelemetry API are: the
 * points sit in a dozen components and threading a handle through each factory would change
 * every constructor for an optional feature. One daemon per process uses it; in-process test
 * clusters leave it off.
 *
 * Names follow the reference where it has them: OpenCensus's Prometheus exporter with namespace
 * `ipfscluster` turns the view `pins/pin_queued` into `ipfscluster_pins_pin_queued`.
 *
 * @example
 * ```ts
 * const m = enableMetrics()
 * clusterMetrics?.ipfsPinAdd.inc()
 * m.registry.render() // text exposition
 * disableMetrics()
 * ```
 */
import { type Counter, type Gauge, type Histogram, Registry } from './registry.ts'

/** Prefix of every cluster metric (the reference's exporter namespace). */
export const NAMESPACE = 'ipfscluster'

/** What the metrics read at scrape time; the daemon sets these once its components exist. */
export interface MetricSources {
  /** Live tracker operations by status (pin_queued, pinning, pin_error, unpin_queued…). */
  trackerStatus?(): Iterable<readonly [string, number]>
  /** Tracker queue lengths by queue (priority, pin, unpin, sync). */
  queueLengths?(): Iterable<readonly [string, number]>
  /** Cluster peers this peer counts (Raft voters / CRDT peers seen). */
  peers?(): number
  /** The latest valid metric of every name and peer, as the monitor holds them. */
  informerMetrics?(): Iterable<{ name: string; peer: string; value: string; received_at: number }>
  /** Raft's term and commit index (Raft consensus only). */
  raftStatus?(): { term: number; commit: number }
  /** Epoch ms (injected in tests). */
  now?(): number
}

/** The instruments components record into. */
export interface ClusterMetrics {
  readonly registry: Registry
  /** Pin/unpin operation durations in the tracker, by `op` (pin|unpin) and `result` (ok|error). */
  readonly opDuration: Histogram
  /** IPFS pin requests (reference: `pins/pin_add`). */
  readonly ipfsPinAdd: Counter
  /** Failed IPFS pin requests (reference: `pins/pin_add_errors`). */
  readonly ipfsPinAddErrors: Counter
  /** Items pinned on IPFS (reference: `pins/ipfs_pins`): set by listings and counts, moved by pins. */
  readonly ipfsPins: Gauge
  /** IPFS daemon request durations by `endpoint` (the RPC path, e.g. `pin/add`). */
  readonly ipfsRequestDuration: Histogram
  /** Failed IPFS daemon requests by `endpoint`. */
  readonly ipfsRequestErrors: Counter
  /** block/put requests (reference: `blocks/put`) and their failures (`blocks/put_errors`). */
  readonly blocksPut: Counter
  readonly blocksPutErrors: Counter
  /** Blocks sent to IPFS and their bytes (reference: `blocks/added`, `blocks/added_size`). */
  readonly blocksAdded: Counter
  readonly blocksAddedSize: Counter
  readonly raftLeaderChanges: Counter
  /** Raft proposals by `result` (ok|error). */
  readonly raftProposals: Counter
  /** Cluster RPC calls served, by `method` and `result`. */
  readonly rpcRequests: Counter
  readonly rpcDuration: Histogram
  /** HTTP requests by `api`, `route` (the pattern, not the path), `method` and `code`. */
  readonly httpRequests: Counter
  readonly httpDuration: Histogram
  /** Where scrape-time readings come from (replaced as components start). */
  sources: MetricSources
}

/** The process-wide metrics, or undefined while stats are off. */
export let clusterMetrics: ClusterMetrics | undefined

const n = (s: string) => `${NAMESPACE}_${s}`

/** Builds the cluster's metrics on a new registry (without installing them). */
export function newClusterMetrics(sources: MetricSources = {}): ClusterMetrics {
  const registry = new Registry()
  const m: ClusterMetrics = {
    registry,
    sources,
    opDuration: registry.histogram(
      n('pins_op_duration_seconds'),
      'Duration of the tracker pin and unpin operations (queue wait excluded)',
      ['op', 'result'],
    ),
    ipfsPinAdd: registry.counter(n('pins_pin_add'), 'Total number of IPFS pin requests'),
    ipfsPinAddErrors: registry.counter(
      n('pins_pin_add_errors'),
      'Total number of failed pin requests',
    ),
    ipfsPins: registry.gauge(n('pins_ipfs_pins'), 'Current number of items pinned on IPFS'),
    ipfsRequestDuration: registry.histogram(
      n('ipfs_request_duration_seconds'),
      'Duration of requests to the IPFS daemon',
      ['endpoint'],
    ),
    ipfsRequestErrors: registry.counter(
      n('ipfs_request_errors_total'),
      'Failed requests to the IPFS daemon',
      ['endpoint'],
    ),
    blocksPut: registry.counter(n('blocks_put'), 'Total number of blocks/put requests'),
    blocksPutErrors: registry.counter(n('blocks_put_errors'), 'Total number of block/put errors'),
    blocksAdded: registry.counter(n('blocks_added'), 'Total number of blocks added'),
    blocksAddedSize: registry.counter(
      n('blocks_added_size'),
      'Total size of blocks added in bytes',
    ),
    raftLeaderChanges: registry.counter(
      n('raft_leader_changes_total'),
      'Times this peer saw the Raft leader change',
    ),
    raftProposals: registry.counter(
      n('raft_proposals_total'),
      'Raft proposals made by this peer',
      ['result'],
    ),
    rpcRequests: registry.counter(
      n('rpc_requests_total'),
      'Cluster RPC requests served',
      ['method', 'result'],
    ),
    rpcDuration: registry.histogram(
      n('rpc_request_duration_seconds'),
      'Duration of cluster RPC requests served',
      ['method'],
    ),
    httpRequests: registry.counter(
      n('http_requests_total'),
      'HTTP API requests served',
      ['api', 'route', 'method', 'code'],
    ),
    httpDuration: registry.histogram(
      n('http_request_duration_seconds'),
      'Duration of HTTP API requests (to the response head; streamed bodies continue)',
      ['api', 'route'],
    ),
  }
  registerReadings(m)
  return m
}

// The reference's three tracker gauges, kept beside the per-status family.
const REFERENCE_STATUS: Record<string, string> = {
  pin_queued: 'pins_pin_queued',
  pinning: 'pins_pinning',
  pin_error: 'pins_pin_error',
}

function registerReadings(m: ClusterMetrics): void {
  const reg = m.registry
  const status = () => new Map(m.sources.trackerStatus?.() ?? [])
  for (const [st, name] of Object.entries(REFERENCE_STATUS)) {
    reg.gauge(n(name), `Current number of pins in ${st} state`, [], () => {
      return [[[], status().get(st) ?? 0]]
    })
  }
  reg.gauge(
    n('pins_by_status'),
    'Tracker operations by status (pinned pins need no operation and are not counted here)',
    ['status'],
    () => [...status()].map(([s, v]) => [[s], v] as const),
  )
  reg.gauge(
    n('pintracker_queue_length'),
    'Operations waiting in each tracker queue',
    ['queue'],
    () => [...(m.sources.queueLengths?.() ?? [])].map(([q, v]) => [[q], v] as const),
  )
  const raft = (k: 'term' | 'commit') => () => {
    const st = m.sources.raftStatus?.()
    return st ? [[[], st[k]] as const] : []
  }
  reg.gauge(n('raft_term'), 'Current Raft term of this peer', [], raft('term'))
  reg.gauge(n('raft_commit_index'), 'Raft commit index of this peer', [], raft('commit'))
  reg.gauge(n('peers'), 'Cluster peers this peer counts', [], () => {
    const p = m.sources.peers?.()
    return p === undefined ? [] : [[[], p]]
  })
  reg.gauge(
    n('informer_value'),
    'Latest value of each numeric informer metric, by metric name and peer',
    ['name', 'peer'],
    function* () {
      for (const x of m.sources.informerMetrics?.() ?? []) {
        const v = Number(x.value)
        if (x.value !== '' && Number.isFinite(v)) yield [[x.name, x.peer], v] as const
      }
    },
  )
  reg.gauge(
    n('informer_metric_age_seconds'),
    'Seconds since the latest metric of each name and peer was received',
    ['name', 'peer'],
    function* () {
      const now = m.sources.now?.() ?? Date.now()
      for (const x of m.sources.informerMetrics?.() ?? []) {
        // received_at is in nanoseconds (the reference's Metric.ReceivedAt).
        yield [[x.name, x.peer], Math.max(0, (now - x.received_at / 1e6) / 1000)] as const
      }
    },
  )
  registerProcessReadings(reg)
}

/** process_* and deno_* gauges, as client libraries export them. */
function registerProcessReadings(reg: Registry): void {
  const mem = () => Deno.memoryUsage()
  reg.gauge('process_resident_memory_bytes', 'Resident memory size in bytes', [], () => [
    [[], mem().rss],
  ])
  reg.gauge('deno_heap_used_bytes', 'V8 heap used in bytes', [], () => [[[], mem().heapUsed]])
  reg.gauge('deno_heap_total_bytes', 'V8 heap size in bytes', [], () => [[[], mem().heapTotal]])
  reg.gauge(
    'deno_external_memory_bytes',
    'Memory of objects bound to V8 outside its heap',
    [],
    () => [
      [[], mem().external],
    ],
  )
  const started = Date.now() - performance.now()
  reg.gauge(
    'process_start_time_seconds',
    'Start time of the process since unix epoch in seconds',
    [],
    () => [
      [[], Math.floor(started / 1000)],
    ],
  )
  reg.gauge('process_open_fds', 'Number of open file descriptors', [], () => {
    try {
      let count = 0
      for (const _ of Deno.readDirSync('/proc/self/fd')) count++
      return [[[], count]]
    } catch {
      return [] // not Linux, or no read permission there: leave the series out
    }
  })
}

/**
 * Installs the process-wide metrics (stats on) and returns them. Idempotent: a second call
 * returns the installed set with its sources merged.
 */
export function enableMetrics(sources: MetricSources = {}): ClusterMetrics {
  if (clusterMetrics) {
    Object.assign(clusterMetrics.sources, sources)
    return clusterMetrics
  }
  clusterMetrics = newClusterMetrics(sources)
  return clusterMetrics
}

/** Removes the process-wide metrics (stats off again; tests and shutdown). */
export function disableMetrics(): void {
  clusterMetrics = undefined
}

/** Seconds since `start` (a `performance.now()` reading): the unit every histogram here takes. */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000
}
