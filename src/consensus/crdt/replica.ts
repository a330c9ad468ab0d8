/**
 * go-ds-crdt v0.6.8's Datastore on Deno KV: a key → value store replicated as a Merkle DAG of
 * deltas. A local write builds one delta node linking every current head (priority = their max
 * height + 1), stores it, merges it and announces the new head (single writes that queue up
 * meanwhile share the next node: group commit); a received head is walked down,
 * fetching the nodes this replica lacks, merging each; heads are re-announced every
 * `rebroadcastIntervalMs` (±30 %) so that late and lossy peers catch up.
 *
 * Merging one node is one KV atomic commit holding its set changes (set.ts), its owner's view
 * (`hooks.view` for every key whose value changed), the heads it moves (heads.ts), its processed
 * mark, a "covered" mark for each of its links and a "queued" record (node, walk root) for each
 * link the walk goes on to. A node too large for one commit is split (state/kv_batch.ts) with those
 * marks in the last commit, so a crash in between merges it again (merging is idempotent).
 *
 * Merges run one at a time (the set's read-modify-write must see the previous merge); fetches of
 * one walk run `workers` at a time beside them; local writes run one at a time so that each gets
 * the priority above the last.
 *
 * KV records of the replica: `['crdt', 'b', mh]` processed, `['crdt', 'c', mh]` linked by a
 * processed node, `['crdt', 'q', mh, rootMh]` → root height: queued by the walk of that root and
 * not merged yet, `['crdt', 'd']` dirty; the set under `['crdt', 's']`, heads under `['crdt', 'h']`,
 * blocks under `['crdt', 'blocks']`.
 *
 * Where this differs from Go, and why (the wire format and the merge rules do not differ):
 * - Go's heads can keep a stale entry (a walk's root made a head after another walk merged a node
 *   linking it) or lose a tip (a walk whose fetch failed while another walk merged that node; the
 *   root then is no head and out of a repair's reach). Replicas that merged the same nodes then
 *   disagree on their heads, and a lost tip is never re-announced. Here a root linked by a merged
 *   node ("covered") is never made a head, and merging a node also places the roots of every
 *   walk that had queued it: every replica ends with the DAG's tips.
 * - The queued records make walks resumable: `start` resumes the walks a crash cut, and a repair
 *   first resumes the ones a failed fetch left, before walking the DAG from the heads as Go does.
 * - A repair walk from an unprocessed node uses the head's height for the head it moves, not the
 *   node's own priority (Go's `rootPrio` quirk could lower a head's height).
 * - The dirty flag is cleared after a repair only if no walk failed during it.
 * - Element keys over 1,500 bytes are skipped with a warning (KV refuses keys over 2 KiB; cluster
 *   keys are ~60 bytes), where Go would store them.
 *
 * @example
 * ```ts
 * const replica = crdtReplica({ kv, blocks: kvBlockstore(kv), broadcaster, fetcher, hooks, clock, log }, opts)
 * await replica.start()
 * await replica.put(dsKey(cid), pinBytes)
 * for await (const { key, value } of replica.list()) …
 * await replica.stop()
 * ```
 *
 * @module
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { errorMessage, isAbortError, ShutdownError } from '../../errors.ts'
import {
  commitPlan,
  deleteMutation,
  type Mutation,
  type MutationGroup,
  planCommits,
  setMutation,
} from '../../state/kv_batch.ts'
import type { CancelTimer } from '../../util/clock.ts'
import { DigestSet } from '../../util/digest_set.ts'
import { KeyedMutex } from '../../util/keyed_mutex.ts'
import {
  blockId,
  decodeBroadcast,
  decodeNode,
  type Delta,
  type DeltaNode,
  type Element,
  elementSize,
  encodeBroadcast,
  encodeNode,
  nodeCid,
  prioritySize,
} from './codec.ts'
import { type Head, Heads } from './heads.ts'
import {
  type KeyChange,
  kvSetReader,
  listValues,
  planMerge,
  removal,
  type SetReader,
  valueOf,
} from './set.ts'
import type { Replica, ReplicaDeps, ReplicaOptions } from './types.ts'

/** KV keys of the replica's own records. */
const PROCESSED = ['crdt', 'b'] as const
const QUEUED = ['crdt', 'q'] as const
/** Nodes some processed node links to (so never heads again). */
const COVERED = ['crdt', 'c'] as const
/** The dirty flag: set, a repair runs at the next start (`state crdt mark-dirty` sets it too). */
export const DIRTY = ['crdt', 'd'] as const
/** Every key of the replica (set, heads, blocks, marks) lives under this prefix. */
export const CRDT_PREFIX = ['crdt'] as const

/** Messages held while earlier ones are processed; beyond this the oldest are dropped. */
const INBOX_MAX = 4096
/** Queued single writes committed together at most (`#enqueue`); the delta splits by bytes. */
const MAX_WRITE_GROUP = 4096

/** A single put (value) or delete (none). */
interface WriteOp {
  key: string
  value?: Uint8Array
}

/** A queued single write and its caller. */
interface QueuedWrite {
  op: WriteOp
  resolve(): void
  reject(err: unknown): void
  /** Detaches the caller's abort listener. */
  done?(): void
}

/**
 * A replica over the given deps; see the module comment.
 *
 * @example
 * ```ts
 * const r = crdtReplica(deps, { rebroadcastIntervalMs: 60_000, repairIntervalMs: 3_600_000,
 *   dagSyncerTimeoutMs: 120_000, workers: 50, maxBatchBytes: 1 << 20 })
 * ```
 */
export function crdtReplica(deps: ReplicaDeps, opts: ReplicaOptions): Replica {
  return new CrdtReplica(deps, opts)
}

class CrdtReplica implements Replica {
  readonly #deps: ReplicaDeps
  readonly #opts: ReplicaOptions
  readonly #kv: Deno.Kv
  readonly #reader: SetReader
  readonly #locks = new KeyedMutex()
  readonly #ac = new AbortController()
  #heads = new Heads()
  #started = false
  #stopped = false
  #dirty = false
  /** Nodes reserved by a walk (go-ds-crdt's queuedChildren), by block ID. */
  readonly #queued = new Set<string>()
  /** Heads received since the last rebroadcast (not re-announced by it), by block ID. */
  #seen = new Set<string>()
  readonly #inbox: { from: string; data: Uint8Array }[] = []
  #draining = false
  /** Single writes waiting for the next delta (`#enqueue`). */
  readonly #writes: QueuedWrite[] = []
  #flushingWrites = false
  /** Messages in the inbox or being handled, walks and repairs under way. */
  #busy = 0
  #idleWaiters: (() => void)[] = []
  readonly #timers: CancelTimer[] = []
  readonly #tasks = new Set<Promise<unknown>>()
  #blocksFetched = 0
  #blocksProcessed = 0
  /** Failures that marked the store dirty (a repair clears the flag only if none happened). */
  #failures = 0

  constructor(deps: ReplicaDeps, opts: ReplicaOptions) {
    this.#deps = deps
    this.#opts = opts
    this.#kv = deps.kv
    this.#reader = kvSetReader(deps.kv, deps.blocks)
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    this.#heads = await Heads.load(this.#kv)
    this.#dirty = (await this.#kv.get(DIRTY)).value !== null
    const signal = this.#ac.signal

    this.#track(this.#receive(signal))
    this.#scheduleRebroadcast()
    if (this.#opts.repairIntervalMs > 0) {
      this.#timers.push(
        this.#deps.clock.interval(this.#opts.repairIntervalMs, () => {
          if (this.#dirty) this.#background(() => this.repair(signal), 'repair')
        }),
      )
    }
    // Walks a crash cut resume first; a dirty store is then repaired (Go: on start if dirty).
    this.#background(async () => {
      await this.#resumeQueued(signal)
      if (this.#dirty && this.#opts.repairIntervalMs > 0) await this.repair(signal)
    }, 'resuming walks')
    this.#deps.log.info(
      `crdt replica started: ${this.#heads.size} heads, max height ${this.#heads.maxHeight()}` +
        (this.#dirty ? ', dirty' : ''),
    )
  }

  // ---- local writes ----

  put(key: string, value: Uint8Array, signal?: AbortSignal): Promise<void> {
    return this.#enqueue({ key, value }, signal)
  }

  delete(key: string, signal?: AbortSignal): Promise<void> {
    return this.#enqueue({ key }, signal)
  }

  commitBatch(
    ops: Iterable<WriteOp> | AsyncIterable<WriteOp>,
    signal?: AbortSignal,
  ): Promise<void> {
    return this.#write(signal, () => this.#commitOps(ops, signal))
  }

  /**
   * Queues a single put or delete. The writes that queue up while a delta is being committed go
   * out together in the next one (group commit): a local write holds the write lock across two
   * KV commits, each an fsync, so one delta per write capped a peer at ~100 writes/s under 64
   * clients, and every other peer had to fetch and merge each delta. Each caller still resolves
   * once its write is committed here; a later put of a key in the group replaces an earlier one
   * (the order the callers made them in), as one put after the other would.
   */
  #enqueue(op: WriteOp, signal?: AbortSignal): Promise<void> {
    if (this.#stopped) return Promise.reject(new ShutdownError('crdt replica is shut down'))
    if (!this.#started) return Promise.reject(new ShutdownError('crdt replica is not started'))
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const item: QueuedWrite = { op, resolve, reject }
    if (signal) {
      // Aborted while it waits: it leaves the queue. Once in a commit it can no longer leave.
      const onAbort = () => {
        const i = this.#writes.indexOf(item)
        if (i < 0) return
        this.#writes.splice(i, 1)
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      item.done = () => signal.removeEventListener('abort', onAbort)
    }
    this.#writes.push(item)
    if (!this.#flushingWrites) void this.#flushWrites()
    return promise
  }

  async #flushWrites(): Promise<void> {
    this.#flushingWrites = true
    try {
      while (this.#writes.length > 0) {
        const group = this.#writes.splice(0, MAX_WRITE_GROUP)
        for (const w of group) w.done?.()
        try {
          if (this.#stopped) throw new ShutdownError('crdt replica is shut down')
          await this.#locks.run('write', () => this.#commitOps(group.map((w) => w.op)))
          for (const w of group) w.resolve()
        } catch (err) {
          for (const w of group) w.reject(err)
        }
      }
    } finally {
      this.#flushingWrites = false
    }
  }

  /**
   * One delta with all of `ops` (more when it passes `maxBatchBytes`): a delete drops the
   * pending puts of its key and tombstones every version seen here; a put replaces a pending put
   * of its key.
   */
  async #commitOps(
    ops: Iterable<WriteOp> | AsyncIterable<WriteOp>,
    signal?: AbortSignal,
  ): Promise<void> {
    let elements: Element[] = []
    let tombstones: Element[] = []
    // Keys with puts in `elements`, and the tombstones already in (key NUL id).
    let putKeys = new Set<string>()
    let tombIds = new Set<string>()
    // Encoded size of the delta so far; the priority is at most 10 bytes more.
    let size = prioritySize(Number.MAX_SAFE_INTEGER)
    const flush = async () => {
      if (elements.length === 0 && tombstones.length === 0) return
      await this.#publish({ elements, tombstones, priority: 0 }, signal)
      elements = []
      tombstones = []
      putKeys = new Set()
      tombIds = new Set()
      size = prioritySize(Number.MAX_SAFE_INTEGER)
    }
    const dropPuts = (key: string) => {
      if (!putKeys.delete(key)) return
      elements = elements.filter((e) => {
        if (e.key !== key) return true
        size -= elementSize(e)
        return false
      })
    }
    for await (const op of ops) {
      signal?.throwIfAborted()
      // The last write of a key is the one meant: an earlier put of it leaves the delta (in
      // one delta, equal priorities would let the byte-wise greater value win instead).
      dropPuts(op.key)
      if (op.value !== undefined) {
        const e = { key: op.key, id: '', value: op.value }
        elements.push(e)
        putKeys.add(op.key)
        size += elementSize(e)
      } else {
        for (const t of await removal(this.#kv, op.key)) {
          const tid = `${t.key}\0${t.id}`
          if (tombIds.has(tid)) continue
          tombIds.add(tid)
          tombstones.push(t)
          size += elementSize(t)
        }
      }
      // As Go: the operation that takes the delta past the limit is committed with it.
      if (size > this.#opts.maxBatchBytes) await flush()
    }
    await flush()
  }

  /** Runs a local write after the previous one, refusing it once stopped. */
  #write(signal: AbortSignal | undefined, fn: () => Promise<void>): Promise<void> {
    if (this.#stopped) return Promise.reject(new ShutdownError('crdt replica is shut down'))
    if (!this.#started) return Promise.reject(new ShutdownError('crdt replica is not started'))
    signal?.throwIfAborted()
    return this.#locks.run('write', fn)
  }

  /** Stores `delta` as a node on top of every head, merges it, then announces it. */
  async #publish(delta: Delta, signal?: AbortSignal): Promise<void> {
    const cid = await this.#locks.run('merge', async () => {
      const heads = this.#heads.list()
      const height = this.#heads.maxHeight() + 1
      const d = { ...delta, priority: height }
      const node = await encodeNode(d, heads.map((h) => h.cid))
      await this.#deps.blocks.put(node.cid, node.bytes)
      const children = await this.#processNode(
        { cid: node.cid, height },
        node.cid,
        { delta: d, links: heads.map((h) => h.cid) },
      )
      // Only a head adopted from a broadcast and not walked yet can be left here: walk it.
      if (children.length > 0) {
        this.#background(
          () => this.#walk(node.cid, height, children, this.#ac.signal, true),
          'walking below a new node',
        )
      }
      return node.cid
    })
    await this.#announce([cid], signal)
  }

  async #announce(cids: CID[], signal?: AbortSignal): Promise<void> {
    if (cids.length === 0) return
    try {
      await this.#deps.broadcaster.broadcast(encodeBroadcast(cids), signal)
    } catch (err) {
      // The write is committed; the next rebroadcast announces the head.
      this.#deps.log.warn(`crdt: broadcasting ${cids.join(', ')} failed: ${errorMessage(err)}`)
    }
  }

  // ---- reads ----

  get(key: string): Promise<Uint8Array | undefined> {
    return valueOf(this.#kv, this.#deps.blocks, key)
  }

  list(signal?: AbortSignal): AsyncIterable<{ key: string; value: Uint8Array }> {
    return listValues(this.#kv, this.#deps.blocks, signal)
  }

  heads(): Promise<{ cid: CID; height: number }[]> {
    return Promise.resolve(this.#heads.list())
  }

  stats(): { blocksFetched: number; blocksProcessed: number; dirty: boolean } {
    return {
      blocksFetched: this.#blocksFetched,
      blocksProcessed: this.#blocksProcessed,
      dirty: this.#dirty,
    }
  }

  idle(signal?: AbortSignal): Promise<void> {
    if (this.#busy === 0) return Promise.resolve()
    signal?.throwIfAborted()
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done)
        reject(signal!.reason)
      }
      const done = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      this.#idleWaiters.push(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  #enter(): void {
    this.#busy++
  }

  #leave(): void {
    if (--this.#busy > 0) return
    const ws = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of ws) w()
  }

  /** Runs `fn` in the background, counted as busy; failures are logged. */
  #background(fn: () => Promise<unknown>, what: string): void {
    this.#enter()
    this.#track(
      fn().catch((err) => {
        if (!this.#stopped || !isAbortError(err)) {
          this.#deps.log.error(`crdt: ${what}: ${errorMessage(err)}`)
        }
      }).finally(() => this.#leave()),
    )
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch(() => {}).finally(() => this.#tasks.delete(q))
    this.#tasks.add(q)
  }

  // ---- receiving ----

  async #receive(signal: AbortSignal): Promise<void> {
    try {
      for await (const msg of this.#deps.broadcaster.messages(signal)) {
        if (this.#inbox.length >= INBOX_MAX) {
          this.#inbox.shift()
          this.#leave()
          this.#deps.log.warn('crdt: too many broadcasts waiting; dropped the oldest')
        }
        this.#enter()
        this.#inbox.push(msg)
        if (!this.#draining) this.#track(this.#drain(signal))
      }
    } catch (err) {
      if (!signal.aborted) this.#deps.log.error(`crdt: receiving broadcasts: ${errorMessage(err)}`)
    }
  }

  /** Handles queued broadcasts one at a time (Go: one message after another). */
  async #drain(signal: AbortSignal): Promise<void> {
    this.#draining = true
    try {
      while (this.#inbox.length > 0) {
        const msg = this.#inbox.shift()!
        try {
          if (!signal.aborted) await this.#handleMessage(msg.from, msg.data, signal)
        } catch (err) {
          if (!signal.aborted) {
            this.#deps.log.error(`crdt: broadcast from ${msg.from}: ${errorMessage(err)}`)
          }
        } finally {
          this.#leave()
        }
      }
    } finally {
      this.#draining = false
    }
  }

  async #handleMessage(from: string, data: Uint8Array, signal: AbortSignal): Promise<void> {
    let heads: CID[]
    try {
      heads = decodeBroadcast(data).map(nodeCid)
    } catch (err) {
      this.#deps.log.warn(`crdt: bad broadcast from ${from}: ${errorMessage(err)}`)
      return
    }
    // No heads yet: adopt the announced ones at once, so that local writes build on them rather
    // than start an orphan branch while the walk catches up (Go does the same).
    if (this.#heads.size === 0) {
      for (const head of heads) {
        try {
          const { node } = await this.#getNode(head, signal)
          await this.#locks.run('merge', async () => {
            const edit = this.#heads.edit()
            edit.add(head, node.delta.priority)
            this.#deps.log.debug(`crdt: adopted head ${head}`)
            await commitPlan(this.#kv, planCommits([{ mutations: edit.mutations() }]))
            edit.apply()
          })
        } catch (err) {
          if (signal.aborted) throw err
          this.#deps.log.warn(`crdt: fetching announced head ${head}: ${errorMessage(err)}`)
        }
      }
    }
    for (const head of heads) {
      try {
        if (!await this.#isProcessed(head)) await this.#walk(head, undefined, [head], signal, false)
      } catch (err) {
        if (signal.aborted) throw err
        // Not dirty: nothing of this branch was merged; the next broadcast retries it.
        this.#deps.log.warn(`crdt: processing head ${head} from ${from}: ${errorMessage(err)}`)
      }
      this.#seen.add(blockId(head))
    }
  }

  /** Which of `keys` exist in KV. */
  async #flags(keys: Deno.KvKey[]): Promise<boolean[]> {
    const out: boolean[] = []
    for (let i = 0; i < keys.length; i += 10) {
      for (const e of await this.#kv.getMany(keys.slice(i, i + 10))) out.push(e.value !== null)
    }
    return out
  }

  async #isProcessed(cid: CID): Promise<boolean> {
    return (await this.#kv.get([...PROCESSED, cid.multihash.bytes])).value !== null
  }

  /** The node from the blockstore, or fetched (and stored) within the DAG syncer timeout. */
  async #getNode(cid: CID, signal: AbortSignal): Promise<{ node: DeltaNode; bytes: Uint8Array }> {
    let bytes = await this.#deps.blocks.get(cid)
    if (bytes === undefined) {
      const timeout = this.#deps.clock.timeoutSignal(this.#opts.dagSyncerTimeoutMs)
      bytes = await this.#deps.fetcher.fetch(cid, AbortSignal.any([signal, timeout]))
      const node = await decodeNode(cid, bytes)
      await this.#deps.blocks.put(cid, bytes)
      this.#blocksFetched++
      return { node, bytes }
    }
    return { node: await decodeNode(cid, bytes), bytes }
  }

  /**
   * Walks down from `start` (nodes of the branch whose tip is `root`), fetching `workers` nodes at
   * a time and merging each. A failure to get a start node rejects when `startFails` is false (a
   * received head: dropped, retried on the next broadcast); any other failure marks the store
   * dirty and the walk goes on with the other branches.
   */
  #walk(
    root: CID,
    rootHeight: number | undefined,
    start: CID[],
    signal: AbortSignal,
    deepStart: boolean,
  ): Promise<void> {
    this.#enter()
    return new Promise<void>((resolve, reject) => {
      // Entries are dropped as they are taken: a walk down a long chain must not hold every
      // node it visited (each CID was once a view of its parent's block: codec.ts).
      const queue: ({ cid: CID; deep: boolean } | undefined)[] = start.map((cid) => ({
        cid,
        deep: deepStart,
      }))
      let next = 0
      let active = 0
      let failure: unknown
      const visit = async (cid: CID, deep: boolean) => {
        let got: { node: DeltaNode }
        try {
          got = await this.#getNode(cid, signal)
        } catch (err) {
          this.#queued.delete(blockId(cid))
          if (!deep) throw err
          if (!signal.aborted) {
            this.#deps.log.error(`crdt: fetching ${cid} below ${root}: ${errorMessage(err)}`)
            await this.#markDirty()
          }
          return
        }
        rootHeight ??= got.node.delta.priority
        const height = rootHeight
        let children: CID[]
        try {
          children = await this.#locks.run(
            'merge',
            () => this.#processNode({ cid: root, height }, cid, got.node),
          )
        } catch (err) {
          this.#queued.delete(blockId(cid))
          this.#deps.log.error(`crdt: merging ${cid}: ${errorMessage(err)}`)
          await this.#markDirty()
          return
        }
        for (const c of children) queue.push({ cid: c, deep: true })
      }
      const pump = () => {
        while (active < Math.max(1, this.#opts.workers) && next < queue.length && !signal.aborted) {
          const { cid, deep } = queue[next]!
          queue[next++] = undefined
          active++
          visit(cid, deep).catch((err) => failure ??= err).finally(() => {
            active--
            pump()
          })
        }
        // Free the consumed part of a long queue now and then.
        if (next > 1024 && next * 2 > queue.length) {
          queue.splice(0, next)
          next = 0
        }
        if (active === 0) {
          this.#leave()
          if (failure !== undefined) reject(failure)
          else if (signal.aborted && next < queue.length) reject(signal.reason)
          else resolve()
        }
      }
      pump()
    })
  }

  /**
   * Merges one node (under the merge lock) and moves the heads as go-ds-crdt's processNode does;
   * returns the links to walk next (reserved for this walk). One KV commit when it fits.
   */
  async #processNode(root: Head, cid: CID, node: DeltaNode): Promise<CID[]> {
    const self = blockId(cid)
    // Whether this node and each link are processed, and whether the root is linked by a processed
    // node (then it is no head: the walk that merged that node made its own root one).
    const flags = await this.#flags([
      [...PROCESSED, cid.multihash.bytes],
      [...COVERED, root.cid.multihash.bytes],
      ...node.links.map((l) => [...PROCESSED, l.multihash.bytes]),
    ])
    const rootCovered = flags[1]
    const linkProcessed = flags.slice(2)
    // The walks that queued this node: `['crdt', 'q', node, root]` → the root's height. A walk
    // whose fetch of this node failed left its record; this merge ends that walk too.
    const walks: { key: Deno.KvKey; root: CID; height: number }[] = []
    for await (const e of this.#kv.list<number>({ prefix: [...QUEUED, cid.multihash.bytes] })) {
      const mh = e.key[QUEUED.length + 1] as Uint8Array
      walks.push({ key: e.key, root: CID.createV1(dagPb.code, Digest.decode(mh)), height: e.value })
    }
    const others = walks.filter((w) => !w.root.equals(root.cid))
    const othersCovered = await this.#flags(others.map((w) => [...COVERED, w.root.multihash.bytes]))
    // Merged already by another walk (one started at this node as a received head while this
    // walk had it queued): the set is not touched again, but this walk's root still needs its
    // place among the heads, which the links below decide.
    const merged = flags[0]
    const changes = merged ? new Map<string, KeyChange>() : await planMerge(
      this.#reader,
      node.delta,
      self,
      cid,
      (key) =>
        this.#deps.log.warn(`crdt: skipped an element of ${cid}: key of ${key.length} characters`),
    )

    const edit = this.#heads.edit()
    // go-ds-crdt adds the root as a head when its walk reaches a leaf or a processed node; if a
    // node merged meanwhile links the root, that head would stay forever beside the one that
    // covers it (Go keeps such stale heads; here every replica ends with the DAG's real tips).
    const addRoot = () => {
      if (!rootCovered) edit.add(root.cid, root.height)
    }
    if (node.links.length === 0) addRoot()
    // Another walk that reached this node and lost it (a failed fetch) would have made its root a
    // head on finding it queued by someone else; it does so now.
    others.forEach((w, i) => {
      if (!othersCovered[i] && !edit.isHead(w.root)) edit.add(w.root, w.height)
    })
    let addedAsHead = false
    const children: CID[] = []
    const reserved: string[] = []
    for (let i = 0; i < node.links.length; i++) {
      const child = node.links[i]
      const done = linkProcessed[i]
      if (edit.isHead(child)) {
        // Reached a current head: this branch's tip takes its place (or, when a merged node links
        // the tip, the head that covers it already does: a resumed walk of an old branch).
        if (rootCovered) edit.remove(child)
        else edit.replace(child, root.cid, root.height)
        addedAsHead = true
        if (done) continue
      }
      const id = blockId(child)
      if (done || this.#queued.has(id)) {
        if (!addedAsHead) addRoot()
        addedAsHead = true
        continue
      }
      this.#queued.add(id)
      reserved.push(id)
      children.push(child)
    }

    const hooks = this.#deps.hooks
    const groups: MutationGroup[] = []
    try {
      let changed = false
      for (const [key, c] of changes) {
        const mutations = [...c.mutations]
        if (c.changed && hooks.view) mutations.push(...hooks.view(key, c.value))
        changed ||= c.changed
        groups.push({ mutations })
      }
      const last: Mutation[] = [
        ...(changed && hooks.merged ? hooks.merged() : []),
        setMutation([...PROCESSED, cid.multihash.bytes], true, 8),
        ...walks.map((w) => deleteMutation(w.key)),
        ...edit.mutations(),
      ]
      for (const c of children) {
        last.push(
          setMutation([...QUEUED, c.multihash.bytes, root.cid.multihash.bytes], root.height, 8),
        )
      }
      for (const l of node.links) last.push(setMutation([...COVERED, l.multihash.bytes], true, 8))
      groups.push({ mutations: last })
      await commitPlan(this.#kv, planCommits(groups))
    } catch (err) {
      for (const id of reserved) this.#queued.delete(id)
      throw err
    }
    if (!edit.empty) {
      this.#deps.log.debug(`crdt: ${cid} (walk of ${root.cid}): heads ${edit.describe()}`)
    }
    edit.apply()
    this.#queued.delete(self)
    if (!merged) this.#blocksProcessed++
    if (node.delta.priority % 50 === 0) {
      this.#deps.log.info(`crdt: merged delta from node ${cid} (priority ${node.delta.priority})`)
    }

    // The hooks, after the commit: deletes first, as Go fires them after the tombstones.
    for (const [key, c] of changes) {
      if (c.deleted) this.#hook(() => hooks.onDelete?.(key))
    }
    for (const [key, c] of changes) {
      if (c.put !== undefined) this.#hook(() => hooks.onPut?.(key, c.put!))
    }
    return children
  }

  #hook(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.#deps.log.error(`crdt: hook failed: ${errorMessage(err)}`)
    }
  }

  async #markDirty(): Promise<void> {
    this.#failures++
    if (this.#dirty) return
    this.#deps.log.warn('crdt: marking the datastore dirty')
    this.#dirty = true
    await this.#kv.set(DIRTY, true)
  }

  /** Restarts the walks of queued records: nodes a failed fetch or a crash left unmerged. */
  async #resumeQueued(signal: AbortSignal): Promise<void> {
    const byRoot = new Map<string, { root: CID; height: number; cids: CID[] }>()
    for await (const e of this.#kv.list<number>({ prefix: [...QUEUED] })) {
      const cid = CID.createV1(dagPb.code, Digest.decode(e.key[QUEUED.length] as Uint8Array))
      const root = CID.createV1(dagPb.code, Digest.decode(e.key[QUEUED.length + 1] as Uint8Array))
      const id = blockId(root)
      let w = byRoot.get(id)
      if (!w) byRoot.set(id, w = { root, height: e.value, cids: [] })
      if (!this.#queued.has(blockId(cid))) {
        this.#queued.add(blockId(cid))
        w.cids.push(cid)
      }
    }
    for (const w of byRoot.values()) {
      if (w.cids.length === 0) continue
      this.#deps.log.info(`crdt: resuming the walk of ${w.cids.length} nodes below ${w.root}`)
      await this.#walk(w.root, w.height, w.cids, signal, true)
    }
  }

  // ---- rebroadcast and repair ----

  #scheduleRebroadcast(): void {
    if (this.#stopped) return
    const d = this.#opts.rebroadcastIntervalMs
    const r = (this.#deps.random ?? Math.random)()
    const ms = Math.max(1, Math.round(d + (r * 2 - 1) * 0.3 * d))
    const cancel = this.#deps.clock.timeout(ms, () => {
      this.#timers.splice(this.#timers.indexOf(cancel), 1)
      this.#track(this.#rebroadcast().finally(() => this.#scheduleRebroadcast()))
    })
    this.#timers.push(cancel)
  }

  /** Announces the heads not received from others since the last rebroadcast. */
  async #rebroadcast(): Promise<void> {
    const seen = this.#seen
    this.#seen = new Set()
    const heads = this.#heads.list().filter((h) => !seen.has(blockId(h.cid))).map((h) => h.cid)
    this.#deps.log.debug(
      `crdt: rebroadcast of ${heads.length} of ${this.#heads.size} heads (${seen.size} received)`,
    )
    await this.#announce(heads, this.#ac.signal)
  }

  async repair(signal?: AbortSignal): Promise<void> {
    if (!this.#started || this.#stopped) throw new ShutdownError('crdt replica is not running')
    const sig = signal ? AbortSignal.any([signal, this.#ac.signal]) : this.#ac.signal
    this.#enter()
    try {
      await this.#locks.run('repair', () => this.#repair(sig))
    } finally {
      this.#leave()
    }
  }

  /**
   * Finishes the walks that failed or were cut, then walks every node from the heads down; an
   * unprocessed one is walked again from there.
   */
  async #repair(signal: AbortSignal): Promise<void> {
    this.#deps.log.warn('crdt: DAG repair started')
    const failedBefore = this.#failures
    // First the nodes a walk failed to get: their queued records name the walk's root, which is
    // no head yet (it becomes one when its walk ends) and so may be out of reach from the heads.
    await this.#resumeQueued(signal)
    const visited = new DigestSet()
    let queue: { head: Head; cid: CID }[] = []
    for (const h of this.#heads.list()) {
      visited.add(h.cid.multihash.bytes)
      queue.push({ head: h, cid: h.cid })
    }
    let n = 0
    while (queue.length > 0) {
      const nextRound: { head: Head; cid: CID }[] = []
      for (const { head, cid } of queue) {
        signal.throwIfAborted()
        const { node } = await this.#getNode(cid, signal)
        if (!await this.#isProcessed(cid)) {
          this.#deps.log.debug(`crdt: repair re-processes ${cid}`)
          const id = blockId(cid)
          if (!this.#queued.has(id)) {
            this.#queued.add(id)
            const height = this.#heads.height(head.cid) ?? head.height
            await this.#walk(head.cid, height, [cid], signal, true)
          }
        }
        for (const l of node.links) {
          if (visited.has(l.multihash.bytes)) continue
          visited.add(l.multihash.bytes)
          nextRound.push({ head, cid: l })
        }
        n++
      }
      queue = nextRound
    }
    if (this.#failures === failedBefore) {
      this.#dirty = false
      await this.#kv.delete(DIRTY)
      this.#deps.log.info(`crdt: DAG repair finished: ${n} nodes visited; marked clean`)
    } else {
      this.#deps.log.warn(
        `crdt: DAG repair finished with failures: ${n} nodes visited; still dirty`,
      )
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#ac.abort(new ShutdownError('crdt replica is shut down'))
    for (const t of this.#timers.splice(0)) t()
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks])
    // Local writes under way finish their commit before the store closes; queued ones are
    // refused by the flush loop (`#stopped`).
    await this.#locks.run('write', () => Promise.resolve())
    while (this.#flushingWrites) await this.#locks.run('write', () => Promise.resolve())
    await this.#locks.run('merge', () => Promise.resolve())
  }
}
