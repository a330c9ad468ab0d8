/**
 * `deno run -A bench/raft_net.ts`: what Raft over libp2p (libp2p_transport.ts) gives. Three peers
 * in one process, each a real libp2p host on 127.0.0.1 (TCP + Noise + Yamux) with the production
 * `raftConsensus` on its own Deno KV file (test/consensus/raft/libp2p_cluster.ts):
 *
 * - 64 concurrent proposers through the leader, and through a follower (each `logPin` forwarded
 *   to the leader over the wire), in pins/s, each resolved once applied on the proposing peer;
 * - one proposer through the leader: commit latency p50 / p99;
 * - the transport alone: a heartbeat and its response between two hosts, one at a time;
 * - run standalone, the same three measures with the peers in three processes
 *   (bench/raft_net_peer.ts), CPU summed over them.
 *
 * Then the same measures over the in-process `MemoryNetwork` (same config, same KV storage), in
 * the same run: the difference is what the network costs. Pins/s depend on the machine's load;
 * the CPU time per pin (user + system of the whole process, KV threads included) less so. The targets are for the
 * whole product through the REST API (≥ 4,000 pins/s via the leader, ≥ 3,000 via a follower,
 * p50 < 2 ms); they are shown as the bound this layer must stay above.
 *
 * @example
 * ```sh
 * deno run -A bench/raft_net.ts               # ~30 s
 * deno run -A bench/raft_net.ts --seconds 1   # quicker, noisier
 * ```
 */
import { cpuUsage } from 'node:process'
import { MemoryNetwork } from '../src/consensus/raft/memory_transport.ts'
import { type RaftConsensus, raftConsensus } from '../src/consensus/raft/raft_consensus.ts'
import { kvState } from '../src/state/kv_state.ts'
import { tempKvPath } from '../test/consensus/raft/kv_cluster.ts'
import { NetCluster, netConfig } from '../test/consensus/raft/libp2p_cluster.ts'
import { libp2pTransport } from '../src/consensus/raft/libp2p_transport.ts'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import {
  closedLoops,
  type Latency,
  pinsFor,
  raftBenchArgs,
  sequentialLatency,
  tableLines,
} from './raft.ts'

/** Options of `runRaftNetBench`. */
export interface RaftNetBenchOptions {
  /** Seconds per throughput measure (default 3). */
  seconds?: number
  /** Concurrent proposers (default 64). */
  proposers?: number
  /** Sequential proposals for the latency measure (default 1000). */
  latencySamples?: number
  log?: (msg: string) => void
  /** Also run the three peers in three processes (default false). */
  processes?: boolean
}

/** Everything `bench/raft_net.ts` measures. */
export interface RaftNetFigures {
  proposers: number
  viaLeaderPinsPerSec: number
  viaFollowerPinsPerSec: number
  /** CPU time (user + system, all three peers) per pin through the leader, in µs: less load-
   * dependent than pins/s on a shared machine. */
  viaLeaderCpuUsPerPin: number
  viaFollowerCpuUsPerPin: number
  latency: Latency
  /** Messages the transports dropped during the run (full queues, backoff). */
  dropped: number
}

/** The targets for the whole product (REST ingest), which this layer must exceed. */
export const RAFT_NET_TARGETS = { viaLeader: 4000, viaFollower: 3000, p50Ms: 2 }

/** What is measured on each network: the leader and a follower of three running peers. */
interface Peers {
  leader: RaftConsensus
  follower: RaftConsensus
  dropped(): number
  close(): Promise<void>
}

/** Three peers over libp2p on loopback. */
async function libp2pPeers(): Promise<Peers> {
  const c = await NetCluster.create(3)
  await c.startAll()
  const leader = await c.waitLeader()
  const follower = [...c.nodes.values()].find((n) => n !== leader)!
  return {
    leader: leader.consensus,
    follower: follower.consensus,
    dropped() {
      let n = 0
      for (const p of c.nodes.values()) {
        for (const id of c.ids) n += p.transport.stats(id)?.dropped ?? 0
      }
      return n
    },
    close: () => c.close(),
  }
}

/** The same three peers over the in-process `MemoryNetwork`: the baseline without a network. */
async function memoryPeers(): Promise<Peers> {
  const net = new MemoryNetwork()
  const ids = ['m0', 'm1', 'm2']
  const nodes: { c: RaftConsensus; kv: Deno.Kv; path: string }[] = []
  for (const id of ids) {
    const path = await tempKvPath(id)
    const kv = await Deno.openKv(path)
    const c = raftConsensus(netConfig(), {
      peerId: id,
      kv,
      state: kvState(kv),
      hooks: { onPin() {}, onUnpin() {}, onRestore() {} },
      transport: net.endpoint(),
      initialVoters: ids,
    })
    nodes.push({ c, kv, path })
  }
  await Promise.all(nodes.map((n) => n.c.ready()))
  const leader = nodes.find((n) => n.c.status().role === 'leader')!.c
  return {
    leader,
    follower: nodes.find((n) => n.c !== leader)!.c,
    dropped: () => 0,
    async close() {
      for (const n of nodes) {
        await n.c.stop()
        n.kv.close()
        for (const f of [n.path, `${n.path}-wal`, `${n.path}-shm`]) {
          await Deno.remove(f).catch(() => {})
        }
      }
    },
  }
}

/** Runs the measures on one network; see the module comment. */
async function measure(
  peers: Peers,
  opts: RaftNetBenchOptions,
  salt: string,
): Promise<RaftNetFigures> {
  const seconds = opts.seconds ?? 3
  const proposers = opts.proposers ?? 64
  const samples = opts.latencySamples ?? 1000
  const log = opts.log ?? (() => {})
  const pins = await pinsFor(Math.ceil(seconds * 2 * 20_000) + samples + 2000, salt)
  let next = 0
  const take = () => pins[next++ % pins.length]
  const through = async (n: RaftConsensus) => {
    await closedLoops(proposers, 0.3, () => n.logPin(take()))
    const cpu = cpuUsage()
    let done = 0
    const perSec = await closedLoops(proposers, seconds, async () => {
      await n.logPin(take())
      done++
    })
    const used = cpuUsage(cpu)
    return [perSec, (used.user + used.system) / Math.max(1, done)]
  }
  log(`${salt}: ${proposers} proposers through the leader`)
  const [viaLeaderPinsPerSec, viaLeaderCpuUsPerPin] = await through(peers.leader)
  log(`${salt}: ${proposers} proposers through a follower`)
  const [viaFollowerPinsPerSec, viaFollowerCpuUsPerPin] = await through(peers.follower)
  log(`${salt}: one proposer through the leader`)
  const latency = await sequentialLatency(samples, () => peers.leader.logPin(take()))
  return {
    proposers,
    viaLeaderPinsPerSec,
    viaFollowerPinsPerSec,
    viaLeaderCpuUsPerPin,
    viaFollowerCpuUsPerPin,
    latency,
    dropped: peers.dropped(),
  }
}

/**
 * The transport alone: a heartbeat from one host to another and its response back, one at a
 * time, through two `libp2pTransport`s (no storage): the cost of one hop each way.
 */
async function transportRoundTrip(samples: number): Promise<Latency> {
  const c = await NetCluster.create(2)
  const hosts = await Promise.all(c.ids.map((id) => c.startHost(id)))
  const [a, b] = hosts.map((h) => libp2pTransport({ libp2p: h.libp2p }))
  const [ia, ib] = c.ids
  try {
    let answered = () => {}
    a.listen(ia, { message: () => answered(), snapshotChunk: () => Promise.resolve() })
    b.listen(ib, {
      message: (m) => b.send([{ type: 'heartbeatResp', from: ib, to: ia, term: m.term }]),
      snapshotChunk: () => Promise.resolve(),
    })
    const once = () =>
      new Promise<void>((resolve) => {
        answered = resolve
        a.send([{ type: 'heartbeat', from: ia, to: ib, term: 1, commit: 0 }])
      })
    for (let i = 0; i < 200; i++) await once() // connect, warm up
    return await sequentialLatency(samples, once)
  } finally {
    await a.stop()
    await b.stop()
    for (const h of hosts) await h.stop()
  }
}

/** A peer running in its own process (bench/raft_net_peer.ts), spoken to on stdin/stdout. */
class PeerProcess {
  readonly #child: Deno.ChildProcess
  readonly #lines: AsyncIterator<string>
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>

  constructor(identities: string, index: number) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        'run',
        '--quiet',
        '--allow-net',
        '--allow-read',
        '--allow-write',
        '--allow-env',
        '--allow-sys',
        new URL('./raft_net_peer.ts', import.meta.url).pathname,
        identities,
        String(index),
      ],
      stdin: 'piped',
      stdout: 'piped',
      stderr: 'inherit',
    }).spawn()
    this.#writer = this.#child.stdin.getWriter()
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .pipeThrough(lineSplitter())[Symbol.asyncIterator]()
  }

  /** Sends one command and reads its one-line answer. */
  async ask<T>(cmd: string): Promise<T> {
    await this.#writer.write(new TextEncoder().encode(cmd + '\n'))
    const r = await this.#lines.next()
    if (r.done) throw new Error(`peer process exited before answering ${cmd}`)
    return JSON.parse(r.value) as T
  }

  /** Stops the peer; kills the process (by its PID) if it does not exit. */
  async stop(): Promise<void> {
    await this.ask('stop').catch(() => {})
    const exited = this.#child.status.then(() => true)
    const late = new Promise<boolean>((r) => setTimeout(() => r(false), 5000))
    if (!(await Promise.race([exited, late]))) this.#child.kill('SIGKILL')
    await this.#child.status
  }
}

function lineSplitter(): TransformStream<string, string> {
  let rest = ''
  return new TransformStream({
    transform(chunk, ctl) {
      rest += chunk
      let nl
      while ((nl = rest.indexOf('\n')) >= 0) {
        ctl.enqueue(rest.slice(0, nl))
        rest = rest.slice(nl + 1)
      }
    },
  })
}

/** Three peers in three processes: the same measures, CPU summed over the processes. */
async function measureProcesses(opts: RaftNetBenchOptions): Promise<RaftNetFigures> {
  const seconds = opts.seconds ?? 3
  const proposers = opts.proposers ?? 64
  const samples = opts.latencySamples ?? 1000
  const c = await NetCluster.create(3)
  const dir = await Deno.makeTempDir({ prefix: 'raft-net-bench-' })
  const file = `${dir}/identities.json`
  await Deno.writeTextFile(
    file,
    JSON.stringify(c.identities.map((w) => ({
      ...w,
      key: btoa(String.fromCharCode(...privateKeyToProtobuf(w.key))),
    }))),
  )
  const procs = [0, 1, 2].map((i) => new PeerProcess(file, i))
  try {
    const end = Date.now() + 30_000
    let leader = -1
    while (leader < 0) {
      if (Date.now() > end) throw new Error('no leader among the peer processes within 30 s')
      const st = await Promise.all(procs.map((p) => p.ask<{ role: string }>('status')))
      leader = st.findIndex((s) => s.role === 'leader')
      if (leader < 0) await new Promise((r) => setTimeout(r, 100))
    }
    const follower = (leader + 1) % 3
    const cpu = async () => {
      let us = 0
      for (const p of procs) us += (await p.ask<{ us: number }>('cpu')).us
      return us
    }
    const through = async (i: number) => {
      const before = await cpu()
      const r = await procs[i].ask<{ pinsPerSec: number }>(`load ${proposers} ${seconds}`)
      // The warm-up (0.3 s) is in the CPU time too: count its pins at the same rate.
      const pins = r.pinsPerSec * (seconds + 0.3)
      return [r.pinsPerSec, (await cpu() - before) / Math.max(1, pins)]
    }
    opts.log?.(`processes: ${proposers} proposers through the leader`)
    const [viaLeaderPinsPerSec, viaLeaderCpuUsPerPin] = await through(leader)
    opts.log?.(`processes: ${proposers} proposers through a follower`)
    const [viaFollowerPinsPerSec, viaFollowerCpuUsPerPin] = await through(follower)
    opts.log?.('processes: one proposer through the leader')
    const latency = await procs[leader].ask<Latency>(`latency ${samples}`)
    return {
      proposers,
      viaLeaderPinsPerSec,
      viaFollowerPinsPerSec,
      viaLeaderCpuUsPerPin,
      viaFollowerCpuUsPerPin,
      latency,
      dropped: -1,
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()))
    await c.close()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
}

/** Both networks, one after the other in the same process. */
export interface RaftNetRun {
  libp2p: RaftNetFigures
  memory: RaftNetFigures
  /** One heartbeat and its response through the transport alone. */
  roundTrip: Latency
  /** Three peers in three processes (with `processes: true`). */
  processes?: RaftNetFigures
}

/** Runs the measures over libp2p, then over the in-process network. */
export async function runRaftNetBench(opts: RaftNetBenchOptions = {}): Promise<RaftNetRun> {
  const run = async (make: () => Promise<Peers>, salt: string) => {
    const peers = await make()
    try {
      return await measure(peers, opts, salt)
    } finally {
      await peers.close()
    }
  }
  opts.log?.('transport round trip')
  const roundTrip = await transportRoundTrip(opts.latencySamples ?? 1000)
  const libp2p = await run(libp2pPeers, 'libp2p')
  const memory = await run(memoryPeers, 'memory')
  const processes = opts.processes ? await measureProcesses(opts) : undefined
  return { libp2p, memory, roundTrip, processes }
}

const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL')

/** The figures as printed lines (label, value, target, verdict). */
export function raftNetBenchLines(r: RaftNetRun): string[] {
  const t = RAFT_NET_TARGETS
  const f = r.libp2p
  const m = r.memory
  const pins = (x: number, cpu: number) => `${fmt(x)} pins/s (${fmt(cpu)} µs CPU per pin)`
  const lat = (l: Latency) => `p50 ${fmt(l.p50, 3)} ms, p99 ${fmt(l.p99, 3)} ms`
  // The libp2p runs (peers in one process, or in three) are judged against the targets alike.
  const judged = (where: string, x: typeof f): [string, string, string, string][] => [
    [
      `libp2p, 3 ${where}, ${x.proposers} proposers via the leader`,
      pins(x.viaLeaderPinsPerSec, x.viaLeaderCpuUsPerPin),
      `>= ${fmt(t.viaLeader)}`,
      verdict(x.viaLeaderPinsPerSec >= t.viaLeader),
    ],
    [
      `libp2p, 3 ${where}, ${x.proposers} proposers via a follower`,
      pins(x.viaFollowerPinsPerSec, x.viaFollowerCpuUsPerPin),
      `>= ${fmt(t.viaFollower)}`,
      verdict(x.viaFollowerPinsPerSec >= t.viaFollower),
    ],
    [
      `libp2p, 3 ${where}, 1 proposer via the leader: latency`,
      lat(x.latency),
      `p50 < ${t.p50Ms} ms`,
      verdict(x.latency.p50 < t.p50Ms),
    ],
  ]
  const rows: [string, string, string, string][] = [
    ...judged('peers', f),
    ['libp2p: messages dropped by the transports', fmt(f.dropped), '', ''],
    ['libp2p transport alone: heartbeat round trip', lat(r.roundTrip), '', ''],
    [
      `in-process network (baseline), via the leader`,
      pins(m.viaLeaderPinsPerSec, m.viaLeaderCpuUsPerPin),
      '',
      '',
    ],
    [
      `in-process network (baseline), via a follower`,
      pins(m.viaFollowerPinsPerSec, m.viaFollowerCpuUsPerPin),
      '',
      '',
    ],
    ['in-process network (baseline), 1 proposer: latency', lat(m.latency), '', ''],
  ]
  if (r.processes) rows.push(...judged('processes', r.processes))
  return tableLines(rows)
}

if (import.meta.main) {
  await import('../src/deno_shim.ts') // lets the process exit after the hosts stop
  const { json, ...opts } = raftBenchArgs(Deno.args)
  const figures = await runRaftNetBench({
    ...opts,
    processes: true,
    log: (m) => console.error(`[raft net bench] ${m}`),
  })
  const cores = navigator.hardwareConcurrency
  console.log(`raft net bench: ${cores} cores, Deno ${Deno.version.deno}, libp2p on 127.0.0.1`)
  for (const line of raftNetBenchLines(figures)) console.log(line)
  if (json) console.log(JSON.stringify(figures))
}
