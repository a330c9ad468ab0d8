/**
 * Packs KV mutations into as few atomic commits as Deno KV's limits allow, keeping each group of
 * mutations in one commit whenever the group fits in one, and committing in order.
 *
 * Deno KV refuses an atomic commit with more than 1000 mutations, more than 800 KiB of keys plus
 * values, or more than 80 KiB of keys, and any value above 64 KiB. Raft writes come in ordered
 * groups (delete the old log suffix, write entries, write the hard state, apply committed entries)
 * whose order matters when they are split over several commits: a crash between two commits must
 * leave a state the next start can use, so groups are never reordered, and a group is split only
 * when it alone is larger than a commit.
 *
 * A group may carry a `mark`: a key whose value states how far the groups got (the applied index).
 * The packer writes each mark once, at the end of the commit that completes its group, with the
 * value of the last group completed in that commit — so the mark never claims a group that is
 * not durable with it.
 *
 * @example
 * ```ts
 * const plan = planCommits([
 *   { mutations: [{ key: ['raft', 'e', 7], value: entry, size: 300 }] },
 *   { mutations: pinSets, mark: { key: ['meta', 'applied'], value: 7 } },
 * ])
 * await commitPlan(kv, plan)
 * ```
 *
 * @module
 */

/** One write: `value` undefined means delete. `size` is key + value bytes, estimated high. */
export interface Mutation {
  key: Deno.KvKey
  value?: unknown
  size: number
}

/** Mutations that belong together; see the module comment for `mark`. */
export interface MutationGroup {
  mutations: Mutation[]
  mark?: { key: Deno.KvKey; value: unknown }
}

/** The limits one commit is packed to (a margin below Deno KV's own). */
export interface CommitLimits {
  maxMutations: number
  maxBytes: number
  maxKeyBytes: number
}

/** Deno KV's limits (1000 mutations, 819,200 bytes, 81,920 key bytes) minus a safety margin. */
export const KV_LIMITS: CommitLimits = {
  maxMutations: 990,
  maxBytes: 780 * 1024,
  maxKeyBytes: 76 * 1024,
}

/** Largest value we store in one key (Deno KV allows 65,536 bytes). */
export const MAX_VALUE_BYTES = 60_000

/** Estimated encoded size of a key (Deno KV tuple encoding: tag + bytes + terminator). */
export function keySize(key: Deno.KvKey): number {
  let n = 0
  for (const p of key) {
    if (typeof p === 'string') n += p.length * 3 + 2
    else if (p instanceof Uint8Array) n += p.byteLength * 2 + 2
    else n += 10
  }
  return n
}

/** A set mutation with its estimated size (`valueBytes`: the value's encoded size, estimated). */
export function setMutation(key: Deno.KvKey, value: unknown, valueBytes: number): Mutation {
  return { key, value, size: keySize(key) + valueBytes + 16 }
}

/** A delete mutation. */
export function deleteMutation(key: Deno.KvKey): Mutation {
  return { key, size: keySize(key) + 8 }
}

/** One planned atomic commit. */
export interface PlannedCommit {
  mutations: Mutation[]
}

/**
 * Splits `groups` into commits within `limits`, in order. A group that fits in an empty commit is
 * never split; a larger one fills commits of its own, its mark going with its last mutation.
 */
export function planCommits(
  groups: readonly MutationGroup[],
  limits: CommitLimits = KV_LIMITS,
): PlannedCommit[] {
  const commits: PlannedCommit[] = []
  let cur: Mutation[] = []
  let n = 0
  let bytes = 0
  let keyBytes = 0
  /** Marks completed in the current commit, by encoded key, last value wins. */
  let marks = new Map<string, Mutation>()
  let markBytes = 0
  let markKeyBytes = 0

  const close = () => {
    if (cur.length === 0 && marks.size === 0) return
    commits.push({ mutations: [...cur, ...marks.values()] })
    cur = []
    n = bytes = keyBytes = 0
    marks = new Map()
    markBytes = markKeyBytes = 0
  }
  const fits = (m: Mutation, extraMarks: number) =>
    n + 1 + marks.size + extraMarks <= limits.maxMutations &&
    bytes + markBytes + m.size <= limits.maxBytes &&
    keyBytes + markKeyBytes + keySize(m.key) <= limits.maxKeyBytes
  const push = (m: Mutation) => {
    cur.push(m)
    n++
    bytes += m.size
    keyBytes += keySize(m.key)
  }
  const groupSize = (g: MutationGroup) => {
    let s = 0
    let k = 0
    for (const m of g.mutations) {
      s += m.size
      k += keySize(m.key)
    }
    return { count: g.mutations.length + (g.mark ? 1 : 0), bytes: s + 64, keyBytes: k + 64 }
  }
  const addMark = (g: MutationGroup) => {
    if (!g.mark) return
    const id = JSON.stringify(g.mark.key)
    const m = setMutation(g.mark.key, g.mark.value, 16)
    const prev = marks.get(id)
    if (!prev) {
      markBytes += m.size
      markKeyBytes += keySize(m.key)
    }
    marks.set(id, m)
  }

  for (const g of groups) {
    const s = groupSize(g)
    const fitsEmpty = s.count <= limits.maxMutations && s.bytes <= limits.maxBytes &&
      s.keyBytes <= limits.maxKeyBytes
    if (fitsEmpty) {
      const fitsNow = n + marks.size + s.count <= limits.maxMutations &&
        bytes + markBytes + s.bytes <= limits.maxBytes &&
        keyBytes + markKeyBytes + s.keyBytes <= limits.maxKeyBytes
      if (!fitsNow) close()
      for (const m of g.mutations) push(m)
      addMark(g)
      continue
    }
    // Larger than a commit: spread over commits of its own; the mark only with its end.
    close()
    for (const m of g.mutations) {
      if (m.size > limits.maxBytes) {
        throw new RangeError(`a single KV mutation of ${m.size} bytes exceeds the commit limit`)
      }
      if (!fits(m, g.mark ? 1 : 0)) close()
      push(m)
    }
    addMark(g)
    close()
  }
  close()
  return commits
}

/** Thrown when KV refuses a commit we planned (a conflicting writer or a broken limit estimate). */
export class KvCommitError extends Error {
  override name = 'KvCommitError'
}

/** Commits planned commits one after the other; each resolves once durable. */
export async function commitPlan(kv: Deno.Kv, plan: readonly PlannedCommit[]): Promise<void> {
  for (const c of plan) await commitMutations(kv, c.mutations)
}

/** Commits mutations in one atomic operation (the caller checked the limits). */
export async function commitMutations(kv: Deno.Kv, mutations: readonly Mutation[]): Promise<void> {
  if (mutations.length === 0) return
  const a = kv.atomic()
  for (const m of mutations) {
    if (m.value === undefined) a.delete(m.key)
    else a.set(m.key, m.value)
  }
  const res = await a.commit()
  if (!res.ok) throw new KvCommitError('KV commit failed: conflicting write')
}

/**
 * Streams mutations into commits: `add` commits what is pending whenever the next mutation would
 * break a limit. For long runs of independent writes (restoring a snapshot, deleting chunks).
 */
export class KvWriter {
  readonly #kv: Deno.Kv
  readonly #limits: CommitLimits
  #pending: Mutation[] = []
  #bytes = 0
  #keyBytes = 0

  constructor(kv: Deno.Kv, limits: CommitLimits = KV_LIMITS) {
    this.#kv = kv
    this.#limits = limits
  }

  async add(m: Mutation): Promise<void> {
    const k = keySize(m.key)
    if (
      this.#pending.length + 1 > this.#limits.maxMutations ||
      this.#bytes + m.size > this.#limits.maxBytes ||
      this.#keyBytes + k > this.#limits.maxKeyBytes
    ) await this.flush()
    this.#pending.push(m)
    this.#bytes += m.size
    this.#keyBytes += k
  }

  /** Commits what is pending, plus `last` in the same commit when it fits. */
  async flush(last: readonly Mutation[] = []): Promise<void> {
    const ms = [...this.#pending, ...last]
    this.#pending = []
    this.#bytes = this.#keyBytes = 0
    await commitPlan(this.#kv, planCommits([{ mutations: ms }], this.#limits))
  }
}

/**
 * `KvWriter` with up to `depth` commits in flight, so that the next commit is prepared while KV
 * writes the earlier ones (a long run of writes is then bound by KV, not by the round trips).
 * Commits in flight may land in any order, so order is kept where it matters: a mutation whose key
 * is not above every key added since the last wait first waits for everything sent (and starts a
 * new run), hence two writes of one key always land in the order they were added. Writes in key
 * order — a pinset scanned from KV, as a snapshot carries it — never wait. `flush` waits for every
 * commit, then commits `last`: it is durable only after everything before it.
 *
 * A failed commit fails the next `add` or `flush`; what landed meanwhile stays (callers use it
 * where a crash may cut the run anyway and is redone from the start: a snapshot restore).
 *
 * @example
 * ```ts
 * const w = new PipelinedKvWriter(kv)
 * for (const m of mutationsInKeyOrder) await w.add(m)
 * await w.flush([setMutation(['meta', 'applied'], 7, 16)])
 * ```
 */
export class PipelinedKvWriter {
  readonly #kv: Deno.Kv
  readonly #limits: CommitLimits
  readonly #depth: number
  #pending: Mutation[] = []
  #bytes = 0
  #keyBytes = 0
  /** The highest key added since the last wait, or undefined. */
  #top: Deno.KvKey | undefined
  #inFlight: Promise<void>[] = []
  #failure: unknown = undefined

  constructor(kv: Deno.Kv, opts: { depth?: number; limits?: CommitLimits } = {}) {
    this.#kv = kv
    this.#depth = Math.max(1, opts.depth ?? 4)
    this.#limits = opts.limits ?? KV_LIMITS
  }

  async add(m: Mutation): Promise<void> {
    this.#check()
    if (this.#top !== undefined && compareKeys(m.key, this.#top) <= 0) {
      await this.#send()
      await this.#wait()
    }
    this.#top = m.key
    const k = keySize(m.key)
    if (
      this.#pending.length + 1 > this.#limits.maxMutations ||
      this.#bytes + m.size > this.#limits.maxBytes ||
      this.#keyBytes + k > this.#limits.maxKeyBytes
    ) await this.#send()
    this.#pending.push(m)
    this.#bytes += m.size
    this.#keyBytes += k
  }

  /** Waits for every commit, then commits `last` (in as few commits as the limits allow). */
  async flush(last: readonly Mutation[] = []): Promise<void> {
    await this.#send()
    await this.#wait()
    await commitPlan(this.#kv, planCommits([{ mutations: [...last] }], this.#limits))
  }

  async #send(): Promise<void> {
    const ms = this.#pending
    if (ms.length === 0) return
    this.#pending = []
    this.#bytes = this.#keyBytes = 0
    const p = commitMutations(this.#kv, ms)
    // Handled at once (a failure must not surface as an unhandled rejection), awaited in order.
    p.catch((err) => this.#failure ??= err)
    this.#inFlight.push(p)
    if (this.#inFlight.length >= this.#depth) await this.#inFlight.shift()!.catch(() => {})
    this.#check()
  }

  async #wait(): Promise<void> {
    const all = this.#inFlight
    this.#inFlight = []
    await Promise.allSettled(all)
    this.#top = undefined
    this.#check()
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure
  }
}

/**
 * Orders keys part by part (numbers by value, anything else by its string). Not KV's own order
 * across types; what PipelinedKvWriter needs is that equal keys compare equal and that keys
 * written in KV's order (a scan, chunk numbers) compare ascending.
 */
function compareKeys(a: Deno.KvKey, b: Deno.KvKey): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]
    const y = b[i]
    if (typeof x === 'number' && typeof y === 'number') {
      if (x !== y) return x < y ? -1 : 1
      continue
    }
    const sx = String(x)
    const sy = String(y)
    if (sx !== sy) return sx < sy ? -1 : 1
  }
  return a.length - b.length
}
