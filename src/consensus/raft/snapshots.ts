/**
 * Raft snapshots between peers, on both ends. A leader whose follower is behind its compacted log
 * streams the stored snapshot to it (`send`), taking one first when only a compaction point is
 * stored (`materialize`: the pinset into KV chunks, one at a time, while application goes on).
 * A follower stages the chunks durably as they come (`receive`), verifies the whole stream, steps
 * the snapshot into the core, and once the core hands it back in a Ready, `install` replaces its
 * log and pinset with the staged bytes. The bytes never sit in memory whole, on either end.
 *
 * It is apart from the host because it is the host's only long-running background work (a
 * stream may outlive many Readys): it owns the streams in flight and the staged data, and stops
 * them at `stop()`.
 *
 * @example
 * ```ts
 * const snaps = new Snapshots({ self, storage, fsm, node, transport, clock, log, signal, ... })
 * transport.listen(self, { snapshotChunk: (c) => snaps.receive(c), ... })
 * for (const m of snapshotMessages) snaps.send(m)   // a leader's Ready
 * await snaps.install(rd.snapshot!)                 // a follower's Ready
 * ```
 *
 * @module
 */
import { errorMessage } from '../../errors.ts'
import type { Logger } from '../../util/log.ts'
import type { Clock } from '../../util/clock.ts'
import {
  CompactedError,
  RaftInvariantError,
  type RaftNode,
  type SnapshotChunk,
  type SnapshotMessage,
  type SnapshotMeta,
  SnapshotReceiver,
} from './core/mod.ts'
import type { PinFsm } from './fsm.ts'
import type { KvRaftStorage, SnapshotChunkWriter, SnapshotData } from './kv_storage.ts'
import { SNAPSHOT_CHUNK_BYTES, SnapshotVerifier, TornSnapshotError } from './snapshot_format.ts'
import type { RaftTransport } from './transport.ts'
import { concatBytes } from '../../util/bytes.ts'

/**
 * The most bytes of one chunk on the wire: one stored chunk (one KV value). Groups of twelve
 * (720 KB, one KV commit at the follower) lost the connection in every 1,000,000-pin join we ran:
 * the private network's XSalsa20 (@libp2p/pnet, a WASM module of bounded memory) encrypts what a
 * connection has buffered in one call and fails above a few tens of MB ("Maximum memory size
 * exceeded"), which aborts the connection. With the stream deflated and staged with commits in
 * flight, 60 KB chunks cross as fast (2.2 s for 58 MB).
 */
export const WIRE_CHUNK_BYTES = SNAPSHOT_CHUNK_BYTES

/** What `Snapshots` needs from the host. */
export interface SnapshotsDeps {
  self: string
  storage: KvRaftStorage
  fsm: PinFsm
  node: Pick<RaftNode, 'step' | 'reportSnapshot' | 'snapshotMetaAt'>
  transport: Pick<RaftTransport, 'sendSnapshot'>
  clock: Pick<Clock, 'now'>
  log: Logger
  /** Aborts at stop: ends streams and snapshots in progress. */
  signal: AbortSignal
  /** Most bytes of one chunk sent (default WIRE_CHUNK_BYTES; whole stored chunks are grouped). */
  wireChunkBytes?: number
  schedule(): void
  /** Throws when the host stopped or failed. */
  check(): void
  stopped(): boolean
  halted(): boolean
}

interface Staging {
  id: string
  out: SnapshotChunkWriter
  verifier: SnapshotVerifier
  /** When its first chunk came (ms, the injected clock). */
  since: number
}

/** Snapshot streams, staging, install and materializing; see the module comment. */
export class Snapshots {
  readonly #d: SnapshotsDeps
  readonly #receiver: SnapshotReceiver
  /** Streams being received, by sender. */
  readonly #staging = new Map<string, Staging>()
  /** Whole, verified snapshots waiting for their Ready, by `index:term`. */
  readonly #staged = new Map<string, SnapshotData>()
  /** Followers a stream is going to. */
  readonly #sending = new Set<string>()
  #materializing: Promise<void> | undefined
  #materializeAc: AbortController | undefined
  #streamSeq: number
  readonly #tasks = new Set<Promise<unknown>>()

  constructor(deps: SnapshotsDeps) {
    this.#d = deps
    this.#receiver = new SnapshotReceiver(deps.self)
    // Stream IDs grow with time, so a restarted sender never reuses one a follower still holds.
    this.#streamSeq = deps.clock.now() * 1000
  }

  /** True while a snapshot of the pinset is being taken (compaction then waits). */
  get materializing(): boolean {
    return this.#materializing !== undefined
  }

  /** A follower's end: stage a chunk durably; step the snapshot once the stream is whole. */
  async receive(c: SnapshotChunk): Promise<void> {
    const { storage, log } = this.#d
    this.#d.check()
    const v = this.#receiver.accept(c)
    if (v.action === 'ignore') return
    if (v.action === 'reject') {
      this.#dropStaging(c.from)
      throw new TornSnapshotError(`snapshot stream from ${c.from} torn: ${v.reason}`)
    }
    if (v.restart) {
      this.#dropStaging(c.from)
      const id = storage.newDataId()
      this.#staging.set(c.from, {
        id,
        out: storage.chunkWriter(id),
        verifier: new SnapshotVerifier(),
        since: this.#d.clock.now(),
      })
    }
    const s = this.#staging.get(c.from)
    if (!s) throw new TornSnapshotError('snapshot chunk of an unknown stream')
    // Acknowledged once written or in a commit in flight: a stream cut short is never resumed
    // (its chunks are dropped, and `open` drops any a crash left), so only the whole set must be
    // durable, and it is before the snapshot is stepped.
    await s.out.write(c.data)
    s.verifier.push(c.data)
    if (!v.complete) return
    this.#staging.delete(c.from)
    let check
    try {
      await s.out.flush()
      check = s.verifier.end()
    } catch (err) {
      storage.discardChunks(s.id)
      this.#receiver.abort(c.from)
      throw err
    }
    for (const d of this.#staged.values()) storage.discardChunks(d.id)
    this.#staged.clear()
    const meta = v.complete.snapshot
    this.#staged.set(`${meta.index}:${meta.term}`, {
      id: s.id,
      chunks: s.out.count,
      bytes: check.bytes,
      crc: check.crc,
    })
    log.info(
      `raft: received snapshot ${meta.index} from ${c.from} ` +
        `(${check.bytes} bytes in ${this.#d.clock.now() - s.since} ms)`,
    )
    this.#d.check()
    this.#d.node.step(v.complete)
    this.#d.schedule()
  }

  /**
   * A follower's Ready carries snapshot `meta`: its staged bytes replace the log and the pinset
   * (storage and state machine; the host updates what depends on them).
   */
  async install(meta: SnapshotMeta): Promise<void> {
    const { storage, fsm } = this.#d
    const key = `${meta.index}:${meta.term}`
    const data = this.#staged.get(key)
    if (!data) throw new RaftInvariantError(`no staged data for snapshot ${key}`)
    this.#staged.delete(key)
    // A snapshot of our own in progress reads the state we are about to replace.
    this.#materializeAc?.abort()
    await this.#materializing?.catch(() => {})
    await storage.beginInstall(meta, data)
    await fsm.restore(storage, data, meta.index, [storage.restoreDoneMutation()])
    storage.restoreDone()
  }

  /** A leader's end: stream the stored snapshot to `m.to`, or take one first. */
  send(m: SnapshotMessage): void {
    if (this.#sending.has(m.to)) return
    const { storage, transport, clock, log } = this.#d
    this.#sending.add(m.to)
    this.#track((async () => {
      let ok = false
      try {
        const data = storage.snapshotData()
        const cur = storage.snapshot()
        if (!data || cur.index !== m.snapshot.index || cur.term !== m.snapshot.term) {
          // Only metadata is stored (a compaction point), or a newer snapshot exists: take one
          // now; the core asks again with it once told this attempt failed.
          if (!data || cur.index <= m.snapshot.index) await this.materialize()
          return
        }
        storage.retain(data.id)
        try {
          const started = clock.now()
          await transport.sendSnapshot(m.to, this.#chunksOf(m, data), this.#d.signal)
          ok = true
          log.info(
            `raft: sent snapshot ${cur.index} to ${m.to} ` +
              `(${data.bytes} bytes in ${clock.now() - started} ms)`,
          )
        } finally {
          storage.release(data.id)
        }
      } catch (err) {
        if (!this.#d.stopped()) log.warn(`raft: snapshot to ${m.to}: ${errorMessage(err)}`)
        if (err instanceof TornSnapshotError) await storage.discardSnapshotData()
      } finally {
        this.#sending.delete(m.to)
        if (!this.#d.halted()) {
          this.#d.node.reportSnapshot(m.to, ok)
          this.#d.schedule()
        }
      }
    })())
  }

  /** Takes a snapshot of the pinset into KV chunks (one at a time). */
  materialize(): Promise<void> {
    this.#materializing ??= (async () => {
      const { storage, fsm, clock, log } = this.#d
      const ac = new AbortController()
      this.#materializeAc = ac
      try {
        const signal = AbortSignal.any([ac.signal, this.#d.signal])
        const started = clock.now()
        const { index, data } = await fsm.takeSnapshot(storage, signal)
        const cur = storage.snapshot()
        let meta
        try {
          if (signal.aborted || index < cur.index) throw new CompactedError()
          meta = index === cur.index ? cur : this.#d.node.snapshotMetaAt(index)
        } catch (err) {
          storage.discardChunks(data.id)
          if (err instanceof CompactedError) return
          throw err
        }
        await storage.setSnapshot(meta, data)
        log.info(
          `raft: took snapshot ${index} (${data.bytes} bytes in ${clock.now() - started} ms)`,
        )
      } finally {
        this.#materializing = undefined
        this.#materializeAc = undefined
      }
    })()
    return this.#materializing
  }

  /** Ends a snapshot in progress and waits for every stream (stop; `signal` aborted first). */
  async stop(): Promise<void> {
    this.#materializeAc?.abort()
    for (const from of [...this.#staging.keys()]) this.#dropStaging(from)
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks])
  }

  async *#chunksOf(m: SnapshotMessage, data: SnapshotData): AsyncIterable<SnapshotChunk> {
    const streamId = ++this.#streamSeq
    const verifier = new SnapshotVerifier()
    let prev: Uint8Array | undefined
    let chunkIndex = 0
    let offset = 0
    const chunk = (d: Uint8Array, done: boolean): SnapshotChunk => ({
      from: this.#d.self,
      to: m.to,
      term: m.term,
      snapshot: m.snapshot,
      streamId,
      chunkIndex,
      offset,
      data: d,
      done,
    })
    // Stored chunks travel in groups of up to `wireChunkBytes` (one frame and one acknowledgement
    // each; by default one stored chunk, see WIRE_CHUNK_BYTES).
    const wire = this.#d.wireChunkBytes ?? WIRE_CHUNK_BYTES
    let group: Uint8Array[] = []
    let groupBytes = 0
    const take = () => {
      const out = group.length === 1 ? group[0] : concatBytes(group, groupBytes)
      group = []
      groupBytes = 0
      return out
    }
    for await (const c of this.#d.storage.readChunks(data, this.#d.signal)) {
      verifier.push(c)
      if (groupBytes > 0 && groupBytes + c.byteLength > wire) {
        if (prev) {
          yield chunk(prev, false)
          chunkIndex++
          offset += prev.byteLength
        }
        prev = take()
      }
      group.push(c)
      groupBytes += c.byteLength
    }
    if (prev) {
      yield chunk(prev, false)
      chunkIndex++
      offset += prev.byteLength
    }
    // The last chunk goes only once the bytes proved whole: a follower never completes a torn one.
    const r = verifier.end()
    if (r.bytes !== data.bytes || r.crc !== data.crc) {
      throw new TornSnapshotError('stored snapshot does not match its manifest')
    }
    yield chunk(take(), true)
  }

  #dropStaging(from: string): void {
    const s = this.#staging.get(from)
    if (!s) return
    this.#staging.delete(from)
    // After its commits in flight, or they would land after the deletion.
    this.#track(s.out.flush().catch(() => {}).finally(() => this.#d.storage.discardChunks(s.id)))
  }

  #track<T>(p: Promise<T>): void {
    this.#tasks.add(p)
    p.finally(() => this.#tasks.delete(p)).catch(() => {})
  }
}
