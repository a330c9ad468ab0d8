/**
 * The durable Raft storage on Deno KV: the core's synchronous `Storage` served from a
 * write-through in-memory copy (loaded once at `open`), and the host's writes of the contract in
 * `core/storage.ts` made durable in atomic KV commits.
 *
 * ## Keys (under `['raft']`, snapshot chunks under `['chunk']`; in the same database as the
 * pinset, so that one commit can hold a Ready's log writes and the state writes of the entries it
 * applies)
 *
 * ```
 * ['raft','hs']               { term, vote, commit }
 * ['raft','snap']             manifest: { index, term, voters, learners, data: SnapshotData|null }
 * ['raft','first']            { index, term } of the dummy position (the last compacted entry)
 * ['raft','e', i]             entry i: { t: term, c: 1 if confChange, d: data } or, when the data
 *                             is larger than a KV value, { t, c, n: parts, s: bytes }
 * ['raft','ep', i, p]         part p of a large entry i
 * ['chunk', id, n]            chunk n of the snapshot bytes `id` (see snapshot_format.ts; not
 *                             under ['raft']: see CHUNK_PREFIX)
 * ['raft','wipe']             a snapshot install is deleting the old log (entries ≤ value)
 * ['raft','restore']          the state is being replaced by the manifest's snapshot
 * ['raft','seq', origin]      the state machine's dedupe table (fsm.ts)
 * ```
 *
 * ## Crash safety when a write spans several commits (KV limits)
 *
 * Commits go in order; whatever prefix of them is durable is a state `open` accepts:
 * - appending: the old suffix is deleted from the top down, then entries are written in order, a
 *   large entry's parts before its header, then the hard state: the log is always a valid prefix
 *   (of the old log, then of the new one), and the commit index never exceeds it. A changed term
 *   or vote goes in the first commit (with the old commit index), because a log holding entries
 *   of a term the hard state has not reached could let the node vote in an older term.
 * - compacting: `first` moves first, then entries go from the bottom up; `open` finishes it.
 * - installing a snapshot: its data is staged in chunks first; then one commit writes the
 *   manifest, `first`, `restore` and `wipe`; then the old log is deleted and `wipe` cleared; the
 *   state is restored by fsm.ts, whose last commit clears `restore`. `open` finishes an
 *   interrupted wipe and reports an interrupted restore, which the host redoes before starting.
 * - snapshot bytes: chunks first, the manifest (with byte count and CRC) last. Chunks no manifest
 *   names are a torn write and are deleted at `open`; a manifest whose chunks do not match its
 *   CRC loses its data (the metadata stays: the state on disk is authoritative) and is never sent.
 *
 * @example
 * ```ts
 * const storage = await KvRaftStorage.open(kv, { initialConf: { voters: [me], learners: [] } })
 * const node = new RaftNode({ id: me, storage, rand: Math.random })
 * const rd = node.ready()
 * await storage.persist(rd.entries, rd.hardState, [])
 * ```
 *
 * @module
 */
import {
  type ConfState,
  decodeConfChangeEntry,
  type Entry,
  type HardState,
  MemoryStorage,
  RaftInvariantError,
  type SnapshotMeta,
  type Storage,
} from './core/mod.ts'
import {
  commitMutations,
  commitPlan,
  deleteMutation,
  KvWriter,
  MAX_VALUE_BYTES,
  type Mutation,
  type MutationGroup,
  PipelinedKvWriter,
  planCommits,
  setMutation,
} from '../../state/kv_batch.ts'
import { SnapshotVerifier, TornSnapshotError } from './snapshot_format.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { errorMessage } from '../../errors.ts'

/** The first part of every Raft key. */
export const RAFT_PREFIX = 'raft'
const HS_KEY = [RAFT_PREFIX, 'hs']
const SNAP_KEY = [RAFT_PREFIX, 'snap']
const FIRST_KEY = [RAFT_PREFIX, 'first']
const WIPE_KEY = [RAFT_PREFIX, 'wipe']
const RESTORE_KEY = [RAFT_PREFIX, 'restore']
const entryKey = (i: number): Deno.KvKey => [RAFT_PREFIX, 'e', i]
const partKey = (i: number, p: number): Deno.KvKey => [RAFT_PREFIX, 'ep', i, p]
/**
 * Snapshot chunks live under a prefix of their own that sorts before the pinset's `['pin', …]`:
 * restoring a snapshot writes pins in key order, and with 60 KB values sorting after them (under
 * `['raft', …]`, as before) the same writes took 2.3–2.8× longer (docs/performance.md). The old
 * place is only cleared at `open`.
 */
const CHUNK_PREFIX: Deno.KvKey = ['chunk']
const OLD_CHUNK_PREFIX: Deno.KvKey = [RAFT_PREFIX, 'chunk']
const chunkKey = (id: string, n: number): Deno.KvKey => [...CHUNK_PREFIX, id, n]

/** Where a snapshot's bytes are stored, and how to check them. */
export interface SnapshotData {
  id: string
  chunks: number
  /** Total bytes of the stream, trailer included. */
  bytes: number
  /** CRC-32 of the whole stream. */
  crc: number
}

interface Manifest {
  index: number
  term: number
  voters: string[]
  learners: string[]
  data: SnapshotData | null
}

interface StoredEntry {
  t: number
  c: 0 | 1
  d?: Uint8Array
  n?: number
  s?: number
}

/** Options of `KvRaftStorage.open`. */
export interface KvRaftStorageOptions {
  /** Membership of a brand-new node (empty for one that joins an existing cluster). */
  initialConf: ConfState
  log?: Logger
}

/** Entries whose data is at most this are stored inline in their header value. */
const INLINE_MAX = MAX_VALUE_BYTES - 256
const CHUNK_LIST_BATCH = 8

function manifestOf(meta: SnapshotMeta, data: SnapshotData | null): Manifest {
  return {
    index: meta.index,
    term: meta.term,
    voters: [...meta.confState.voters],
    learners: [...meta.confState.learners],
    data,
  }
}

function manifestBytes(m: Manifest): number {
  return 200 + (m.voters.length + m.learners.length) * 64
}

function metaOf(m: Manifest): SnapshotMeta {
  return {
    index: m.index,
    term: m.term,
    confState: { voters: [...m.voters], learners: [...m.learners] },
  }
}

function termOrVoteChanged(a: HardState, b: HardState): boolean {
  return a.term !== b.term || a.vote !== b.vote
}

/**
 * Deno KV Raft storage. Reads are synchronous from memory; every write method resolves once its
 * commits are durable. Write methods are serialized among themselves.
 */
export class KvRaftStorage implements Storage {
  readonly kv: Deno.Kv
  readonly #log: Logger
  #mem: MemoryStorage
  #hs: HardState
  #data: SnapshotData | null
  /** Indexes of stored entries kept in parts, with their part counts. */
  #parts = new Map<number, number>()
  #logBytes = 0
  #lock: Promise<unknown> = Promise.resolve()
  #refs = new Map<string, number>()
  #doomed = new Set<string>()
  #background = new Set<Promise<void>>()
  /** True when no Raft state existed and `open` created it. */
  readonly fresh: boolean
  /** A snapshot install was interrupted before the state was restored: redo it first. */
  restorePending: boolean

  private constructor(
    kv: Deno.Kv,
    log: Logger,
    mem: MemoryStorage,
    hs: HardState,
    data: SnapshotData | null,
    parts: Map<number, number>,
    logBytes: number,
    fresh: boolean,
    restorePending: boolean,
  ) {
    this.kv = kv
    this.#log = log
    this.#mem = mem
    this.#hs = hs
    this.#data = data
    this.#parts = parts
    this.#logBytes = logBytes
    this.fresh = fresh
    this.restorePending = restorePending
  }

  /**
   * Loads the Raft state from `kv`, creating it for a brand-new node, and finishes whatever a
   * crash interrupted (compaction, log wipe, torn snapshot writes). See the module comment.
   */
  static async open(kv: Deno.Kv, opts: KvRaftStorageOptions): Promise<KvRaftStorage> {
    const log = opts.log ?? nullLogger
    const [hsE, snapE, firstE, wipeE, restoreE] = await kv.getMany<
      [HardState, Manifest, { index: number; term: number }, number, boolean]
    >([HS_KEY, SNAP_KEY, FIRST_KEY, WIPE_KEY, RESTORE_KEY])
    let manifest = snapE.value
    let fresh = false
    if (!manifest) {
      fresh = true
      manifest = manifestOf({ index: 0, term: 0, confState: opts.initialConf }, null)
      await commitMutations(kv, [setMutation(SNAP_KEY, manifest, manifestBytes(manifest))])
    }
    const hs: HardState = hsE.value ?? { term: 0, vote: null, commit: 0 }

    // The log, as stored.
    const headers = new Map<number, StoredEntry>()
    for await (
      const e of kv.list<StoredEntry>({ prefix: [RAFT_PREFIX, 'e'] }, { batchSize: 500 })
    ) {
      headers.set(e.key[2] as number, e.value)
    }
    const parts = new Map<number, Map<number, Uint8Array>>()
    for await (const e of kv.list<Uint8Array>({ prefix: [RAFT_PREFIX, 'ep'] }, { batchSize: 16 })) {
      const i = e.key[2] as number
      let m = parts.get(i)
      if (!m) parts.set(i, m = new Map())
      m.set(e.key[3] as number, e.value)
    }
    const cleanup: Mutation[] = []
    const dropEntry = (i: number) => {
      headers.delete(i)
      cleanup.push(deleteMutation(entryKey(i)))
      for (const p of parts.get(i)?.keys() ?? []) cleanup.push(deleteMutation(partKey(i, p)))
      parts.delete(i)
    }
    // An interrupted snapshot install: the old log must go entirely.
    if (wipeE.value !== null) {
      for (const i of [...headers.keys()]) if (i <= wipeE.value) dropEntry(i)
      for (const i of [...parts.keys()]) if (i <= wipeE.value) dropEntry(i)
      cleanup.push(deleteMutation(WIPE_KEY))
    }
    // An interrupted compaction: entries at or below the dummy position.
    const dummy = firstE.value ?? { index: manifest.index, term: manifest.term }
    for (const i of [...headers.keys()]) if (i <= dummy.index) dropEntry(i)
    // Parts without a header: a large entry whose write a crash cut short.
    for (const i of [...parts.keys()]) if (!headers.has(i)) dropEntry(i)

    const indexes = [...headers.keys()].sort((a, b) => a - b)
    const entries: Entry[] = []
    const partCounts = new Map<number, number>()
    let logBytes = 0
    for (const [k, i] of indexes.entries()) {
      if (i !== dummy.index + 1 + k) {
        throw new RaftInvariantError(
          `raft log in KV has a gap: entry ${i} follows ${k === 0 ? dummy.index : indexes[k - 1]}`,
        )
      }
      const h = headers.get(i)!
      let data = h.d
      if (h.n !== undefined) {
        const ps = parts.get(i)
        const buf = new Uint8Array(h.s ?? 0)
        let off = 0
        for (let p = 0; p < h.n; p++) {
          const part = ps?.get(p)
          if (!part) throw new RaftInvariantError(`raft log in KV: entry ${i} misses part ${p}`)
          buf.set(part, off)
          off += part.byteLength
        }
        if (off !== buf.byteLength) {
          throw new RaftInvariantError(`raft log in KV: entry ${i} has ${off} of ${h.s} bytes`)
        }
        data = buf
        partCounts.set(i, h.n)
      }
      const e: Entry = {
        term: h.t,
        index: i,
        type: h.c === 1 ? 'confChange' : 'normal',
        data: data ?? new Uint8Array(),
      }
      entries.push(e)
      logBytes += e.data.byteLength
    }
    for (let k = 0; k < cleanup.length; k += 500) {
      await commitMutations(kv, cleanup.slice(k, k + 500))
    }

    const mem = MemoryStorage.fromPersisted({
      hardState: hs,
      snapshot: metaOf(manifest),
      entries,
      firstIndex: dummy.index + 1,
      dummyTerm: dummy.term,
    })
    const storage = new KvRaftStorage(
      kv,
      log,
      mem,
      hs,
      manifest.data,
      partCounts,
      logBytes,
      fresh,
      restoreE.value === true,
    )
    await storage.#checkSnapshotData(manifest)
    return storage
  }

  /** Verifies the manifest's data and deletes chunk sets no manifest names (torn writes). */
  async #checkSnapshotData(manifest: Manifest): Promise<void> {
    const data = manifest.data
    if (data) {
      try {
        await this.verifyData(data)
      } catch (err) {
        if (this.restorePending) {
          // The install already dropped the log: without these bytes the node cannot continue.
          throw new RaftInvariantError(
            `the snapshot being restored is damaged (${errorMessage(err)}); ` +
              'remove the data folder and let the peer join again',
          )
        }
        this.#log.warn(
          `raft: discarding damaged snapshot data at ${manifest.index}: ${errorMessage(err)}`,
        )
        this.#data = null
        const m = { ...manifest, data: null }
        await commitMutations(this.kv, [setMutation(SNAP_KEY, m, manifestBytes(m))])
      }
    }
    // Chunks of an older version (under ['raft', 'chunk']): no manifest can name them any more.
    await this.#deleteAll(OLD_CHUNK_PREFIX)
    for (const id of await this.#chunkIds()) {
      if (id === this.#data?.id) continue
      this.#log.debug(`raft: deleting snapshot chunks ${id} that no manifest names`)
      await this.#deleteChunks(id)
    }
  }

  async #chunkIds(): Promise<string[]> {
    const ids: string[] = []
    let start: Deno.KvKey | undefined
    for (;;) {
      let found: string | undefined
      const sel = start ? { prefix: CHUNK_PREFIX, start } : { prefix: CHUNK_PREFIX }
      for await (const e of this.kv.list(sel, { limit: 1 })) found = e.key[1] as string
      if (found === undefined) return ids
      ids.push(found)
      start = [...CHUNK_PREFIX, found + '\0']
    }
  }

  // ------------------------------------------------------------------ Storage (reads)

  initialState(): HardState {
    return this.#mem.initialState()
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.#mem.entries(lo, hi, maxSize)
  }

  term(i: number): number {
    return this.#mem.term(i)
  }

  firstIndex(): number {
    return this.#mem.firstIndex()
  }

  lastIndex(): number {
    return this.#mem.lastIndex()
  }

  snapshot(): SnapshotMeta {
    return this.#mem.snapshot()
  }

  // ------------------------------------------------------------------ host-side views

  /** The durable hard state. */
  hardState(): HardState {
    return { ...this.#hs }
  }

  /** Where the current snapshot's bytes are, or null when only its metadata is stored. */
  snapshotData(): SnapshotData | null {
    return this.#data
  }

  /** Bytes of entry data held in the log (in memory and in KV). */
  logBytes(): number {
    return this.#logBytes
  }

  /** The membership of the latest confChange entry in the log, else the snapshot's. */
  latestConf(): ConfState {
    for (let i = this.lastIndex(); i >= this.firstIndex(); i--) {
      const [e] = this.entries(i, i + 1, Infinity)
      if (e.type === 'confChange') return decodeConfChangeEntry(e.data).conf
    }
    return this.snapshot().confState
  }

  // ------------------------------------------------------------------ writes

  #locked<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(f)
    this.#lock = run.catch(() => {})
    return run
  }

  /**
   * Steps 2 and 3 of handling a Ready: `entries` replace the stored log from `entries[0].index`
   * on, then `hs` is written; `after` (the state machine's writes for the committed entries) goes
   * last, in the same commit when everything fits.
   */
  persist(
    entries: readonly Entry[],
    hs: HardState | undefined,
    after: readonly MutationGroup[] = [],
  ): Promise<void> {
    const groups: MutationGroup[] = []
    let ents = entries
    if (ents.length > 0 && ents[0].index < this.firstIndex()) {
      ents = ents.slice(this.firstIndex() - ents[0].index)
    }
    if (ents.length > 0) {
      const from = ents[0].index
      const last = this.lastIndex()
      if (from > last + 1) {
        throw new RaftInvariantError(`missing log entry [last: ${last}, append at: ${from}]`)
      }
      if (from <= last) {
        // Top down, so that a crash between commits leaves a prefix of the old log.
        const dels: Mutation[] = []
        for (let i = last; i >= from; i--) dels.push(...this.#deleteEntryMutations(i))
        groups.push({ mutations: dels })
        this.#logBytes -= this.#bytesOf(from, last)
      }
      for (const e of ents) groups.push(this.#entryGroup(e))
      this.#mem.append(ents)
      for (const e of ents) this.#logBytes += e.data.byteLength
    }
    if (hs) groups.push({ mutations: [setMutation(HS_KEY, hs, 128)] })
    groups.push(...after)
    let plan = planCommits(groups)
    if (plan.length > 1 && hs && termOrVoteChanged(hs, this.#hs)) {
      const early = { term: hs.term, vote: hs.vote, commit: this.#hs.commit }
      plan = planCommits([{ mutations: [setMutation(HS_KEY, early, 128)] }, ...groups])
    }
    if (hs) {
      this.#hs = { ...hs }
      this.#mem.setHardState(hs)
    }
    return this.#locked(() => commitPlan(this.kv, plan))
  }

  #bytesOf(lo: number, hi: number): number {
    let n = 0
    for (let i = lo; i <= hi;) {
      const ents = this.#mem.entries(i, hi + 1, 16 << 20)
      for (const e of ents) n += e.data.byteLength
      i += ents.length
    }
    return n
  }

  #deleteEntryMutations(i: number): Mutation[] {
    const out = [deleteMutation(entryKey(i))]
    const n = this.#parts.get(i)
    if (n !== undefined) {
      for (let p = 0; p < n; p++) out.push(deleteMutation(partKey(i, p)))
      this.#parts.delete(i)
    }
    return out
  }

  #entryGroup(e: Entry): MutationGroup {
    const c = e.type === 'confChange' ? 1 : 0
    const len = e.data.byteLength
    if (len <= INLINE_MAX) {
      this.#parts.delete(e.index)
      return { mutations: [setMutation(entryKey(e.index), { t: e.term, c, d: e.data }, len + 48)] }
    }
    const n = Math.ceil(len / MAX_VALUE_BYTES)
    const mutations: Mutation[] = []
    for (let p = 0; p < n; p++) {
      const part = e.data.subarray(p * MAX_VALUE_BYTES, Math.min(len, (p + 1) * MAX_VALUE_BYTES))
      mutations.push(setMutation(partKey(e.index, p), part, part.byteLength + 16))
    }
    // The header last: an entry without its header does not exist for `open`.
    mutations.push(setMutation(entryKey(e.index), { t: e.term, c, n, s: len }, 64))
    this.#parts.set(e.index, n)
    return { mutations }
  }

  /**
   * Records a snapshot taken by this node at `meta.index` (≤ applied), with its bytes or with
   * none (a compaction point: the state on disk already holds its effect). Bytes of the snapshot
   * it replaces are deleted once no stream reads them.
   */
  setSnapshot(meta: SnapshotMeta, data: SnapshotData | null): Promise<void> {
    const cur = this.snapshot()
    if (meta.index === cur.index && meta.term === cur.term && data) {
      // The same point, now with bytes.
    } else {
      this.#mem.createSnapshot(meta)
    }
    const old = this.#data
    this.#data = data
    const m = manifestOf(meta, data)
    return this.#locked(async () => {
      await commitMutations(this.kv, [setMutation(SNAP_KEY, m, manifestBytes(m))])
      if (old && old.id !== data?.id) this.#doom(old.id)
    })
  }

  /**
   * Drops entries up to and including `to` (≤ the snapshot index); `first` moves first, then
   * entries are deleted from the bottom up.
   */
  compact(to: number): Promise<void> {
    const first = this.firstIndex()
    if (to < first) return Promise.resolve()
    if (to > this.snapshot().index) {
      throw new RaftInvariantError(
        `compact ${to} is beyond the snapshot index ${this.snapshot().index}`,
      )
    }
    const term = this.term(to)
    const dels: Mutation[] = []
    for (let i = first; i <= to; i++) dels.push(...this.#deleteEntryMutations(i))
    this.#logBytes -= this.#bytesOf(first, to)
    this.#mem.compact(to)
    const plan = planCommits([
      { mutations: [setMutation(FIRST_KEY, { index: to, term }, 48)] },
      { mutations: dels },
    ])
    return this.#locked(() => commitPlan(this.kv, plan))
  }

  /**
   * Step 1 of handling a Ready with a snapshot, storage side: the staged bytes `data` become the
   * snapshot, the whole log goes, and `restore` marks the state as being replaced. The caller then
   * restores the state (fsm.ts) and commits `restoreDoneMutation()` with its last write.
   */
  beginInstall(meta: SnapshotMeta, data: SnapshotData): Promise<void> {
    const first = this.firstIndex()
    const last = this.lastIndex()
    const m = manifestOf(meta, data)
    const head: Mutation[] = [
      setMutation(SNAP_KEY, m, manifestBytes(m)),
      setMutation(FIRST_KEY, { index: meta.index, term: meta.term }, 48),
      setMutation(RESTORE_KEY, true, 16),
    ]
    const dels: Mutation[] = []
    if (last >= first) {
      head.push(setMutation(WIPE_KEY, last, 16))
      for (let i = first; i <= last; i++) dels.push(...this.#deleteEntryMutations(i))
    }
    this.#mem.applySnapshot(meta)
    this.#parts.clear()
    this.#logBytes = 0
    const old = this.#data
    this.#data = data
    this.restorePending = true
    const plan = planCommits([
      { mutations: head },
      { mutations: dels },
      { mutations: [deleteMutation(WIPE_KEY)] },
    ])
    return this.#locked(async () => {
      await commitPlan(this.kv, plan)
      if (old && old.id !== data.id) this.#doom(old.id)
    })
  }

  /** The mutation that ends a restore; commit it with the restore's last state write. */
  restoreDoneMutation(): Mutation {
    return deleteMutation(RESTORE_KEY)
  }

  /** Called once that mutation is durable. */
  restoreDone(): void {
    this.restorePending = false
  }

  /**
   * Makes the state on disk, which consensus did not write (a `state import` or `cleanup` while
   * the peer was stopped, or a pinset from before Raft), the snapshot at `index`: the log goes,
   * the membership stays, term and vote are kept.
   */
  adopt(index: number): Promise<void> {
    const conf = this.latestConf()
    let term: number
    if (index >= this.firstIndex() - 1 && index <= this.lastIndex()) term = this.term(index)
    else term = Math.max(this.#hs.term, this.snapshot().term, 1)
    const meta: SnapshotMeta = { index, term, confState: conf }
    const hs: HardState = {
      term: Math.max(this.#hs.term, term),
      vote: term > this.#hs.term ? null : this.#hs.vote,
      commit: index,
    }
    const first = this.firstIndex()
    const last = this.lastIndex()
    const m = manifestOf(meta, null)
    const dels: Mutation[] = []
    const head: Mutation[] = [
      setMutation(SNAP_KEY, m, manifestBytes(m)),
      setMutation(FIRST_KEY, { index, term }, 48),
    ]
    if (last >= first) {
      head.push(setMutation(WIPE_KEY, last, 16))
      for (let i = first; i <= last; i++) dels.push(...this.#deleteEntryMutations(i))
    }
    const old = this.#data
    this.#data = null
    this.#hs = hs
    this.#mem = MemoryStorage.fromPersisted({ hardState: hs, snapshot: meta, entries: [] })
    this.#parts.clear()
    this.#logBytes = 0
    const plan = planCommits([
      { mutations: head },
      { mutations: dels },
      { mutations: [deleteMutation(WIPE_KEY), setMutation(HS_KEY, hs, 128)] },
    ])
    return this.#locked(async () => {
      await commitPlan(this.kv, plan)
      if (old) this.#doom(old.id)
    })
  }

  // ------------------------------------------------------------------ snapshot bytes

  /** A fresh id for a set of chunks. */
  newDataId(): string {
    return crypto.randomUUID()
  }

  /** Writes chunks `first…` of `id` in one commit (keep a call under the commit limits). */
  async writeChunks(id: string, first: number, chunks: readonly Uint8Array[]): Promise<void> {
    const ms = chunks.map((c, k) => setMutation(chunkKey(id, first + k), c, c.byteLength + 16))
    for (const c of planCommits([{ mutations: ms }])) await commitMutations(this.kv, c.mutations)
  }

  /**
   * Writes a new chunk set `id` from its bytes in order (any sizes: they are cut into KV values),
   * with a few commits in flight so that the writer never waits for each. Nothing names the set
   * until a manifest does, and a crash leaves chunks that `open` deletes: the manifest goes only
   * after `flush`.
   */
  chunkWriter(id: string): SnapshotChunkWriter {
    return new SnapshotChunkWriter(this.kv, id)
  }

  /**
   * Streams the chunks of `data` in order; throws `TornSnapshotError` if one is missing.
   * Callers that must trust the bytes check them with a `SnapshotVerifier` or decoder.
   */
  async *readChunks(data: SnapshotData, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    let n = 0
    const it = this.kv.list<Uint8Array>(
      { prefix: [...CHUNK_PREFIX, data.id] },
      { batchSize: CHUNK_LIST_BATCH },
    )
    for await (const e of it) {
      signal?.throwIfAborted()
      if (e.key[2] !== n) throw new TornSnapshotError(`snapshot ${data.id} misses chunk ${n}`)
      n++
      yield e.value
    }
    if (n !== data.chunks) {
      throw new TornSnapshotError(`snapshot ${data.id} has ${n} of ${data.chunks} chunks`)
    }
  }

  /** Throws `TornSnapshotError` unless the chunks of `data` match its byte count and CRC. */
  async verifyData(data: SnapshotData, signal?: AbortSignal): Promise<void> {
    const v = new SnapshotVerifier()
    for await (const c of this.readChunks(data, signal)) v.push(c)
    const { bytes, crc } = v.end()
    if (bytes !== data.bytes || crc !== data.crc) {
      throw new TornSnapshotError('snapshot chunks do not match the manifest (length or CRC)')
    }
  }

  /** Keeps the chunks of `id` while a stream reads them. */
  retain(id: string): void {
    this.#refs.set(id, (this.#refs.get(id) ?? 0) + 1)
  }

  /** Ends a `retain`; chunks that were replaced meanwhile are deleted now. */
  release(id: string): void {
    const n = (this.#refs.get(id) ?? 1) - 1
    if (n > 0) return void this.#refs.set(id, n)
    this.#refs.delete(id)
    if (this.#doomed.has(id)) this.#doom(id)
  }

  /** Deletes chunks that are not the current snapshot's (e.g. an abandoned staging). */
  discardChunks(id: string): void {
    if (id === this.#data?.id) return
    this.#doom(id)
  }

  /** The current snapshot's bytes are damaged: forget them (they will be taken again). */
  async discardSnapshotData(): Promise<void> {
    const data = this.#data
    if (!data) return
    const meta = this.snapshot()
    await this.setSnapshot(meta, null).catch(() => {})
    this.#doom(data.id)
  }

  #doom(id: string): void {
    if (this.#refs.has(id)) {
      this.#doomed.add(id)
      return
    }
    this.#doomed.delete(id)
    const p = this.#deleteChunks(id).catch((err) =>
      this.#log.warn(`raft: deleting snapshot chunks ${id}: ${errorMessage(err)}`)
    ).finally(() => this.#background.delete(p))
    this.#background.add(p)
  }

  async #deleteChunks(id: string): Promise<void> {
    await this.#deleteAll([...CHUNK_PREFIX, id])
  }

  async #deleteAll(prefix: Deno.KvKey): Promise<void> {
    let batch: Mutation[] = []
    for await (const e of this.kv.list({ prefix }, { batchSize: 500 })) {
      batch.push(deleteMutation(e.key))
      if (batch.length >= 500) {
        await commitMutations(this.kv, batch)
        batch = []
      }
    }
    await commitMutations(this.kv, batch)
  }

  /** Waits for background deletions and queued writes (before closing the database). */
  async drain(): Promise<void> {
    await this.#lock.catch(() => {})
    while (this.#background.size > 0) await Promise.allSettled([...this.#background])
  }
}

/** See `KvRaftStorage.chunkWriter`. */
export class SnapshotChunkWriter {
  readonly #id: string
  readonly #w: PipelinedKvWriter
  #count = 0

  constructor(kv: Deno.Kv, id: string) {
    this.#id = id
    this.#w = new PipelinedKvWriter(kv)
  }

  /** Chunks written so far. */
  get count(): number {
    return this.#count
  }

  /** Adds `bytes` (a view is kept until its commit: do not reuse the buffer). */
  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.byteLength; off += MAX_VALUE_BYTES) {
      const piece = bytes.subarray(off, off + MAX_VALUE_BYTES)
      await this.#w.add(setMutation(chunkKey(this.#id, this.#count++), piece, piece.byteLength))
    }
  }

  /** Resolves once every chunk written is durable. */
  flush(): Promise<void> {
    return this.#w.flush()
  }
}

/**
 * Copies the Raft state of `from` into `to`, a new database about to replace `from` with a
 * pinset written outside consensus (`state import` builds the new pinset in a fresh file): log,
 * hard state, membership and the dedupe table go over, no applied index, so the next start adopts
 * the new pinset exactly as one written in place (`adopt`: the membership, term and vote stay, the
 * log is not replayed over it). Left behind: the stored snapshot bytes and a pending restore, which
 * both describe the pinset being replaced (the manifest keeps its metadata, without data).
 */
export async function carryOverRaftState(from: Deno.Kv, to: Deno.Kv): Promise<void> {
  const w = new KvWriter(to)
  for await (const e of from.list({ prefix: [RAFT_PREFIX] }, { batchSize: 500 })) {
    const [, kind] = e.key
    if (kind === OLD_CHUNK_PREFIX[1] || (e.key.length === 2 && kind === RESTORE_KEY[1])) continue
    let value = e.value
    if (e.key.length === 2 && kind === SNAP_KEY[1]) value = { ...(value as Manifest), data: null }
    await w.add(setMutation(e.key, value, approxValueBytes(value)))
  }
  await w.flush()
}

/** An upper estimate of a stored value's size (Deno KV serializes objects with V8's format). */
function approxValueBytes(v: unknown): number {
  if (v instanceof Uint8Array) return v.byteLength + 16
  if (typeof v === 'string') return v.length * 3 + 16
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + approxValueBytes(x), 16)
  if (v !== null && typeof v === 'object') {
    let n = 16
    for (const [k, x] of Object.entries(v)) n += k.length * 3 + approxValueBytes(x)
    return n
  }
  return 16
}

/** What a database's Raft keys say, read without opening the storage (see `inspectRaftData`). */
export interface RaftDataSummary {
  /**
   * Raft has run on this data: a term, a log entry or a snapshot (hashicorp/raft's
   * HasExistingState). A membership stored by a start that did nothing yet is not state.
   */
  hasState: boolean
  /** The latest membership: the last confChange entry of the log, else the snapshot's. */
  conf: ConfState
  /** Every peer that any stored membership names (the snapshot's and each confChange's). */
  everMembers: string[]
}

/**
 * Reads the Raft keys of `kv` without writing anything (unlike `KvRaftStorage.open`, which
 * creates and repairs): whether Raft ran on it, its latest membership and every member it
 * names. Entries a crash left beyond repair at open (below the dummy position or an
 * interrupted wipe) are skipped as `open` would drop them.
 */
export async function inspectRaftData(kv: Deno.Kv): Promise<RaftDataSummary> {
  const [hsE, snapE, firstE, wipeE] = await kv.getMany<
    [HardState, Manifest, { index: number; term: number }, number]
  >([HS_KEY, SNAP_KEY, FIRST_KEY, WIPE_KEY])
  const manifest = snapE.value
  const floor = Math.max(firstE.value?.index ?? manifest?.index ?? 0, wipeE.value ?? 0)
  let conf: ConfState = {
    voters: [...manifest?.voters ?? []],
    learners: [...manifest?.learners ?? []],
  }
  const ever = new Set([...conf.voters, ...conf.learners])
  let entries = 0
  // Small pages: an entry's value holds its data (up to a KV value each).
  for await (
    const e of kv.list<StoredEntry>({ prefix: [RAFT_PREFIX, 'e'] }, { batchSize: 64 })
  ) {
    const i = e.key[2] as number
    if (i <= floor) continue
    entries++
    if (e.value.c !== 1) continue
    let data = e.value.d
    if (e.value.n !== undefined) {
      const parts = await kv.getMany<Uint8Array[]>(
        Array.from({ length: e.value.n }, (_, p) => partKey(i, p)),
      )
      const buf = new Uint8Array(e.value.s ?? 0)
      let off = 0
      for (const p of parts) {
        if (!p.value) throw new RaftInvariantError(`raft log in KV: entry ${i} misses a part`)
        buf.set(p.value, off)
        off += p.value.byteLength
      }
      data = buf
    }
    conf = decodeConfChangeEntry(data ?? new Uint8Array()).conf
    for (const id of [...conf.voters, ...conf.learners]) ever.add(id)
  }
  const hasState = (hsE.value?.term ?? 0) > 0 || entries > 0 || (manifest?.index ?? 0) > 0
  return { hasState, conf, everMembers: [...ever] }
}

/**
 * Forgets what a start that never ran Raft stored (the membership `open` writes for a new node,
 * a zero hard state), so that the next `open` takes its `initialConf`: a peer first started to
 * join (no voters) and then started to found a cluster. Only for data without state
 * (`inspectRaftData(kv).hasState` false).
 */
export async function forgetIdleRaftData(kv: Deno.Kv): Promise<void> {
  await commitMutations(kv, [
    deleteMutation(SNAP_KEY),
    deleteMutation(FIRST_KEY),
    deleteMutation(HS_KEY),
  ])
}
