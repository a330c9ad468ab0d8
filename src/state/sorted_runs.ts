/**
 * An external sort of (key, value) records in bounded memory, for `state import`: Deno KV writes
 * keys given in order ~10× faster than random ones (a commit of random CIDs dirties a B-tree page
 * per key; ordered keys fill pages one after the other), and an import file is in no useful order.
 *
 * Records arrive encoded (`RecordBatch`, which a worker thread can build and transfer) and are
 * copied into one buffer until it holds `runBytes`; that run is then sorted and, if more records
 * come, spilled to a file in `dir`. Reading merges the runs: keys ascending (by UTF-16 code units,
 * which is Deno KV's order for ASCII keys such as CIDs), and of records with equal keys only the
 * last one added, as if they had been written one after the other.
 *
 * @example
 * ```ts
 * const b = new RecordBatch()
 * b.push('b', '{"cid":"b"}')
 * b.push('a', '{"cid":"a"}')
 * const runs = new SortedRuns({ dir: '/tmp/runs' })
 * await runs.add(b.take())
 * for await (const batch of runs.sorted()) for (const r of batch) console.log(r.key) // a, b
 * await runs.close()
 * ```
 */
import { MinHeap } from '../util/heap.ts'

/** A record as read back: `value` is a view that stays valid after the next batch is read. */
export interface SortedRecord {
  key: string
  value: Uint8Array
}

/**
 * Encoded records: `records` holds, for each key of `keys` in order, a header (key and value
 * lengths, u32 little-endian), the key and the value, both UTF-8 — the layout of a run file.
 */
export interface EncodedRecords {
  keys: string[]
  records: Uint8Array<ArrayBuffer>
}

/** Options of a sorter. */
export interface SortedRunsOptions {
  /** Folder for run files; created when the first run is spilled, removed by `close()`. */
  dir: string
  /** Bytes of encoded records held in memory before a run is spilled (default 32 MiB). */
  runBytes?: number
  /** Records per batch handed out by `sorted()` (default 1000). */
  batch?: number
}

const DEFAULT_RUN_BYTES = 32 * 1024 * 1024
const DEFAULT_BATCH = 1000
/** Bytes read from a run file at a time during the merge, at most (see `sorted`). */
const READ_CHUNK = 1024 * 1024
const MIN_READ_CHUNK = 64 * 1024
/** Bytes written to a run file at a time. */
const WRITE_CHUNK = 1024 * 1024
/** Per record: key length and value length, u32 little-endian each. */
const HEADER = 8

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Builds `EncodedRecords`. */
export class RecordBatch {
  #buf = new Uint8Array(64 * 1024)
  #view = new DataView(this.#buf.buffer)
  #used = 0
  #keys: string[] = []

  /** Records pushed since the last `take`. */
  get length(): number {
    return this.#keys.length
  }

  /** Appends a record; returns the value's size in bytes (callers that limit it check it). */
  push(key: string, value: string): number {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const room = HEADER + (key.length + value.length) * 3
    if (this.#used + room > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#used + room))
      next.set(this.#buf.subarray(0, this.#used))
      this.#buf = next
      this.#view = new DataView(next.buffer)
    }
    const at = this.#used
    const klen = writeUtf8(key, this.#buf, at + HEADER)
    const vlen = writeUtf8(value, this.#buf, at + HEADER + klen)
    this.#view.setUint32(at, klen, true)
    this.#view.setUint32(at + 4, vlen, true)
    this.#keys.push(key)
    this.#used = at + HEADER + klen + vlen
    return vlen
  }

  /** The records pushed so far (a copy of just their bytes), and a fresh start. */
  take(): EncodedRecords {
    const out = { keys: this.#keys, records: this.#buf.slice(0, this.#used) }
    this.#keys = []
    this.#used = 0
    return out
  }
}

/** External merge sort of string-keyed records; see the module comment. */
export class SortedRuns {
  readonly #dir: string
  readonly #runBytes: number
  readonly #batch: number
  #arena: Uint8Array = new Uint8Array(0)
  #view = new DataView(this.#arena.buffer)
  #used = 0
  #keys: string[] = []
  /** Where each record starts in the arena. */
  #offs: number[] = []
  #runs: string[] = []
  #count = 0
  #reading = false
  #closed = false

  constructor(opts: SortedRunsOptions) {
    this.#dir = opts.dir
    this.#runBytes = Math.max(1024, opts.runBytes ?? DEFAULT_RUN_BYTES)
    this.#batch = Math.max(1, opts.batch ?? DEFAULT_BATCH)
  }

  /** Records added so far (duplicates included). */
  get count(): number {
    return this.#count
  }

  /** Run files spilled so far. */
  get spilled(): number {
    return this.#runs.length
  }

  /** Adds records (copied); spills a run to disk whenever the buffer is full. */
  async add(batch: EncodedRecords): Promise<void> {
    if (this.#reading || this.#closed) throw new Error('SortedRuns: add after sorted() or close()')
    const { keys, records } = batch
    const view = new DataView(records.buffer, records.byteOffset, records.byteLength)
    let from = 0
    let k = 0
    while (k < keys.length) {
      // As many whole records as fit, copied at once.
      let to = from
      let n = k
      const room = Math.max(this.#runBytes, this.#arena.length) - this.#used
      while (n < keys.length) {
        const size = HEADER + view.getUint32(to, true) + view.getUint32(to + 4, true)
        if (to + size - from > room && (n > k || this.#keys.length > 0)) break
        to += size
        n++
      }
      if (n === k) {
        await this.#spill()
        continue
      }
      if (this.#used + (to - from) > this.#arena.length) this.#grow(this.#used + (to - from))
      this.#arena.set(records.subarray(from, to), this.#used)
      this.#count += n - k
      for (let at = from; k < n; k++) {
        this.#keys.push(keys[k])
        this.#offs.push(this.#used + at - from)
        at += HEADER + view.getUint32(at, true) + view.getUint32(at + 4, true)
      }
      this.#used += to - from
      from = to
    }
  }

  /**
   * The records in key order, last-added wins among equal keys, in batches. Can be called once;
   * `add` may not be called afterwards.
   */
  async *sorted(): AsyncIterable<SortedRecord[]> {
    if (this.#reading) throw new Error('SortedRuns: sorted() called twice')
    this.#reading = true
    const sources: RunSource[] = []
    try {
      // The read buffers of all runs together stay within about one run's budget.
      const chunk = Math.max(
        MIN_READ_CHUNK,
        Math.min(READ_CHUNK, Math.floor(this.#runBytes / Math.max(1, this.#runs.length))),
      )
      for (const path of this.#runs) sources.push(await FileRun.open(path, chunk))
      if (this.#keys.length > 0) {
        const order = this.#order()
        sources.push(new MemoryRun(this.#keys, this.#offs, this.#arena, order))
      }
      yield* merge(sources, this.#batch)
    } finally {
      for (const s of sources) s.close()
    }
  }

  /** Releases the buffer and removes the run files. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#arena = new Uint8Array(0)
    this.#keys = []
    this.#offs = []
    if (this.#runs.length > 0) {
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {})
    }
  }

  #grow(min: number): void {
    // The first run starts small and grows to runBytes, so a small import allocates little.
    const size = Math.max(min, Math.min(this.#runBytes, Math.max(1 << 20, this.#arena.length * 2)))
    const next = new Uint8Array(size)
    next.set(this.#arena.subarray(0, this.#used))
    this.#arena = next
    this.#view = new DataView(next.buffer)
  }

  /** Indices of the buffered records in key order, only the last of equal keys kept. */
  #order(): number[] {
    const keys = this.#keys
    const idx = Array.from({ length: keys.length }, (_, i) => i)
    // Equal keys keep their insertion order (Array.prototype.sort is stable).
    idx.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0))
    let n = 0
    for (let i = 0; i < idx.length; i++) {
      if (i + 1 < idx.length && keys[idx[i + 1]] === keys[idx[i]]) continue
      idx[n++] = idx[i]
    }
    idx.length = n
    return idx
  }

  async #spill(): Promise<void> {
    if (this.#runs.length === 0) await Deno.mkdir(this.#dir, { recursive: true })
    const path = `${this.#dir}/run-${this.#runs.length}`
    const order = this.#order()
    const arena = this.#arena
    const view = this.#view
    const file = await Deno.open(path, { write: true, createNew: true })
    try {
      let out = new Uint8Array(WRITE_CHUNK)
      let n = 0
      for (const i of order) {
        const at = this.#offs[i]
        const size = HEADER + view.getUint32(at, true) + view.getUint32(at + 4, true)
        if (n + size > out.length) {
          await writeAll(file, out.subarray(0, n))
          n = 0
          if (size > out.length) out = new Uint8Array(size)
        }
        out.set(arena.subarray(at, at + size), n)
        n += size
      }
      await writeAll(file, out.subarray(0, n))
    } finally {
      file.close()
    }
    this.#runs.push(path)
    this.#keys = []
    this.#offs = []
    this.#used = 0
  }
}

/** Writes `s` as UTF-8 at `out[at]` (room checked by the caller); returns the bytes written. */
function writeUtf8(s: string, out: Uint8Array, at: number): number {
  return encoder.encodeInto(s, out.subarray(at)).written
}

/** One sorted run being merged: the current record, and a way to move to the next one. */
interface RunSource {
  key: string
  value: Uint8Array
  /** Moves to the next record; false at the end. Returns a promise only when it must read. */
  advance(): boolean | Promise<boolean>
  close(): void
}

class MemoryRun implements RunSource {
  key = ''
  value: Uint8Array = new Uint8Array(0)
  #i = -1
  readonly #view: DataView
  constructor(
    readonly keys: string[],
    readonly offs: number[],
    readonly arena: Uint8Array,
    readonly order: number[],
  ) {
    this.#view = new DataView(arena.buffer, arena.byteOffset, arena.byteLength)
  }
  advance(): boolean {
    if (++this.#i >= this.order.length) return false
    const r = this.order[this.#i]
    const at = this.offs[r]
    const start = at + HEADER + this.#view.getUint32(at, true)
    this.key = this.keys[r]
    this.value = this.arena.subarray(start, start + this.#view.getUint32(at + 4, true))
    return true
  }
  close(): void {}
}

class FileRun implements RunSource {
  key = ''
  value: Uint8Array = new Uint8Array(0)
  #file: Deno.FsFile
  #buf: Uint8Array = new Uint8Array(0)
  #pos = 0
  #eof = false

  readonly #chunk: number

  private constructor(file: Deno.FsFile, chunk: number) {
    this.#file = file
    this.#chunk = chunk
  }

  static async open(path: string, chunk: number): Promise<FileRun> {
    return new FileRun(await Deno.open(path, { read: true }), chunk)
  }

  advance(): boolean | Promise<boolean> {
    return this.#take() ?? this.#readNext()
  }

  async #readNext(): Promise<boolean> {
    for (;;) {
      await this.#fill()
      const r = this.#take()
      if (r !== undefined) return r
      if (this.#eof) throw new Error('SortedRuns: a run file ends inside a record')
    }
  }

  /** The next record if the buffer holds all of it; undefined if more must be read. */
  #take(): boolean | undefined {
    const avail = this.#buf.length - this.#pos
    if (avail === 0 && this.#eof) return false
    if (avail < HEADER) return undefined
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.#pos, HEADER)
    const klen = view.getUint32(0, true)
    const vlen = view.getUint32(4, true)
    if (avail < HEADER + klen + vlen) return undefined
    const k = this.#pos + HEADER
    this.key = decoder.decode(this.#buf.subarray(k, k + klen))
    this.value = this.#buf.subarray(k + klen, k + klen + vlen)
    this.#pos = k + klen + vlen
    return true
  }

  /**
   * Reads more into a NEW buffer (the tail of the old one copied over): values handed out are
   * views of the old buffer and may still be waiting in a commit.
   */
  async #fill(): Promise<void> {
    const rest = this.#buf.subarray(this.#pos)
    let need = this.#chunk
    if (rest.length >= HEADER) {
      const view = new DataView(rest.buffer, rest.byteOffset, HEADER)
      need = Math.max(need, HEADER + view.getUint32(0, true) + view.getUint32(4, true))
    }
    const next = new Uint8Array(need)
    next.set(rest)
    let n = rest.length
    while (n < next.length) {
      const r = await this.#file.read(next.subarray(n))
      if (r === null) {
        this.#eof = true
        break
      }
      n += r
    }
    this.#buf = next.subarray(0, n)
    this.#pos = 0
  }

  close(): void {
    try {
      this.#file.close()
    } catch {
      // already closed
    }
  }
}

/** k-way merge of sorted sources through a binary heap ordered by (key, source index). */
async function* merge(sources: RunSource[], batch: number): AsyncIterable<SortedRecord[]> {
  // Source index breaks ties: a later run holds later additions, so it wins among equal keys.
  const heap = new MinHeap<number>((a, b) => {
    const ka = sources[a].key
    const kb = sources[b].key
    return ka < kb || (ka === kb && a < b)
  })
  for (let s = 0; s < sources.length; s++) {
    if (await sources[s].advance()) heap.push(s)
  }
  let out: SortedRecord[] = []
  while (heap.size > 0) {
    const s = heap.peek()!
    const rec = { key: sources[s].key, value: sources[s].value }
    if (await sources[s].advance()) heap.reorderTop()
    else heap.pop()
    // A newer record with the same key is next: this one is superseded.
    if (heap.size > 0 && sources[heap.peek()!].key === rec.key) continue
    out.push(rec)
    if (out.length >= batch) {
      yield out
      out = []
    }
  }
  if (out.length > 0) yield out
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0
  while (off < bytes.length) off += await f.write(bytes.subarray(off))
}
