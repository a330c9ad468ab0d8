/**
 * An in-memory network of CRDT replicas for tests: each replica has its own Deno KV (`:memory:`)
 * and KV blockstore; a broadcast reaches every other started replica unless the network drops it;
 * a fetch reads the block from the other replicas' blockstores unless the network fails it. Time
 * is one manual clock; drops, failures and the rebroadcast jitter come from one seeded PRNG, so a
 * run is the same every time.
 *
 * @example
 * ```ts
 * const net = new CrdtNet({ seed: 7 })
 * const a = await net.add('a')
 * const b = await net.add('b')
 * await a.replica.put('/k', value)
 * await net.settle()
 * ```
 */
import type { CID } from 'multiformats/cid'
import { type KvBlockstore, kvBlockstore } from '../../../src/consensus/crdt/blockstore.ts'
import { crdtReplica } from '../../../src/consensus/crdt/replica.ts'
import type {
  BlockFetcher,
  Broadcaster,
  Replica,
  ReplicaHooks,
  ReplicaOptions,
} from '../../../src/consensus/crdt/types.ts'
import { deleteMutation, setMutation } from '../../../src/state/kv_batch.ts'
import { type Logger, nullLogger } from '../../../src/util/log.ts'
import { type ManualClock, manualClock, turn } from '../../support/manual_clock.ts'

/** CRDT_DEBUG=1: every replica logs to stderr, stamped with the manual clock (for a failing seed). */
function debugLog(name: string, clock: ManualClock): Logger {
  const out = (level: string) => (msg: string) =>
    console.error(`${clock.now() % 10_000_000} ${name} ${level} ${msg}`)
  return { debug: out('debug'), info: out('info'), warn: out('warn'), error: out('error') }
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The options tests run replicas with (intervals in manual-clock milliseconds). */
export const TEST_OPTS: ReplicaOptions = {
  rebroadcastIntervalMs: 60_000,
  repairIntervalMs: 3_600_000,
  dagSyncerTimeoutMs: 120_000,
  workers: 4,
  maxBatchBytes: 1 << 20,
}

/** What the hooks of one replica saw. */
export interface HookLog {
  puts: [string, string][]
  deletes: string[]
}

/** One replica of the network and what it is built from. */
export interface Node {
  name: string
  kv: Deno.Kv
  blocks: KvBlockstore
  replica: Replica
  hooks: HookLog
  /** Broadcasts this node published. */
  sent: Uint8Array[]
  /** Fetches this node made, by CID string. */
  fetched: string[]
}

class Inbox {
  #items: { from: string; data: Uint8Array }[] = []
  #wake: (() => void) | undefined
  push(m: { from: string; data: Uint8Array }) {
    this.#items.push(m)
    this.#wake?.()
  }
  get size() {
    return this.#items.length
  }
  async *iterate(signal: AbortSignal) {
    const onAbort = () => this.#wake?.()
    signal.addEventListener('abort', onAbort)
    try {
      while (!signal.aborted) {
        const m = this.#items.shift()
        if (m) {
          yield m
          continue
        }
        await new Promise<void>((r) => this.#wake = r)
        this.#wake = undefined
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

const td = new TextDecoder()

/** The network; see the module comment. */
export class CrdtNet {
  readonly clock: ManualClock
  readonly random: () => number
  readonly nodes = new Map<string, Node>()
  readonly #inboxes = new Map<string, Inbox>()
  /** Probability that one delivery of a broadcast is lost. */
  dropRate = 0
  /** Probability that one fetch fails. */
  fetchFailRate = 0
  /** Fetches of these CIDs (strings) hang until aborted. */
  readonly hang = new Set<string>()
  readonly #opts: ReplicaOptions

  constructor(opts: { seed: number; replica?: Partial<ReplicaOptions> }) {
    this.clock = manualClock()
    this.random = prng(opts.seed)
    this.#opts = { ...TEST_OPTS, ...opts.replica }
  }

  /** Builds a replica on a fresh KV (or the given one) and starts it. */
  async add(name: string, kv?: Deno.Kv): Promise<Node> {
    kv ??= await Deno.openKv(':memory:')
    const blocks = kvBlockstore(kv)
    const inbox = new Inbox()
    this.#inboxes.set(name, inbox)
    const log: HookLog = { puts: [], deletes: [] }
    const sent: Uint8Array[] = []
    const fetched: string[] = []
    const broadcaster: Broadcaster = {
      broadcast: (data) => {
        sent.push(data)
        for (const [other, box] of this.#inboxes) {
          if (other === name || !this.nodes.has(other)) continue
          if (this.dropRate > 0 && this.random() < this.dropRate) continue
          box.push({ from: name, data })
        }
        return Promise.resolve()
      },
      messages: (signal) => inbox.iterate(signal),
    }
    const fetcher: BlockFetcher = {
      fetch: async (cid: CID, signal: AbortSignal) => {
        fetched.push(cid.toString())
        await turn()
        signal.throwIfAborted()
        if (this.hang.has(cid.toString())) {
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason), { once: true })
          )
        }
        if (this.fetchFailRate > 0 && this.random() < this.fetchFailRate) {
          throw new Error(`fetch of ${cid} failed (injected)`)
        }
        for (const [other, n] of this.nodes) {
          if (other === name) continue
          const b = await n.blocks.get(cid)
          if (b) return b
        }
        throw new Error(`no peer has ${cid}`)
      },
    }
    let merges = (await kv.get<number>(['merges'])).value ?? 0
    const hooks: ReplicaHooks = {
      view: (key, value) =>
        value === undefined
          ? [deleteMutation(['view', key])]
          : [setMutation(['view', key], td.decode(value), value.length)],
      // A counter of merges that changed a key, in each such merge's last commit.
      merged: () => [setMutation(['merges'], ++merges, 16)],
      onPut: (key, value) => log.puts.push([key, td.decode(value)]),
      onDelete: (key) => log.deletes.push(key),
    }
    const replica = crdtReplica(
      {
        kv,
        blocks,
        broadcaster,
        fetcher,
        hooks,
        clock: this.clock,
        random: this.random,
        log: Deno.env.get('CRDT_DEBUG') ? debugLog(name, this.clock) : nullLogger,
      },
      this.#opts,
    )
    const node: Node = { name, kv, blocks, replica, hooks: log, sent, fetched }
    this.nodes.set(name, node)
    await replica.start()
    return node
  }

  /** Stops a replica (its KV stays open unless `close`). */
  async remove(name: string, close = true): Promise<void> {
    const n = this.nodes.get(name)
    if (!n) return
    this.nodes.delete(name)
    this.#inboxes.delete(name)
    await n.replica.stop()
    if (close) n.kv.close()
  }

  /** Lets every delivered broadcast and every walk finish (no time passes). */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3;) {
      await turn()
      const pending = [...this.#inboxes.values()].some((b) => b.size > 0)
      await Promise.all([...this.nodes.values()].map((n) => n.replica.idle()))
      quiet = pending ? 0 : quiet + 1
    }
  }

  /** Moves time by `ms` in steps (rebroadcasts and repairs fire), settling after each. */
  async run(ms: number, step = 10_000): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      await this.clock.advance(step)
      await this.settle()
    }
  }

  async stop(): Promise<void> {
    for (const name of [...this.nodes.keys()]) await this.remove(name)
  }
}

/** A replica's live set as [key, value-as-text] pairs, in list order. */
export async function contents(r: Replica): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const { key, value } of r.list()) out.push([key, td.decode(value)])
  return out
}

/** The view the hooks wrote, as [key, value] pairs in key order. */
export async function view(kv: Deno.Kv): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const e of kv.list<string>({ prefix: ['view'] })) {
    out.push([e.key[1] as string, e.value])
  }
  return out
}
