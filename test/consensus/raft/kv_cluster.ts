/**
 * In-process Raft clusters on real Deno KV files for the consensus tests: every node runs the
 * production host (`raftConsensus`) over its own temporary KV database, and the nodes talk
 * through a `MemoryNetwork` that tests can cut. Nodes can be stopped and started again on the
 * same database (a restart), or isolated first (a crash as far as the others can tell).
 */
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type RaftConfig, raftSection } from '../../../src/consensus/raft/config.ts'
import { MemoryNetwork } from '../../../src/consensus/raft/memory_transport.ts'
import {
  type RaftConsensus,
  raftConsensus,
  type RaftTuning,
} from '../../../src/consensus/raft/raft_consensus.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import { newPin, type Pin } from '../../../src/types/pin.ts'
import type { Logger } from '../../../src/util/log.ts'

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
  /** CIDs the apply hooks saw (pins and unpins), in order. */
  hooked: { kind: 'pin' | 'unpin'; cid: string }[]
  logs: string[]
}

/** Lines logged by a node, captured for assertions. */
function captureLog(lines: string[]): Logger {
  const at = (lvl: string) => (msg: string) => void lines.push(`${lvl} ${msg}`)
  return { debug() {}, info: at('info'), warn: at('warn'), error: at('error') }
}

/** A cluster of in-process nodes on temporary KV files. */
export class KvCluster {
  readonly net = new MemoryNetwork()
  readonly nodes = new Map<string, TestNode>()
  readonly #paths = new Map<string, string>()

  constructor(
    readonly founders: string[],
    readonly config: RaftConfig = testConfig(),
    readonly tuning: RaftTuning = {},
  ) {}

  /** Starts `id` (again, on its database, if it ran before). */
  async start(id: string, opts: { initPeers?: string[] } = {}): Promise<TestNode> {
    let path = this.#paths.get(id)
    if (!path) {
      path = await tempKvPath(id)
      this.#paths.set(id, path)
    }
    const kv = await Deno.openKv(path)
    const state = kvState(kv)
    const hooked: TestNode['hooked'] = []
    const logs: string[] = []
    const consensus = raftConsensus(this.config, {
      peerId: id,
      kv,
      state,
      hooks: {
        onPin: (p) => void hooked.push({ kind: 'pin', cid: p.cid }),
        onUnpin: (p) => void hooked.push({ kind: 'unpin', cid: p.cid }),
      },
      transport: this.net.endpoint(),
      initPeers: opts.initPeers ?? this.founders,
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
    let best: TestNode | undefined
    for (const n of this.nodes.values()) {
      const s = n.consensus.status()
      if (s.role !== 'leader') continue
      if (!best || s.term > best.consensus.status().term) best = n
    }
    return best
  }

  async waitLeader(timeoutMs = 5000, not?: string): Promise<TestNode> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const l = this.leader()
      if (l && l.id !== not) return l
      if (Date.now() > deadline) throw new Error('no leader elected in time')
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Waits until every running node applied the leader's commit index. */
  async converge(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const l = this.leader()
      if (l) {
        const c = l.consensus.status().commit
        if ([...this.nodes.values()].every((n) => n.consensus.status().applied >= c)) return
      }
      if (Date.now() > deadline) throw new Error('the cluster did not converge in time')
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Stops every node and deletes the databases. */
  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id)
    for (const p of this.#paths.values()) {
      for (const f of [p, `${p}-wal`, `${p}-shm`]) await Deno.remove(f).catch(() => {})
    }
  }
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
