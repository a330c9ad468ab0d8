/**
 * A cluster of N peers as real processes on 127.0.0.1, for the end-to-end tests and the bench:
 * our daemon (started with the service task's flags, as users run it) or IPFS Cluster 1.1.6's
 * `ipfs-cluster-service`, in Raft mode (default) or CRDT mode (`consensus: 'crdt'`), each peer with its own config folder, its own IPFS (the
 * instant double of bench/ipfs_double.ts, or any IPFS the caller starts, e.g. a real Kubo), its
 * own ports (cluster libp2p and REST API; no IPFS proxy, no pinning-service API, no embedded
 * node), one shared cluster secret.
 *
 * Founders are written the way `service init --peers` does it: `consensus.raft.init_peerset` lists
 * every founder's ID and the peerstore file lists the others' multiaddrs. Joiners get a clean
 * folder and start with `daemon --bootstrap <multiaddr>`.
 *
 * A CRDT cluster's peers come from `init --consensus crdt` (no Raft section, no peerset to write):
 * the founders find each other through the same peerstore file, share one `cluster_name` and trust
 * every peer (`trusted_peers: ["*"]`); `edit` sets the rest (e.g. `consensus.crdt.batching`). It has
 * no leader: `leader()` refuses.
 *
 * With `links: true`, peer `a` reaches peer `b` only through the proxy `a>b` of
 * test/support/link_proxy.ts (its peerstore names the proxy, and no peer announces its own
 * listener), so `cut`, `isolate` and `heal` partition the cluster with real sockets.
 *
 * The Go peer probes the LAN at start (NAT discovery), so it runs in a loopback-only network
 * namespace, and all Go peers of one cluster in the same one: either the caller's (`netns:
 * 'inherit'`, when the whole run is already inside one, as the bench is) or one this cluster makes
 * (`'own'`: a holder process made by `unshare -n`, every Go peer and its IPFS double entered with
 * `nsenter -n`; their REST APIs are then reachable only from inside, through `inside()`).
 *
 * Every process is started through bench/process.ts's registry: output in a log file, stopped by
 * its PID (SIGTERM, then SIGKILL after a grace period) by `stop`, `kill9` or `close`.
 *
 * @example
 * ```ts
 * const cluster = await TestCluster.create({ impl: 'ours', peers: 3, links: true })
 * try {
 *   await cluster.startAll()
 *   await cluster.waitFormed(30_000)
 *   const leader = await cluster.leader()
 *   await cluster.request(0, 'POST', `/pins/${cid}`)
 *   cluster.isolate([2])
 *   await cluster.kill9(leader!)
 * } finally {
 *   await cluster.close()
 * }
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanEnv, type ConsensusKind, implementations } from '../../bench/peers.ts'
import { type Proc, Processes, sleep } from '../../bench/process.ts'
import { type RestClient, restClient } from '../../src/api/rest/client.ts'
import { LinkProxies } from './link_proxy.ts'
import { freePort, taskFlags, TOOLS_BIN } from './peer.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Which implementation the cluster runs. */
export type ClusterImpl = 'ours' | 'go'

/** Options of TestCluster.create. */
export interface ClusterOptions {
  impl: ClusterImpl
  /** Founders (`init_peerset` = all of them with Raft). */
  peers: number
  /** 'raft' (default) or 'crdt': what `init --consensus` gets (see the module comment). */
  consensus?: ConsensusKind
  /** CRDT: `consensus.crdt.cluster_name` of every peer (default `ipfs-cluster`, init's). */
  clusterName?: string
  /**
   * The daemons' `--loglevel` (default: ours `info`, plus `consensus:debug` with `roleLog`; Go
   * `info,raftlib:info`).
   */
  logLevel?: string
  /** Where the config folders and logs go; a fresh temp folder by default (removed by close). */
  workDir?: string
  /**
   * The IPFS of peer `index`: resolves with its API multiaddr (`node_multiaddress`), or with that
   * and its `stop` (e.g. test/support/kubo.ts's `startKubo()` as `{ api: k.apiMultiaddr, stop:
   * k.stop }`), which close() then calls. Default: an
   * instant IPFS double per peer, started in the peers' namespace. `inside` turns an argv into one
   * that runs in the peers' namespace (needed for an IPFS of Go peers with `netns: 'own'`).
   */
  ipfs?: (
    index: number,
    inside: (cmd: string[]) => string[],
  ) => Promise<string | { api: string; stop(): Promise<void> }>
  /** For the default doubles: a file of CIDs (one a line) every double holds pinned at start. */
  doublePinned?: string
  /** Put a LinkProxies proxy on every ordered pair of peers (see cut/isolate/heal). */
  links?: boolean
  /** Go only: 'own' (default) makes a loopback-only namespace; 'inherit' runs in the caller's. */
  netns?: 'own' | 'inherit'
  /** ipfs-cluster-service 1.1.6 (default .tools/bin/ipfs-cluster-service). */
  goBin?: string
  /** Last edit of each peer's service.json (parsed), after the harness's own. */
  // deno-lint-ignore no-explicit-any
  edit?: (cfg: any, index: number) => void
  /**
   * Ours only: run the daemons with the consensus logger at debug, so that leader() sees a leader
   * step down (default true; the bench turns it off: it only needs who leads after a kill).
   */
  roleLog?: boolean
  /** Extra environment of every peer process. */
  env?: Record<string, string>
  /** Progress lines. */
  log?: (msg: string) => void
}

/** One peer of the cluster. */
export interface ClusterPeer {
  index: number
  /** `p<index>`: the name of its logs and of its links. */
  name: string
  /** Its libp2p peer ID (identity.json). */
  id: string
  dir: string
  clusterPort: number
  restPort: number
  /** `http://127.0.0.1:<restPort>` (from the peers' namespace). */
  restUrl: string
  /** Its IPFS API multiaddr. */
  ipfsApi: string
  /** Whether it was started as a joiner (`--bootstrap`). */
  joiner: boolean
  /** The running daemon, if any. */
  proc?: Proc
  /** True between sigstop and sigcont. */
  paused: boolean
}

/** A REST answer read to the end. */
export interface RestAnswer {
  status: number
  body: string
}

/** The `deno run` of our CLI with the service task's permissions (never -A). */
function oursCommand(dir: string, args: string[]): string[] {
  return [
    Deno.execPath(),
    'run',
    ...taskFlags('service'),
    join(ROOT, 'cli/main.ts'),
    'service',
    '--config',
    dir,
    ...args,
  ]
}

/** The lines that say a peer took a Raft role, newest wins (see `leader()`). */
const ROLE_LINES: Record<ClusterImpl, { leader: RegExp; other: RegExp }> = {
  // Ours logs `raft: <id> is the leader` at INFO, and `raft: <id> is <role>, leader <id>, term
  // <n>` at DEBUG.
  ours: {
    leader: /raft: \S+ is (?:the leader|leader,)/g,
    other: /raft: \S+ is (?:follower|preCandidate|candidate)/g,
  },
  // hashicorp/raft through the Go peer's logger: "entering leader state" / "entering follower
  // state" / "entering candidate state".
  go: { leader: /entering leader state/g, other: /entering (?:follower|candidate) state/g },
}

/** The log line of a peer that stays up but could not start its cluster (waitReady fails on it). */
const START_FAILURE: Record<ClusterImpl, RegExp> = {
  ours: /\tERROR\tcluster\terror starting cluster: [^\n]*/,
  go: /\tERROR\t(?:service\t|cluster\t[^\n]*consensus start timed out)[^\n]*/,
}

/** N peers of one implementation; see the module comment. */
export class TestCluster {
  readonly impl: ClusterImpl
  readonly consensus: ConsensusKind
  readonly peers: ClusterPeer[] = []
  readonly workDir: string
  readonly links?: LinkProxies
  readonly procs: Processes
  #opts: ClusterOptions
  #ownWorkDir: boolean
  #holder?: Proc
  #ipfsStops: (() => Promise<void>)[] = []
  #secret = ''
  #closed = false
  #log: (msg: string) => void

  private constructor(opts: ClusterOptions, workDir: string, ownWorkDir: boolean) {
    this.impl = opts.impl
    this.consensus = opts.consensus ?? 'raft'
    this.#opts = opts
    this.workDir = workDir
    this.#ownWorkDir = ownWorkDir
    this.procs = new Processes(join(workDir, 'logs'))
    if (opts.links) this.links = new LinkProxies()
    this.#log = opts.log ?? (() => {})
  }

  /** Writes the founders' config folders and starts their IPFS; starts no peer. */
  static async create(opts: ClusterOptions): Promise<TestCluster> {
    if (opts.links && opts.impl === 'go' && (opts.netns ?? 'own') === 'own') {
      throw new Error(
        'links need the peers in the caller\'s namespace: use netns: "inherit" for Go',
      )
    }
    const workDir = opts.workDir ?? await Deno.makeTempDir({ prefix: 'test-cluster-' })
    await Deno.mkdir(join(workDir, 'logs'), { recursive: true })
    const cluster = new TestCluster(opts, workDir, opts.workDir === undefined)
    try {
      await cluster.#setUp()
    } catch (err) {
      await cluster.close()
      throw err
    }
    return cluster
  }

  async #setUp(): Promise<void> {
    if (this.impl === 'go' && (this.#opts.netns ?? 'own') === 'own') {
      this.#holder = this.procs.start('netns', [
        'unshare',
        '-n',
        'sh',
        '-c',
        'ip link set lo up && echo netns-ready && exec sleep infinity',
      ])
      await this.#holder.waitForLog(/netns-ready/, 10_000)
    }
    for (let i = 0; i < this.#opts.peers; i++) await this.#newPeer(false)
    // Founders: every one lists every founder, and reaches the others through the peerstore.
    for (const p of this.peers) {
      // A CRDT cluster has no peerset to write.
      if (this.consensus === 'raft') {
        await this.#editConfig(p, (cfg) => {
          cfg.consensus.raft.init_peerset = this.peers.map((q) => q.id)
        })
      }
      await Deno.writeTextFile(
        join(p.dir, 'peerstore'),
        this.peers.filter((q) => q !== p).map((q) => this.addrFor(p, q) + '\n').join(''),
      )
    }
  }

  /** A fresh config folder for the next peer (init, then the harness's edits). */
  async #newPeer(joiner: boolean): Promise<ClusterPeer> {
    const index = this.peers.length
    const name = `p${index}`
    const dir = join(this.workDir, name)
    await Deno.remove(dir, { recursive: true }).catch(() => {})
    const impls = implementations({ repo: ROOT, goBin: this.#goBin() })
    await impls[this.impl].init(dir, this.consensus)
    const identity = JSON.parse(await Deno.readTextFile(join(dir, 'identity.json')))
    const given = this.#opts.ipfs
      ? await this.#opts.ipfs(index, (cmd) => this.inside(cmd))
      : await this.#startDouble(name)
    if (typeof given !== 'string') this.#ipfsStops.push(() => given.stop())
    const ipfsApi = typeof given === 'string' ? given : given.api
    const peer: ClusterPeer = {
      index,
      name,
      id: identity.id,
      dir,
      clusterPort: freePort(),
      restPort: freePort(),
      restUrl: '',
      ipfsApi,
      joiner,
      paused: false,
    }
    peer.restUrl = `http://127.0.0.1:${peer.restPort}`
    this.peers.push(peer)
    if (this.links) {
      for (const q of this.peers) {
        if (q === peer) continue
        this.links.open(peer.name, q.name, q.clusterPort)
        this.links.open(q.name, peer.name, peer.clusterPort)
      }
    }
    await this.#editConfig(peer, (cfg) => {
      if (!this.#secret) this.#secret = cfg.cluster.secret
      cfg.cluster.secret = this.#secret
      cfg.cluster.peername = name
      cfg.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${peer.clusterPort}`]
      // Through links, nobody may learn a peer's own listener (identify would hand it out).
      cfg.cluster.no_announce_multiaddress = this.links ? cfg.cluster.listen_multiaddress : []
      cfg.cluster.mdns_interval = '0s'
      cfg.cluster.peer_addresses = []
      if (this.consensus === 'crdt') {
        cfg.consensus.crdt.cluster_name = this.#opts.clusterName ?? 'ipfs-cluster'
        cfg.consensus.crdt.trusted_peers = ['*']
      } else {
        cfg.consensus.raft.init_peerset = []
      }
      cfg.api = { restapi: cfg.api.restapi }
      cfg.api.restapi.http_listen_multiaddress = `/ip4/127.0.0.1/tcp/${peer.restPort}`
      cfg.ipfs_connector = { ipfshttp: cfg.ipfs_connector.ipfshttp }
      cfg.ipfs_connector.ipfshttp.node_multiaddress = ipfsApi
      this.#opts.edit?.(cfg, index)
    })
    return peer
  }

  /** The multiaddr `from` uses to reach `to`: the link proxy when there are links. */
  addrFor(from: ClusterPeer, to: ClusterPeer): string {
    const port = this.links ? this.links.port(from.name, to.name) : to.clusterPort
    return `/ip4/127.0.0.1/tcp/${port}/p2p/${to.id}`
  }

  // deno-lint-ignore no-explicit-any
  async #editConfig(peer: ClusterPeer, edit: (cfg: any) => void): Promise<void> {
    const file = join(peer.dir, 'service.json')
    const cfg = JSON.parse(await Deno.readTextFile(file))
    edit(cfg)
    await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2) + '\n')
  }

  #goBin(): string {
    return this.#opts.goBin ?? join(TOOLS_BIN, 'ipfs-cluster-service')
  }

  /** argv run inside the peers' namespace (unchanged unless this cluster made its own). */
  inside(cmd: string[]): string[] {
    if (!this.#holder) return cmd
    return ['nsenter', '-t', String(this.#holder.pid), '-n', '--', ...cmd]
  }

  async #startDouble(name: string): Promise<string> {
    const args = [Deno.execPath(), 'run', '-A', join(ROOT, 'bench/ipfs_double.ts')]
    if (this.#opts.doublePinned) args.push('--pinned', this.#opts.doublePinned)
    const proc = this.procs.start(`${name}-ipfs`, this.inside(args), { cwd: ROOT })
    const m = await proc.waitForLog(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/m, 120_000)
    return m[0]
  }

  #command(peer: ClusterPeer, args: string[]): string[] {
    // Role changes in the logs, for leader(): the Go peer logs its Raft library's with raftlib at
    // info; ours logs becoming leader at info and every role at debug.
    const daemon = args[0] === 'daemon'
    const raft = this.consensus === 'raft'
    const level = this.#opts.logLevel ??
      (this.impl === 'ours'
        ? (raft && this.#opts.roleLog !== false ? 'info,consensus:debug' : undefined)
        : (raft ? 'info,raftlib:info' : undefined))
    const cmd = this.impl === 'ours'
      ? oursCommand(peer.dir, [...(daemon && level ? ['--loglevel', level] : []), ...args])
      : [
        this.#goBin(),
        '--config',
        peer.dir,
        ...(daemon && level ? ['--loglevel', level] : []),
        ...args,
      ]
    return this.inside(cmd)
  }

  #peer(i: number | ClusterPeer): ClusterPeer {
    const p = typeof i === 'number' ? this.peers[i] : i
    if (!p) throw new Error(`no peer ${i}`)
    return p
  }

  /** Runs `service <args>` on a peer's folder (not its daemon) and returns its output. */
  async run(i: number | ClusterPeer, args: string[]): Promise<string> {
    const peer = this.#peer(i)
    const cmd = this.#command(peer, args)
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: ROOT,
      env: { ...cleanEnv(), ...this.#opts.env },
      clearEnv: true,
      stdin: 'null',
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    const dec = new TextDecoder()
    const text = (dec.decode(out.stdout) + dec.decode(out.stderr)).trim()
    if (out.code !== 0) {
      throw new Error(`${peer.name}: ${args.join(' ')} (exit ${out.code}): ${text}`)
    }
    return text
  }

  /** Offline `state import -f <file>` into a stopped peer. */
  async importState(i: number | ClusterPeer, file: string): Promise<void> {
    await this.run(i, ['state', 'import', '-f', file])
  }

  /**
   * CRDT: replaces stopped peer `to`'s store (DAG blocks, set, heads) with a copy of stopped peer
   * `from`'s. After a `state import` into `from`, this gives `to` what the same import would (an
   * import of one file builds the same delta chain on every peer of one implementation: same
   * heads), without paying for the import again.
   */
  async copyCrdtState(from: number | ClusterPeer, to: number | ClusterPeer): Promise<void> {
    if (this.consensus !== 'crdt') throw new Error('copyCrdtState: not a CRDT cluster')
    const [a, b] = [this.#peer(from), this.#peer(to)]
    for (const p of [a, b]) {
      if (p.proc?.running()) throw new Error(`copyCrdtState: ${p.name} is running`)
    }
    const store = implementations({ repo: ROOT, goBin: this.#goBin() })[this.impl].crdtStore
    await Deno.remove(join(b.dir, store), { recursive: true }).catch(() => {})
    const out = await new Deno.Command('cp', {
      args: ['-a', join(a.dir, store), join(b.dir, store)],
      stderr: 'piped',
    }).output()
    if (out.code !== 0) {
      throw new Error(`copyCrdtState: cp failed: ${new TextDecoder().decode(out.stderr).trim()}`)
    }
  }

  /** Starts a peer's daemon (no wait; see waitReady). A joiner gets `--bootstrap`. */
  start(i: number | ClusterPeer, extraArgs: string[] = []): ClusterPeer {
    const peer = this.#peer(i)
    if (peer.proc?.running()) throw new Error(`${peer.name} is already running`)
    peer.paused = false
    peer.proc = this.procs.start(peer.name, this.#command(peer, ['daemon', ...extraArgs]), {
      cwd: ROOT,
      env: { ...cleanEnv(), ...this.#opts.env },
    })
    return peer
  }

  /** Starts every founder. */
  startAll(): void {
    for (const p of this.peers) if (!p.joiner) this.start(p)
  }

  /**
   * Prepares a joiner: a clean config folder (same secret, no `init_peerset`, empty peerstore) and
   * its IPFS; starts nothing. `startJoiner` starts it; `join` does both.
   */
  async addJoiner(): Promise<ClusterPeer> {
    return await this.#newPeer(true)
  }

  /**
   * Starts a prepared joiner with `daemon --bootstrap <addr of peer from>` (default: the first
   * running founder). Does not wait (see waitReady).
   */
  startJoiner(peer: ClusterPeer, from?: number | ClusterPeer): ClusterPeer {
    const via = from === undefined
      ? this.peers.find((p) => p !== peer && p.proc?.running())
      : this.#peer(from)
    if (!via) throw new Error('join: no running peer to bootstrap from')
    return this.start(peer, ['--bootstrap', this.addrFor(peer, via)])
  }

  /** addJoiner, then startJoiner. */
  async join(from?: number | ClusterPeer): Promise<ClusterPeer> {
    return this.startJoiner(await this.addJoiner(), from)
  }

  /** Last edit of a stopped peer's service.json (e.g. a longer timeout for one peer). */
  // deno-lint-ignore no-explicit-any
  async editConfig(i: number | ClusterPeer, edit: (cfg: any) => void): Promise<void> {
    await this.#editConfig(this.#peer(i), edit)
  }

  /**
   * Waits until the peer logs READY and `GET /id` answers 200. Fails at once, with the line, when
   * the peer logs that it could not start (e.g. no leader after `wait_for_leader_timeout`) or exits.
   */
  async waitReady(i: number | ClusterPeer, timeoutMs = 60_000): Promise<void> {
    const peer = this.#peer(i)
    const proc = peer.proc
    if (!proc) throw new Error(`${peer.name} was not started`)
    const deadline = Date.now() + timeoutMs
    while (true) {
      const log = await Deno.readTextFile(proc.logPath).catch(() => '')
      if (log.includes('IPFS Cluster is READY')) break
      const failed = START_FAILURE[this.impl].exec(log)
      if (failed) throw new Error(`${peer.name} could not start: ${failed[0].trim()}`)
      if (!proc.running()) {
        throw new Error(`${peer.name} exited (${await proc.exited}):\n${await proc.tail()}`)
      }
      if (Date.now() > deadline) {
        throw new Error(`${peer.name}: not READY after ${timeoutMs} ms:\n${await proc.tail()}`)
      }
      await sleep(50)
    }
    while ((await this.request(peer, 'GET', '/id').catch(() => undefined))?.status !== 200) {
      if (Date.now() > deadline) throw new Error(`${peer.name}: GET /id not 200`)
      await sleep(50)
    }
  }

  /**
   * Waits until every running peer's `GET /peers` lists exactly the running peers' IDs (the
   * cluster formed). Throws after `timeoutMs` with what each peer listed.
   */
  async waitFormed(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = ''
    while (true) {
      const running = this.peers.filter((p) => p.proc?.running())
      const want = running.map((p) => p.id).sort().join(',')
      const seen = await Promise.all(running.map(async (p) => {
        const r = await this.request(p, 'GET', '/peers').catch((e) => ({
          status: 0,
          body: (e as Error).message,
        }))
        if (r.status !== 200) return `${p.name}: HTTP ${r.status} ${r.body.slice(0, 200)}`
        const ids = r.body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l).id)
        return ids.sort().join(',') === want
          ? ''
          : `${p.name} lists ${ids.length} peer(s): ${
            ids.map((id) => this.peers.find((q) => q.id === id)?.name ?? id).join(' ')
          }`
      }))
      last = seen.filter(Boolean).join('; ')
      if (!last) return
      if (Date.now() > deadline) {
        throw new Error(
          `the ${running.length} running peers did not form one cluster in ${timeoutMs} ms: ${last}`,
        )
      }
      await sleep(200)
    }
  }

  /**
   * The peer that leads now, by its log: the running, unpaused peer whose newest role line says
   * leader (the REST API of neither implementation names the Raft leader). Undefined when none.
   */
  async leader(): Promise<ClusterPeer | undefined> {
    if (this.consensus !== 'raft') throw new Error('a CRDT cluster has no leader')
    const lines = ROLE_LINES[this.impl]
    for (const p of this.peers) {
      if (!p.proc?.running() || p.paused) continue
      const log = await Deno.readTextFile(p.proc.logPath).catch(() => '')
      const lastAt = (re: RegExp) => Math.max(-1, ...[...log.matchAll(re)].map((m) => m.index!))
      const led = lastAt(lines.leader)
      if (led >= 0 && led > lastAt(lines.other)) return p
    }
    return undefined
  }

  /** Waits for `leader()` to name a peer (optionally other than `not`). */
  async waitLeader(
    timeoutMs = 30_000,
    not?: ClusterPeer,
  ): Promise<ClusterPeer> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const l = await this.leader()
      if (l && l !== not) return l
      await sleep(50)
    }
    throw new Error(`no Raft leader${not ? ` other than ${not.name}` : ''} in ${timeoutMs} ms`)
  }

  /** One REST call to a peer, read to the end (from the peers' namespace: see `inside`). */
  async request(
    i: number | ClusterPeer,
    method: string,
    path: string,
    opts: { body?: string; timeoutMs?: number } = {},
  ): Promise<RestAnswer> {
    const peer = this.#peer(i)
    if (this.#holder) {
      // Another namespace: curl entered into it.
      const out = await new Deno.Command('nsenter', {
        args: [
          '-t',
          String(this.#holder.pid),
          '-n',
          '--',
          'curl',
          '-sS',
          '-X',
          method,
          '-m',
          String((opts.timeoutMs ?? 10_000) / 1000),
          '-w',
          '\n%{http_code}',
          ...(opts.body !== undefined ? ['--data-binary', opts.body] : []),
          `${peer.restUrl}${path}`,
        ],
        stdout: 'piped',
        stderr: 'piped',
      }).output()
      const text = new TextDecoder().decode(out.stdout)
      if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr).trim())
      const cut = text.lastIndexOf('\n')
      return { status: Number(text.slice(cut + 1)), body: text.slice(0, cut) }
    }
    const res = await fetch(`${peer.restUrl}${path}`, {
      method,
      body: opts.body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    })
    return { status: res.status, body: await res.text() }
  }

  /**
   * How many pins the peer's state lists (`GET /allocations?filter=all`, streamed through `wc -l`,
   * never held in memory): cheap enough to poll for thousands, seconds for a million.
   */
  async countAllocations(i: number | ClusterPeer, timeoutMs = 600_000): Promise<number> {
    const peer = this.#peer(i)
    const url = `${peer.restUrl}/allocations?filter=all`
    const cmd = this.inside([
      'bash',
      '-c',
      'set -o pipefail; curl -sS --fail --no-buffer -m "$2" "$1" | wc -l',
      'bash',
      url,
      String(timeoutMs / 1000),
    ])
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    if (out.code !== 0) {
      throw new Error(
        `${peer.name}: GET /allocations: ${new TextDecoder().decode(out.stderr).trim()}`,
      )
    }
    return Number(new TextDecoder().decode(out.stdout).trim())
  }

  /**
   * The project's REST client (src/api/rest/client.ts, what ctl uses) for one peer. Only from the
   * peers' namespace: a cluster with its own namespace is reached through `request` instead.
   */
  client(i: number | ClusterPeer, opts: { timeoutMs?: number } = {}): RestClient {
    if (this.#holder) throw new Error('client(): the peers run in their own namespace; use request')
    return restClient({ host: this.#peer(i).restUrl, timeoutMs: opts.timeoutMs ?? 30_000 })
  }

  /** SIGTERM, then wait (SIGKILL after `graceMs`); resolves with the exit code. */
  async stop(i: number | ClusterPeer, graceMs = 20_000): Promise<number | undefined> {
    const peer = this.#peer(i)
    if (!peer.proc) return undefined
    if (peer.paused) this.sigcont(peer)
    return await peer.proc.stop(graceMs)
  }

  /** SIGKILL; resolves when the process is gone. */
  async kill9(i: number | ClusterPeer): Promise<void> {
    const peer = this.#peer(i)
    if (!peer.proc?.running()) return
    signal(peer.proc.pid, 'SIGKILL')
    await peer.proc.exited
    peer.paused = false
  }

  /** SIGSTOP: the peer freezes with its sockets open. */
  sigstop(i: number | ClusterPeer): void {
    const peer = this.#peer(i)
    if (!peer.proc?.running()) throw new Error(`${peer.name} is not running`)
    signal(peer.proc.pid, 'SIGSTOP')
    peer.paused = true
  }

  /** SIGCONT after sigstop. */
  sigcont(i: number | ClusterPeer): void {
    const peer = this.#peer(i)
    if (!peer.proc?.running()) throw new Error(`${peer.name} is not running`)
    signal(peer.proc.pid, 'SIGCONT')
    peer.paused = false
  }

  /** Cuts the links of peers `group` (indexes) from every other peer (needs `links`). */
  isolate(group: number[]): void {
    if (!this.links) throw new Error('isolate needs a cluster created with links: true')
    this.links.isolate(group.map((i) => this.#peer(i).name), this.peers.map((p) => p.name))
  }

  /** Cuts one pair (needs `links`). */
  cut(a: number, b: number): void {
    if (!this.links) throw new Error('cut needs a cluster created with links: true')
    this.links.cut(this.#peer(a).name, this.#peer(b).name)
  }

  /** Heals every cut link. */
  heal(): void {
    this.links?.healAll()
  }

  /** Stops every process (peers first, then the IPFS doubles, then the namespace); idempotent. */
  async close(opts: { keep?: boolean } = {}): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const p of this.peers) if (p.paused && p.proc?.running()) this.sigcont(p)
    await Promise.all(this.peers.map((p) => p.proc?.stop(10_000)))
    await this.procs.stopAll(5_000)
    for (const stop of this.#ipfsStops) await stop().catch(() => {})
    await this.links?.close()
    if (this.#ownWorkDir && !opts.keep) {
      await Deno.remove(this.workDir, { recursive: true }).catch(() => {})
    } else if (opts.keep) this.#log(`cluster work folder kept: ${this.workDir}`)
  }
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig)
  } catch {
    // already gone
  }
}
