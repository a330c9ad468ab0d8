/**
 * `deno task bench`: the performance figures of issue 2, ours beside IPFS Cluster 1.1.6's own
 * `ipfs-cluster-service`, on the same machine, with the same instant IPFS double and the same
 * load, in one command. Prints one table (ours, Go, ours/Go, target, PASS/FAIL) and a RESULT line.
 *
 * Measures (docs/performance.md explains each): ingest through `POST /pins/{cid}` with 64
 * connections (and the bare-server baseline under the same client), streaming `GET /allocations`
 * over 1,000,000 pins with the server's RSS while it streams (and over 100,000 pins, to see whether
 * RSS follows the pinset), and restart-to-ready with 1,000,000 pins.
 *
 * When the Go peer runs, the whole bench runs inside a fresh network namespace that only has a
 * loopback interface (`unshare -n`): the Go peer's libp2p host probes the LAN for NAT gateways
 * (UPnP/NAT-PMP) at start, and nothing of a bench may leave 127.0.0.1.
 *
 * @example
 * ```sh
 * deno task bench                              # full run (~5 min on 2 cores)
 * deno task bench --quick                      # 100k pins, 3 s of ingest
 * deno run -A bench/main.ts --quick --only ours --pins 2000 --seconds 1
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { inputFile } from './cids.ts'
import type { BenchContext } from './harness.ts'
import { ensureWrk } from './load.ts'
import {
  type BaselineResult,
  type IngestResult,
  type ListingResult,
  measureBaseline,
  measureIngest,
  measureListing,
  type RestartResult,
} from './measures.ts'
import { type Implementation, implementations, type ImplKey } from './peers.ts'
import { type ImportBacklogResult, importBacklogRows, measureImportBacklog } from './import.ts'
import { Processes } from './process.ts'
import { loopbackNetns } from '../test/support/netns.ts'
import { type RaftBenchFigures, raftBenchLines, runRaftBench } from './raft.ts'
import { raftNetBenchLines, runRaftNetBench } from './raft_net.ts'
import { stateReaderBench } from './state_reader.ts'
import { startupMain } from './startup.ts'
import { rpcMain } from './rpc.ts'
import { observationsMain } from './observations.ts'
import { runCatchupBench } from './catchup.ts'
import { clusterNotes, type ClusterResult, clusterRows, runClusterBench } from './cluster.ts'
import { crdtNotes, type CrdtResult, crdtRows, runCrdtBench } from './crdt.ts'
import { atLeast, atMost, below, renderTable, type Row, rowsToJSON, summaryLine } from './report.ts'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..')
const NETNS_ENV = 'IPFS_CLUSTER_BENCH_NETNS'
const MiB = 1024 * 1024

const USAGE = `usage: deno run -A bench/main.ts [options]

  --quick             smaller run: 100,000 pins, 3 s of ingest (the figures are not the targets')
  --pins N            pins in the large state (default 1000000; --quick 100000)
  --small N           pins in the small state (default pins/10)
  --seconds S         ingest duration (default 10; --quick 3)
  --connections C     ingest connections (default 64)
  --only ours|go      run one implementation
  --go-bin PATH       ipfs-cluster-service 1.1.6 (default .tools/bin/ipfs-cluster-service,
                      $IPFS_CLUSTER_SERVICE_BIN, or on PATH)
  --json FILE         also write the results as JSON
  --keep              keep the work folder (configs, logs)
  --no-netns          do not isolate the run in a loopback-only network namespace
  --no-raft           skip the Raft measures (issue 3: three in-process nodes on Deno KV;
                      issue 7: three peers over libp2p on 127.0.0.1, bench/raft_net.ts)
  --no-catchup        skip the catch-up measures (issue 6: a restored peer whose IPFS holds none)
  --catchup-only      run the catch-up measures only
  --cluster           add the 3-peer measures (issue 7: Raft clusters of 3 peers, ours and Go;
                      ~7 min a side with 1,000,000 pins)
  --cluster-only      run the 3-peer measures only
  --crdt              add the CRDT measures (issue 10: 3 CRDT peers, ours and Go: batched and
                      unbatched ingest, a new peer syncing --pins pins, RSS while it syncs and lists)
  --crdt-only         run the CRDT measures only
  --batch-size N      CRDT batching max_batch_size of the batched ingest (default 500)
  --batch-age D       CRDT batching max_batch_age (default 1s)
  --startup [...]     only the time to ready of task start, cold and warm (bench/startup.ts --help)
  --rpc [...]         only the RPC wire between two hosts (bench/rpc.ts)
  --observations [...] only the cost of metrics and tracing on ingest (bench/observations.ts:
                      --seconds S --rounds R --modes off,stats,… --baseline DIR)
  --help
`

/** Parsed command line. */
interface Options {
  pins: number
  small: number
  seconds: number
  connections: number
  only?: ImplKey
  goBin?: string
  json?: string
  keep: boolean
  netns: boolean
  quick: boolean
  raft: boolean
  catchup: boolean
  catchupOnly: boolean
  cluster: boolean
  clusterOnly: boolean
  crdt: boolean
  crdtOnly: boolean
  batchSize: number
  batchAge: string
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      pins: { type: 'string' },
      small: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string', default: '64' },
      only: { type: 'string' },
      'go-bin': { type: 'string' },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-netns': { type: 'boolean', default: false },
      'no-raft': { type: 'boolean', default: false },
      'no-catchup': { type: 'boolean', default: false },
      'catchup-only': { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      'cluster-only': { type: 'boolean', default: false },
      crdt: { type: 'boolean', default: false },
      'crdt-only': { type: 'boolean', default: false },
      'batch-size': { type: 'string' },
      'batch-age': { type: 'string', default: '1s' },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    Deno.exit(0)
  }
  const int = (v: string | undefined, name: string, dflt: number, min: number) => {
    if (v === undefined) return dflt
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`)
    return n
  }
  const pins = int(values.pins, 'pins', values.quick ? 100_000 : 1_000_000, 10)
  if (values.only !== undefined && values.only !== 'ours' && values.only !== 'go') {
    throw new Error('--only must be "ours" or "go"')
  }
  return {
    quick: values.quick,
    pins,
    small: int(values.small, 'small', Math.max(1, Math.floor(pins / 10)), 1),
    seconds: int(values.seconds, 'seconds', values.quick ? 3 : 10, 1),
    connections: int(values.connections, 'connections', 64, 1),
    only: values.only as ImplKey | undefined,
    goBin: values['go-bin'],
    json: values.json,
    keep: values.keep,
    netns: !values['no-netns'],
    raft: !values['no-raft'],
    catchup: !values['no-catchup'],
    catchupOnly: values['catchup-only'] || values['cluster-only'] || values['crdt-only'],
    cluster: values.cluster || values['cluster-only'],
    clusterOnly: values['cluster-only'],
    crdt: values.crdt || values['crdt-only'],
    crdtOnly: values['crdt-only'],
    batchSize: int(values['batch-size'], 'batch-size', 500, 1),
    batchAge: values['batch-age'],
  }
}

/** Finds ipfs-cluster-service 1.1.6. */
async function findGoBin(opt?: string): Promise<string | undefined> {
  const candidates = [
    opt,
    Deno.env.get('IPFS_CLUSTER_SERVICE_BIN'),
    join(REPO, '.tools/bin/ipfs-cluster-service'),
  ]
  for (const c of candidates) {
    if (c && (await Deno.stat(c).then((s) => s.isFile, () => false))) return c
  }
  try {
    const out = await new Deno.Command('sh', {
      args: ['-c', 'command -v ipfs-cluster-service'],
      stdout: 'piped',
    }).output()
    const p = new TextDecoder().decode(out.stdout).trim()
    return out.code === 0 && p ? p : undefined
  } catch {
    return undefined
  }
}

async function commandOutput(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: 'piped', stderr: 'piped' }).output()
    const dec = new TextDecoder()
    return (dec.decode(out.stdout) + dec.decode(out.stderr)).trim()
  } catch {
    return ''
  }
}

/**
 * Runs this bench again inside a new network namespace with only `lo` up; resolves with its exit
 * code, or undefined when namespaces are not available here (the caller then runs in place).
 */
async function runInNetns(args: string[], log: (m: string) => void): Promise<number | undefined> {
  const netns = await loopbackNetns()
  if (!netns) {
    log(
      'warning: no network namespace (unshare -n / ip unavailable): running in place; the Go ' +
        "peer's libp2p host may probe the LAN for a NAT gateway at start",
    )
    return undefined
  }
  const child = new Deno.Command(netns.cmd, {
    args: netns.args(Deno.execPath(), ['run', '-A', fileURLToPath(import.meta.url), ...args]),
    env: { [NETNS_ENV]: '1', DENO_NO_UPDATE_CHECK: '1' },
    stdin: 'inherit',
    stdout: 'inherit',
    stderr: 'inherit',
  }).spawn()
  // unshare and sh exec, so the child's PID is the inner bench's. Pass signals on (a Ctrl-C in a
  // terminal reaches it twice, which it tolerates) and wait for it to stop what it started.
  const forward = (sig: Deno.Signal) => () => {
    try {
      child.kill(sig)
    } catch {
      // already gone
    }
  }
  const onInt = forward('SIGINT')
  const onTerm = forward('SIGTERM')
  Deno.addSignalListener('SIGINT', onInt)
  Deno.addSignalListener('SIGTERM', onTerm)
  const status = await child.status
  Deno.removeSignalListener('SIGINT', onInt)
  Deno.removeSignalListener('SIGTERM', onTerm)
  return status.signal ? 130 : status.code
}

/** Results of one implementation; a measure that failed leaves its field empty and an error. */
interface ImplResults {
  ingest?: IngestResult
  small?: ListingResult
  large?: ListingResult
  restart?: RestartResult
  backlog?: ImportBacklogResult
  errors: string[]
}

function rssGrowthAllowance(o: Options): number {
  // "Does not grow with the pinset": at most 32 bytes per extra pin, with a 16 MiB floor for
  // allocator and GC noise. A server that gathered the listing would need hundreds of bytes a pin.
  return Math.max(16 * MiB, 32 * (o.pins - o.small)) / MiB
}

function buildRows(o: Options, r: Record<ImplKey, ImplResults>): Row[] {
  const both = (f: (x: ImplResults) => number | undefined) => ({ ours: f(r.ours), go: f(r.go) })
  const growth = (x: ImplResults) =>
    x.small && x.large ? (x.large.rssPeak - x.small.rssPeak) / MiB : undefined
  return [
    {
      measure: `ingest POST /pins/{cid}, ${o.connections} clients (pins/s)`,
      ...both((x) => x.ingest?.pinsPerSec),
      target: atLeast(5000),
    },
    {
      measure: 'ingest CPU per pin, all threads (µs)',
      ...both((x) => x.ingest?.cpuPerPinUs),
      digits: 0,
    },
    { measure: 'ingest latency p50 (ms)', ...both((x) => x.ingest?.load.p50ms), digits: 2 },
    { measure: 'ingest latency p99 (ms)', ...both((x) => x.ingest?.load.p99ms), digits: 2 },
    {
      measure: 'ingest errors (non-2xx + socket)',
      ...both((x) => x.ingest?.load.errors),
      digits: 0,
    },
    {
      measure: `GET /allocations, ${o.pins} pins (pins/s)`,
      ...both((x) => x.large && x.large.lines === x.large.pins ? x.large.pinsPerSec : undefined),
      target: atLeast(200_000),
    },
    {
      measure: `GET /allocations, ${o.small} pins (pins/s)`,
      ...both((x) => x.small && x.small.lines === x.small.pins ? x.small.pinsPerSec : undefined),
    },
    {
      measure: `peak RSS listing ${o.small} pins (MiB)`,
      ...both((x) => x.small && x.small.rssPeak / MiB),
      digits: 1,
    },
    {
      measure: `peak RSS listing ${o.pins} pins (MiB)`,
      ...both((x) => x.large && x.large.rssPeak / MiB),
      digits: 1,
    },
    {
      measure: `RSS added by listing ${o.small} pins (MiB)`,
      ...both((x) => x.small && (x.small.rssPeak - x.small.rssBefore) / MiB),
      digits: 1,
    },
    {
      measure: `RSS added by listing ${o.pins} pins (MiB)`,
      ...both((x) => x.large && (x.large.rssPeak - x.large.rssBefore) / MiB),
      digits: 1,
    },
    {
      measure: `peak RSS growth ${o.small} -> ${o.pins} pins (MiB)`,
      ...both(growth),
      digits: 1,
      target: atMost(rssGrowthAllowance(o), ' MiB'),
    },
    {
      measure: `restart to GET /id 200, ${o.pins} pins (s)`,
      ...both((x) => x.restart?.id),
      digits: 3,
      target: below(1, ' s'),
    },
    {
      measure: `restart to GET /allocations/<cid> 200, ${o.pins} pins (s)`,
      ...both((x) => x.restart?.allocation),
      digits: 3,
      target: below(1, ' s'),
    },
    {
      measure: `state import, ${o.pins} pins (s)`,
      ...both((x) => x.large?.importSeconds),
      digits: 1,
    },
    {
      measure: `busy after start, ${o.pins} pins (s)`,
      ...both((x) => x.large?.settleSeconds),
      digits: 1,
    },
    ...importBacklogRows(o.pins, r),
  ]
}

async function machineLine(goBin: string | undefined): Promise<string> {
  const cpuinfo = await Deno.readTextFile('/proc/cpuinfo').catch(() => '')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown CPU'
  const mem = /^MemTotal:\s+(\d+) kB/m.exec(
    await Deno.readTextFile('/proc/meminfo').catch(() => ''),
  )
  const load = (await Deno.readTextFile('/proc/loadavg').catch(() => '')).split(' ')[0]
  const wrk = (await commandOutput('wrk', ['--version'])).split('\n')[0].split(' ').slice(0, 2)
    .join(' ')
  const go = goBin ? (await commandOutput(goBin, ['--version'])).split('\n')[0] : 'absent'
  return `machine: ${navigator.hardwareConcurrency} cores (${model}), ${
    mem ? Math.round(Number(mem[1]) / 1024 / 1024) : '?'
  } GiB RAM, load ${load}; Deno ${Deno.version.deno}; ${wrk || 'no wrk'}; Go peer: ${go}`
}

async function main(args: string[]): Promise<number> {
  // Cold starts download from npm, so this one runs outside the bench's network namespace.
  if (args.includes('--startup')) return await startupMain(args.filter((a) => a !== '--startup'))
  if (args.includes('--rpc')) return (await rpcMain(args.filter((a) => a !== '--rpc')), 0)
  if (args.includes('--observations')) {
    return await observationsMain(args.filter((a) => a !== '--observations'))
  }
  const started = performance.now()
  const log = (msg: string) =>
    console.error(
      `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`,
    )
  let o: Options
  try {
    o = parseOptions(args)
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  const goBin = o.only === 'ours' ? undefined : await findGoBin(o.goBin)
  if (o.only !== 'ours' && !goBin) {
    if (o.only === 'go') {
      console.error(
        'bench: ipfs-cluster-service 1.1.6 not found (build it: test/tools/build-go-tools.sh)',
      )
      return 2
    }
    log(
      'warning: ipfs-cluster-service 1.1.6 not found (test/tools/build-go-tools.sh builds it): ' +
        'running ours only',
    )
    o.only = 'ours'
  }
  const inNetns = Deno.env.get(NETNS_ENV) === '1'
  if (!inNetns) {
    // apt needs the network: install the load generator before leaving it.
    if (!(await ensureWrk(log))) log('warning: wrk unavailable: ingest falls back to a Deno client')
    if (o.netns && o.only !== 'ours') {
      const code = await runInNetns(args, log)
      if (code !== undefined) return code
    }
  }

  const selected: ImplKey[] = o.only ? [o.only] : ['go', 'ours']
  const workDir = await Deno.makeTempDir({ prefix: 'ipfs-cluster-bench-' })
  await Deno.mkdir(join(workDir, 'logs'))
  const procs = new Processes(join(workDir, 'logs'))
  const interruption = new AbortController()
  const impls = implementations({
    repo: REPO,
    goBin: goBin ?? 'ipfs-cluster-service',
    signal: interruption.signal,
  })
  const ctx: BenchContext = { repo: REPO, workDir, procs, impls, log }
  let interrupted = false
  const onSignal = () => {
    if (interrupted) return
    interrupted = true
    log('interrupted: stopping every process')
    interruption.abort()
    procs.stopAll(2_000).finally(() => {
      if (!o.keep) Deno.removeSync(workDir, { recursive: true })
      Deno.exit(130)
    })
  }
  Deno.addSignalListener('SIGINT', onSignal)
  Deno.addSignalListener('SIGTERM', onSignal)

  const results: Record<ImplKey, ImplResults> = { ours: { errors: [] }, go: { errors: [] } }
  let baseline: BaselineResult | undefined
  let raftFigures: RaftBenchFigures | undefined
  let raftNetLines: string[] = []
  let readerLines: string[] = []
  let catchup: Awaited<ReturnType<typeof runCatchupBench>> | undefined
  let cluster: Partial<Record<ImplKey, ClusterResult>> | undefined
  let crdt: Partial<Record<ImplKey, CrdtResult>> | undefined
  let failed = false
  const attempt = async (impl: Implementation, what: string, f: () => Promise<void>) => {
    try {
      await f()
    } catch (err) {
      failed = true
      const msg = `${what} failed: ${(err as Error).message}`
      results[impl.key].errors.push(msg)
      log(`${impl.label}: ${msg}`)
    }
  }
  try {
    const ingestCids = Math.max(o.pins, Math.min(3_000_000, o.seconds * 100_000))
    const files = {
      ingest: await inputFile('cids', ingestCids, log),
      cidsLarge: await inputFile('cids', o.pins, log),
      pinsLarge: await inputFile('pins', o.pins, log),
      cidsSmall: await inputFile('cids', o.small, log),
      pinsSmall: await inputFile('pins', o.small, log),
    }
    const ingestOpts = {
      cidFile: files.ingest,
      cids: ingestCids,
      seconds: o.seconds,
      connections: o.connections,
    }
    const issue2 = o.catchupOnly ? [] : selected
    if (issue2.length) log(`baseline: bare Deno.serve under the same load for ${o.seconds} s`)
    try {
      if (issue2.length) baseline = await measureBaseline(ctx, ingestOpts)
    } catch (err) {
      failed = true
      log(`baseline failed: ${(err as Error).message}`)
    }
    // Measure by measure, the implementations one after the other, so that both see the
    // machine in the same state (other load on a shared box comes and goes).
    for (const key of issue2) {
      await attempt(impls[key], 'ingest', async () => {
        results[key].ingest = await measureIngest(ctx, impls[key], ingestOpts)
      })
    }
    for (const key of issue2) {
      await attempt(impls[key], `listing ${o.small} pins`, async () => {
        results[key].small = (await measureListing(ctx, impls[key], {
          pins: o.small,
          pinsFile: files.pinsSmall,
          cidFile: files.cidsSmall,
          restart: false,
        })).listing
      })
    }
    for (const key of issue2) {
      await attempt(impls[key], `listing and restart with ${o.pins} pins`, async () => {
        const r = await measureListing(ctx, impls[key], {
          pins: o.pins,
          pinsFile: files.pinsLarge,
          cidFile: files.cidsLarge,
          restart: true,
        })
        results[key].large = r.listing
        results[key].restart = r.restart
      })
    }
    for (const key of issue2) {
      await attempt(
        impls[key],
        `import and restart with ${o.pins} pins, IPFS holding none`,
        async () => {
          results[key].backlog = await measureImportBacklog(ctx, impls[key], {
            pins: o.pins,
            pinsFile: files.pinsLarge,
          })
        },
      )
    }
    if ((o.catchup || o.catchupOnly) && !o.clusterOnly && !o.crdtOnly) {
      const opts = {
        pins: o.pins,
        pinsFile: files.pinsLarge,
        seconds: o.seconds,
        connections: o.connections,
      }
      catchup = await runCatchupBench(ctx, opts, selected)
      if (selected.some((k) => catchup!.results[k]?.errors.length)) failed = true
    }
    // Issue 7: clusters of 3 peers (+ a joiner), ours beside Go's.
    if (o.cluster) {
      cluster = await runClusterBench(ctx, {
        pins: o.pins,
        pinsFile: files.pinsLarge,
        cidFile: files.cidsLarge,
        seconds: o.seconds,
        connections: o.connections,
        latencySeconds: o.quick ? 2 : 5,
        goBin: goBin ?? 'ipfs-cluster-service',
      }, selected)
      if (selected.some((k) => cluster![k]?.errors.length)) failed = true
    }
    // Issue 10: CRDT clusters of 3 peers (+ a new peer syncing), ours beside Go's.
    if (o.crdt) {
      crdt = await runCrdtBench(ctx, {
        pins: o.pins,
        pinsFile: files.pinsLarge,
        cidFile: files.cidsLarge,
        seconds: o.seconds,
        connections: o.connections,
        batchSize: o.batchSize,
        batchAge: o.batchAge,
        goBin: goBin ?? 'ipfs-cluster-service',
      }, selected)
      if (selected.some((k) => crdt![k]?.errors.length)) failed = true
    }
    // Issue 3: Raft on Deno KV, in process (three nodes, then the pinset through consensus).
    if (o.raft && !o.catchupOnly && selected.includes('ours')) {
      log('raft: three in-process nodes on Deno KV')
      try {
        raftFigures = await runRaftBench({ seconds: o.quick ? 1 : 3, log })
        const netOpts = { seconds: o.quick ? 1 : 3, latencySamples: o.quick ? 200 : 1000, log }
        raftNetLines = raftNetBenchLines(await runRaftNetBench(netOpts))
      } catch (err) {
        failed = true
        log(`raft bench failed: ${(err as Error).message}`)
      }
    }
    // Issue 6: the state import reader alone (NDJSON, pretty-printed, one line).
    if (!o.catchupOnly && selected.includes('ours')) {
      readerLines = await stateReaderBench(files.pinsLarge, log).catch((err) => {
        failed = true
        return [`state reader bench failed: ${(err as Error).message}`]
      })
    }
  } finally {
    await procs.stopAll()
    Deno.removeSignalListener('SIGINT', onSignal)
    Deno.removeSignalListener('SIGTERM', onSignal)
  }

  const rows = [
    ...(o.catchupOnly ? [] : buildRows(o, results)),
    ...(catchup?.rows ?? []),
    ...(cluster ? clusterRows(o, cluster) : []),
    ...(crdt ? crdtRows(o, crdt) : []),
  ]
  const raftLines = raftFigures ? raftBenchLines(raftFigures) : []
  const withGo = selected.includes('go')
  const out: string[] = []
  out.push(
    `ipfs-cluster bench: ${o.pins} pins (small state ${o.small}), ingest ${o.seconds} s over ${o.connections} connections${
      o.quick ? ' [quick]' : ''
    }${inNetns ? ', loopback-only network namespace' : ''}`,
  )
  out.push(await machineLine(goBin))
  if (baseline) {
    out.push(
      `baseline: bare Deno.serve answering 200, same client (${baseline.load.tool}), same run: ${
        Math.round(baseline.reqPerSec)
      } req/s (p50 ${baseline.load.p50ms.toFixed(2)} ms)`,
    )
  } else {
    out.push(o.catchupOnly ? 'baseline: not run' : 'baseline: failed')
  }
  out.push('')
  out.push(renderTable(rows, { withGo }))
  out.push('')
  for (const key of selected) {
    const x = results[key]
    const label = impls[key].label
    if (x.ingest) {
      const l = x.ingest.load
      out.push(
        `note: ${label}: ingest ${l.requests} requests, ${l.ok} ok; ${x.ingest.committed} pins in the state afterwards (warm-up pin and requests in flight at the end included)${
          l.reused ? ' (CIDs were reused)' : ''
        }${l.warning ? `; ${l.warning}` : ''}`,
      )
    }
    for (const lst of [x.small, x.large]) {
      if (lst && lst.lines !== lst.pins) {
        out.push(`note: ${label}: GET /allocations streamed ${lst.lines} of ${lst.pins} pins`)
      }
      if (lst && !lst.settled) {
        out.push(
          `note: ${label}: still busy ${
            lst.settleSeconds.toFixed(0)
          } s after start (${lst.pins} pins); listed anyway`,
        )
      }
    }
    for (const e of x.errors) out.push(`error: ${label}: ${e.split('\n')[0]}`)
  }
  out.push(...(catchup?.notes ?? []))
  if (cluster) {
    out.push(...clusterNotes({ ours: impls.ours.label, go: impls.go.label }, o.pins, cluster))
  }
  if (crdt) out.push(...crdtNotes({ ours: impls.ours.label, go: impls.go.label }, o.pins, crdt))
  if (raftLines.length) {
    out.push('')
    out.push('raft (issue 3): three in-process nodes with real Deno KV storage')
    out.push(...raftLines)
  }
  if (raftNetLines.length) {
    out.push('', 'raft over libp2p (issue 7): 3 peers, one process', ...raftNetLines)
  }
  if (readerLines.length) out.push('', ...readerLines)
  out.push(summaryLine(rows, raftLines))
  console.log(out.join('\n'))

  if (o.json) {
    await Deno.writeTextFile(
      o.json,
      JSON.stringify(
        {
          options: o,
          baseline,
          results,
          catchup: catchup?.results,
          cluster,
          crdt,
          rows: rowsToJSON(rows),
        },
        null,
        2,
      ) + '\n',
    )
  }
  if (o.keep || failed) {
    log(`work folder kept: ${workDir} (logs in ${join(workDir, 'logs')})`)
  } else {
    await Deno.remove(workDir, { recursive: true }).catch(() => {})
  }
  return failed ? 1 : 0
}

if (import.meta.main) Deno.exit(await main(Deno.args))
