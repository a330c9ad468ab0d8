/**
 * Test data for the embedded node's tests: deterministic bytes, and UnixFS files built in memory
 * as the blocks `blockStream` takes.
 *
 * @example
 * ```ts
 * const file = await unixfsFile(bytesOf(600 * 1024, 1), 256 * 1024) // 3 leaves + root
 * await ipfs.blockStream(file.stream())
 * ```
 */
import { unixfs } from '@helia/unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import type { CID } from 'multiformats/cid'

/** Deterministic pseudo-random bytes (xorshift; distinct seeds give distinct chunks). */
export function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed * 2654435761 >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** A UnixFS file of `bytes` (CIDv1, raw leaves of `chunkSize`) and its blocks. */
export async function unixfsFile(bytes: Uint8Array, chunkSize: number): Promise<{
  root: CID
  blocks: { cid: string; bytes: Uint8Array }[]
  /** The blocks as an async iterable (each call a new one). */
  stream(): AsyncIterable<{ cid: string; bytes: Uint8Array }>
}> {
  const blocks = new Map<string, { cid: string; bytes: Uint8Array }>()
  const store = {
    put(cid: CID, b: Uint8Array) {
      blocks.set(cid.toString(), { cid: cid.toString(), bytes: b })
      return Promise.resolve(cid)
    },
    async *get(cid: CID) {
      yield blocks.get(cid.toString())!.bytes
    },
    has: (cid: CID) => Promise.resolve(blocks.has(cid.toString())),
  }
  const root = await unixfs({ blockstore: store }).addBytes(bytes, {
    chunker: fixedSize({ chunkSize }),
  })
  const list = [...blocks.values()]
  return {
    root,
    blocks: list,
    async *stream() {
      yield* list
    },
  }
}
