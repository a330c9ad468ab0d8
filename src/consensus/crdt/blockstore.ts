/**
 * The CRDT replica's DAG blocks in Deno KV, by multihash (go-ds-crdt, like any IPFS blockstore,
 * looks blocks up by multihash, so a CIDv0 and its CIDv1 name one block):
 * `['crdt', 'blocks', <multihash bytes>, <chunk n>]`.
 *
 * A KV value holds at most 64 KiB and a delta node reaches ~1 MiB (go-ds-crdt commits a batch once
 * its delta passes 1 MiB), so blocks are cut in chunks of at most 60,000 bytes. Chunk 0 carries the
 * chunk count and is written last, in the same atomic commit as the rest whenever the block fits
 * in one (every block under ~750 KiB): a block is present exactly when its chunk 0 is, so a crash
 * in the middle of a larger block's commits leaves it absent, and the next `put` writes it again.
 *
 * @example
 * ```ts
 * const blocks = kvBlockstore(kv)
 * await blocks.put(cid, bytes)
 * await blocks.get(cid) // bytes
 * ```
 *
 * @module
 */
import type { CID } from 'multiformats/cid'
import {
  commitPlan,
  deleteMutation,
  MAX_VALUE_BYTES,
  type Mutation,
  planCommits,
  setMutation,
} from '../../state/kv_batch.ts'
import { concatBytes } from '../../util/bytes.ts'
import type { CrdtBlockstore } from './types.ts'

/** KV prefix of the blocks. */
export const BLOCKS_PREFIX = ['crdt', 'blocks'] as const

/** Chunk 0 of a block: the chunk count and the first bytes. */
interface FirstChunk {
  n: number
  d: Uint8Array
}

/** A CrdtBlockstore that can also drop blocks (tests, and cleaning up a replica). */
export interface KvBlockstore extends CrdtBlockstore {
  delete(cid: CID): Promise<void>
}

/**
 * Bytes `from`–`to` on a buffer of their own: KV stores a Uint8Array with its whole ArrayBuffer,
 * and a received block is often a view (a Node Buffer, whose `slice()` is a view too).
 */
function copy(bytes: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(bytes.subarray(from, Math.min(to, bytes.length)))
}

function chunkKey(cid: CID, n: number): Deno.KvKey {
  return [...BLOCKS_PREFIX, cid.multihash.bytes, n]
}

/**
 * The replica's blockstore on `kv`.
 *
 * @example
 * ```ts
 * const blocks = kvBlockstore(await Deno.openKv(':memory:'))
 * if (!await blocks.has(cid)) await blocks.put(cid, bytes)
 * ```
 */
export function kvBlockstore(kv: Deno.Kv): KvBlockstore {
  const first = async (cid: CID) => (await kv.get<FirstChunk>(chunkKey(cid, 0))).value

  return {
    async has(cid) {
      return (await first(cid)) !== null
    },

    async get(cid) {
      const head = await first(cid)
      if (head === null) return undefined
      if (head.n <= 1) return head.d
      const parts: Uint8Array[] = [head.d]
      for (let i = 1; i < head.n; i += 10) {
        const keys: Deno.KvKey[] = []
        for (let j = i; j < Math.min(head.n, i + 10); j++) keys.push(chunkKey(cid, j))
        for (const e of await kv.getMany<Uint8Array[]>(keys)) {
          // Chunk 0 is written after the others: a missing one means the store was damaged.
          if (e.value === null) return undefined
          parts.push(e.value)
        }
      }
      return concatBytes(parts)
    },

    async put(cid, bytes) {
      if (await first(cid) !== null) return
      const n = Math.max(1, Math.ceil(bytes.length / MAX_VALUE_BYTES))
      const rest: Mutation[] = []
      for (let i = 1; i < n; i++) {
        const d = copy(bytes, i * MAX_VALUE_BYTES, (i + 1) * MAX_VALUE_BYTES)
        rest.push(setMutation(chunkKey(cid, i), d, d.length))
      }
      const d = copy(bytes, 0, MAX_VALUE_BYTES)
      const head: FirstChunk = { n, d }
      await commitPlan(
        kv,
        planCommits([
          { mutations: rest },
          { mutations: [setMutation(chunkKey(cid, 0), head, d.length + 16)] },
        ]),
      )
    },

    async delete(cid) {
      const head = await first(cid)
      if (head === null) return
      // Chunk 0 first: the block is gone as soon as any of it is.
      const ms = [deleteMutation(chunkKey(cid, 0))]
      for (let i = 1; i < head.n; i++) ms.push(deleteMutation(chunkKey(cid, i)))
      await commitPlan(kv, planCommits([{ mutations: ms }]))
    },
  }
}
