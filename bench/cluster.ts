/**
 * The 3-peer measures of issue 7: IPFS Cluster 1.1.6 in Raft mode with 3 peers beside ours with 3
 * peers, on the same machine, each peer with its own instant IPFS double, under the same wrk load
 * (bench/load.ts), started by the multi-peer harness (test/support/cluster.ts):
 *
 * - ingest `POST /pins/{cid}` over 64 connections through a follower, then through the leader;
 * - commit latency with one client through the leader (p50, p99);
 * - kill -9 of the leader: seconds until a write is acknowledged again (a request every 50 ms
 *   through the survivors in turn, none waiting for the others), with default Raft timings;
 * - a fourth peer joining (`daemon --bootstrap`) a cluster whose founders hold N pins (offline
 *   `state import` before their first start): seconds from its spawn until it is READY, a member
 *   in the leader's `GET /peers`, and serves the last pin from its own state;
 * - RSS of every peer while one peer streams the status of all N pins (`GET /pins`): each peer's
 *   growth over its RSS before the listing.
 *
 * The Go peers and ours share the caller's namespace (bench/main.ts runs the bench in a
 * loopback-only one). A cluster that does not form fails its measures with the harness's one-line
 * reason after a bounded wait; it never hangs.
 *
 * @example
 * ```sh
 * deno run -A bench/main.ts --cluster-only --pins 100000 --seconds 3
 * ```
 */
import { join } from 'node:path'
import { benchCid, writeCidFile } from './cids.ts'
import type { BenchContext } from './harness.ts'
import { type LoadResult, runLoad } from './load.ts'
import type { ImplKey } from './peers.ts'
import { cpuSecondsOf, memoryOf, sampleRss, sleep, waitIdle } from './process.ts'
import { atLeast, atMost, below, type Row } from './report.ts'
import { type ClusterPeer, TestCluster } from '../test/support/cluster.ts'

const MiB = 1024 * 1024
const FORM_TIMEOUT_MS = 60_000
const READY_TIMEOUT_MS = 120_000

/** Sizes of the cluster measures. */
export interface ClusterBenchOptions {
  /** Pins the founders hold when the fourth peer joins, and that `GET /pins` streams. */
  pins: number
  /** `state import` NDJSON of `pins` pins and the file of their CIDs (the doubles hold them). */
  pinsFile: string
  cidFile: string
  /** Seconds of each ingest load. */
  seconds: number
  connections: number
  /** Seconds of the one-client latency load. */
  latencySeconds: number
  goBin: string
}

/** What one implementation measured; a failed step leaves its fields empty and an error. */
export interface ClusterResult {
  follower?: LoadResult
  leader?: LoadResult
  latency?: LoadResult
  /**
   * CPU time of the three peers (all threads, from /proc) from the start of each ingest load
   * until they are idle again (the work its pins left behind included), per acknowledged pin (µs).
   */
  cpuPerPin?: { follower?: number; leader?: number }
  /** kill -9 of the leader → first write acknowledged again (s). */
  failoverWrite?: number
  /** kill -9 of the leader → a new leader in the survivors' logs (s). */
  failoverLeader?: number
  /** Offline import of `pins` into one founder (s). */
  importSeconds?: number
  join?: { ready: number; member: number; pinset: number }
  /** The same when the default join failed, retried once with wait_for_leader_timeout 150s. */
  joinLongTimeout?: { ready: number; member: number; pinset: number }
  /** Peers running while GET /pins streamed. */
  statusPeers?: number
  /** Lines `GET /pins` streamed, in how long. */
  statusLines?: number
  statusSeconds?: number
  /** Per peer: RSS before the listing and its peak during it (bytes). */
  rss?: { name: string; role: string; before: number; peak: number }[]
  errors: string[]
}

/** Runs the cluster measures for each selected implementation, one after the other. */
export async function runClusterBench(
  ctx: BenchContext,
  opts: ClusterBenchOptions,
  selected: ImplKey[],
): Promise<Partial<Record<ImplKey, ClusterResult>>> {
  const files = await loadFiles(ctx, opts)
  const out: Partial<Record<ImplKey, ClusterResult>> = {}
  for (const key of selected) {
    const r: ClusterResult = { errors: [] }
    out[key] = r
    const step = async (what: string, f: () => Promise<void>) => {
      try {
        await f()
      } catch (err) {
        const msg = `${what}: ${(err as Error).message.split('\n')[0]}`
        r.errors.push(msg)
        ctx.log(`cluster ${key}: ${msg}`)
      }
    }
    await step('ingest, latency and failover', () => measureWrites(ctx, key, opts, files, r))
    await step(`join and status over ${opts.pins} pins`, () => measureLarge(ctx, key, opts, r))
  }
  return out
}

/** The CID files of the three write loads (distinct ranges, so that every request is a new pin). */
async function loadFiles(ctx: BenchContext, opts: ClusterBenchOptions) {
  const count = Math.min(3_000_000, opts.seconds * 30_000)
  const file = async (name: string, start: number, n: number) => {
    const path = join(ctx.workDir, `cluster-${name}.txt`)
    await writeCidFile(path, start, n)
    return { path, count: n }
  }
  return {
    follower: await file('follower', 10_000_000, count),
    leader: await file('leader', 20_000_000, count),
    latency: await file('latency', 30_000_000, Math.min(count, opts.latencySeconds * 20_000)),
  }
}

function newCluster(ctx: BenchContext, key: ImplKey, opts: ClusterBenchOptions, name: string) {
  return TestCluster.create({
    impl: key,
    peers: 3,
    workDir: join(ctx.workDir, `cluster-${key}-${name}`),
    netns: 'inherit',
    goBin: opts.goBin,
    doublePinned: name === 'large' ? opts.cidFile : undefined,
    roleLog: false,
    log: ctx.log,
  })
}

/** Starts the founders and waits until they are one cluster with a leader. */
async function form(ctx: BenchContext, key: ImplKey, cluster: TestCluster): Promise<ClusterPeer> {
  cluster.startAll()
  for (const p of cluster.peers) await cluster.waitReady(p, READY_TIMEOUT_MS)
  await cluster.waitFormed(FORM_TIMEOUT_MS)
  const leader = await cluster.waitLeader(FORM_TIMEOUT_MS)
  ctx.log(`cluster ${key}: 3 peers formed, leader ${leader.name}`)
  return leader
}

async function measureWrites(
  ctx: BenchContext,
  key: ImplKey,
  opts: ClusterBenchOptions,
  files: Awaited<ReturnType<typeof loadFiles>>,
  r: ClusterResult,
): Promise<void> {
  const cluster = await newCluster(ctx, key, opts, 'writes')
  try {
    const leader = await form(ctx, key, cluster)
    const follower = cluster.peers.find((p) => p !== leader)!
    // One write first, so that the loads do not time the first connection between peers.
    await writeOnce(cluster, [follower], benchCid(-2), 30_000)
    const load = (peer: ClusterPeer, f: { path: string; count: number }, c: number, s: number) =>
      runLoad({
        base: peer.restUrl,
        cidFile: f.path,
        cids: f.count,
        seconds: s,
        connections: c,
        workDir: ctx.workDir,
      })
    // Each load starts on idle peers, and is charged the CPU its pins cost until they are idle
    // again: a tracker still pinning the previous load's pins would otherwise slow the next load
    // and leave its own cost out.
    const ingest = async (peer: ClusterPeer, f: { path: string; count: number }) => {
      const before = await settled(ctx, key, cluster)
      const l = await load(peer, f, opts.connections, opts.seconds)
      const used = (await settled(ctx, key, cluster)) - before
      return { l, cpu: l.ok > 0 ? used * 1e6 / l.ok : undefined }
    }
    r.cpuPerPin = {}
    ctx.log(`cluster ${key}: ingest through follower ${follower.name}, ${opts.seconds} s`)
    const viaFollower = await ingest(follower, files.follower)
    r.follower = viaFollower.l
    r.cpuPerPin.follower = viaFollower.cpu
    ctx.log(`cluster ${key}: ingest through leader ${leader.name}, ${opts.seconds} s`)
    const viaLeader = await ingest(leader, files.leader)
    r.leader = viaLeader.l
    r.cpuPerPin.leader = viaLeader.cpu
    ctx.log(`cluster ${key}: one client through the leader, ${opts.latencySeconds} s`)
    r.latency = await load(leader, files.latency, 1, opts.latencySeconds)

    ctx.log(`cluster ${key}: kill -9 of the leader ${leader.name}`)
    const survivors = cluster.peers.filter((p) => p !== leader)
    const t0 = performance.now()
    await cluster.kill9(leader)
    const newLeader = cluster.waitLeader(30_000, leader).then(() => (performance.now() - t0) / 1000)
    r.failoverWrite = await writeOnce(cluster, survivors, benchCid(-3), 60_000, t0)
    r.failoverLeader = await newLeader
  } finally {
    await cluster.close()
  }
}

/**
 * Waits (up to 15 s) until every running peer uses under a fifth of a core, and returns the CPU
 * seconds the peers used so far, summed.
 */
async function settled(ctx: BenchContext, key: ImplKey, cluster: TestCluster): Promise<number> {
  const pids = cluster.peers.filter((p) => p.proc?.running()).map((p) => p.proc!.pid)
  const waits = await Promise.all(
    pids.map((pid) => waitIdle(pid, { share: 0.2, windowMs: 300, timeoutMs: 15_000 })),
  )
  const longest = Math.max(...waits.map((w) => w.seconds))
  if (longest > 1) ctx.log(`cluster ${key}: the peers settled in ${longest.toFixed(1)} s`)
  let cpu = 0
  for (const pid of pids) cpu += await cpuSecondsOf(pid)
  return cpu
}

/**
 * Sends one `POST /pins/<cid>` every 50 ms through `peers` in turn, without waiting for the earlier
 * ones (a request made during the election may be held until it ends), and returns the seconds
 * from `since` to the first 2xx answer of any of them.
 */
async function writeOnce(
  cluster: TestCluster,
  peers: ClusterPeer[],
  cid: string,
  timeoutMs: number,
  since = performance.now(),
): Promise<number> {
  let last = ''
  let acked: number | undefined
  const inFlight = new Set<Promise<void>>()
  const probe = (peer: ClusterPeer) => {
    const p = cluster.request(peer, 'POST', `/pins/${cid}`, { timeoutMs: 10_000 }).then(
      (res) => {
        if (res.status >= 200 && res.status < 300) acked ??= performance.now()
        else last = `${peer.name}: HTTP ${res.status} ${res.body.slice(0, 160)}`
      },
      (err) => void (last = `${peer.name}: ${(err as Error).message}`),
    ).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }
  for (let k = 0; acked === undefined && performance.now() - since < timeoutMs; k++) {
    if (inFlight.size < 100) probe(peers[k % peers.length])
    await sleep(50)
  }
  await Promise.all(inFlight)
  if (acked === undefined) {
    throw new Error(`no write acknowledged in ${timeoutMs} ms (last: ${last})`)
  }
  return (acked - since) / 1000
}

async function measureLarge(
  ctx: BenchContext,
  key: ImplKey,
  opts: ClusterBenchOptions,
  r: ClusterResult,
): Promise<void> {
  const cluster = await newCluster(ctx, key, opts, 'large')
  try {
    for (const p of cluster.peers) {
      ctx.log(`cluster ${key}: state import of ${opts.pins} pins into ${p.name}`)
      const t0 = performance.now()
      await cluster.importState(p, opts.pinsFile)
      r.importSeconds ??= (performance.now() - t0) / 1000
    }
    const leader = await form(ctx, key, cluster)
    const lastCid = benchCid(opts.pins - 1)

    // The fourth peer, prepared (folder, IPFS double holding the pins) before the clock starts.
    const joiner = await cluster.addJoiner()
    try {
      r.join = await timeJoin(ctx, key, cluster, leader, joiner, lastCid)
    } catch (err) {
      r.errors.push(`4th peer joining ${opts.pins} pins: ${(err as Error).message.split('\n')[0]}`)
      ctx.log(`cluster ${key}: the join failed: ${(err as Error).message.split('\n')[0]}`)
      // What it takes with more time than the default: once, with a 10× wait for the leader.
      await cluster.stop(joiner, 30_000)
      await cluster.editConfig(joiner, (cfg) => {
        cfg.consensus.raft.wait_for_leader_timeout = '150s'
      })
      await Deno.remove(join(joiner.dir, 'raft'), { recursive: true }).catch(() => {})
      try {
        r.joinLongTimeout = await timeJoin(ctx, key, cluster, leader, joiner, lastCid)
      } catch (err2) {
        r.errors.push(`… with wait_for_leader_timeout 150s: ${(err2 as Error).message}`)
      }
    }

    // Status of all N pins streamed by one founder (a follower); every peer's RSS sampled.
    const reader = cluster.peers.find((p) => p !== leader && p !== joiner)!
    const running = cluster.peers.filter((p) => p.proc?.running())
    const before = await Promise.all(
      running.map(async (p) => (await memoryOf(p.proc!.pid))?.rss ?? 0),
    )
    const samplers = running.map((p) => sampleRss(p.proc!.pid, 50))
    ctx.log(`cluster ${key}: GET /pins (${opts.pins} statuses) through ${reader.name}`)
    const t1 = performance.now()
    try {
      r.statusLines = await countLines(`${reader.restUrl}/pins`, 600)
      r.statusPeers = running.length
    } finally {
      r.statusSeconds = (performance.now() - t1) / 1000
      const peaks = await Promise.all(samplers.map((s) => s.stop()))
      r.rss = running.map((p, i) => ({
        name: p.name,
        role: p === leader ? 'leader' : p === joiner ? 'joiner' : p === reader ? 'streams' : '',
        before: before[i],
        peak: peaks[i],
      }))
    }
  } finally {
    await cluster.close()
  }
}

/**
 * Starts a prepared joiner with `--bootstrap <leader>`; seconds from its spawn until READY, until
 * it is in the leader's `GET /peers`, and until it serves the last pin from its own state.
 */
async function timeJoin(
  ctx: BenchContext,
  key: ImplKey,
  cluster: TestCluster,
  leader: ClusterPeer,
  joiner: ClusterPeer,
  lastCid: string,
): Promise<{ ready: number; member: number; pinset: number }> {
  ctx.log(`cluster ${key}: ${joiner.name} joins through ${leader.name}`)
  const t0 = performance.now()
  cluster.startJoiner(joiner, leader)
  const since = (t: number) => (t - t0) / 1000
  await cluster.waitReady(joiner, READY_TIMEOUT_MS)
  const ready = since(performance.now())
  const member = await until(async () => {
    const res = await cluster.request(leader, 'GET', '/peers')
    return res.status === 200 && res.body.includes(`"${joiner.id}"`)
  }, READY_TIMEOUT_MS)
  const pinset = await until(async () => {
    const res = await cluster.request(joiner, 'GET', `/allocations/${lastCid}`)
    return res.status === 200
  }, READY_TIMEOUT_MS)
  return { ready, member: since(member), pinset: since(pinset) }
}

/** Polls `check` every 50 ms; resolves with performance.now() when it holds. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < timeoutMs) {
    if (await check().catch(() => false)) return performance.now()
    await sleep(50)
  }
  throw new Error(`not true within ${timeoutMs} ms`)
}

/** `curl <url> | wc -l` with a time limit; the lines read (all of them, or up to the limit). */
async function countLines(url: string, maxSeconds: number): Promise<number> {
  const out = await new Deno.Command('bash', {
    args: [
      '-c',
      'set -o pipefail; curl -sS --no-buffer -m "$2" "$1" | wc -l',
      'bash',
      url,
      String(maxSeconds),
    ],
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const lines = Number(new TextDecoder().decode(out.stdout).trim())
  if (out.code !== 0) {
    throw new Error(
      `GET ${url} stopped after ${lines} lines: ${new TextDecoder().decode(out.stderr).trim()}`,
    )
  }
  return lines
}

const pinsPerSec = (l?: LoadResult) => (l ? l.ok / l.seconds : undefined)

/** The table rows of the cluster measures (targets from issue 7). */
export function clusterRows(
  o: { pins: number; connections: number },
  r: Partial<Record<ImplKey, ClusterResult>>,
): Row[] {
  const both = (f: (x: ClusterResult) => number | undefined) => ({
    ours: r.ours ? f(r.ours) : undefined,
    go: r.go ? f(r.go) : undefined,
  })
  const growth = (x: ClusterResult) =>
    x.rss?.length ? Math.max(...x.rss.map((p) => p.peak - p.before)) / MiB : undefined
  return [
    {
      measure: `3 peers: ingest through a follower, ${o.connections} clients (pins/s)`,
      ...both((x) => pinsPerSec(x.follower)),
      target: atLeast(3000),
    },
    {
      measure: `3 peers: ingest through the leader, ${o.connections} clients (pins/s)`,
      ...both((x) => pinsPerSec(x.leader)),
      target: atLeast(4000),
    },
    {
      measure: '3 peers: CPU per pin through a follower, the three peers (µs)',
      ...both((x) => x.cpuPerPin?.follower),
    },
    {
      measure: '3 peers: CPU per pin through the leader, the three peers (µs)',
      ...both((x) => x.cpuPerPin?.leader),
    },
    {
      measure: '3 peers: ingest errors, follower + leader (non-2xx + socket)',
      ...both((x) => x.follower && x.leader ? x.follower.errors + x.leader.errors : undefined),
      digits: 0,
    },
    {
      measure: '3 peers: commit latency, 1 client through the leader, p50 (ms)',
      ...both((x) => x.latency?.p50ms),
      target: below(2, ' ms'),
    },
    {
      measure: '3 peers: commit latency, 1 client through the leader, p99 (ms)',
      ...both((x) => x.latency?.p99ms),
    },
    {
      measure: '3 peers: kill -9 of the leader to a write acknowledged (s)',
      ...both((x) => x.failoverWrite),
      digits: 2,
      target: below(3, ' s'),
    },
    {
      measure: '3 peers: kill -9 of the leader to a new leader in the logs (s)',
      ...both((x) => x.failoverLeader),
      digits: 2,
    },
    {
      measure: `state import into a founder, ${o.pins} pins (s)`,
      ...both((x) => x.importSeconds),
      digits: 1,
    },
    {
      measure: `4th peer joins ${o.pins} pins: READY (s)`,
      ...both((x) => x.join?.ready),
      digits: 2,
    },
    {
      measure: `4th peer joins ${o.pins} pins: member and serves the last pin (s)`,
      ...both((x) => x.join && Math.max(x.join.member, x.join.pinset)),
      digits: 2,
      target: below(30, ' s'),
    },
    {
      measure:
        `4th peer joins ${o.pins} pins, wait_for_leader_timeout 150s, if the default failed (s)`,
      ...both((x) =>
        x.joinLongTimeout && Math.max(x.joinLongTimeout.member, x.joinLongTimeout.pinset)
      ),
      digits: 2,
    },
    {
      measure: `GET /pins, ${o.pins} statuses from every peer (statuses/s)`,
      ...both((x) =>
        x.statusLines === o.pins && x.statusSeconds ? x.statusLines / x.statusSeconds : undefined
      ),
    },
    {
      measure: `largest RSS growth of a peer during that GET /pins (MiB)`,
      ...both(growth),
      digits: 1,
      // "Does not grow with the pinset", as the single-peer listing row judges it: at most 32
      // bytes a pin with a 16 MiB floor; a peer that gathered the statuses needs kilobytes a pin.
      target: atMost(Math.max(16 * MiB, 32 * o.pins) / MiB, ' MiB'),
    },
  ]
}

/** Notes under the table: loads, RSS per peer, errors. */
export function clusterNotes(
  labels: Record<ImplKey, string>,
  pins: number,
  r: Partial<Record<ImplKey, ClusterResult>>,
): string[] {
  const out: string[] = []
  for (const [key, x] of Object.entries(r) as [ImplKey, ClusterResult][]) {
    const label = labels[key]
    for (const [what, l] of [['follower', x.follower], ['leader', x.leader]] as const) {
      if (l) {
        out.push(
          `note: ${label}: ingest through the ${what}: ${l.requests} requests, ${l.ok} ok, p50 ${
            l.p50ms.toFixed(2)
          } ms, p99 ${l.p99ms.toFixed(2)} ms`,
        )
      }
    }
    if (x.statusPeers !== undefined) {
      out.push(`note: ${label}: GET /pins asked ${x.statusPeers} peers`)
    }
    if (x.statusLines !== undefined && x.statusLines !== pins) {
      out.push(`note: ${label}: GET /pins streamed ${x.statusLines} of ${pins} statuses`)
    }
    if (x.rss) {
      out.push(
        `note: ${label}: RSS during GET /pins (before → peak, MiB): ${
          x.rss.map((p) =>
            `${p.name}${p.role ? ` (${p.role})` : ''} ${(p.before / MiB).toFixed(0)} → ${
              (p.peak / MiB).toFixed(0)
            }`
          ).join(', ')
        }`,
      )
    }
    for (const e of x.errors) out.push(`error: ${label}: cluster ${e}`)
  }
  return out
}
