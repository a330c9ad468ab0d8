/**
 * A small synchronous cluster for scenario tests: every node runs a real `RaftNode` over a
 * `MemoryStorage`, Ready batches are handled the way a host must (persist, send, apply, advance),
 * and messages travel through a FIFO queue that tests can cut (partitions) or filter.
 * Snapshots are streamed in chunks through `snapshotChunks` / `MemorySnapshotAssembler`, as a
 * real transport would.
 *
 * The application is a list of strings: every non-empty normal entry appends its text.
 */
import {
  decodeConfChangeEntry,
  type Entry,
  MemorySnapshotAssembler,
  MemoryStorage,
  type Message,
  type NodeId,
  RaftNode,
  type RaftNodeConfig,
  type ReadState,
  seededRandom,
  type SnapshotChunk,
  snapshotChunks,
  type SoftState,
} from '../../../src/consensus/raft/core/mod.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Options shared by every node of a test cluster. */
export type NodeOptions = Partial<Omit<RaftNodeConfig, 'id' | 'storage'>>

/** One node and the host state around it. */
export interface TestNode {
  id: NodeId
  node: RaftNode
  storage: MemoryStorage
  alive: boolean
  /** Application state: texts of applied entries, in order. */
  state: string[]
  appliedIndex: number
  /** Every committed entry this incarnation applied (including empty and conf entries). */
  appliedEntries: Entry[]
  readStates: ReadState[]
  softStates: SoftState[]
  assembler: MemorySnapshotAssembler
  staged: Map<string, Uint8Array>
}

type Item =
  | { kind: 'msg'; m: Message }
  | { kind: 'chunk'; c: SnapshotChunk }
  | { kind: 'snapReport'; from: NodeId; to: NodeId; streamId: number }

function hashId(id: string): number {
  let h = 2166136261
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619)
  return h >>> 0
}

/** A synchronous test cluster. */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>()
  readonly opts: NodeOptions
  /** Bytes per snapshot chunk. */
  chunkSize = 16
  /** Return false to drop a message or chunk in flight (on top of partitions). */
  filter: (item: { from: NodeId; to: NodeId; type: string; chunkIndex?: number }) => boolean = () =>
    true
  /** Every message delivered, for assertions on traffic. */
  delivered: Message[] = []
  #queue: Item[] = []
  #cut = new Set<string>()
  #streamSeq = 0
  #streamOk = new Map<number, boolean>()

  constructor(voters: NodeId[], opts: NodeOptions = {}) {
    this.opts = opts
    for (const id of voters) this.#add(id, MemoryStorage.bootstrap(voters))
  }

  #add(id: NodeId, storage: MemoryStorage): TestNode {
    const t: TestNode = {
      id,
      node: this.#newNode(id, storage),
      storage,
      alive: true,
      state: [],
      appliedIndex: storage.snapshot().index,
      appliedEntries: [],
      readStates: [],
      softStates: [],
      assembler: new MemorySnapshotAssembler(id),
      staged: new Map(),
    }
    this.nodes.set(id, t)
    return t
  }

  #newNode(id: NodeId, storage: MemoryStorage): RaftNode {
    return new RaftNode({
      electionTick: 10,
      heartbeatTick: 1,
      rand: seededRandom(hashId(id)),
      ...this.opts,
      id,
      storage,
    })
  }

  /** Starts a node with empty storage that will join through a membership change. */
  addJoiningNode(id: NodeId): TestNode {
    return this.#add(id, MemoryStorage.joining())
  }

  get(id: NodeId): TestNode {
    const t = this.nodes.get(id)
    if (!t) throw new Error(`no node ${id}`)
    return t
  }

  node(id: NodeId): RaftNode {
    return this.get(id).node
  }

  /** The live node that believes it leads at the highest term, if any. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined
    for (const t of this.nodes.values()) {
      if (!t.alive) continue
      const s = t.node.status()
      if (s.role === 'leader' && (!best || s.term > best.term)) best = { id: t.id, term: s.term }
    }
    return best?.id
  }

  // ------------------------------------------------------------ network

  #key(a: NodeId, b: NodeId): string {
    return `${a}\0${b}`
  }

  /** Cuts every link between the groups (links inside a group stay). */
  partition(...groups: NodeId[][]): void {
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue
        for (const a of g) for (const b of h) this.#cut.add(this.#key(a, b))
      }
    }
  }

  /** Cuts `id` off from everyone. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue
      this.#cut.add(this.#key(id, other))
      this.#cut.add(this.#key(other, id))
    }
  }

  heal(): void {
    this.#cut.clear()
  }

  #passes(from: NodeId, to: NodeId, type: string, chunkIndex?: number): boolean {
    if (this.#cut.has(this.#key(from, to))) return false
    const t = this.nodes.get(to)
    if (!t || !t.alive) return false
    return this.filter({ from, to, type, chunkIndex })
  }

  // ------------------------------------------------------------ host loop

  #send(t: TestNode, m: Message): void {
    if (m.type !== 'snapshot') {
      this.#queue.push({ kind: 'msg', m })
      return
    }
    // The core asked us to stream a snapshot: read it from our store and chunk it.
    const streamId = ++this.#streamSeq
    const snap = t.storage.snapshot()
    if (snap.index !== m.snapshot.index || snap.term !== m.snapshot.term) {
      this.#streamOk.set(streamId, false)
    } else {
      this.#streamOk.set(streamId, true)
      for (const c of snapshotChunks(m, streamId, t.storage.snapshotData(), this.chunkSize)) {
        this.#queue.push({ kind: 'chunk', c })
      }
    }
    this.#queue.push({ kind: 'snapReport', from: m.from, to: m.to, streamId })
  }

  #handleReady(t: TestNode): void {
    const rd = t.node.ready()
    if (rd.softState) t.softStates.push(rd.softState)
    if (rd.snapshot) {
      const key = `${rd.snapshot.index}/${rd.snapshot.term}`
      const data = t.staged.get(key)
      if (!data) throw new Error(`${t.id}: snapshot ${key} to install was never staged`)
      t.storage.applySnapshot(rd.snapshot, data)
      t.state = JSON.parse(dec.decode(data))
      t.appliedIndex = rd.snapshot.index
      for (const k of t.staged.keys()) {
        if (Number(k.split('/')[0]) <= rd.snapshot.index) t.staged.delete(k)
      }
    }
    t.storage.append(rd.entries)
    if (rd.hardState) t.storage.setHardState(rd.hardState)
    for (const m of rd.messages) this.#send(t, m)
    for (const e of rd.committedEntries) {
      if (e.index !== t.appliedIndex + 1) {
        throw new Error(`${t.id}: applying ${e.index} after ${t.appliedIndex}`)
      }
      t.appliedIndex = e.index
      t.appliedEntries.push(e)
      if (e.type === 'normal' && e.data.length > 0) t.state.push(dec.decode(e.data))
      if (e.type === 'confChange') {
        const { change } = decodeConfChangeEntry(e.data)
        // A removed node shuts down once it applied its own removal.
        if (change.type === 'removeNode' && change.id === t.id) t.alive = false
      }
    }
    t.readStates.push(...rd.readStates)
    t.node.advance(rd)
  }

  #deliver(item: Item): void {
    if (item.kind === 'msg') {
      const m = item.m
      if (!this.#passes(m.from, m.to, m.type)) return
      this.delivered.push(m)
      this.get(m.to).node.step(m)
      return
    }
    if (item.kind === 'chunk') {
      const c = item.c
      if (!this.#passes(c.from, c.to, 'snapshotChunk', c.chunkIndex)) {
        this.#streamOk.set(c.streamId, false)
        return
      }
      const t = this.get(c.to)
      const done = t.assembler.receive(c)
      if (done) {
        t.staged.set(`${done.message.snapshot.index}/${done.message.snapshot.term}`, done.data)
        t.node.step(done.message)
      }
      return
    }
    const sender = this.nodes.get(item.from)
    if (sender?.alive) sender.node.reportSnapshot(item.to, this.#streamOk.get(item.streamId)!)
  }

  /** Handles every Ready and delivers every message until the cluster is quiet. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false
      for (const t of this.nodes.values()) {
        while (t.alive && t.node.hasReady()) {
          busy = true
          this.#handleReady(t)
        }
      }
      const items = this.#queue
      this.#queue = []
      for (const item of items) {
        busy = true
        this.#deliver(item)
      }
      if (!busy) return
    }
    throw new Error('cluster did not stabilize')
  }

  /** Ticks the given nodes (all live ones by default) `n` times, stabilizing after each tick. */
  tick(n = 1, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const t of this.nodes.values()) {
        if (t.alive && (!ids || ids.includes(t.id))) t.node.tick()
      }
      this.stabilize()
    }
  }

  /** Makes `id` campaign and settles the election. */
  elect(id: NodeId): void {
    this.node(id).campaign()
    this.stabilize()
  }

  propose(id: NodeId, text: string) {
    const r = this.node(id).propose(enc.encode(text))
    this.stabilize()
    return r
  }

  crash(id: NodeId): void {
    this.get(id).alive = false
  }

  /** Restarts `id` from what its storage holds (everything it persisted). */
  restart(id: NodeId): void {
    const t = this.get(id)
    t.node = this.#newNode(id, t.storage)
    t.alive = true
    const data = t.storage.snapshotData()
    t.state = data.length > 0 ? JSON.parse(dec.decode(data)) : []
    t.appliedIndex = t.storage.snapshot().index
    t.appliedEntries = []
    t.assembler = new MemorySnapshotAssembler(id)
    t.staged.clear()
  }

  /** Takes an application snapshot at the applied index and compacts the log up to it. */
  compact(id: NodeId): void {
    const t = this.get(id)
    const meta = t.node.snapshotMetaAt(t.appliedIndex)
    t.storage.createSnapshot(meta, enc.encode(JSON.stringify(t.state)))
    t.storage.compact(meta.index)
  }
}

export { dec, enc }

/** What a single node produced while its Ready batches were drained. */
export interface Drained {
  messages: Message[]
  committed: Entry[]
  readStates: ReadState[]
  softStates: SoftState[]
}

/**
 * For tests that drive one node by hand: handles every pending Ready the way a host must
 * (persist to `storage`, collect messages, apply, advance) and returns what came out.
 */
export function drain(node: RaftNode, storage: MemoryStorage): Drained {
  const out: Drained = { messages: [], committed: [], readStates: [], softStates: [] }
  while (node.hasReady()) {
    const rd = node.ready()
    if (rd.softState) out.softStates.push(rd.softState)
    if (rd.snapshot) storage.applySnapshot(rd.snapshot)
    storage.append(rd.entries)
    if (rd.hardState) storage.setHardState(rd.hardState)
    out.messages.push(...rd.messages)
    out.committed.push(...rd.committedEntries)
    out.readStates.push(...rd.readStates)
    node.advance(rd)
  }
  return out
}

/** A node with fresh bootstrap storage, for hand-driven tests. */
export function lone(id: NodeId, voters: NodeId[], opts: NodeOptions = {}) {
  const storage = MemoryStorage.bootstrap(voters)
  const node = new RaftNode({ rand: seededRandom(hashId(id)), ...opts, id, storage })
  return { node, storage }
}
