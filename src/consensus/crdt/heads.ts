/**
 * The replica's DAG heads with their heights (go-ds-crdt v0.6.8 heads.go): the nodes no other
 * processed node links to. A local write links every head and gets priority max height + 1, so
 * the heights decide which value wins later; they are kept in memory (every write and every
 * merged node reads them) and in KV at `['crdt', 'h', <multihash bytes>]` → height, changed only
 * in the commits that merge nodes (see replica.ts), through an {@linkcode HeadsEdit}.
 *
 * Heads are named by multihash, as Go names them, and listed in CID-bytes order (all are CIDv1
 * dag-pb), which is the order of a new node's links.
 *
 * @example
 * ```ts
 * const heads = await Heads.load(kv)
 * const edit = heads.edit()
 * edit.replace(child, root, height)
 * await commitMutations(kv, edit.mutations())
 * edit.apply()
 * ```
 *
 * @module
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { deleteMutation, type Mutation, setMutation } from '../../state/kv_batch.ts'
import { blockId, compareCids, nodeCid } from './codec.ts'

/** KV prefix of the heads. */
export const HEADS = ['crdt', 'h'] as const

/** A head and its height. */
export interface Head {
  cid: CID
  height: number
}

/** The current heads (memory mirror of KV). */
export class Heads {
  readonly #heads = new Map<string, Head>()

  /** Reads the heads stored in `kv`. */
  static async load(kv: Deno.Kv): Promise<Heads> {
    const h = new Heads()
    for await (const e of kv.list<number>({ prefix: [...HEADS] })) {
      const mh = Digest.decode(e.key[HEADS.length] as Uint8Array)
      const cid = CID.createV1(dagPb.code, mh)
      h.#heads.set(blockId(cid), { cid, height: e.value })
    }
    return h
  }

  /** How many heads. */
  get size(): number {
    return this.#heads.size
  }

  /** The height of `cid` if it is a head. */
  height(cid: CID): number | undefined {
    return this.#heads.get(blockId(cid))?.height
  }

  /** The heads in CID-bytes order. */
  list(): Head[] {
    return [...this.#heads.values()].sort((a, b) => compareCids(a.cid, b.cid))
  }

  /** The greatest height (0 with no heads). */
  maxHeight(): number {
    let m = 0
    for (const h of this.#heads.values()) m = Math.max(m, h.height)
    return m
  }

  /** Starts a set of changes, applied to memory by `apply` once committed to KV. */
  edit(): HeadsEdit {
    return new HeadsEdit(this.#heads)
  }
}

/** Changes to the heads made while merging one node. */
export class HeadsEdit {
  readonly #base: Map<string, Head>
  /** id → the head written (set) or undefined (removed). */
  readonly #changes = new Map<string, Head | undefined>()

  constructor(base: Map<string, Head>) {
    this.#base = base
  }

  /** Whether `cid` is a head, counting the changes so far. */
  isHead(cid: CID): boolean {
    const id = blockId(cid)
    return this.#changes.has(id) ? this.#changes.get(id) !== undefined : this.#base.has(id)
  }

  /** Makes `cid` a head at `height` (go-ds-crdt heads.Add: the height is overwritten). */
  add(cid: CID, height: number): void {
    cid = nodeCid(cid)
    this.#changes.set(blockId(cid), { cid, height })
  }

  /** Replaces head `old` by `cid` (go-ds-crdt heads.Replace). */
  replace(old: CID, cid: CID, height: number): void {
    this.remove(old)
    this.add(cid, height)
  }

  /** Removes head `old`. */
  remove(old: CID): void {
    this.#changes.set(blockId(old), undefined)
  }

  /** Whether anything changed. */
  get empty(): boolean {
    return this.#changes.size === 0
  }

  /** The changes, for logs: "+cid@height" added, "-cid" removed. */
  describe(): string {
    return [...this.#changes].map(([id, h]) =>
      h === undefined ? `-${this.#base.get(id)?.cid ?? id}` : `+${h.cid}@${h.height}`
    ).join(' ')
  }

  /** The KV mutations of these changes. */
  mutations(): Mutation[] {
    const out: Mutation[] = []
    for (const [id, h] of this.#changes) {
      if (h === undefined) {
        const old = this.#base.get(id)
        if (old) out.push(deleteMutation([...HEADS, old.cid.multihash.bytes]))
      } else {
        out.push(setMutation([...HEADS, h.cid.multihash.bytes], h.height, 8))
      }
    }
    return out
  }

  /** Applies the changes to memory (after their commit). */
  apply(): void {
    for (const [id, h] of this.#changes) {
      if (h === undefined) this.#base.delete(id)
      else this.#base.set(id, h)
    }
  }
}
