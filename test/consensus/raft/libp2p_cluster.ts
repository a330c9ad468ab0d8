/**
 * Raft peers over real libp2p hosts on 127.0.0.1, for the transport's end-to-end tests and
 * `bench/raft_net.ts`: each peer is a cluster host (`startHost`, TCP + Noise + Yamux), a
 * `libp2pTransport` on it and the production `raftConsensus` on its own temporary KV file. The
 * peers know each other's addresses through their peer stores, as the cluster's peerstore file
 * makes them. A peer can be stopped (host and all) and started again on the same port, key and
 * database: a restart.
 *
 * Time is the system clock (timers and sockets are real here), so waits are generous wall-clock
 * bounds; the exact timing logic is covered by the clock-injected unit tests.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { type RaftConfig, raftSection } from '../../../src/consensus/raft/config.ts'
import {
  type Libp2pTransport,
  libp2pTransport,
  type Libp2pTransportOptions,
} from '../../../src/consensus/raft/libp2p_transport.ts'
import {
  type RaftConsensus,
  raftConsensus,
  type RaftTuning,
} from '../../../src/consensus/raft/raft_consensus.ts'
import { type ClusterHost, startHost } from '../../../src/net/host.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import type { Logger } from '../../../src/util/log.ts'
import { freePort } from '../../support/peer.ts'
import { waitFor } from '../../support/wait.ts'
import { leaderOf, tempKvPath } from './kv_cluster.ts'

/** Timings for real time on a busy machine: 10 ms ticks, elections after 0.6–1.2 s. */
export function netConfig(over: Partial<RaftConfig> = {}): RaftConfig {
  return {
    ...raftSection.defaults(),
    heartbeat_timeout: 100,
    election_timeout: 600,
    wait_for_leader_timeout: 10_000,
    network_timeout: 5000,
    commit_retries: 2,
    commit_retry_delay: 100,
    ...over,
  }
}

/** One running peer. */
export interface NetNode {
  id: string
  host: ClusterHost
  transport: Libp2pTransport
  kv: Deno.Kv
  state: PinState
  consensus: RaftConsensus
  logs: string[]
}

/** Who a peer is and where it lives: enough to start it in another process. */
export interface NetIdentity {
  key: PrivateKey
  id: string
  port: number
  path: string
}

function captureLog(lines: string[]): Logger {
  const at = (lvl: string) => (msg: string) => void lines.push(`${lvl} ${msg}`)
  return { debug() {}, info: at('info'), warn: at('warn'), error: at('error') }
}

/** Options of a `NetCluster`. */
export interface NetClusterOptions {
  config?: RaftConfig
  tuning?: RaftTuning
  /** Extra transport options (bounds, backoff). */
  transport?: Partial<Libp2pTransportOptions>
}

/** A set of peers over libp2p on loopback. */
export class NetCluster {
  readonly nodes = new Map<string, NetNode>()
  readonly ids: string[]
  readonly #who: NetIdentity[]
  readonly #opts: NetClusterOptions

  private constructor(who: NetIdentity[], opts: NetClusterOptions) {
    this.#who = who
    this.ids = who.map((w) => w.id)
    this.#opts = opts
  }

  /** A cluster of the given identities (made by another process's `create`); nothing runs yet. */
  static of(who: NetIdentity[], opts: NetClusterOptions = {}): NetCluster {
    return new NetCluster(who, opts)
  }

  /** The identities of every peer. */
  get identities(): readonly NetIdentity[] {
    return this.#who
  }

  /** Makes `n` identities (keys, free ports, KV paths); nothing runs yet. */
  static async create(n: number, opts: NetClusterOptions = {}): Promise<NetCluster> {
    const who: NetIdentity[] = []
    for (let i = 0; i < n; i++) {
      const key = await generateKeyPair('Ed25519')
      // Each host listens on a port the OS picked once, kept for restarts.
      const port = freePort()
      const id = peerIdFromPrivateKey(key).toString()
      who.push({ key, id, port, path: await tempKvPath(`net${i}`) })
    }
    return new NetCluster(who, opts)
  }

  #identity(id: string): NetIdentity {
    const w = this.#who.find((x) => x.id === id)
    if (!w) throw new Error(`unknown peer ${id}`)
    return w
  }

  /** Starts `id`'s host alone, on its port, knowing where every other peer listens. */
  async startHost(id: string): Promise<ClusterHost> {
    const w = this.#identity(id)
    const host = await startHost({
      privateKey: w.key,
      listen: [`/ip4/127.0.0.1/tcp/${w.port}`],
      secret: '',
    })
    for (const other of this.#who) {
      if (other.id === id) continue
      await host.libp2p.peerStore.merge(peerIdFromString(other.id), {
        multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${other.port}`)],
      })
    }
    return host
  }

  /** Starts `id`'s host, transport and consensus (again, on its database, if it ran before). */
  async start(id: string): Promise<NetNode> {
    const w = this.#identity(id)
    const host = await this.startHost(id)
    const logs: string[] = []
    const log = captureLog(logs)
    const transport = libp2pTransport({ libp2p: host.libp2p, log, ...this.#opts.transport })
    const kv = await Deno.openKv(w.path)
    const state = kvState(kv)
    const consensus = raftConsensus(this.#opts.config ?? netConfig(), {
      peerId: id,
      kv,
      state,
      hooks: { onPin: () => {}, onUnpin: () => {}, onRestore: () => {} },
      transport,
      initialVoters: this.ids.includes(id) ? this.ids : [],
      log,
      tuning: this.#opts.tuning,
    })
    await consensus.opened
    const node = { id, host, transport, kv, state, consensus, logs }
    this.nodes.set(id, node)
    return node
  }

  async startAll(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.start(id)))
  }

  /** Stops `id` in the daemon's order: consensus, transport, host, database. */
  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id)
    if (!n) return
    this.nodes.delete(id)
    await n.consensus.stop()
    await n.transport.stop()
    await n.host.stop()
    n.kv.close()
  }

  /** The running peer that leads at the highest term. */
  leader(): NetNode | undefined {
    return leaderOf(this.nodes.values())
  }

  /** Waits for a leader other than `not`. */
  async waitLeader(not?: string): Promise<NetNode> {
    let l: NetNode | undefined
    await waitFor(() => {
      l = this.leader()
      return l !== undefined && l.id !== not
    }, { what: 'a leader' })
    return l!
  }

  /** Waits until every running peer applied the leader's commit index. */
  async converge(): Promise<void> {
    await waitFor(() => {
      const l = this.leader()
      if (!l) return false
      const c = l.consensus.status().commit
      return [...this.nodes.values()].every((n) => n.consensus.status().applied >= c)
    }, { what: 'every peer to apply the commit index' })
  }

  /** Stops every peer and deletes the databases. */
  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id)
    for (const w of this.#who) {
      for (const f of [w.path, `${w.path}-wal`, `${w.path}-shm`]) {
        await Deno.remove(f).catch(() => {})
      }
    }
  }
}
