/**
 * The embedded node's pins, kept in Helia's own datastore format so that Helia's `pins.ls`,
 * `pins.get` and `pins.isPinned` (and so its GC rules) keep working on the same repo:
 *
 * - `/pin/<cid v1, base36>` → cbor `{ depth, metadata }` (depth Infinity = recursive), one per pin;
 * - `/pinned-block/<multihash, base36 multibase>` → cbor `{ pinCount, pinnedBy: cid bytes[] }`,
 *   one per block some pin holds.
 *
 * The writes are our own because Helia 7.1.15's `pins.rm` rewrites `pinnedBy` with the
 * wrong filter (it keeps the pin being removed and drops the others): after
 * pin A, pin B (sharing blocks), unpin A, pin A, unpin B, a GC deletes blocks A still needs.
 * Here every record update is idempotent per pin (counted only if `pinnedBy` gains or loses that
 * pin), serialized per block (concurrent pins sharing a block do not lose counts), and a pin
 * key is written after its blocks and deleted before them, so a crash can only leak holds,
 * never drop one. The format is checked against helia@7.1.15 (pinned in deno.json).
 *
 * @example
 * ```ts
 * const pins = new PinStore(datastore)
 * await pins.add(cid, Infinity, walkDag(cid, blockstore, helia.getCodec))
 * await pins.get(cid) // { depth: Infinity }
 * ```
 */
import * as cborg from 'cborg'
import { Key } from 'interface-datastore'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import { KeyedMutex } from './locks.ts'
import type { WalkNode } from './walker.ts'

/** The datastore calls the store needs (FsDatastore, or any interface-datastore store). */
export interface PinDatastore {
  get(key: Key, opts?: { signal?: AbortSignal }): Promise<Uint8Array> | Uint8Array
  put(key: Key, value: Uint8Array, opts?: { signal?: AbortSignal }): Promise<Key> | Key
  has(key: Key, opts?: { signal?: AbortSignal }): Promise<boolean> | boolean
  delete(key: Key, opts?: { signal?: AbortSignal }): Promise<void> | void
  query(
    q: { prefix?: string },
    opts?: { signal?: AbortSignal },
  ): AsyncIterable<{ key: Key; value: Uint8Array }> | Iterable<{ key: Key; value: Uint8Array }>
}

/** A pin as stored: depth 0 = direct, Infinity = recursive. */
export interface StoredPin {
  cid: CID
  depth: number
}

interface BlockRecord {
  pinCount: number
  pinnedBy: Uint8Array[]
}

const PIN_PREFIX = '/pin/'
const BLOCK_PREFIX = '/pinned-block/'

/** Pins are keyed by their v1 form (Helia's habit): QmX… and bafy…(dag-pb) are one pin. */
function asV1(cid: CID): CID {
  return cid.version === 0 ? cid.toV1() : cid
}

function pinKey(cid: CID): Key {
  return new Key(PIN_PREFIX + asV1(cid).toString(base36))
}

function blockKey(cid: CID): Key {
  return new Key(BLOCK_PREFIX + base36.encode(cid.multihash.bytes))
}

function isNotFound(err: unknown): boolean {
  return (err as Error)?.name === 'NotFoundError'
}

/** The pin bookkeeping of one embedded repo. */
export class PinStore {
  #ds: PinDatastore
  #records = new KeyedMutex()

  constructor(datastore: PinDatastore) {
    this.#ds = datastore
  }

  /** The pin of this CID (any version), or undefined. */
  async get(cid: CID, signal?: AbortSignal): Promise<StoredPin | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await this.#ds.get(pinKey(cid), { signal })
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
    const rec = cborg.decode(bytes) as { depth: number }
    return { cid: asV1(cid), depth: rec.depth }
  }

  /** True when some pin holds this block (as root or inside its DAG). */
  async isPinned(cid: CID, signal?: AbortSignal): Promise<boolean> {
    return await this.#ds.has(blockKey(cid), { signal })
  }

  /** Streams every pin (CIDs in v1). */
  async *ls(signal?: AbortSignal): AsyncGenerator<StoredPin> {
    for await (const { key, value } of this.#ds.query({ prefix: PIN_PREFIX }, { signal })) {
      const cid = CID.parse(key.toString().substring(PIN_PREFIX.length), base36)
      yield { cid, depth: (cborg.decode(value) as { depth: number }).depth }
    }
  }

  /**
   * Pins `cid` at `depth`, holding each block the walk yields, then writes the pin. Also
   * deepens an existing pin (direct → recursive): blocks it already holds are not counted twice.
   * `onBlock` is called after each block is held.
   */
  async add(
    cid: CID,
    depth: number,
    blocks: AsyncIterable<WalkNode>,
    opts: { signal?: AbortSignal; onBlock?: (cid: CID) => void } = {},
  ): Promise<void> {
    const pinner = asV1(cid)
    const held: CID[] = []
    try {
      for await (const node of blocks) {
        if (await this.#update(node.cid, pinner, true, opts.signal)) held.push(node.cid)
        opts.onBlock?.(node.cid)
      }
      await this.#ds.put(pinKey(pinner), cborg.encode({ depth, metadata: {} }), {
        signal: opts.signal,
      })
    } catch (err) {
      // No pin was written, so nothing would ever release these holds: undo them (without the
      // signal, which is usually what failed). Holds of an existing shallower pin are kept.
      for (const block of held) await this.#update(block, pinner, false).catch(() => {})
      throw err
    }
  }

  /**
   * Removes the pin (if any) and releases the blocks the walk yields; resolves false when the
   * CID was not pinned. The walk should cover the pin's depth and skip blocks gone missing.
   */
  async rm(
    cid: CID,
    blocks: (depth: number) => AsyncIterable<WalkNode>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const pin = await this.get(cid, signal)
    if (!pin) return false
    await this.#ds.delete(pinKey(cid), { signal })
    for await (const node of blocks(pin.depth)) {
      await this.#update(node.cid, pin.cid, false, signal)
    }
    return true
  }

  /**
   * Adds or removes `pinner` in the block's record, keeping pinCount = pinnedBy.length.
   * Resolves true when the record changed.
   */
  #update(block: CID, pinner: CID, hold: boolean, signal?: AbortSignal): Promise<boolean> {
    const key = blockKey(block)
    return this.#records.run(key.toString(), async () => {
      let rec: BlockRecord = { pinCount: 0, pinnedBy: [] }
      try {
        rec = cborg.decode(await this.#ds.get(key, { signal })) as BlockRecord
      } catch (err) {
        if (!isNotFound(err)) throw err
      }
      const mine = (b: Uint8Array) => {
        try {
          return equals(CID.decode(b).multihash.bytes, pinner.multihash.bytes)
        } catch {
          return false
        }
      }
      const held = rec.pinnedBy.some(mine)
      if (hold === held) return false
      const pinnedBy = hold ? [...rec.pinnedBy, pinner.bytes] : rec.pinnedBy.filter((b) => !mine(b))
      if (pinnedBy.length === 0) await this.#ds.delete(key, { signal })
      else {await this.#ds.put(key, cborg.encode({ pinCount: pinnedBy.length, pinnedBy }), {
          signal,
        })}
      return true
    })
  }
}
