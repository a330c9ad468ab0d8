/**
 * Sharded adds (the reference's `adder/sharding`): the blocks of a DAG too big for one peer are
 * grouped, in the order the importer emits them, into shards of at most `shard_size` bytes; each
 * shard goes to its own allocation and is tracked by a *shard node* (dag-cbor `{"0": link, …}`).
 * A *cluster DAG* node links the shard nodes, and the content root becomes a meta pin that
 * references it:
 *
 * ```
 *   meta-pin (root, never pinned in IPFS) ──reference──▶ clusterdag-pin (direct, everywhere)
 *                                                           │ "0"      │ "1"   …
 *                                                           ▼          ▼
 *                                  shard-pin (max_depth 1, its allocation)  shard-pin …
 *                                           │ "0" … "n-1"
 *                                           ▼
 *                                      the DAG's blocks
 * ```
 *
 * Node bytes and CIDs are the reference's (test/adder/fixtures/go_sharding_vectors.json holds
 * what IPFS Cluster 1.1.6 produced). Where the reference loses data this builder departs from
 * it: a shard also closes at `MAX_SHARD_LINKS` blocks, so that a shard node is one block and
 * depth 1 covers its data (the reference then builds an indirect node and still pins it at
 * depth 1, which leaves the data unpinned); an add that would need more shards than one cluster
 * DAG node links is refused (the reference's indirect cluster DAG is pinned direct, its leaves
 * not at all); pins are handed back at the end, so a failed add leaves none behind (the
 * reference pins each shard as it completes, and a shard cannot be unpinned directly); shard
 * and cluster DAG pins never expire on their own (the meta pin's expiry removes them all).
 *
 * Blocks stream: each one goes to its shard's destinations as it arrives (through a bounded
 * queue), and the builder keeps only the current shard's links (CIDs) and sizes, plus a compact
 * set of the add's multihashes to drop repeated blocks as the reference does.
 *
 * @example
 * ```ts
 * const sharder = new ShardedDagBuilder(pinOptions, {
 *   allocate: (req, signal) => cluster.blockAllocate(pinOptions, signal),
 *   send: (peers, blocks, signal) => streamToPeers(peers, blocks, signal),
 *   clusterDagPeers: [selfId],
 * }, signal)
 * try {
 *   for await (const block of importedBlocks) await sharder.add(block)
 *   const dag = await sharder.finish(rootCid)
 *   for (const pin of dag.pins) await cluster.commitPin(pin, signal)
 * } finally {
 *   await sharder.abort()
 * }
 * ```
 */
import * as cborg from 'cborg'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ClusterError, ValidationError } from '../errors.ts'
import { multihashView, parseCid } from '../types/cid.ts'
import { newPin, type Pin, type PinOptions } from '../types/pin.ts'
import { ZERO_TIME } from '../types/time.ts'
import { AsyncQueue } from '../api/common/queue.ts'
import { DigestSet } from '../util/digest_set.ts'
import { type Logger, nullLogger } from '../util/log.ts'

/**
 * Links in one shard or cluster DAG node: the reference's `MaxLinks` (a full node of CIDv1 links
 * is 274,157 bytes: one block for Kubo and bitswap).
 */
export const MAX_SHARD_LINKS = 5984

/** The reference's default `shard-size` (100 MiB). */
export const DEFAULT_SHARD_SIZE = 104_857_600

/** Blocks queued towards a shard's destinations before `add` waits for them. */
const QUEUE_BLOCKS = 32

const DAG_CBOR = 0x71

/** A block of the DAG being added, as the importer emits it. */
export interface ShardBlock {
  cid: string
  bytes: Uint8Array
}

/** What `allocate` is asked for one shard. */
export interface ShardAllocationRequest {
  /** The shard's number, from 0. */
  index: number
  /** The most data bytes the shard will hold (the add's `shard_size`). */
  shardSize: number
  /**
   * Data bytes this add has sent so far to each peer: an allocator that reads `freespace`
   * metrics may subtract them, since metrics lag behind an add that is still running.
   */
  bytesSent: ReadonlyMap<string, number>
}

/** What the builder needs from the cluster. */
export interface ShardingDeps {
  /**
   * The peers a shard's blocks go to (the reference's `BlockAllocate` with the add's pin
   * options, asked once per shard, before its first block).
   */
  allocate(req: ShardAllocationRequest, signal: AbortSignal): Promise<string[]>
  /**
   * Streams blocks to every peer of `peers` (their IPFS `blockStream`) and resolves when the
   * blocks are stored on at least one of them; rejects when every destination failed. It must
   * read `blocks` to the end unless it fails.
   */
  send(peers: string[], blocks: AsyncIterable<ShardBlock>, signal: AbortSignal): Promise<void>
  /** Where the cluster DAG node goes (the reference: the adding peer alone). */
  clusterDagPeers: string[]
  /** Called as each shard is complete: the add's `shard-<n>` output item. */
  onShard?(shard: ShardInfo): void
  log?: Logger
}

/** A completed shard. */
export interface ShardInfo {
  index: number
  /** The shard node's CID. */
  cid: string
  /** Data bytes in the shard (its blocks, without the shard node). */
  size: number
  /** Blocks linked from the shard node. */
  links: number
  allocations: string[]
}

/** The outcome of a sharded add. */
export interface ShardedDag {
  root: string
  /** The cluster DAG node, and the data bytes of every shard together (its output `size`). */
  clusterDag: { cid: string; size: number }
  shards: number
  /**
   * To commit in this order (`Cluster.commitPin`): every shard pin, the cluster DAG pin, then
   * the meta pin of the root, so that no pin references one not yet committed.
   */
  pins: Pin[]
}

/** The current shard: its destinations, links and the stream to them. */
interface OpenShard {
  index: number
  peers: string[]
  links: string[]
  size: number
  queue: AsyncQueue<ShardBlock>
  /** The stream's outcome: undefined when delivered, else why not (never rejects). */
  outcome: Promise<unknown>
}

/**
 * Builds a sharded DAG from the blocks of an add. Not reusable: one add, one builder.
 *
 * @example
 * ```ts
 * const b = new ShardedDagBuilder({ ...defaultPinOptions(), name: 'big', shard_size: 1 << 20 }, deps)
 * await b.add({ cid, bytes })
 * const { pins } = await b.finish(cid)
 * ```
 */
export class ShardedDagBuilder {
  readonly #opts: PinOptions
  readonly #deps: ShardingDeps
  readonly #signal: AbortSignal
  readonly #limit: number
  readonly #log: Logger
  readonly #seen = new DigestSet()
  readonly #shards: ShardInfo[] = []
  readonly #bytesSent = new Map<string, number>()
  #current: OpenShard | undefined
  #lastLink: string | undefined
  #total = 0
  #done = false

  /**
   * `opts` are the add's pin options: `shard_size` is the shard limit (0 = the default) and
   * `name` names every pin; replication, metadata and user allocations go to the shard pins.
   */
  constructor(
    opts: PinOptions,
    deps: ShardingDeps,
    signal: AbortSignal = new AbortController().signal,
  ) {
    const limit = opts.shard_size === 0 ? DEFAULT_SHARD_SIZE : opts.shard_size
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new ValidationError(`shard-size must be a positive number of bytes, not ${limit}`)
    }
    this.#opts = { ...opts, shard_size: limit }
    this.#deps = deps
    this.#signal = signal
    this.#limit = limit
    this.#log = deps.log ?? nullLogger
  }

  /**
   * Puts a block in the current shard and sends it on; a full shard is completed first (its
   * node built and sent, its stream awaited). A block already added is dropped.
   */
  async add(block: ShardBlock): Promise<void> {
    this.#checkOpen()
    const view = multihashView(block.cid)
    if (!view) throw new ValidationError(`sharding: not a CID: ${JSON.stringify(block.cid)}`)
    const mh = view.slice() // the view is overwritten by the next multihashView anywhere
    if (this.#seen.has(mh)) return
    const size = block.bytes.byteLength
    // The reference's test is `size + block < limit`: a block as large as the limit never fits.
    if (size >= this.#limit) {
      throw new ValidationError(
        `block doesn't fit in empty shard: shard size too small? (block ${block.cid} is ${size} ` +
          `bytes, shard-size is ${this.#limit})`,
      )
    }
    let shard = this.#current
    if (shard && !fits(shard, size, this.#limit)) {
      await this.#flush()
      shard = undefined
    }
    shard ??= await this.#open()
    shard.links.push(block.cid)
    shard.size += size
    this.#seen.add(mh)
    this.#lastLink = block.cid
    await this.#push(shard, block)
  }

  /**
   * Completes the last shard, stores the cluster DAG node on `clusterDagPeers` and returns the
   * pins to commit. `root` is the content's root CID (the meta pin).
   */
  async finish(root: string): Promise<ShardedDag> {
    this.#checkOpen()
    const rootCid = parseCid(root).toString()
    this.#done = true // one finish, whatever happens next
    if (this.#current) await this.#flush()
    if (this.#shards.length === 0) {
      throw new ValidationError('nothing to shard: the add produced no blocks')
    }
    if (this.#lastLink !== undefined && !sameMultihash(this.#lastLink, rootCid)) {
      // The reference warns too; normal when the importer emits blocks after the root.
      this.#log.debug(
        `sharding: the last block added (${this.#lastLink}) is not the root ${rootCid}`,
      )
    }
    const dag = await linkMapBlock(this.#shards.map((s) => s.cid))
    const peers = this.#deps.clusterDagPeers
    if (peers.length === 0) throw new ClusterError('sharding: no peer to store the cluster DAG on')
    await this.#deps.send(peers, oneBlock(dag), this.#signal)
    const pins: Pin[] = []
    let previous: string | null = null
    for (const s of this.#shards) {
      pins.push(shardPin(this.#opts, s, previous))
      previous = s.cid
    }
    pins.push(clusterDagPin(this.#opts, dag.cid, rootCid))
    pins.push(metaPin(this.#opts, rootCid, dag.cid))
    this.#log.info(
      `sharded ${rootCid}: ${this.#shards.length} shards, ${this.#total} bytes, cluster DAG ${dag.cid}`,
    )
    return {
      root: rootCid,
      clusterDag: { cid: dag.cid, size: this.#total },
      shards: this.#shards.length,
      pins,
    }
  }

  /**
   * Ends the shard stream still open, if any (an add that failed or was cancelled): its `send`
   * sees the queue end with `reason`. Harmless after `finish` or a second time.
   */
  async abort(reason: unknown = new ClusterError('sharded add cancelled')): Promise<void> {
    this.#done = true
    const shard = this.#current
    this.#current = undefined
    if (!shard) return
    shard.queue.close(reason)
    await shard.outcome
  }

  #checkOpen() {
    this.#signal.throwIfAborted()
    if (this.#done) throw new ClusterError('sharding: the add is already finished')
  }

  async #open(): Promise<OpenShard> {
    const index = this.#shards.length
    if (index >= MAX_SHARD_LINKS) {
      throw new ValidationError(
        `a sharded add holds at most ${MAX_SHARD_LINKS} shards: use a larger shard-size than ` +
          `${this.#limit} bytes`,
      )
    }
    const peers = await this.#deps.allocate(
      { index, shardSize: this.#limit, bytesSent: this.#bytesSent },
      this.#signal,
    )
    if (peers.length === 0) {
      throw new ClusterError(`sharding: no peer allocated for shard ${index}`)
    }
    const queue = new AsyncQueue<ShardBlock>(QUEUE_BLOCKS)
    const outcome = this.#deps.send(peers, queue, this.#signal).then(
      () => undefined,
      (err) => {
        queue.close(err) // a producer waiting for room sees why
        return err ?? new ClusterError(`sharding: shard ${index} stream failed`)
      },
    )
    this.#log.debug(`sharding: shard ${index} goes to ${peers.join(', ')}`)
    const shard: OpenShard = { index, peers, links: [], size: 0, queue, outcome }
    this.#current = shard
    return shard
  }

  async #push(shard: OpenShard, block: ShardBlock): Promise<void> {
    try {
      await shard.queue.push(block)
    } catch (err) {
      // The stream ended early (its consumer stopped, or abort()): its own error says more than
      // the queue's, and it is near, since a stream that stops reading is ending.
      throw (await shard.outcome) ?? err
    }
  }

  /** Sends the shard node after the data, closes the stream and waits for it. */
  async #flush(): Promise<void> {
    const shard = this.#current!
    const node = await linkMapBlock(shard.links)
    await this.#push(shard, node)
    shard.queue.close()
    this.#current = undefined
    const err = await shard.outcome
    if (err !== undefined) throw err
    if (shard.queue.size > 0) {
      // A `send` that resolved without reading everything: those blocks reached no one.
      throw new ClusterError(
        `sharding: the stream of shard ${shard.index} ended before its last block`,
      )
    }
    const info: ShardInfo = {
      index: shard.index,
      cid: node.cid,
      size: shard.size,
      links: shard.links.length,
      allocations: shard.peers,
    }
    this.#shards.push(info)
    this.#total += shard.size
    for (const p of shard.peers) this.#bytesSent.set(p, (this.#bytesSent.get(p) ?? 0) + shard.size)
    this.#log.info(
      `shard #${shard.index} (${node.cid}) completed. Total size: ${shard.size}. ` +
        `Links: ${shard.links.length}`,
    )
    this.#deps.onShard?.(info)
  }
}

/** Whether one more block of `size` bytes goes in the shard (the reference's strict `<`). */
function fits(shard: OpenShard, size: number, limit: number): boolean {
  return shard.links.length < MAX_SHARD_LINKS && shard.size + size < limit
}

async function* oneBlock(b: ShardBlock): AsyncGenerator<ShardBlock> {
  yield b
}

function sameMultihash(a: string, b: string): boolean {
  const x = multihashView(a)?.slice()
  const y = multihashView(b)
  return x !== undefined && y !== undefined && x.length === y.length &&
    x.every((v, i) => v === y[i])
}

// ---- the pins (pure) ----

/**
 * The pin of a completed shard: depth 1 (its node and the blocks it links), on the shard's
 * allocation, referencing the previous shard (null for the first), `shard_size` its data bytes.
 *
 * @example
 * ```ts
 * shardPin(opts, { index: 0, cid, size: 196608, links: 3, allocations: [peer] }, null)
 * ```
 */
export function shardPin(opts: PinOptions, shard: ShardInfo, previous: string | null): Pin {
  const pin = newPin(shard.cid, { ...opts, mode: 'recursive', expire_at: ZERO_TIME })
  pin.name = `${opts.name}-shard-${shard.index}`
  pin.type = 'shard-pin'
  pin.allocations = [...shard.allocations]
  pin.max_depth = 1
  pin.reference = previous
  pin.shard_size = shard.size
  return pin
}

/**
 * The pin of the cluster DAG node: direct, on every peer (replication -1), referencing the
 * content root.
 *
 * @example
 * ```ts
 * clusterDagPin(opts, dagCid, rootCid).name // '<name>-clusterDAG'
 * ```
 */
export function clusterDagPin(opts: PinOptions, clusterDag: string, root: string): Pin {
  const pin = newPin(clusterDag, { ...opts, mode: 'direct', expire_at: ZERO_TIME })
  pin.name = `${opts.name}-clusterDAG`
  pin.type = 'clusterdag-pin'
  pin.replication_factor_min = -1
  pin.replication_factor_max = -1
  pin.reference = root
  return pin
}

/**
 * The meta pin of the content root: never pinned in IPFS (its status is `sharded`), no
 * allocations, referencing the cluster DAG; it carries the add's name and options.
 *
 * @example
 * ```ts
 * metaPin(opts, rootCid, dagCid).type // 'meta-pin'
 * ```
 */
export function metaPin(opts: PinOptions, root: string, clusterDag: string): Pin {
  const pin = newPin(root, { ...opts, mode: 'direct' })
  pin.type = 'meta-pin'
  pin.reference = clusterDag
  return pin
}

// ---- the node format (pure but for hashing) ----

/**
 * The dag-cbor map `{"0": links[0], "1": links[1], …}` of a shard or cluster DAG node, byte for
 * byte as the reference's `cbor.WrapObject(map[string]cid.Cid)` writes it: keys in canonical
 * order (shorter first, so numeric), each value a tag-42 link.
 *
 * @example
 * ```ts
 * encodeLinkMap(['bafkrei…']) // a1 61 30 d8 2a 58 25 00 01 55 12 20 …
 * ```
 */
export function encodeLinkMap(links: readonly string[]): Uint8Array {
  if (links.length > MAX_SHARD_LINKS) {
    throw new ClusterError(
      `a shard node holds at most ${MAX_SHARD_LINKS} links, not ${links.length}`,
    )
  }
  const map: Record<string, CID> = {}
  for (let i = 0; i < links.length; i++) map[String(i)] = parseCid(links[i])
  // cborg sorts map keys shorter first, then bytewise: the reference's (RFC 7049) order.
  return cborg.encode(map, { typeEncoders: { Object: encodeLink } })
}

/** A CID as tag 42 of 0x00 ‖ its bytes (a CIDv0's bytes are its multihash). */
function encodeLink(v: unknown): cborg.Token[] | null {
  if (!(v instanceof CID)) return null
  const bytes = new Uint8Array(v.bytes.length + 1)
  bytes.set(v.bytes, 1)
  return [new cborg.Token(cborg.Type.tag, 42), new cborg.Token(cborg.Type.bytes, bytes)]
}

/**
 * The block of a link map: its bytes and its CID (CIDv1, dag-cbor, sha2-256: `bafyrei…`).
 *
 * @example
 * ```ts
 * const { cid, bytes } = await linkMapBlock(shardLinks)
 * ```
 */
export async function linkMapBlock(links: readonly string[]): Promise<ShardBlock> {
  const bytes = encodeLinkMap(links)
  const digest = await sha256.digest(bytes)
  return { cid: CID.createV1(DAG_CBOR, digest).toString(), bytes }
}

/** A malformed shard or cluster DAG node. */
export class ShardNodeError extends ClusterError {
  override name = 'ShardNodeError'
}

/**
 * The links of a shard or cluster DAG node, in key order: what the reference's
 * `CborDataToNode(raw, "cbor").Links()` reads when a meta pin is unpinned. Anything but a
 * dag-cbor map of `"0".."n-1"` to links is refused.
 *
 * @example
 * ```ts
 * decodeLinkMap(await ipfs.blockGet(clusterDagCid)) // ['bafyrei…shard0', 'bafyrei…shard1']
 * ```
 */
export function decodeLinkMap(bytes: Uint8Array): string[] {
  const tags: cborg.TagDecoder[] = []
  tags[42] = (decode) => {
    const b = decode()
    if (!(b instanceof Uint8Array) || b[0] !== 0) throw new ShardNodeError('bad link in shard node')
    return CID.decode(b.subarray(1))
  }
  let v: unknown
  try {
    v = cborg.decode(bytes, { tags })
  } catch (err) {
    if (err instanceof ShardNodeError) throw err
    throw new ShardNodeError(`not a shard node: ${(err as Error).message}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new ShardNodeError('not a shard node: not a map of links')
  }
  const obj = v as Record<string, unknown>
  const keys = Object.keys(obj)
  const links: string[] = []
  for (let i = 0; i < keys.length; i++) {
    const link = obj[String(i)]
    if (!(link instanceof CID)) {
      throw new ShardNodeError(
        `not a shard node: key "${i}" is ${link === undefined ? 'missing' : 'not a link'}`,
      )
    }
    links.push(link.toString())
  }
  return links
}
