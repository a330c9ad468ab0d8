/**
 * The Raft log alone, for `bench/raft.ts`: real `RaftNode`s over real `KvRaftStorage` talking
 * through the in-process `MemoryNetwork`, driven by the smallest host that keeps the Ready
 * contract (send the leader's replication early, persist, send the rest, advance) and no state
 * machine. A proposal is one entry; it resolves when the leader sees it committed. This is what
 * the consensus log itself sustains on this machine; `raftConsensus` adds the pinset on top.
 *
 * @example
 * ```ts
 * const cluster = await LogCluster.start(['a', 'b', 'c'], dir)
 * await cluster.leader().propose(new Uint8Array(200))
 * await cluster.stop()
 * ```
 */
import { join } from 'node:path'
import {
  canSendBeforePersist,
  type Message,
  RaftNode,
  type Ready,
} from '../src/consensus/raft/core/mod.ts'
import { KvRaftStorage } from '../src/consensus/raft/kv_storage.ts'
import { MicrotaskRunner } from '../src/consensus/raft/ready_loop.ts'
import { MemoryNetwork } from '../src/consensus/raft/memory_transport.ts'
import type { RaftTransport } from '../src/consensus/raft/transport.ts'

/** One node of the bench's log-only cluster. */
export class LogNode {
  readonly id: string
  readonly #node: RaftNode
  readonly #storage: KvRaftStorage
  readonly #kv: Deno.Kv
  readonly #transport: RaftTransport
  readonly #waiters = new Map<number, () => void>()
  readonly #unlisten: () => void
  readonly #ticker: ReturnType<typeof setInterval>
  readonly #runner = new MicrotaskRunner(() => this.#loop(), () => this.#stopped)
  #stopped = false
  /** Readys that appended entries, and the entries they appended (batching). */
  readys = 0
  appended = 0

  private constructor(id: string, kv: Deno.Kv, storage: KvRaftStorage, net: MemoryNetwork) {
    this.id = id
    this.#kv = kv
    this.#storage = storage
    this.#transport = net.endpoint()
    this.#node = new RaftNode({
      id,
      storage,
      rand: Math.random,
      electionTick: 10,
      heartbeatTick: 1,
    })
    this.#unlisten = this.#transport.listen(id, {
      message: (m) => {
        if (this.#stopped) return
        this.#node.step(m)
        this.#schedule()
      },
      snapshotChunk: () => Promise.reject(new Error('no snapshots in the log bench')),
    })
    this.#ticker = setInterval(() => {
      this.#node.tick()
      this.#schedule()
    }, 10)
  }

  static async open(id: string, voters: string[], dir: string, net: MemoryNetwork) {
    const kv = await Deno.openKv(join(dir, `log-${id}.kv`))
    const storage = await KvRaftStorage.open(kv, { initialConf: { voters, learners: [] } })
    return new LogNode(id, kv, storage, net)
  }

  get isLeader(): boolean {
    return this.#node.basicStatus().role === 'leader'
  }

  campaign(): void {
    this.#node.campaign()
    this.#schedule()
  }

  /** Appends one entry (on the leader); resolves once the leader knows it committed. */
  propose(data: Uint8Array): Promise<void> {
    const r = this.#node.propose(data)
    if (!('index' in r)) return Promise.reject(new Error('not the leader'))
    return new Promise((resolve) => {
      this.#waiters.set(r.index, resolve)
      this.#schedule()
    })
  }

  #schedule(): void {
    this.#runner.schedule()
  }

  async #loop(): Promise<void> {
    while (!this.#stopped && this.#node.hasReady()) {
      this.#runner.looking()
      const rd = this.#node.ready()
      await this.#handle(rd)
      this.#node.advance(rd)
    }
  }

  async #handle(rd: Ready): Promise<void> {
    const early: Message[] = []
    const late: Message[] = []
    for (const m of rd.messages) (canSendBeforePersist(rd, m) ? early : late).push(m)
    if (early.length) this.#transport.send(early)
    if (rd.entries.length || rd.mustSync) {
      await this.#storage.persist(rd.entries, rd.hardState, [])
    }
    if (rd.entries.length) {
      this.readys++
      this.appended += rd.entries.length
    }
    if (late.length) this.#transport.send(late)
    for (const e of rd.committedEntries) {
      const w = this.#waiters.get(e.index)
      if (w) {
        this.#waiters.delete(e.index)
        w()
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#ticker)
    this.#unlisten()
    await this.#runner.running?.catch(() => {})
    await this.#storage.drain()
    this.#kv.close()
  }
}

/** A few `LogNode`s on one `MemoryNetwork`. */
export class LogCluster {
  readonly nodes: LogNode[]

  private constructor(nodes: LogNode[]) {
    this.nodes = nodes
  }

  /** Starts the nodes (KV files in `dir`) and waits until the first one leads. */
  static async start(ids: string[], dir: string): Promise<LogCluster> {
    const net = new MemoryNetwork()
    const nodes: LogNode[] = []
    for (const id of ids) nodes.push(await LogNode.open(id, ids, dir, net))
    const c = new LogCluster(nodes)
    nodes[0].campaign()
    const deadline = Date.now() + 10_000
    while (!nodes[0].isLeader) {
      if (Date.now() > deadline) throw new Error('log bench: no leader')
      await new Promise((r) => setTimeout(r, 5))
    }
    return c
  }

  leader(): LogNode {
    const l = this.nodes.find((n) => n.isLeader)
    if (!l) throw new Error('log bench: no leader')
    return l
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await n.stop()
  }
}
