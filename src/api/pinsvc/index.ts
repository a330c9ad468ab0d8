/**
 * The Pinning Service API's index of requests: the pinset is keyed by CID, but the spec lists
 * requests newest first and pages by `created`, so each peer keeps a derived index in its state's
 * Deno KV, ordered by (created, id). A page of 1,000 is one ordered range read however many pins
 * there are, and nothing lists the pinset into memory.
 *
 * Keys (this module is their one writer):
 * - `['pinsvc', 'o', created µs, id]` → `{ c: cid, n: name }` — the order; `id` is the CID for a
 *   pin's own request and `-<key>` for a record (its request id is `<cid>-<key>`);
 * - `['pinsvc', 'c', cid]` → `[created, id, name][]` — what is indexed for a CID, so an applied
 *   pin's change is a diff (a re-commit moves a pin's own request to its new timestamp);
 * - `['pinsvc', 'n']` → the number of requests, written in the same commit as each change;
 * - `['pinsvc', 'mark']` → the applied index the index was complete at, written at a clean stop,
 *   and `['pinsvc', 'ranks', i]` → the rank checkpoints (below) at that stop.
 *
 * It follows the consensus apply hooks (`onPin`/`onUnpin`, coalesced per CID and written in
 * batches by one worker, each CID's change with the count in one commit) and is rebuilt by a walk
 * of the state when it cannot be trusted: at the first start, after an unclean stop (the mark is
 * taken out at start), when the state's applied index moved past the mark (a new database from
 * `state import`/`cleanup` has neither), and on `onRestore` (a snapshot replaced the pinset). The
 * walk merges the pinset and the `['pinsvc','c']` keys, both in CID order, a step at a time: it
 * writes only what differs (commits pipelined), drops CIDs the pinset lost and counts as it goes;
 * hook batches go between its steps, each step reading afresh.
 *
 * Counts: `count` of every request is one number. A range's (a page's `before`) comes from rank
 * checkpoints kept in memory — every ~4,096 requests of the order, how many are older — moved by
 * every write and split when a gap grows: counting to any point walks at most one gap, so a page
 * anywhere in a million costs the same. They are built by a walk of the order after a rebuild and
 * saved at a clean stop; until built, a count walks the shorter side.
 *
 * @example
 * ```ts
 * const index = requestIndex({ kv, state, appliedIndex: () => state.appliedIndex() })
 * await index.open() // before consensus applies anything
 * hooks.onPin = (pin) => index.onPin(pin)
 * for await (const e of index.list({ before })) console.log(e.requestid, e.cid)
 * await index.stop() // after consensus stopped: writes the mark
 * ```
 *
 * @module
 */
import type { ApplyHooks, Component, StateReader } from '../../components.ts'
import { errorMessage } from '../../errors.ts'
import type { Pin } from '../../types/pin.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { type Clock, systemClock, yieldToLoop } from '../../util/clock.ts'
import {
  commitPlan,
  deleteMutation,
  type Mutation,
  type MutationGroup,
  PipelinedKvWriter,
  planCommits,
  setMutation,
} from '../../state/kv_batch.ts'
import { Waiters } from '../../util/waiters.ts'
import { type PinFields, requestsOf } from './records.ts'

const P = 'pinsvc'
const ORDER = 'o'
const BY_CID = 'c'
const COUNT_KEY: Deno.KvKey = [P, 'n']
const MARK_KEY: Deno.KvKey = [P, 'mark']
const RANKS = 'ranks'
/** Bumped when the keys' meaning changes: an index of another format is rebuilt. */
const FORMAT = 2
/** CIDs of hook events written per batch; pins merged per rebuild step; entries per walk step. */
const EVENT_BATCH = 256
const REBUILD_STEP = 2048
const WALK_STEP = 4096
const LIST_BATCH = 500
/** Requests between two rank checkpoints (a gap is split past twice this). */
const RANK_SPACING = 4096
/** Checkpoints saved per KV value at a clean stop. */
const RANKS_PER_KEY = 1000
/**
 * While the peer serves requests, background steps (hook batches nobody waits for, rebuild and
 * walk steps) go this far apart: the index lags a burst of pins (REST ingest) and catches up
 * after it, instead of taking a third of the burst's rate.
 */
const BUSY_GAP_MS = 1000
/** How often a background step waiting on the foreground looks whether it is idle. */
const IDLE_LOOK_MS = 25
/** Past this many CIDs waiting to be written, batches go at full speed whatever the load. */
const PENDING_CAP = 100_000
const decoder = new TextDecoder()

/** One indexed request: created (µs), id, CID, and name. */
export interface IndexEntry {
  created: number
  requestid: string
  cid: string
  name: string
}

/** A range of the order, newest first. Bounds are exclusive, in µs. */
export interface RangeOptions {
  before?: number
  after?: number
  signal?: AbortSignal
}

/** What the index needs. */
export interface RequestIndexDeps {
  /** The state's database (the index lives beside the pinset). */
  kv: Deno.Kv
  /** The pinset, walked by rebuilds. */
  state: StateReader
  /** The state's applied consensus index (0 without consensus). */
  appliedIndex(): Promise<number>
  /** The peer's foreground (API requests): background steps space out while it is busy. */
  foreground?: { busy(): boolean }
  /** For the spacing of background steps (default: the system clock). */
  clock?: Clock
  log?: Logger
}

/** The index of a peer's Pinning Service requests. */
export interface RequestIndex extends Component, ApplyHooks {
  /** Reads the mark (taking it out) and starts the worker; rebuilds when not trusted. */
  open(): Promise<void>
  /** Resolves once no rebuild runs (listings are complete). */
  ready(signal?: AbortSignal): Promise<void>
  /** True while a rebuild runs. */
  rebuilding(): boolean
  /** Pins of the pinset the running rebuild has merged so far (0 when none runs). */
  rebuildProgress(): number
  /** Resolves once every hook event received so far is written. */
  settled(signal?: AbortSignal): Promise<void>
  /**
   * Resolves true once the request ids indexed for `cid` pass `test` (checked at once, then
   * after each write of that CID), false after `timeoutMs` or an abort.
   */
  whenIndexed(
    cid: string,
    test: (requestIds: ReadonlySet<string>) => boolean,
    opts?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<boolean>
  /** Every indexed request. */
  count(): number
  /** Streams the order newest first within the bounds. */
  list(opts?: RangeOptions): AsyncIterable<IndexEntry>
  /** The number of requests within the bounds. */
  countRange(opts?: RangeOptions): Promise<number>
  /** True once the rank checkpoints are built (counts within bounds walk at most one gap). */
  ranksReady(): boolean
}

/** What a CID indexes as: created, id (the CID, or `-<key>`), name. */
type Stored = [created: number, id: string, name: string]
/** A point of the order. */
type Pos = [created: number, id: string]

const orderKey = (created: number, id: string): Deno.KvKey => [P, ORDER, created, id]
const cidKey = (cid: string): Deno.KvKey => [P, BY_CID, cid]
/** The KV key of a position; an empty id is the bound before every id of that time. */
const posKey = (p: Pos): Deno.KvKey => (p[1] === '' ? [P, ORDER, p[0]] : orderKey(p[0], p[1]))
const cmpPos = (a: Pos, b: Pos) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
const requestIdOf = (cid: string, id: string) => (id.startsWith('-') ? cid + id : id)

/** What a pin indexes as. */
function entriesOf(pin: PinFields): Stored[] {
  return requestsOf(pin).map((r) => {
    const id = r.requestid === pin.cid ? r.requestid : r.requestid.slice(pin.cid.length)
    return [r.created, id, r.name]
  })
}

const noTimeout = () => new Error('unreachable: waits without a bound')
const sameStored = (a: Stored, b: Stored) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2]
const samePos = (a: Stored, b: Stored) => a[0] === b[0] && a[1] === b[1]

/**
 * Pending hook events: what the CID's latest pin indexes as (none: unpinned), and the first
 * event's number. Entries, not pins: a lagging index holds little per CID.
 */
interface Pending {
  now: Stored[]
  seq: number
}

/** A rank checkpoint: how many requests are older than `pos`. */
interface Checkpoint {
  pos: Pos
  rank: number
}

/** The mutations that turn `old` into `now` for a CID (none when equal). */
function diff(cid: string, old: Stored[], now: Stored[]): Mutation[] {
  const m: Mutation[] = []
  for (const e of old) {
    // Deleted unless kept as it is; a changed name is a delete and a set of the same key.
    if (!now.some((x) => sameStored(x, e))) m.push(deleteMutation(orderKey(e[0], e[1])))
  }
  for (const e of now) {
    if (old.some((x) => sameStored(x, e))) continue
    m.push(
      setMutation(orderKey(e[0], e[1]), { c: cid, n: e[2] }, cid.length + e[2].length * 3 + 16),
    )
  }
  if (m.length === 0) return m
  if (now.length === 0) m.push(deleteMutation(cidKey(cid)))
  else m.push(setMutation(cidKey(cid), now, JSON.stringify(now).length * 3 + 16))
  return m
}

/** Builds the index; nothing is read or written before `open()`. */
export function requestIndex(deps: RequestIndexDeps): RequestIndex {
  const { kv, state } = deps
  const log = deps.log ?? nullLogger
  const clock = deps.clock ?? systemClock
  const pending = new Map<string, Pending>()
  let seq = 0
  /** The first event number of the batch being written, if one is. */
  let inFlight: number | undefined
  let total = 0
  let opened = false
  let stopping = false
  let failed = false
  /** The rebuild's cursor: the last CID merged; null = from the start; undefined = none runs. */
  let rebuild: string | null | undefined
  /** Requests of the CIDs the rebuild merged so far (the count, once it ends), and the pins. */
  let rebuilt = 0
  let merged = 0
  let restart = false
  /**
   * The walk placing the checkpoints: the last request it passed, how many requests are older
   * than that one, and how many it passed since its last checkpoint.
   */
  let walk: { at: Pos | null; rank: number; since: number; cps: Checkpoint[] } | undefined
  /** The checkpoints, in order; undefined until built. */
  let ranks: Checkpoint[] | undefined
  let wake: (() => void) | undefined
  let hurry: (() => void) | undefined
  let worker: Promise<void> | undefined
  let stopped: Promise<void> | undefined
  /** Callers of `ready` waiting (the rebuild goes at full speed for them). */
  let readyWaiting = 0
  /** `ready` and `settled` callers: their conditions are looked at after each step. */
  const waiters = new Waiters(clock, () => false)
  const cidWaiters = new Map<string, Set<(ids: ReadonlySet<string>) => void>>()

  /** Wakes the worker waiting for work, and, when `urgent`, one spacing out its steps. */
  const poke = (urgent = true) => {
    const w = wake
    wake = undefined
    w?.()
    if (!urgent) return
    const h = hurry
    hurry = undefined
    h?.()
  }

  function enqueue(pin: Pin, present: boolean) {
    if (stopping) return
    const cur = pending.get(pin.cid)
    pending.set(pin.cid, { now: present ? entriesOf(pin) : [], seq: cur?.seq ?? ++seq })
    // Someone waiting for this CID (a write of this API) is worth a step out of turn.
    poke(!foregroundBusy() || cidWaiters.has(pin.cid) || pending.size >= PENDING_CAP)
  }

  /** The first event number not yet written; everything below it is. */
  function writtenBelow(): number {
    const first = pending.values().next().value as Pending | undefined
    return Math.min(inFlight ?? Infinity, first?.seq ?? Infinity, seq + 1)
  }

  /** A request appeared (+1) or went (−1) at `pos`: the checkpoints after it move. */
  function moved(pos: Pos, delta: number) {
    for (const cps of [ranks, walk?.cps]) {
      if (!cps) continue
      for (let i = cps.length - 1; i >= 0 && cmpPos(pos, cps[i].pos) < 0; i--) cps[i].rank += delta
    }
    // Where the walk already went, it will not look again (it passed `at` itself too).
    if (walk && walk.at !== null && cmpPos(pos, walk.at) <= 0) walk.rank += delta
  }

  /** Tells the checkpoints, the rebuild's count and the waiters what a written change did. */
  function changed(cid: string, old: Stored[], now: Stored[]) {
    for (const e of old) if (!now.some((x) => samePos(x, e))) moved([e[0], e[1]], -1)
    for (const e of now) if (!old.some((x) => samePos(x, e))) moved([e[0], e[1]], +1)
    if (rebuild !== undefined && rebuild !== null && cid <= rebuild) {
      rebuilt += now.length - old.length
    }
    const ws = cidWaiters.get(cid)
    if (!ws) return
    const ids = new Set(now.map((e) => requestIdOf(cid, e[1])))
    for (const w of [...ws]) w(ids)
  }

  async function storedOf(cids: string[]): Promise<Map<string, Stored[]>> {
    const out = new Map<string, Stored[]>()
    const chunks: string[][] = []
    for (let i = 0; i < cids.length; i += 10) chunks.push(cids.slice(i, i + 10))
    await Promise.all(chunks.map(async (chunk) => {
      const got = await kv.getMany<Stored[][]>(chunk.map(cidKey))
      got.forEach((e, i) => out.set(chunk[i], e.value ?? []))
    }))
    return out
  }

  /**
   * Writes a batch of pending hook events, CIDs someone waits for first: each CID's change in
   * one commit with the count.
   */
  async function eventBatch(): Promise<void> {
    const batch: [string, Pending][] = []
    for (const cid of cidWaiters.keys()) {
      const p = pending.get(cid)
      if (p) batch.push([cid, p])
    }
    for (const e of pending) {
      if (batch.length >= EVENT_BATCH) break
      if (!cidWaiters.has(e[0])) batch.push(e)
    }
    for (const [cid] of batch) pending.delete(cid)
    inFlight = Math.min(...batch.map(([, p]) => p.seq))
    try {
      const old = await storedOf(batch.map(([cid]) => cid))
      const changes = batch.map(([cid, p]): [string, Stored[], Stored[]] => [
        cid,
        old.get(cid)!,
        p.now,
      ])
      const groups: MutationGroup[] = []
      let count = total
      for (const [cid, o, now] of changes) {
        const m = diff(cid, o, now)
        if (m.length === 0) continue
        count += now.length - o.length
        groups.push({ mutations: m, mark: { key: COUNT_KEY, value: count } })
      }
      await commitPlan(kv, planCommits(groups))
      total = count
      for (const [cid, o, now] of changes) changed(cid, o, now)
    } finally {
      inFlight = undefined
    }
  }

  /** One step of a rebuild: the next pins of the state merged with what is indexed for them. */
  async function rebuildStep(): Promise<void> {
    const after = rebuild ?? undefined
    const pins: [string, Stored[]][] = []
    for await (const e of state.scan({ after })) {
      let now: Stored[]
      try {
        now = entriesOf(JSON.parse(decoder.decode(e.value)) as Pin)
      } catch {
        now = [] // bytes that are no pin are passed over, as every walk of the state does
      }
      pins.push([e.cid, now])
      if (pins.length >= REBUILD_STEP) break
    }
    const end = pins.length >= REBUILD_STEP ? pins[pins.length - 1][0] : undefined
    // What is indexed for the CIDs of this step's span: (after, end], or (after, …) at the end.
    const indexed = new Map<string, Stored[]>()
    const first = after === undefined ? undefined : [...cidKey(after), 0]
    const last = end === undefined ? undefined : [...cidKey(end), 0]
    const selector: Deno.KvListSelector = first
      ? { start: first, end: last ?? [P, BY_CID + '\0'] }
      : last
      ? { prefix: [P, BY_CID], end: last }
      : { prefix: [P, BY_CID] }
    for await (const e of kv.list<Stored[]>(selector, { batchSize: LIST_BATCH })) {
      indexed.set(e.key[2] as string, e.value)
    }
    const changes: [string, Stored[], Stored[]][] = []
    let count = 0
    for (const [cid, now] of pins) {
      count += now.length
      const old = indexed.get(cid) ?? []
      indexed.delete(cid)
      if (old.length !== now.length || old.some((e, i) => !sameStored(e, now[i]))) {
        changes.push([cid, old, now])
      }
    }
    for (const [cid, old] of indexed) changes.push([cid, old, []]) // gone from the pinset
    // A bulk write: commits pipelined, keys in order (the per-CID keys as merged, then the order
    // keys sorted), so none waits for another. A crash in between leaves no mark: redone.
    const byCid: Mutation[] = []
    const order: Mutation[] = []
    for (const [cid, old, now] of changes) {
      for (const m of diff(cid, old, now)) (m.key[1] === BY_CID ? byCid : order).push(m)
    }
    order.sort((a, b) => cmpPos([a.key[2], a.key[3]] as Pos, [b.key[2], b.key[3]] as Pos))
    const w = new PipelinedKvWriter(kv)
    for (const m of byCid) await w.add(m)
    for (const m of order) await w.add(m)
    await w.flush()
    if (restart) {
      restart = false
      rebuild = null
      rebuilt = 0
      merged = 0
      return
    }
    // Before the cursor moves: these CIDs are counted by `count`, not by `changed`.
    for (const [cid, old, now] of changes) changed(cid, old, now)
    rebuild = end
    rebuilt += count
    merged += pins.length
    if (end === undefined) {
      rebuild = undefined
      total = rebuilt
      await kv.set(COUNT_KEY, total)
      log.info(`pinning service index: rebuilt (${total} requests)`)
      startWalk()
    }
  }

  function startWalk() {
    ranks = undefined
    walk = { at: null, rank: 0, since: RANK_SPACING, cps: [] }
  }

  /** One step of the walk that places the checkpoints, every RANK_SPACING requests. */
  async function walkStep(): Promise<void> {
    const w = walk!
    // Just past the last request passed: a longer key sorts after it, before the next one.
    const selector: Deno.KvListSelector = w.at === null
      ? { prefix: [P, ORDER] }
      : { prefix: [P, ORDER], start: [...posKey(w.at), ''] }
    let n = 0
    for await (const e of kv.list(selector, { batchSize: LIST_BATCH })) {
      const pos: Pos = [e.key[2] as number, e.key[3] as string]
      if (w.since >= RANK_SPACING) {
        w.cps.push({ pos, rank: w.rank })
        w.since = 0
      }
      w.rank++
      w.since++
      w.at = pos
      if (++n >= WALK_STEP) break
    }
    if (n < WALK_STEP) {
      ranks = w.cps
      walk = undefined
    }
  }

  /** Splits one gap between checkpoints that grew past twice the spacing; false if none did. */
  async function splitStep(): Promise<boolean> {
    const cps = ranks
    if (!cps) return false
    for (let i = -1; i < cps.length; i++) {
      const from = i < 0 ? 0 : cps[i].rank
      const to = i + 1 < cps.length ? cps[i + 1].rank : total
      if (to - from <= 2 * RANK_SPACING) continue
      // The request RANK_SPACING past the checkpoint (the start) becomes one.
      const selector: Deno.KvListSelector = i < 0
        ? { prefix: [P, ORDER] }
        : { prefix: [P, ORDER], start: posKey(cps[i].pos) }
      let n = 0
      for await (const e of kv.list(selector, { batchSize: LIST_BATCH })) {
        if (n++ < RANK_SPACING) continue
        const pos: Pos = [e.key[2] as number, e.key[3] as string]
        cps.splice(i + 1, 0, { pos, rank: from + RANK_SPACING })
        return true
      }
      return false // the gap was smaller than counted (changes behind the read): left
    }
    return false
  }

  const foregroundBusy = () => deps.foreground?.busy() ?? false

  /**
   * True when background work should go now: the peer is idle, too many CIDs wait, a listing
   * waits for the rebuild (its own request must not slow the rebuild down), or a write waits for
   * its CID.
   */
  function urgent(): boolean {
    if (stopping || pending.size >= PENDING_CAP || !foregroundBusy()) return true
    if (rebuild !== undefined && readyWaiting > 0) return true
    for (const cid of cidWaiters.keys()) if (pending.has(cid)) return true
    return false
  }

  /**
   * Waits while the foreground is busy, a gap at most: until it is idle (looked at every
   * IDLE_LOOK_MS), the gap passed, or hurried (a waiter, the cap, a stop).
   */
  async function spaceOut(): Promise<void> {
    const until = clock.now() + BUSY_GAP_MS
    while (foregroundBusy() && !stopping && clock.now() < until) {
      const hurried = new Promise<boolean>((r) => (hurry = () => r(true)))
      const timer = new AbortController()
      const slept = clock.sleep(IDLE_LOOK_MS, timer.signal).then(() => false, () => false)
      const early = await Promise.race([hurried, slept])
      timer.abort()
      hurry = undefined
      if (early) return
    }
  }

  async function run(): Promise<void> {
    while (!stopping || pending.size > 0) {
      try {
        if (!urgent() && (pending.size > 0 || rebuild !== undefined || walk)) await spaceOut()
        if (pending.size > 0) {
          await eventBatch()
          // A steady flow of new requests lengthens the last gap: split it as it grows.
          if (!stopping) await splitStep()
        } else if (rebuild !== undefined && !stopping) await rebuildStep()
        else if (walk && !stopping) await walkStep()
        else if (stopping || !(await splitStep())) {
          if (stopping) break
          await new Promise<void>((r) => (wake = r))
          continue
        }
      } catch (err) {
        if (stopping) {
          // The state closes after us; whatever did not land is redone by the next start's
          // rebuild (no mark is written).
          failed = true
          pending.clear()
          break
        }
        log.error(`pinning service index: ${errorMessage(err)}; rebuilding`)
        startRebuild()
        await yieldToLoop()
      }
      waiters.notify()
      await yieldToLoop()
    }
    waiters.notify()
  }

  function startRebuild(why?: string) {
    if (why) log.info(`pinning service index: rebuilding (${why})`)
    if (rebuild !== undefined) restart = true
    else {
      rebuild = null
      rebuilt = 0
    }
    merged = 0
    ranks = undefined
    walk = undefined
    poke()
  }

  /** The checkpoints saved at the last clean stop, if any. */
  async function loadRanks(): Promise<Checkpoint[] | undefined> {
    const out: Checkpoint[] = []
    for await (const e of kv.list<[number, string, number][]>({ prefix: [P, RANKS] })) {
      for (const [created, id, rank] of e.value) out.push({ pos: [created, id], rank })
    }
    return out
  }

  async function saveRanks(): Promise<void> {
    const w = new PipelinedKvWriter(kv)
    for await (const e of kv.list({ prefix: [P, RANKS] })) await w.add(deleteMutation(e.key))
    await w.flush()
    const cps = ranks ?? []
    for (let i = 0; i < cps.length; i += RANKS_PER_KEY) {
      const chunk = cps.slice(i, i + RANKS_PER_KEY).map((c) => [c.pos[0], c.pos[1], c.rank])
      await kv.set([P, RANKS, i / RANKS_PER_KEY], chunk)
    }
  }

  /** Requests in [from, to) of the order (undefined: its start or end), by a walk. */
  async function walkCount(from: Pos | undefined, to: Pos | undefined, signal?: AbortSignal) {
    const selector: Deno.KvListSelector = from && to
      ? { start: posKey(from), end: posKey(to) }
      : from
      ? { prefix: [P, ORDER], start: posKey(from) }
      : to
      ? { prefix: [P, ORDER], end: posKey(to) }
      : { prefix: [P, ORDER] }
    let n = 0
    for await (const _ of kv.list(selector, { batchSize: LIST_BATCH })) {
      if (++n % LIST_BATCH === 0) signal?.throwIfAborted()
    }
    return n
  }

  /**
   * Requests older than `pos`: the nearest checkpoint at or below it (the start is one, rank 0)
   * plus a walk from there to `pos`, at most one gap.
   */
  async function rankOf(pos: Pos, signal?: AbortSignal): Promise<number> {
    const cps = ranks!
    let lo = 0
    let hi = cps.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cmpPos(cps[mid].pos, pos) <= 0) lo = mid + 1
      else hi = mid
    }
    const below = lo > 0 ? cps[lo - 1] : undefined
    return (below?.rank ?? 0) + await walkCount(below?.pos, pos, signal)
  }

  /** Requests older than `before` (µs) when the checkpoints are not built: the shorter walk. */
  async function countEither(before: number, signal?: AbortSignal): Promise<number> {
    const older = kv.list({ prefix: [P, ORDER], end: [P, ORDER, before] }, {
      batchSize: LIST_BATCH,
    })
    const newer = kv.list({ prefix: [P, ORDER], start: [P, ORDER, before] }, {
      batchSize: LIST_BATCH,
    })
    const base = total
    let nOld = 0
    let nNew = 0
    for (;;) {
      signal?.throwIfAborted()
      for (let i = 0; i < LIST_BATCH; i++) {
        if ((await older.next()).done) return nOld
        nOld++
      }
      for (let i = 0; i < LIST_BATCH; i++) {
        if ((await newer.next()).done) return Math.max(0, base - nNew)
        nNew++
      }
    }
  }

  function selectorOf(before?: number, after?: number): Deno.KvListSelector {
    const prefix: Deno.KvKey = [P, ORDER]
    const start = after === undefined ? undefined : [P, ORDER, after + 1]
    const end = before === undefined ? undefined : [P, ORDER, before]
    if (start && end) return { start, end }
    if (start) return { prefix, start }
    if (end) return { prefix, end }
    return { prefix }
  }

  async function* listRange(opts: RangeOptions): AsyncIterable<IndexEntry> {
    const { before, after, signal } = opts
    if (before !== undefined && after !== undefined && before <= after + 1) return
    const iter = kv.list<{ c: string; n: string }>(selectorOf(before, after), {
      reverse: true,
      batchSize: LIST_BATCH,
    })
    for await (const e of iter) {
      if (signal?.aborted) return
      const id = e.key[3] as string
      yield {
        created: e.key[2] as number,
        requestid: requestIdOf(e.value.c, id),
        cid: e.value.c,
        name: e.value.n,
      }
    }
  }

  return {
    async open() {
      if (opened) return
      opened = true
      const [mark, count] = await kv.getMany<[{ applied: number; format: number }, number]>([
        MARK_KEY,
        COUNT_KEY,
      ])
      await kv.delete(MARK_KEY) // a crash from now on leaves no mark: the next start rebuilds
      total = count.value ?? 0
      const applied = await deps.appliedIndex()
      const m = mark.value
      if (m === null) startRebuild(total === 0 ? 'new index' : 'no clean stop recorded')
      else if (m.format !== FORMAT) startRebuild('new index format')
      else if (m.applied !== applied) startRebuild('the pinset changed since the last stop')
      else {
        ranks = await loadRanks()
        if (ranks === undefined || (ranks.length === 0 && total > 0)) startWalk()
      }
      worker = run()
    },
    onPin: (pin) => enqueue(pin, true),
    onUnpin: (pin) => enqueue(pin, false),
    onRestore: () => startRebuild('the pinset was restored from a snapshot'),
    rebuilding: () => rebuild !== undefined,
    rebuildProgress: () => (rebuild === undefined ? 0 : merged),
    ranksReady: () => ranks !== undefined,
    async ready(signal) {
      if (rebuild === undefined) return
      readyWaiting++
      poke()
      try {
        await waiters.waitFor(() => rebuild === undefined || stopping, Infinity, signal, noTimeout)
      } finally {
        readyWaiting--
      }
    },
    settled(signal) {
      const target = seq
      return waiters.waitFor(() => writtenBelow() > target || stopping, Infinity, signal, noTimeout)
    },
    async whenIndexed(cid, test, opts = {}) {
      let resolve!: (ok: boolean) => void
      const result = new Promise<boolean>((r) => (resolve = r))
      const check = (ids: ReadonlySet<string>) => {
        if (test(ids)) resolve(true)
      }
      let set = cidWaiters.get(cid)
      if (!set) cidWaiters.set(cid, set = new Set())
      set.add(check)
      if (pending.has(cid)) poke() // its batch goes out of turn
      const cancel = clock.timeout(opts.timeoutMs ?? 10_000, () => resolve(false))
      const abort = () => resolve(false)
      opts.signal?.addEventListener('abort', abort, { once: true })
      try {
        const stored = (await kv.get<Stored[]>(cidKey(cid))).value ?? []
        check(new Set(stored.map((e) => requestIdOf(cid, e[1]))))
        return await result
      } finally {
        cancel()
        opts.signal?.removeEventListener('abort', abort)
        set.delete(check)
        if (set.size === 0 && cidWaiters.get(cid) === set) cidWaiters.delete(cid)
      }
    },
    count: () => total,
    list: (opts = {}) => listRange(opts),
    async countRange(opts = {}) {
      const { before, after, signal } = opts
      if (before === undefined && after === undefined) return total
      if (before !== undefined && after !== undefined && before <= after + 1) return 0
      if (ranks) {
        const hi = before === undefined ? total : await rankOf([before, ''], signal)
        const lo = after === undefined ? 0 : await rankOf([after + 1, ''], signal)
        return Math.max(0, hi - lo)
      }
      if (after === undefined) return await countEither(before!, signal)
      return await walkCount(
        [after + 1, ''],
        before === undefined ? undefined : [before, ''],
        signal,
      )
    },
    stop() {
      stopped ??= (async () => {
        stopping = true
        poke()
        await worker
        waiters.notify()
        if (!opened || failed || rebuild !== undefined) return
        try {
          if (ranks) await saveRanks()
          await kv.set(MARK_KEY, { applied: await deps.appliedIndex(), format: FORMAT })
        } catch (err) {
          log.warn(`pinning service index: no clean-stop mark (${errorMessage(err)})`)
        }
      })()
      return stopped
    },
  }
}
