/**
 * A deterministic, seeded simulation of a Raft cluster built on the real core.
 *
 * Nodes run `RaftNode` over simulated disks (`MemoryStorage` holding only what a Ready wrote
 * once its simulated fsync completed). A simulated clock drives ticks; a simulated network drops,
 * delays, duplicates and reorders messages, and partitions (symmetric or one-way) come and go.
 * Nodes crash — losing whatever Ready was still being persisted — and restart from their disks.
 * An operator adds learners, promotes them and removes voters (the leader included). Clients
 * issue puts and linearizable gets against random nodes.
 *
 * After every event the run checks Raft's safety properties incrementally: election safety, log
 * matching, leader completeness, state machine safety (including a running hash of the applied
 * state that must agree across log replay and snapshot installs). At the end it heals everything,
 * waits for the cluster to converge, and checks that every acknowledged write is applied on every
 * member and that the client history is linearizable.
 *
 * A run stops at its first violation and returns it with the last events of the trace.
 */
import {
  canSendBeforePersist,
  CompactedError,
  type ConfChange,
  decodeConfChangeEntry,
  type Entry,
  MemorySnapshotAssembler,
  MemoryStorage,
  type Message,
  type NodeId,
  NoLeaderError,
  NotLeaderError,
  ProposalDroppedError,
  RaftNode,
  type Ready,
  type SnapshotChunk,
  snapshotChunks,
  type SnapshotMessage,
} from '../../src/consensus/raft/core/mod.ts'
import { decodeWrite, encodeWrite, entryHash, KvApp } from './app.ts'
import { EventQueue } from './heap.ts'
import { checkHistory, type RegisterOp } from './linearizability.ts'
import { Rng } from './rng.ts'
import { describeMessage, Trace } from './trace.ts'

/**
 * Test-only faults that break the system on purpose, to prove the checkers catch them:
 * - `corruptApply`: one node applies a tampered entry once (state machine safety must fire).
 * - `staleRead`: gets are served from local state without ReadIndex (linearizability should fire).
 */
export type FaultMode = 'none' | 'corruptApply' | 'staleRead'

/** Options of one run. */
export interface SimOptions {
  seed: number
  /** Founding voters. Default 5. */
  nodes?: number
  /** Simulated steps (one tick each) of faults and load before the final heal. Default 600. */
  steps?: number
  /** Extra nodes the operator may add during the run. Default 2. */
  spares?: number
  fault?: FaultMode
  /** Trace lines kept for the report. Default 60. */
  traceSize?: number
}

/** Outcome of one run. */
export interface SimResult {
  seed: number
  violation?: string
  trace: string[]
  stats: SimStats
}

/** Counters of one run. */
export interface SimStats {
  events: number
  messages: number
  leaders: number
  commitIndex: number
  ackedWrites: number
  reads: number
  crashes: number
  partitions: number
  confChanges: number
  snapshotsInstalled: number
}

class Violation extends Error {
  override name = 'Violation'
}

const TICK = 10
const ELECTION_TICK = 10
const OP_TIMEOUT = 60 * TICK
const STREAM_TIMEOUT = 30 * TICK
const SETTLE_STEPS = 400
const CHUNK_SIZE = 96
const KEYS = ['x', 'y', 'z']

interface ClientOp {
  id: string
  client: Client
  kind: 'put' | 'get'
  key: string
  host: Host
  call: number
  deadline: number
  rec?: RegisterOp
}

interface Client {
  id: number
  seq: number
  busy: ClientOp | null
}

interface Stream {
  id: number
  from: NodeId
  to: NodeId
  incarnation: number
  done: boolean
}

class Host {
  readonly id: NodeId
  readonly disk: MemoryStorage
  node: RaftNode | null = null
  app = new KvApp()
  up = false
  started = false
  /** Applied its own removal and shut down for good. */
  removed = false
  incarnation = 0
  persisting: Ready | null = null
  assembler: MemorySnapshotAssembler
  staged = new Map<string, Uint8Array>()
  writes = new Map<string, ClientOp>()
  reads = new Map<string, ClientOp>()
  readWaits: { index: number; op: ClientOp }[] = []
  shutdownAfterReady = false

  constructor(id: NodeId, disk: MemoryStorage) {
    this.id = id
    this.disk = disk
    this.assembler = new MemorySnapshotAssembler(id)
  }
}

/** Runs one seeded simulation. */
export function runSim(options: SimOptions): SimResult {
  return new Simulation(options).run()
}

class Simulation {
  readonly #opts: Required<SimOptions>
  readonly #rng: Rng
  readonly #queue = new EventQueue()
  readonly #trace: Trace
  readonly #hosts = new Map<NodeId, Host>()
  readonly #spares: NodeId[] = []
  readonly #clients: Client[] = []
  #now = 0
  #seq = 0
  #calm = false
  #stepNo = 0
  #streamSeq = 0
  #streams = new Map<number, Stream>()
  #cut = new Set<string>()
  #linkDelay = new Map<string, number>()
  #partitionUntil = 0
  #corrupted = false

  // Network and storage behaviour of this run.
  readonly #dropRate: number
  readonly #dupRate: number
  readonly #slowRate: number
  readonly #snapshotEvery: number
  readonly #keepTail: number
  readonly #maxInflight: number
  readonly #maxEntries: number
  readonly #maxSize: number
  /** Per-step probability of a crash (partitions are a bit more frequent). */
  readonly #faultRate: number
  /** Some runs turn the optional protections off: safety must not depend on them. */
  readonly #preVote: boolean
  readonly #checkQuorum: boolean

  // Checker state.
  /** term → the node seen leading it. */
  #leaders = new Map<number, NodeId>()
  /** index → the entry first applied there (by anyone). */
  #applied: ({ term: number; hash: number; chain: number; by: NodeId } | undefined)[] = []
  #maxApplied = 0
  /** `index/term` → content hash and the term of the entry before it. */
  #logMatch = new Map<string, { hash: number; prevTerm: number | undefined }>()
  #history: RegisterOp[] = []
  #acked: string[] = []
  readonly #stats: SimStats = {
    events: 0,
    messages: 0,
    leaders: 0,
    commitIndex: 0,
    ackedWrites: 0,
    reads: 0,
    crashes: 0,
    partitions: 0,
    confChanges: 0,
    snapshotsInstalled: 0,
  }

  constructor(options: SimOptions) {
    this.#opts = {
      nodes: 5,
      steps: 600,
      spares: 2,
      fault: 'none',
      traceSize: 60,
      ...options,
    }
    this.#rng = new Rng(options.seed)
    this.#trace = new Trace(this.#opts.traceSize)
    const r = this.#rng
    this.#dropRate = r.pick([0, 0.01, 0.03, 0.08])
    this.#dupRate = r.pick([0, 0.01, 0.05])
    this.#slowRate = r.pick([0, 0.05, 0.15])
    this.#snapshotEvery = r.range(4, 40)
    this.#keepTail = r.range(0, 6)
    this.#maxInflight = r.range(1, 8)
    this.#maxEntries = r.range(1, 10)
    this.#maxSize = r.pick([64, 256, 4096])
    this.#faultRate = r.pick([0.004, 0.01, 0.02])
    this.#preVote = r.chance(0.8)
    this.#checkQuorum = r.chance(0.8)
  }

  // ------------------------------------------------------------ driver

  run(): SimResult {
    const voters = Array.from({ length: this.#opts.nodes }, (_, i) => `n${i + 1}`)
    for (const id of voters) this.#hosts.set(id, new Host(id, MemoryStorage.bootstrap(voters)))
    for (let i = 0; i < this.#opts.spares; i++) {
      const id = `n${this.#opts.nodes + i + 1}`
      this.#spares.push(id)
      this.#hosts.set(id, new Host(id, MemoryStorage.joining()))
    }
    for (let i = 0; i < 5; i++) this.#clients.push({ id: i + 1, seq: 0, busy: null })
    let violation: string | undefined
    try {
      for (const id of voters) this.#start(this.#host(id))
      const end = this.#opts.steps * TICK
      this.#runSteps(end)
      this.#becomeCalm()
      this.#settle()
      this.#finalChecks()
    } catch (err) {
      if (!(err instanceof Violation)) {
        violation = `unexpected error: ${err instanceof Error ? err.stack : err}`
      } else {
        violation = err.message
      }
    }
    return {
      seed: this.#opts.seed,
      violation,
      trace: violation ? this.#trace.lines() : [],
      stats: this.#stats,
    }
  }

  #schedule(at: number, run: () => void): void {
    this.#queue.push(at, run)
  }

  /** Processes events and steps up to `until`. */
  #runSteps(until: number): void {
    while (this.#now < until) {
      const nextStep = this.#now + TICK - (this.#now % TICK)
      this.#drainUntil(nextStep)
      this.#now = nextStep
      this.#step()
    }
  }

  #drainUntil(t: number): void {
    for (;;) {
      const at = this.#queue.peekTime()
      if (at === undefined || at > t) return
      const e = this.#queue.pop()!
      this.#now = e.time
      this.#stats.events++
      e.run()
    }
  }

  #violate(msg: string): never {
    this.#trace.add(this.#now, `VIOLATION ${msg}`)
    throw new Violation(msg)
  }

  #host(id: NodeId): Host {
    return this.#hosts.get(id)!
  }

  // ------------------------------------------------------------ steps and faults

  #step(): void {
    this.#stepNo++
    const r = this.#rng
    if (!this.#calm) {
      if (this.#partitionUntil > 0 && this.#now >= this.#partitionUntil) this.#heal()
      // Faults and requests land at random points inside the step, so that crashes also hit
      // nodes in the middle of persisting a Ready.
      const within = (f: () => void) => this.#schedule(this.#now + 1 + r.int(TICK - 1), f)
      if (this.#partitionUntil === 0 && r.chance(this.#faultRate * 1.5)) {
        within(() => this.#partitionUntil === 0 && !this.#calm && this.#partition())
      }
      if (r.chance(this.#faultRate)) within(() => !this.#calm && this.#crashRandom())
      if (r.chance(0.015)) within(() => !this.#calm && this.#operator())
      for (const c of this.#clients) {
        if (!c.busy && r.chance(0.35)) within(() => !c.busy && !this.#calm && this.#startOp(c))
      }
    }
    for (const h of this.#hosts.values()) {
      if (!h.up) continue
      h.node!.tick()
      this.#after(h)
    }
    this.#expireOps()
    this.#checkStep()
  }

  #partition(): void {
    const ids = [...this.#hosts.values()].filter((h) => h.started).map((h) => h.id)
    const leader = this.#currentLeader()
    const side = leader && this.#rng.chance(0.35)
      ? new Set([leader.id])
      : new Set(ids.filter(() => this.#rng.chance(0.5)))
    if (side.size === 0 || side.size === ids.length) side.add(ids[0])
    const oneWay = this.#rng.chance(0.2)
    for (const a of ids) {
      for (const b of ids) {
        if (side.has(a) && !side.has(b)) {
          this.#cut.add(`${a}>${b}`)
          if (!oneWay) this.#cut.add(`${b}>${a}`)
        }
      }
    }
    this.#partitionUntil = this.#now + this.#rng.range(10, 150) * TICK
    this.#stats.partitions++
    this.#trace.add(this.#now, `partition [${[...side]}] | rest${oneWay ? ' (one-way)' : ''}`)
  }

  #heal(): void {
    this.#cut.clear()
    this.#partitionUntil = 0
    this.#trace.add(this.#now, 'heal')
  }

  #crashRandom(): void {
    const up = [...this.#hosts.values()].filter((h) => h.up)
    if (up.length === 0) return
    // Bias towards the interesting victims: the leader, and nodes in the middle of an fsync
    // (whose unpersisted Ready is lost, along with anything they must not have promised).
    const leader = this.#currentLeader()
    const syncing = up.filter((h) => h.persisting)
    const dice = this.#rng.next()
    const h = leader && dice < 0.35
      ? leader
      : syncing.length > 0 && dice < 0.7
      ? this.#rng.pick(syncing)
      : this.#rng.pick(up)
    this.#crash(h)
    const down = this.#rng.range(3, 80) * TICK
    this.#schedule(this.#now + down, () => {
      if (!h.up && !h.removed && !this.#calm) this.#start(h)
    })
    // Failures are often correlated (a rack loses power): sometimes a second node follows.
    if (this.#rng.chance(0.25)) {
      this.#schedule(this.#now + this.#rng.range(1, 6), () => !this.#calm && this.#crashRandom())
    }
  }

  #crash(h: Host): void {
    h.up = false
    h.node = null
    h.persisting = null
    h.incarnation++
    h.staged.clear()
    h.assembler = new MemorySnapshotAssembler(h.id)
    // Clients connected to it lose their answers: writes become unknown, reads vanish.
    for (const op of [...h.writes.values(), ...h.reads.values()]) op.client.busy = null
    for (const w of h.readWaits) w.op.client.busy = null
    h.writes.clear()
    h.reads.clear()
    h.readWaits = []
    this.#stats.crashes++
    this.#trace.add(this.#now, `crash ${h.id}`)
  }

  /** Starts (or restarts) a node from what its disk holds. */
  #start(h: Host): void {
    h.node = new RaftNode({
      id: h.id,
      storage: h.disk,
      rand: new Rng(this.#rng.fork()).next,
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      maxInflightMsgs: this.#maxInflight,
      maxEntriesPerMsg: this.#maxEntries,
      maxSizePerMsg: this.#maxSize,
      preVote: this.#preVote,
      checkQuorum: this.#checkQuorum,
    })
    h.app = KvApp.decode(h.disk.snapshotData())
    if (h.app.appliedIndex !== h.disk.snapshot().index) {
      this.#violate(
        `${h.id}: snapshot data is at ${h.app.appliedIndex}, meta at ${h.disk.snapshot().index}`,
      )
    }
    h.up = true
    h.started = true
    this.#trace.add(
      this.#now,
      `start ${h.id} (term ${h.disk.initialState().term}, log ${h.disk.firstIndex()}..${h.disk.lastIndex()}, snap ${h.disk.snapshot().index})`,
    )
    this.#after(h)
  }

  /** The operator changes membership through the current leader, one server at a time. */
  #operator(): void {
    const leader = this.#currentLeader()
    if (!leader) return
    const st = leader.node!.status()
    const choices: ConfChange[] = []
    const spare = this.#spares[0]
    if (spare) choices.push({ type: 'addLearner', id: spare })
    for (const l of st.confState.learners) {
      if ((st.progress?.[l]?.match ?? 0) >= st.commit) choices.push({ type: 'addVoter', id: l })
      choices.push({ type: 'removeNode', id: l })
    }
    if (st.confState.voters.length > 3) {
      for (const v of st.confState.voters) choices.push({ type: 'removeNode', id: v })
    }
    if (this.#rng.chance(0.25)) {
      const to = this.#rng.pick(st.confState.voters)
      try {
        leader.node!.transferLeadership(to)
        this.#trace.add(this.#now, `operator transfers leadership ${leader.id} → ${to}`)
      } catch (err) {
        this.#trace.add(this.#now, `operator transfer to ${to} refused: ${err}`)
      }
      this.#after(leader)
      return
    }
    if (choices.length === 0) return
    const cc = this.#rng.pick(choices)
    try {
      leader.node!.proposeConfChange(cc)
    } catch (err) {
      this.#trace.add(this.#now, `operator ${cc.type} ${cc.id} refused by ${leader.id}: ${err}`)
      return
    }
    this.#stats.confChanges++
    this.#trace.add(this.#now, `operator ${cc.type} ${cc.id} via ${leader.id}`)
    if (cc.type === 'addLearner') {
      this.#spares.shift()
      this.#start(this.#host(cc.id))
    }
    this.#after(leader)
  }

  #currentLeader(): Host | undefined {
    let best: Host | undefined
    let bestTerm = -1
    for (const h of this.#hosts.values()) {
      if (!h.up) continue
      const s = h.node!.basicStatus()
      if (s.role === 'leader' && s.term > bestTerm) {
        best = h
        bestTerm = s.term
      }
    }
    return best
  }

  #becomeCalm(): void {
    this.#calm = true
    this.#heal()
    for (const h of this.#hosts.values()) if (h.started && !h.up && !h.removed) this.#start(h)
    this.#trace.add(this.#now, 'calm: network reliable, all nodes up, no new faults')
  }

  // ------------------------------------------------------------ network

  #linkUp(from: NodeId, to: NodeId): boolean {
    return !this.#cut.has(`${from}>${to}`)
  }

  #delay(from: NodeId, to: NodeId): number {
    if (this.#calm) return this.#rng.range(1, 4)
    if (this.#rng.chance(this.#slowRate)) return this.#rng.range(10, 60)
    // Some links are persistently slow (another datacenter): their follower lags behind.
    let base = this.#linkDelay.get(`${from}>${to}`)
    if (base === undefined) {
      base = this.#rng.chance(0.2) ? this.#rng.range(10, 30) : 0
      this.#linkDelay.set(`${from}>${to}`, base)
    }
    return base + this.#rng.range(1, 9)
  }

  /** Sends with the network's faults; `deliver` runs on arrival if the link is still up. */
  #transmit(from: NodeId, to: NodeId, deliver: () => void, notBefore = 0): number {
    if (!this.#linkUp(from, to)) return notBefore
    if (!this.#calm && this.#rng.chance(this.#dropRate)) return notBefore
    const at = Math.max(notBefore, this.#now + this.#delay(from, to))
    const sender = this.#host(from)
    const inc = sender.incarnation
    let lostWithSender: boolean | undefined
    const arrive = () => {
      if (!this.#linkUp(from, to)) return
      const h = this.#host(to)
      if (!h.up) return
      // A sender that crashed meanwhile may take unsent socket buffers down with it.
      if (sender.incarnation !== inc && (lostWithSender ??= this.#rng.chance(0.5))) return
      deliver()
    }
    this.#schedule(at, arrive)
    if (!this.#calm && this.#rng.chance(this.#dupRate)) {
      this.#schedule(at + this.#rng.range(0, 20), arrive)
    }
    return at
  }

  #send(from: Host, m: Message): void {
    this.#stats.messages++
    this.#checkDurableBeforeAnswer(from, m)
    if (m.type === 'snapshot') {
      this.#streamSnapshot(from, m)
      return
    }
    this.#transmit(m.from, m.to, () => {
      const to = this.#host(m.to)
      this.#trace.add(this.#now, m)
      try {
        to.node!.step(m)
      } catch (err) {
        this.#violate(`${to.id} failed to step ${describeMessage(m)}: ${err}`)
      }
      this.#after(to)
    })
  }

  /** The host side of InstallSnapshot: stream the stored snapshot in chunks, then report. */
  #streamSnapshot(from: Host, m: SnapshotMessage): void {
    const snap = from.disk.snapshot()
    const id = ++this.#streamSeq
    const stream: Stream = {
      id,
      from: from.id,
      to: m.to,
      incarnation: from.incarnation,
      done: false,
    }
    this.#streams.set(id, stream)
    const report = (ok: boolean) => {
      if (stream.done) return
      stream.done = true
      const h = this.#host(stream.from)
      if (!h.up || h.incarnation !== stream.incarnation) return
      this.#trace.add(this.#now, `snapshot stream ${id} ${from.id}→${m.to} ${ok ? 'ok' : 'FAILED'}`)
      h.node!.reportSnapshot(stream.to, ok)
      this.#after(h)
    }
    if (snap.index !== m.snapshot.index || snap.term !== m.snapshot.term) {
      this.#schedule(this.#now + 1, () => report(false))
      return
    }
    this.#trace.add(
      this.#now,
      `snapshot stream ${id} ${from.id}→${m.to} at ${snap.index}/${snap.term}`,
    )
    // Chunks of one stream stay in order (a stream is ordered), but any may be lost or doubled.
    let t = this.#now
    for (const c of snapshotChunks(m, id, from.disk.snapshotData(), CHUNK_SIZE)) {
      t = this.#transmit(m.from, m.to, () => this.#receiveChunk(c, stream, report), t)
    }
    this.#schedule(this.#now + STREAM_TIMEOUT, () => report(false))
  }

  #receiveChunk(c: SnapshotChunk, stream: Stream, report: (ok: boolean) => void): void {
    const h = this.#host(c.to)
    const done = h.assembler.receive(c)
    if (!done) return
    const snap = done.message.snapshot
    h.staged.set(`${snap.index}/${snap.term}`, done.data)
    this.#trace.add(
      this.#now,
      `${h.id} received snapshot ${snap.index}/${snap.term} (stream ${stream.id})`,
    )
    h.node!.step(done.message)
    this.#after(h)
    this.#transmit(c.to, c.from, () => report(true))
  }

  // ------------------------------------------------------------ the host's Ready loop

  /** After anything happened to `h`: handle its Ready batches and watch for a new leader. */
  #after(h: Host): void {
    if (!h.up) return
    while (h.up && !h.persisting && h.node!.hasReady()) {
      const rd = h.node!.ready()
      this.#observeReady(h, rd)
      for (const m of rd.messages) {
        this.#observeSend(m)
        if (canSendBeforePersist(rd, m)) this.#send(h, m)
      }
      h.persisting = rd
      const latency = this.#calm ? 0 : this.#rng.pick([0, 0, 1, 2, 4, 8, 15])
      if (latency === 0) {
        this.#persisted(h, rd)
      } else {
        const inc = h.incarnation
        this.#schedule(this.#now + latency, () => {
          if (h.incarnation !== inc || h.persisting !== rd) return
          this.#persisted(h, rd)
          this.#after(h)
        })
        break
      }
    }
    if (h.up) this.#watchLeader(h)
  }

  /** The simulated fsync of `rd` completed: now write, send, apply, advance. */
  #persisted(h: Host, rd: Ready): void {
    if (rd.snapshot) {
      const key = `${rd.snapshot.index}/${rd.snapshot.term}`
      const data = h.staged.get(key)
      if (!data) {
        this.#violate(`${h.id} was told to install snapshot ${key}, which it never fully received`)
      }
      h.disk.applySnapshot(rd.snapshot, data)
      h.app = KvApp.decode(data)
      // A newer snapshot may have been staged (and accepted by the core) meanwhile: keep it.
      for (const k of h.staged.keys()) {
        if (Number(k.split('/')[0]) <= rd.snapshot.index) h.staged.delete(k)
      }
      this.#stats.snapshotsInstalled++
      this.#checkAppliedState(h, rd.snapshot.index, 'snapshot install')
      this.#trace.add(this.#now, `${h.id} installed snapshot ${key}`)
    }
    h.disk.append(rd.entries)
    if (rd.hardState) h.disk.setHardState(rd.hardState)
    for (const m of rd.messages) if (!canSendBeforePersist(rd, m)) this.#send(h, m)
    for (const e of rd.committedEntries) this.#apply(h, e)
    for (const rs of rd.readStates) {
      const op = h.reads.get(rs.ctx)
      if (!op) continue
      h.reads.delete(rs.ctx)
      h.readWaits.push({ index: rs.index, op })
    }
    h.persisting = null
    h.node!.advance(rd)
    this.#serveReads(h)
    if (h.shutdownAfterReady) {
      h.removed = true
      h.shutdownAfterReady = false
      this.#crash(h)
      this.#trace.add(this.#now, `${h.id} shut down after applying its removal`)
      return
    }
    this.#maybeSnapshot(h)
  }

  #apply(h: Host, e: Entry): void {
    if (e.index !== h.app.appliedIndex + 1) {
      this.#violate(`${h.id} applied ${e.index} after ${h.app.appliedIndex}`)
    }
    let entry = e
    if (
      this.#opts.fault === 'corruptApply' && !this.#corrupted && e.type === 'normal' &&
      e.data.length > 0 && this.#now > this.#opts.steps * TICK / 5
    ) {
      this.#corrupted = true
      const w = decodeWrite(e.data)
      entry = { ...e, data: encodeWrite({ ...w, v: `${w.v}-corrupt` }) }
    }
    const hash = entryHash(entry)
    const first = this.#applied[e.index]
    if (first && (first.term !== entry.term || first.hash !== hash)) {
      this.#violate(
        `state machine safety: ${h.id} applied ${e.index}/${entry.term}#${hash} but ${first.by} ` +
          `applied ${e.index}/${first.term}#${first.hash}`,
      )
    }
    const w = h.app.apply(entry)
    if (!first) {
      this.#applied[e.index] = { term: entry.term, hash, chain: h.app.chain, by: h.id }
      if (e.index > this.#maxApplied) this.#maxApplied = e.index
    } else {
      this.#checkAppliedState(h, e.index, 'apply')
    }
    if (e.index > this.#stats.commitIndex) this.#stats.commitIndex = e.index
    if (e.type === 'confChange') {
      const { change, conf } = decodeConfChangeEntry(e.data)
      this.#trace.add(
        this.#now,
        `${h.id} applied ${change.type} ${change.id} → voters [${conf.voters}] learners [${conf.learners}]`,
      )
      if (change.type === 'removeNode' && change.id === h.id) h.shutdownAfterReady = true
    }
    if (w) {
      const op = h.writes.get(w.op)
      if (op) {
        h.writes.delete(w.op)
        op.rec!.ret = this.#seq++
        op.client.busy = null
        this.#acked.push(op.id)
        this.#stats.ackedWrites++
      }
    }
  }

  /** The running hash of `h`'s state at `index` must equal everyone else's at that index. */
  #checkAppliedState(h: Host, index: number, how: string): void {
    if (h.app.appliedIndex !== index) {
      this.#violate(`${h.id} state is at ${h.app.appliedIndex} after ${how} at ${index}`)
    }
    const first = this.#applied[index]
    if (first && first.chain !== h.app.chain) {
      this.#violate(
        `state machine safety: ${h.id} state at ${index} (${how}) differs from ${first.by}'s`,
      )
    }
  }

  #serveReads(h: Host): void {
    if (h.readWaits.length === 0) return
    const waiting: typeof h.readWaits = []
    for (const w of h.readWaits) {
      if (h.app.appliedIndex >= w.index) this.#answerRead(w.op, h.app.kv.get(w.op.key) ?? null)
      else waiting.push(w)
    }
    h.readWaits = waiting
  }

  #answerRead(op: ClientOp, value: string | null): void {
    this.#history.push({
      kind: 'get',
      key: op.key,
      value,
      call: op.call,
      ret: this.#seq++,
      label: `${op.id} get ${op.key} → ${value} via ${op.host.id}`,
    })
    this.#stats.reads++
    op.client.busy = null
  }

  /** Takes an application snapshot every few entries and compacts the log behind it. */
  #maybeSnapshot(h: Host): void {
    const applied = h.app.appliedIndex
    if (applied - h.disk.snapshot().index < this.#snapshotEvery) return
    let meta
    try {
      meta = h.node!.snapshotMetaAt(applied)
    } catch (err) {
      // A newer snapshot from the leader is about to replace our state: nothing to save.
      if (err instanceof CompactedError) return
      throw err
    }
    h.disk.createSnapshot(meta, h.app.encode())
    const compactTo = applied - this.#keepTail
    if (compactTo >= h.disk.firstIndex()) h.disk.compact(compactTo)
  }

  // ------------------------------------------------------------ clients

  #startOp(c: Client): void {
    const hosts = [...this.#hosts.values()].filter((h) => h.started)
    const h = this.#rng.pick(hosts)
    if (!h.up) return // connection refused: nothing happened
    const id = `c${c.id}.${++c.seq}`
    const key = this.#rng.pick(KEYS)
    const op: ClientOp = {
      id,
      client: c,
      kind: this.#rng.chance(0.55) ? 'put' : 'get',
      key,
      host: h,
      call: this.#seq++,
      deadline: this.#now + OP_TIMEOUT,
    }
    if (op.kind === 'put') {
      try {
        h.node!.propose(encodeWrite({ op: id, k: key, v: id }))
      } catch (err) {
        if (this.#refusal(err)) return
        this.#violate(`${h.id} propose threw ${err}`)
      }
      op.rec = {
        kind: 'put',
        key,
        value: id,
        call: op.call,
        ret: Infinity,
        label: `${id} put ${key}=${id} via ${h.id}`,
      }
      this.#history.push(op.rec)
      h.writes.set(id, op)
    } else {
      if (this.#opts.fault === 'staleRead') {
        this.#answerRead(op, h.app.kv.get(key) ?? null)
        return
      }
      try {
        h.node!.readIndex(id)
      } catch (err) {
        if (this.#refusal(err)) return
        this.#violate(`${h.id} readIndex threw ${err}`)
      }
      h.reads.set(id, op)
    }
    c.busy = op
    this.#trace.add(this.#now, `client ${id} ${op.kind} ${key} via ${h.id}`)
    this.#after(h)
  }

  /** Errors that mean "not done, try elsewhere" — the operation certainly did not happen. */
  #refusal(err: unknown): boolean {
    return err instanceof NoLeaderError || err instanceof NotLeaderError ||
      err instanceof ProposalDroppedError
  }

  #expireOps(): void {
    for (const c of this.#clients) {
      const op = c.busy
      if (!op || op.deadline > this.#now) continue
      // A write that timed out stays in the history with an unknown outcome (ret = ∞).
      op.host.writes.delete(op.id)
      op.host.reads.delete(op.id)
      op.host.readWaits = op.host.readWaits.filter((w) => w.op !== op)
      c.busy = null
    }
  }

  // ------------------------------------------------------------ checks

  #observeSend(m: Message): void {
    // Only a leader replicates; record it as the leader of that term.
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      this.#claimLeadership(m.from, m.term)
    }
  }

  #claimLeadership(id: NodeId, term: number): boolean {
    const prev = this.#leaders.get(term)
    if (prev === undefined) {
      this.#leaders.set(term, id)
      this.#stats.leaders++
      return true
    }
    if (prev !== id) this.#violate(`election safety: ${prev} and ${id} both led term ${term}`)
    return false
  }

  /** Right after the event that made `h` leader: it must hold every entry applied anywhere. */
  #watchLeader(h: Host): void {
    const s = h.node!.basicStatus()
    if (s.role !== 'leader') return
    if (this.#leaders.get(s.term) === h.id) return
    this.#claimLeadership(h.id, s.term)
    this.#trace.add(
      this.#now,
      `${h.id} leads term ${s.term} (last ${s.lastIndex}, commit ${s.commit})`,
    )
    if (s.lastIndex < this.#maxApplied) {
      this.#violate(
        `leader completeness: ${h.id} leads term ${s.term} with last index ${s.lastIndex} ` +
          `but ${this.#maxApplied} was committed`,
      )
    }
    for (let i = Math.max(1, s.firstIndex); i <= this.#maxApplied; i++) {
      const rec = this.#applied[i]
      if (!rec) continue
      const t = h.node!.termAt(i)
      if (t !== rec.term) {
        this.#violate(
          `leader completeness: ${h.id} leads term ${s.term} with ${i}/${t} but ${i}/${rec.term} was committed`,
        )
      }
    }
  }

  #observeReady(h: Host, rd: Ready): void {
    if (rd.snapshot) {
      const rec = this.#applied[rd.snapshot.index]
      if (rec && rec.term !== rd.snapshot.term) {
        this.#violate(
          `${h.id} got snapshot ${rd.snapshot.index}/${rd.snapshot.term}, committed term ${rec.term}`,
        )
      }
    }
    // Log matching: an (index, term) pair names one entry, and one predecessor term.
    for (let i = 0; i < rd.entries.length; i++) {
      const e = rd.entries[i]
      const prevTerm = i > 0 ? rd.entries[i - 1].term : h.node!.termAt(e.index - 1)
      const key = `${e.index}/${e.term}`
      const hash = entryHash(e)
      const seen = this.#logMatch.get(key)
      if (!seen) {
        this.#logMatch.set(key, { hash, prevTerm })
      } else if (
        seen.hash !== hash ||
        (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm)
      ) {
        this.#violate(`log matching: ${h.id} has a different entry ${key} (or predecessor)`)
      }
    }
  }

  /**
   * Raft's persistence rule, checked at the moment a promise leaves a node: an acknowledgement
   * of entries up to i means they are on its disk, a granted vote means the vote is.
   */
  #checkDurableBeforeAnswer(h: Host, m: Message): void {
    if (m.type === 'appendResp' && !m.reject) {
      const durable = Math.max(h.disk.lastIndex(), h.disk.snapshot().index)
      if (durable < m.index) {
        this.#violate(`durability: ${h.id} acknowledged ${m.index} with only ${durable} on disk`)
      }
    } else if (m.type === 'voteResp' && !m.reject) {
      const hs = h.disk.initialState()
      if (hs.term < m.term || (hs.term === m.term && hs.vote !== m.to)) {
        this.#violate(
          `durability: ${h.id} granted its term-${m.term} vote to ${m.to} before persisting it`,
        )
      }
    }
  }

  /** Cheap whole-cluster checks after every step. */
  #checkStep(): void {
    for (const h of this.#hosts.values()) {
      if (!h.up) continue
      const s = h.node!.basicStatus()
      if (s.commit > s.lastIndex) this.#violate(`${h.id} commit ${s.commit} > last ${s.lastIndex}`)
      // A node's committed prefix must agree with what was applied anywhere.
      const rec = this.#applied[s.commit]
      if (rec && s.commit >= s.firstIndex && h.node!.termAt(s.commit) !== rec.term) {
        this.#violate(
          `${h.id} committed ${s.commit}/${
            h.node!.termAt(s.commit)
          }, applied elsewhere with term ${rec.term}`,
        )
      }
    }
  }

  /** Runs the calm network until every member applied everything the leader has. */
  #settle(): void {
    for (let i = 0; i < SETTLE_STEPS; i++) {
      this.#runSteps(this.#now + TICK)
      if (this.#quiescent()) return
    }
    const l = this.#currentLeader()
    const detail = [...this.#hosts.values()].filter((h) => h.started).map((h) => {
      if (!h.up) return `${h.id}:down${h.removed ? '(removed)' : ''}`
      const s = h.node!.status()
      return `${h.id}:${s.role}/t${s.term} commit ${s.commit} applied ${h.app.appliedIndex} last ${s.lastIndex}`
    })
    this.#violate(
      `liveness: no convergence ${SETTLE_STEPS} steps after healing (leader ${l?.id ?? 'none'}; ${
        detail.join('; ')
      })`,
    )
  }

  #members(leader: Host): NodeId[] {
    const cs = leader.node!.status().confState
    return [...cs.voters, ...cs.learners]
  }

  #quiescent(): boolean {
    if (this.#clients.some((c) => c.busy)) return false
    const l = this.#currentLeader()
    if (!l) return false
    const ls = l.node!.status()
    if (!ls.confState.voters.includes(l.id) || ls.commit !== ls.lastIndex) return false
    for (const id of this.#members(l)) {
      const h = this.#host(id)
      if (!h.up || h.persisting || h.app.appliedIndex !== ls.commit) return false
    }
    return true
  }

  #finalChecks(): void {
    const l = this.#currentLeader()!
    const members = this.#members(l).map((id) => this.#host(id))
    for (const h of members) this.#checkAppliedState(h, l.node!.status().commit, 'final state')
    for (const op of this.#acked) {
      for (const h of members) {
        if (!h.app.ops.has(op)) {
          this.#violate(`durability: acknowledged write ${op} is not applied on ${h.id}`)
        }
      }
    }
    const bad = checkHistory(this.#history)
    if (bad.length > 0) {
      const ops = this.#history.filter((o) => o.key === bad[0]).sort((a, b) => a.call - b.call)
      for (const o of ops.slice(-40)) {
        this.#trace.add(this.#now, `history ${o.label} [${o.call}, ${o.ret}]`)
      }
      this.#violate(`linearizability: history of key ${bad[0]} is not linearizable`)
    }
  }
}
