/**
 * Adding content through the cluster (the reference's `adder` with its single DAG service):
 * multipart parts (files, directories, symlinks) are chunked into a UnixFS DAG with
 * ipfs-unixfs-importer (re-hashed by a Rehasher for another hash function than sha2-256). Before
 * the first block the cluster allocates the content (`blockAllocate`: the pin's allocation, every
 * peer for replication -1); the blocks then stream, while they are built, to every destination's
 * IPFS daemon in one `blockStream` call each (another peer's over the cluster RPC), and the root
 * is pinned on those destinations. A destination that fails is dropped (it fetches the content
 * when it pins); the add fails only when every destination did. Output items follow `ipfs add`:
 * one per file as it completes, then the directories (children before parents, siblings by
 * name), root last.
 *
 * Without wrap-with-directory, each top-level part is imported on its own and the last one's
 * root is pinned, as in the reference.
 *
 * @example
 * ```ts
 * checkAddParams(params) // 400 on options the importer cannot honour
 * for await (const out of addMultipart(reader, params, deps, signal)) …
 * ```
 */
import { posix } from 'node:path'
import {
  type ImportCandidate,
  importer,
  type ImporterOptions,
  type WritableStorage,
} from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced, trickle } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { AddedOutput, AdderDeps, Block } from './content.ts'
import { ClusterError, errorMessage, ValidationError } from '../errors.ts'
import { addHashFunction, loadHasher } from '../types/multihash.ts'
import { newPin } from '../types/pin.ts'
import type { AddParams } from './add_params.ts'
import type { MultipartPart, MultipartReader } from '../api/common/multipart.ts'
import { parseHeaderParams } from '../api/common/multipart.ts'
import { CarReader, unixfsFileSize } from './car.ts'
import { AsyncQueue } from '../api/common/queue.ts'
import { readText } from '../api/common/body.ts'
import { Rehasher } from './rehash.ts'
import { ShardedDagBuilder, type ShardInfo } from './sharding.ts'
import { fixUint64Varints } from './varint_fix.ts'

/** Kubo's largest chunk (2 MiB block minus overhead). */
const CHUNK_SIZE_LIMIT = 2 * 1024 * 1024 - 256
const PROGRESS_STEP = 256 * 1024
const DAG_PB = 0x70
const SHA2_256 = 0x12
/** Block codecs a CAR upload may hold (those the reference can decode: dag-pb, raw, dag-cbor). */
const CAR_CODECS = new Set([DAG_PB, 0x55, 0x71])
/** How long outputs wait for the add to finish before they stream (see `emit`). */
const HOLD_MS = 1000
/** The empty UnixFS directory: 4 bytes of dag-pb. */
const EMPTY_DIR = new Uint8Array([0x0a, 0x02, 0x08, 0x01])
const BLOCK_QUEUE = 64

/** Parses `size-N` (or `default`); other chunkers are refused. */
function chunkSize(chunker: string): number {
  if (chunker === '' || chunker === 'default') return 262144
  const [name, ...rest] = chunker.split('-')
  if (name !== 'size') {
    throw new ValidationError(
      `chunker ${
        JSON.stringify(chunker)
      } is not supported: use size-<bytes> (rabin and buzhash are not implemented)`,
    )
  }
  if (rest.length !== 1) {
    throw new ValidationError('incorrect chunker string format (expected size-{size})')
  }
  if (!/^[+-]?\d+$/.test(rest[0])) {
    throw new ValidationError(`invalid chunker size ${JSON.stringify(rest[0])}`)
  }
  const n = parseInt(rest[0], 10)
  if (n <= 0) throw new ValidationError('chunker size must be greater than 0')
  if (n > CHUNK_SIZE_LIMIT) {
    throw new ValidationError(
      `chunker parameters may not exceed the maximum chunk size of ${CHUNK_SIZE_LIMIT}`,
    )
  }
  return n
}

/**
 * Checks the options the importer must honour, so that a bad request is a 400 before any
 * output instead of an error in the middle of the stream.
 */
export function checkAddParams(p: AddParams): void {
  chunkSize(p.chunker)
  const hash = addHashFunction(p.hash)
  if (p.cid_version !== 0 && p.cid_version !== 1) {
    throw new ValidationError(`bad CID Version: unknown CID version: ${p.cid_version}`)
  }
  if (p.cid_version === 0 && hash.code !== SHA2_256 && p.format !== 'car') {
    throw new ValidationError('CIDv0 only supports sha2-256') // Kubo's words
  }
  if (p.shard && p.format === 'car') {
    throw new ValidationError('a CAR file cannot be sharded: add it without shard=true')
  }
  if (p.format === 'car' && p.wrap) throw new ValidationError('cannot wrap a CAR file upload')
}

function importerOptions(p: AddParams): ImporterOptions {
  const trick = p.layout === 'trickle'
  return {
    profile: 'unixfs-v0-2015',
    cidVersion: p.cid_version as 0 | 1,
    rawLeaves: p.raw_leaves,
    // Kubo's balanced DAG has `file` leaves and a single chunk becomes the root; its trickle DAG
    // has `raw` UnixFS leaves under a root node.
    leafType: trick ? 'raw' : 'file',
    reduceSingleLeafToSelf: !trick,
    chunker: fixedSize({ chunkSize: chunkSize(p.chunker) }),
    layout: trick ? trickle() : balanced({ maxChildrenPerNode: 174 }),
    // Parts arrive one after another on one stream: import them one at a time.
    fileImportConcurrency: 1,
  }
}

/** The cleaned path of a part, as the reference derives it (`path.Clean("/" + filename)`). */
function partPath(part: MultipartPart): string {
  const disp = parseHeaderParams(part.headers.get('content-disposition') ?? '')
  let name = disp.params.get('filename') ?? ''
  try {
    name = decodeURIComponent(name.replaceAll('+', ' '))
  } catch {
    // not escaped: keep it as it is
  }
  const clean = posix.normalize('/' + name)
  return clean === '/' ? '' : clean.replace(/\/$/, '').slice(1)
}

type PartKind = 'file' | 'dir' | 'symlink'

function partKind(part: MultipartPart): PartKind {
  const ct = parseHeaderParams(part.headers.get('content-type') ?? '').type
  if (
    ct === 'application/x-directory' || ct === 'multipart/form-data' || ct === 'multipart/mixed'
  ) return 'dir'
  if (ct === 'application/symlink') return 'symlink'
  return 'file'
}

/** Multipart parts with one part of look-ahead, so imports can stop at a top-level boundary. */
class PartStream {
  #next: MultipartPart | null | undefined
  constructor(readonly reader: MultipartReader) {}
  async peek(): Promise<MultipartPart | null> {
    if (this.#next === undefined) this.#next = await this.reader.nextPart()
    return this.#next
  }
  take(): void {
    this.#next = undefined
  }
}

/** Orders directory outputs as the reference prints them: children first, siblings by name. */
function compareDirs(a: string, b: string): number {
  const A = a === '' ? [] : a.split('/')
  const B = b === '' ? [] : b.split('/')
  for (let i = 0;; i++) {
    if (i === A.length) return i === B.length ? 0 : 1 // a is an ancestor of b: after it
    if (i === B.length) return -1
    if (A[i] !== B[i]) return A[i] < B[i] ? -1 : 1
  }
}

/** One destination of an add: its queue of blocks and the streaming call draining it. */
interface Destination {
  peer: string
  queue: AsyncQueue<Block>
  streaming: Promise<void>
  error?: unknown
}

/**
 * Streams `blocks` to every peer of `peers` (one `blockStream` call each, each behind a bounded
 * queue, so the slowest destination paces the add and memory stays bounded). A destination that
 * fails is dropped (it fetches the content when it pins, as in the reference); this fails only
 * when every destination did.
 */
export async function sendToPeers(
  deps: Pick<AdderDeps, 'blockStream'>,
  peers: string[],
  blocks: AsyncIterable<Block>,
  signal: AbortSignal,
): Promise<void> {
  let reading = true
  const dests = peers.map((peer) => {
    const queue = new AsyncQueue<Block>(BLOCK_QUEUE)
    const d: Destination = { peer, queue, streaming: Promise.resolve() }
    d.streaming = deps.blockStream(peer, queue, signal).then(
      () => {
        // A call that ends before the last block was sent stored only some of them.
        if (reading) d.error = new Error('the destination stopped reading blocks')
        queue.close(d.error)
      },
      (err) => {
        d.error = err
        queue.close(err)
      },
    )
    return d
  })
  const allFailed = () => {
    if (dests.length === 1) return dests[0].error
    const errs = dests.map((d) => `${d.peer}: ${errorMessage(d.error)}`)
    return new ClusterError(`failed to put block on all destinations: ${errs.join('; ')}`)
  }
  try {
    for await (const block of blocks) {
      const live = dests.filter((d) => d.error === undefined)
      if (live.length === 0) throw allFailed()
      if (live.length === 1) await live[0].queue.push(block).catch(() => {})
      else await Promise.all(live.map((d) => d.queue.push(block).catch(() => {})))
    }
  } catch (err) {
    for (const d of dests) d.queue.close(err)
    await Promise.all(dests.map((d) => d.streaming))
    throw err
  }
  reading = false
  for (const d of dests) d.queue.close()
  await Promise.all(dests.map((d) => d.streaming))
  if (dests.length > 0 && dests.every((d) => d.error !== undefined)) throw allFailed()
}

/** Where the importer's blocks go: `put` each, then `finish`. */
interface Sink {
  put(cid: CID, bytes: Uint8Array): Promise<CID>
  /** Set when adding with another hash function than the importer's sha2-256. */
  rehash: Rehasher | undefined
  /** The peers the content went to (each output's `allocations`). */
  allocations: string[]
  blocks: number
}

/**
 * The blocks of a plain add: to the destinations chosen on the first block (the reference's
 * BlockAllocate), all of them through one `sendToPeers`.
 */
class BlockSink implements Sink {
  #queue: AsyncQueue<Block> | undefined
  #starting: Promise<AsyncQueue<Block>> | undefined
  #sending: Promise<void> | undefined
  #recent: string[] = []
  blocks = 0
  allocations: string[] = []
  rehash: Rehasher | undefined

  constructor(
    readonly deps: AdderDeps,
    readonly params: AddParams,
    readonly signal: AbortSignal,
  ) {}

  /** Allocates and starts sending, on the first block. */
  async #start(): Promise<AsyncQueue<Block>> {
    const { deps, params } = this
    const allocated = await deps.cluster.blockAllocate(params.pin, this.signal)
    let sendTo = allocated
    this.allocations = [...allocated]
    if (params.local) {
      // Blocks only to this peer, which replaces the last allocation unless the user chose
      // the allocations (reference).
      if (
        !allocated.includes(deps.self) && (params.pin.user_allocations ?? []).length === 0 &&
        allocated.length > 0
      ) {
        this.allocations[allocated.length - 1] = deps.self
      }
      sendTo = [deps.self]
    }
    if (sendTo.length === 0) sendTo = [deps.self]
    const queue = new AsyncQueue<Block>(BLOCK_QUEUE)
    this.#sending = sendToPeers(deps, sendTo, queue, this.signal)
    // A failure is thrown by put() (the queue closes with it) or by finish().
    this.#sending.catch((err) => queue.close(err))
    this.#queue = queue
    return queue
  }

  /**
   * Takes a block from the importer (or a CAR). The importer goes on with the CID it made; with a
   * Rehasher, the block travels under its new CID and the outputs are mapped through `rehash`.
   */
  put = async (cid: CID, bytes: Uint8Array): Promise<CID> => {
    const block = await takeBlock(this, this.#recent, cid, bytes)
    if (!block) return cid
    // The importer puts several blocks at once: one allocation, one send.
    const queue = this.#queue ?? await (this.#starting ??= this.#start())
    this.blocks++
    try {
      await queue.push(block)
    } catch (err) {
      await this.#sending // the reason sending stopped, when it did
      throw err
    }
    return cid
  }

  /** Waits until every destination stored every block; fails when none did. */
  async finish(): Promise<void> {
    this.#queue?.close()
    await this.#sending
  }

  abort(err: unknown): void {
    this.#queue?.close(err)
    this.#sending?.catch(() => {})
  }
}

/**
 * The block to send for what the importer made, or null for a repeat of a recent block:
 * identical chunks come back to back, and go once (as the reference does).
 */
async function takeBlock(
  sink: Pick<Sink, 'rehash'>,
  recent: string[],
  cid: CID,
  bytes: Uint8Array,
): Promise<Block | null> {
  const key = cid.toString()
  if (recent.includes(key)) return null
  recent.push(key)
  if (recent.length > 8) recent.shift()
  if (!sink.rehash) return { cid: key, bytes }
  const r = await sink.rehash.block(cid, bytes)
  return { cid: r.cid.toString(), bytes: r.bytes }
}

/**
 * The blocks of a sharded add (`shard=true`): into a ShardedDagBuilder, which allocates each
 * shard and sends its blocks there; `commit` pins the shards, the cluster DAG and the root's
 * meta pin.
 */
class ShardSink implements Sink {
  readonly builder: ShardedDagBuilder
  #recent: string[] = []
  blocks = 0
  /** A sharded add's outputs name no allocation: each shard has its own. */
  allocations: string[] = []
  rehash: Rehasher | undefined

  constructor(
    readonly deps: AdderDeps,
    readonly params: AddParams,
    readonly signal: AbortSignal,
    onShard: (s: ShardInfo) => void,
  ) {
    this.builder = new ShardedDagBuilder(params.pin, {
      allocate: (req, s) => deps.cluster.blockAllocate(params.pin, s, req.bytesSent),
      send: (peers, blocks, s) => sendToPeers(deps, peers, blocks, s),
      clusterDagPeers: [deps.self],
      onShard,
    }, signal)
  }

  /** The builder takes one block at a time; the importer puts several at once. */
  #chain: Promise<unknown> = Promise.resolve()

  put = (cid: CID, bytes: Uint8Array): Promise<CID> => {
    const next = this.#chain.then(async () => {
      const block = await takeBlock(this, this.#recent, cid, bytes)
      if (!block) return cid
      this.blocks++
      await this.builder.add(block)
      return cid
    })
    this.#chain = next.catch(() => {})
    return next
  }

  abort(err: unknown): void {
    this.builder.abort(err).catch(() => {})
  }
}

/**
 * Adds the parts of a multipart body. Yields output items as they are produced; throws when
 * adding fails (before the first item, callers answer 500; after it, the stream is aborted).
 */
export function addMultipart(
  reader: MultipartReader,
  params: AddParams,
  deps: AdderDeps,
  signal: AbortSignal,
): AsyncIterable<AddedOutput> {
  checkAddParams(params)
  fixUint64Varints() // files of 2 to 4 GiB: Kubo's CIDs
  const out = new AsyncQueue<AddedOutput>()
  // Outputs are held back until the add ends or HOLD_MS passed: a short add that fails (IPFS
  // down, pin refused) then answers 500 with the error instead of 200 and a cut stream.
  let held: AddedOutput[] | undefined = []
  let holdTimer: ReturnType<typeof setTimeout> | undefined
  const release = () => {
    clearTimeout(holdTimer)
    const items = held ?? []
    held = undefined
    for (const item of items) out.push(item).catch(() => {})
  }
  const emit = async (item: AddedOutput) => {
    if (!held) return await out.push(item)
    held.push(item)
    holdTimer ??= setTimeout(release, HOLD_MS)
  }
  const sink = params.shard
    ? new ShardSink(deps, params, signal, (sh) => {
      // Streamed in the order the shards complete, as the reference's output.
      void emit({
        name: `shard-${sh.index}`,
        cid: sh.cid,
        size: sh.size,
        allocations: sh.allocations,
      })
        .catch(() => {})
    })
    : new BlockSink(deps, params, signal)
  const parts = new PartStream(reader)
  const opts = importerOptions(params)

  /** Import candidates for the parts under `top` ('' = all parts), with progress output. */
  async function* candidates(top: string | undefined): AsyncIterable<ImportCandidate> {
    while (true) {
      signal.throwIfAborted()
      const part = await parts.peek()
      if (!part) return
      const path = partPath(part)
      if (top !== undefined && path !== top && !path.startsWith(top + '/')) return
      parts.take()
      const kind = partKind(part)
      if (kind === 'dir') {
        dirParts.add(path)
        yield { path }
      } else if (kind === 'symlink') {
        yield {
          path,
          link: await readText(
            part.body(),
            4096,
            () => new ValidationError('symlink target too long'),
          ),
        }
      } else {
        // Progress names are relative to the top-level entry, as the reference reports them.
        const progressName = top === undefined || path === top
          ? (top === undefined ? path : '')
          : path.slice(top.length + 1)
        yield { path, content: withProgress(part.body(), progressName) }
      }
    }
  }

  async function* withProgress(
    body: AsyncIterable<Uint8Array>,
    name: string,
  ): AsyncIterable<Uint8Array> {
    let bytes = 0
    for await (let chunk of body) {
      if (!params.progress) {
        yield chunk
        continue
      }
      // Report at every multiple of the step, whatever sizes the network delivered.
      while (chunk.length > 0) {
        const room = PROGRESS_STEP - (bytes % PROGRESS_STEP)
        const piece = chunk.length > room ? chunk.subarray(0, room) : chunk
        chunk = chunk.subarray(piece.length)
        bytes += piece.length
        if (bytes % PROGRESS_STEP === 0) await emit({ name, cid: null, bytes })
        yield piece
      }
    }
    if (params.progress && (bytes === 0 || bytes % PROGRESS_STEP !== 0)) {
      await emit({ name, cid: null, bytes })
    }
  }

  /** Directory parts seen by the current import (the importer reports only non-empty ones). */
  let dirParts = new Set<string>()

  /** Runs the importer over candidates; returns the CID of the entry at `rootPath`. */
  async function importTree(
    source: AsyncIterable<ImportCandidate>,
    rootPath: string,
    wrap: boolean,
  ) {
    const dirs: AddedOutput[] = []
    dirParts = new Set()
    let root: string | undefined
    for await (
      const e of importer(source, sink as unknown as WritableStorage, {
        ...opts,
        wrapWithDirectory: wrap,
      })
    ) {
      const rehashed = sink.rehash?.get(e.cid)
      const item: AddedOutput = {
        name: e.path ?? '',
        cid: (rehashed?.cid ?? e.cid).toString(),
        size: rehashed?.size ?? Number(e.size),
        allocations: sink.allocations,
      }
      if ((e.path ?? '') === rootPath) root = item.cid as string
      if (e.unixfs?.isDirectory()) dirs.push(item)
      else await emit(item)
    }
    // An explicit directory part that got no children is stored by the importer but not
    // reported; its node is the constant empty UnixFS directory, which `ipfs add` lists.
    for (const d of dirs) dirParts.delete(d.name)
    if (dirParts.size > 0) {
      const hasher = sink.rehash?.hasher ?? sha256
      const empty = CID.create(opts.cidVersion ?? 0, DAG_PB, await hasher.digest(EMPTY_DIR))
      for (const path of dirParts) {
        dirs.push({
          name: path,
          cid: empty.toString(),
          size: EMPTY_DIR.length,
          allocations: sink.allocations,
        })
      }
    }
    dirs.sort((a, b) => compareDirs(a.name, b.name))
    for (const d of dirs) await emit(d)
    return root
  }

  /** Stores the blocks of a CAR upload (the first part only, as the reference). */
  async function importCar(): Promise<string | undefined> {
    const part = await parts.peek()
    if (!part) return undefined
    parts.take()
    if (partKind(part) !== 'file') {
      throw new ValidationError('expected CAR file is not of type file')
    }
    const car = new CarReader(part.body())
    const roots = await car.roots()
    if (roots.length !== 1) {
      throw new ValidationError('only CAR files with a single root are supported')
    }
    const [root] = roots
    let bytes = 0
    let size = 0
    for (let b = await car.next(); b; b = await car.next()) {
      signal.throwIfAborted()
      if (!CAR_CODECS.has(b.cid.code)) {
        throw new ValidationError(`unsupported block codec 0x${b.cid.code.toString(16)} in CAR`)
      }
      bytes += b.bytes.length
      if (b.cid.code === DAG_PB && b.cid.equals(root)) size = unixfsFileSize(b.bytes)
      await sink.put(b.cid, b.bytes)
    }
    // Field order as the reference's JSON: name, cid, bytes, size, allocations (zeros omitted).
    const item: AddedOutput = { name: partPath(part), cid: root.toString() }
    if (bytes) item.bytes = bytes
    if (size) item.size = size
    item.allocations = sink.allocations
    await emit(item)
    return root.toString()
  }

  const run = async () => {
    let root: string | undefined
    const hash = addHashFunction(params.hash).code
    if (params.format !== 'car' && hash !== SHA2_256) {
      sink.rehash = new Rehasher(await loadHasher(hash)!)
    }
    if (params.format === 'car') {
      root = await importCar()
    } else if (params.wrap) {
      root = await importTree(candidates(undefined), '', true)
    } else {
      while (true) {
        const first = await parts.peek()
        if (!first) break
        const top = partPath(first)
        root = await importTree(candidates(top), top, false)
      }
    }
    if (root === undefined) {
      throw new ValidationError('no files were added: the request has no file parts')
    }
    if (sink instanceof ShardSink) {
      const dag = await sink.builder.finish(root)
      await emit({
        name: `${params.pin.name}-clusterDAG`,
        cid: dag.clusterDag.cid,
        size: dag.clusterDag.size,
      })
      if (params.no_pin) return
      // Shards first, then the cluster DAG, then the root's meta pin: nothing references a pin
      // not yet committed.
      for (const pin of dag.pins) await deps.cluster.commitPin(pin, signal)
      return
    }
    await sink.finish()
    if (params.no_pin) return
    // Pinned where the blocks went; for replication -1 everywhere (allocations cleared).
    const pin = newPin(root, { ...params.pin, mode: 'recursive' })
    if (pin.replication_factor_min !== -1) pin.allocations = [...sink.allocations]
    await deps.cluster.commitPin(pin, signal)
  }

  run().then(
    () => {
      release()
      out.close()
    },
    (err) => {
      clearTimeout(holdTimer)
      if (held && held.length > 0) held = [] // never released: the error alone is the answer
      release()
      sink.abort(err)
      reader.cancel()
      out.close(err)
    },
  )
  return out
}
