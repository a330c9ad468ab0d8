/**
 * In-process Raft clusters on real Deno KV files for the consensus tests: every node runs the
 * production host (`raftConsensus`) over its own temporary KV database, and the nodes talk
 * through a `MemoryNetwork` that tests can cut. Nodes can be stopped and started again on the
 * same database (a restart), or isolated first (a crash as far as the others can tell).
 *
 * Time is a manual clock shared by every node, and it moves only while the cluster is idle: no
 * KV operation in flight for two turns of the event loop in a row (the in-memory network
 * delivers on microtasks, so nothing else is pending then). Then it moves one Raft tick and
 * looks again. So time stands still while a commit is on the disk, however slow the machine:
 * no election, heartbeat or commit timeout can fire because the machine was busy, only because
 * the cluster really had nothing left to do for that long. Waits are bounded in virtual time
 * (a deterministic failure), with a wall-clock bound only against a hang.
 */
import { join } from 'node:path'
import type { ApplyHooks } from '../../../src/components.ts'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type RaftConfig, raftSection } from '../../../src/consensus/raft/config.ts'
import { MemoryNetwork } from '../../../src/consensus/raft/memory_transport.ts'
import {
  type RaftConsensus,
  raftConsensus,
  raftTiming,
  type RaftTuning,
} from '../../../src/consensus/raft/raft_consensus.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import { newPin, type Pin } from '../../../src/types/pin.ts'
import type { Logger } from '../../../src/util/log.ts'
import { type ManualClock, manualClock, turn } from '../../support/manual_clock.ts'
import { proxyKv } from '../../support/kv_proxy.ts'

let tempDir: string | undefined

/** A fresh KV file path in this test process's temporary folder, deleted when the process ends. */
export async function tempKvPath(name = 'db'): Promise<string> {
  if (!tempDir) {
    const dir = tempDir = await Deno.makeTempDir({ prefix: 'raft-test-' })
    globalThis.addEventListener('unload', () => {
      try {
        Deno.removeSync(dir, { recursive: true })
      } catch { /* already gone */ }
    })
  }
  return join(tempDir, `${name}-${crypto.randomUUID()}.kv`)
}

/** Fast timings: 5 ms ticks, elections after 150–300 ms. */
export function testConfig(over: Partial<RaftConfig> = {}): RaftConfig {
  return {
    ...raftSection.defaults(),
    heartbeat_timeout: 50,
    election_timeout: 150,
    wait_for_leader_timeout: 3000,
    network_timeout: 3000,
    commit_retries: 1,
    commit_retry_delay: 50,
    ...over,
  }
}

/** A deterministic pin for `i` (a CIDv1 raw of "pin <tag> <i>"). */
export async function testPin(i: number, tag = ''): Promise<Pin> {
  const cid = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`pin ${tag} ${i}`)))
  const p = newPin(cid.toString(), { name: `pin-${i}` })
  p.timestamp = '2026-11-25T12:00:00Z'
  return p
}

/** One node of a test cluster. */
export interface TestNode {
  id: string
  path: string
  kv: Deno.Kv
  state: PinState
  consensus: RaftConsensus
  /** CIDs the apply hooks saw (pins and unpins; '' for a restored snapshot), in order. */
  hooked: { kind: 'pin' | 'unpin' | 'restore'; cid: string }[]
  logs: string[]
}

/** Lines logged by a node, captured for assertions. */
function captureLog(lines: string[]): Logger {
  const at = (lvl: string) => (msg: string) => void lines.push(`${lvl} ${msg}`)
  return { debug() {}, info: at('info'), warn: at('warn'), error: at('error') }
}

/** KV operations (commits, reads, list pages): in flight now, and started so far. */
interface KvActivity {
  inflight: number
  started: number
}

/** Counts the KV operations on a handle into `activity`. */
function trackedKv(kv: Deno.Kv, activity: KvActivity): Deno.Kv {
  const track = <T>(p: Promise<T>): Promise<T> => {
    activity.inflight++
    activity.started++
    return p.finally(() => activity.inflight--)
  }
  // A list is consumed page by page: each `next` is an operation.
  const trackIter = <T extends object>(it: T): T => {
    const proxy: T = new Proxy(it, {
      get(target, prop) {
        if (prop === Symbol.asyncIterator) return () => proxy
        const v = Reflect.get(target, prop) as unknown
        if (typeof v !== 'function') return v
        if (prop === 'next') return (...a: unknown[]) => track(v.apply(target, a))
        return v.bind(target)
      },
    })
    return proxy
  }
  return proxyKv(kv, {
    commit: (run) => track(run()),
    call(method, run) {
      const r = run()
      if (method === 'list') return trackIter(r as object)
      return r instanceof Promise ? track(r) : r
    },
  })
}

/** What a KvCluster's clock does on its own. */
export interface KvClusterOptions {
  /** Move time while idle (default true); false: time stands still unless a test moves it. */
  autoTick?: boolean
}

/** A cluster of in-process nodes on temporary KV files. */
export class KvCluster {
  readonly net = new MemoryNetwork()
  readonly nodes = new Map<string, TestNode>()
  readonly clock: ManualClock = manualClock()
  readonly #paths = new Map<string, string>()
  readonly #kv: KvActivity = { inflight: 0, started: 0 }
  readonly #tickMs: number
  #closed = false
  #driver: Promise<void> | undefined

  constructor(
    readonly founders: string[],
    readonly config: RaftConfig = testConfig(),
    readonly tuning: RaftTuning = {},
    opts: KvClusterOptions = {},
  ) {
    this.#tickMs = raftTiming(config).tickMs
    if (opts.autoTick ?? true) this.#driver = this.#drive()
  }

  /**
   * Moves time one tick whenever the cluster has been idle (no KV operation in flight, none
   * started) for two turns of the event loop, until close.
   */
  async #drive(): Promise<void> {
    let quiet = 0
    let seen = this.#kv.started
    while (!this.#closed) {
      await turn()
      const idle = this.#kv.inflight === 0 && this.#kv.started === seen
      seen = this.#kv.started
      quiet = idle ? quiet + 1 : 0
      if (quiet < 2) continue
      quiet = 0
      await this.clock.advance(this.#tickMs)
    }
  }

  /**
   * Waits until `cond` holds, for at most `virtualMs` of cluster time (deterministic), and as a
   * guard against a hang, 60 s of wall-clock time.
   */
  async until(cond: () => boolean, what: string, virtualMs = 10_000): Promise<void> {
    const start = this.clock.now()
    const wallEnd = Date.now() + 60_000
    while (!cond()) {
      if (this.clock.now() - start > virtualMs) {
        throw new Error(`${what}: not within ${virtualMs} ms of cluster time`)
      }
      if (Date.now() > wallEnd) throw new Error(`${what}: the cluster hung`)
      await turn()
    }
  }

  /**
   * Starts `id` (again, on its database, if it ran before). `hooks` also get every apply hook
   * (a pin tracker, say).
   */
  async start(
    id: string,
    opts: { initialVoters?: string[]; hooks?: ApplyHooks } = {},
  ): Promise<TestNode> {
    let path = this.#paths.get(id)
    if (!path) {
      path = await tempKvPath(id)
      this.#paths.set(id, path)
    } else {
      // The host numbers its proposals from now() (ms × 1000) on start, so a restart must come
      // at least a millisecond after the last start, as it always does on a real clock.
      await this.clock.advance(1)
    }
    const kv = trackedKv(await Deno.openKv(path), this.#kv)
    const state = kvState(kv)
    const hooked: TestNode['hooked'] = []
    const logs: string[] = []
    const consensus = raftConsensus(this.config, {
      peerId: id,
      kv,
      state,
      hooks: {
        onPin: (p) => {
          hooked.push({ kind: 'pin', cid: p.cid })
          opts.hooks?.onPin(p)
        },
        onUnpin: (p) => {
          hooked.push({ kind: 'unpin', cid: p.cid })
          opts.hooks?.onUnpin(p)
        },
        onRestore: () => {
          hooked.push({ kind: 'restore', cid: '' })
          opts.hooks?.onRestore()
        },
      },
      transport: this.net.endpoint(),
      // A founder starts with the founders; any other peer joins (no voters until added).
      initialVoters: opts.initialVoters ?? (this.founders.includes(id) ? this.founders : []),
      clock: this.clock,
      log: captureLog(logs),
      tuning: this.tuning,
    })
    await consensus.opened
    const node = { id, path, kv, state, consensus, hooked, logs }
    this.nodes.set(id, node)
    return node
  }

  async startAll(): Promise<void> {
    for (const id of this.founders) await this.start(id)
  }

  get(id: string): TestNode {
    const n = this.nodes.get(id)
    if (!n) throw new Error(`node ${id} is not running`)
    return n
  }

  /** Stops `id` and closes its database (it can `start` again on it). */
  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id)
    if (!n) return
    this.nodes.delete(id)
    await n.consensus.stop()
    n.kv.close()
  }

  /** Cuts `id` off, then stops it: the others see a crash. */
  async crash(id: string): Promise<void> {
    this.net.isolate(id)
    await this.stop(id)
  }

  /** The running node that leads at the highest term. */
  leader(): TestNode | undefined {
    return leaderOf(this.nodes.values())
  }

  /** Waits for a leader (other than `not`), at most `timeoutMs` of cluster time. */
  async waitLeader(timeoutMs = 5000, not?: string): Promise<TestNode> {
    let l: TestNode | undefined
    await this.until(
      () => {
        l = this.leader()
        return l !== undefined && l.id !== not
      },
      'no leader elected',
      timeoutMs,
    )
    return l!
  }

  /** Waits until every running node applied the leader's commit index. */
  async converge(timeoutMs = 10_000): Promise<void> {
    await this.until(
      () => {
        const l = this.leader()
        if (!l) return false
        const c = l.consensus.status().commit
        return [...this.nodes.values()].every((n) => n.consensus.status().applied >= c)
      },
      'the cluster did not converge',
      timeoutMs,
    )
  }

  /** Stops every node and the clock's driver, and deletes the databases. */
  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id)
    this.#closed = true
    await this.#driver
    for (const p of this.#paths.values()) {
      for (const f of [p, `${p}-wal`, `${p}-shm`]) await Deno.remove(f).catch(() => {})
    }
  }
}

/** Of running nodes, the one that leads at the highest term. */
export function leaderOf<T extends { consensus: RaftConsensus }>(
  nodes: Iterable<T>,
): T | undefined {
  let best: T | undefined
  for (const n of nodes) {
    const s = n.consensus.status()
    if (s.role !== 'leader') continue
    if (!best || s.term > best.consensus.status().term) best = n
  }
  return best
}

/** The pinset of a node as CID → stored JSON. */
export async function pinsetOf(state: PinState): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  const dec = new TextDecoder()
  for await (const b of state.listEncoded()) {
    const s = dec.decode(b)
    m.set(JSON.parse(s).cid, s)
  }
  return m
}
