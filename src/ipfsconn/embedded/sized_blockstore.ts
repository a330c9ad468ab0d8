/**
 * The embedded node's blockstore: blockstore-fs (one file per block under `<folder>/blocks`)
 * plus a running count of the bytes it holds, for `repoStat`. Counting at each put and delete
 * keeps `repoStat` O(1); a full walk of the folder (`scan`) is only needed when no count was
 * saved by a clean stop (see node.ts).
 *
 * @example
 * ```ts
 * const blocks = new SizedBlockstore(`${dir}/blocks`)
 * await blocks.open()
 * blocks.bytes = await blocks.scan()
 * ```
 */
import { join } from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import type { CID } from 'multiformats/cid'
import { KeyedMutex } from './locks.ts'
import { multihashKey } from '../../types/cid.ts'

type Opts = { signal?: AbortSignal }
type PutValue = Parameters<FsBlockstore['put']>[1]

/** A file-per-block store that knows how many bytes it holds. */
export class SizedBlockstore {
  /** Bytes of all blocks held (kept up to date by put/delete once set from a scan or save). */
  bytes = 0
  readonly path: string
  #fs: FsBlockstore
  #sharding = new NextToLast()
  #keys = new KeyedMutex()

  constructor(path: string) {
    this.#fs = new FsBlockstore(path, { shardingStrategy: this.#sharding })
    this.path = this.#fs.path
  }

  open(): Promise<void> {
    return this.#fs.open()
  }

  close(): Promise<void> {
    return this.#fs.close()
  }

  #file(cid: CID): string {
    const { dir, file } = this.#sharding.encode(cid)
    return join(this.path, dir, file)
  }

  async #size(cid: CID): Promise<number | undefined> {
    try {
      return (await Deno.stat(this.#file(cid))).size
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined
      throw err
    }
  }

  has(cid: CID, opts?: Opts): Promise<boolean> {
    return this.#fs.has(cid, opts)
  }

  /** Stores a block; counts its bytes only when it was not there already. */
  put(cid: CID, value: PutValue, opts?: Opts): Promise<CID> {
    return this.#keys.run(multihashKey(cid), async () => {
      const had = await this.#fs.has(cid, opts)
      await this.#fs.put(cid, value, opts)
      if (!had) {
        this.bytes += value instanceof Uint8Array ? value.byteLength : (await this.#size(cid)) ?? 0
      }
      return cid
    })
  }

  async *putMany(
    source: Iterable<{ cid: CID; bytes: PutValue }> | AsyncIterable<{ cid: CID; bytes: PutValue }>,
    opts?: Opts,
  ): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) yield await this.put(cid, bytes, opts)
  }

  get(cid: CID, opts?: Opts): AsyncGenerator<Uint8Array> {
    return this.#fs.get(cid, opts)
  }

  getMany(
    source: Iterable<CID> | AsyncIterable<CID>,
    opts?: Opts,
  ): ReturnType<FsBlockstore['getMany']> {
    return this.#fs.getMany(source, opts)
  }

  /** Streams every block held (bytes are read lazily, only if consumed). */
  getAll(opts?: Opts): ReturnType<FsBlockstore['getAll']> {
    return this.#fs.getAll(opts)
  }

  /** Deletes a block (a missing one is fine) and uncounts its bytes. */
  delete(cid: CID, opts?: Opts): Promise<void> {
    return this.#keys.run(multihashKey(cid), async () => {
      const size = await this.#size(cid)
      await this.#fs.delete(cid, opts)
      if (size !== undefined) this.bytes = Math.max(0, this.bytes - size)
    })
  }

  async *deleteMany(source: Iterable<CID> | AsyncIterable<CID>, opts?: Opts): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, opts)
      yield cid
    }
  }

  /** Sums the sizes of the block files by walking the folder (streams; holds no list). */
  async scan(signal?: AbortSignal): Promise<number> {
    const ext = this.#sharding.extension
    let total = 0
    const walk = async (dir: string): Promise<void> => {
      for await (const e of Deno.readDir(dir)) {
        signal?.throwIfAborted()
        const p = join(dir, e.name)
        if (e.isDirectory) await walk(p)
        else if (e.isFile && e.name.endsWith(ext)) {
          try {
            total += (await Deno.stat(p)).size
          } catch (err) {
            if (!(err instanceof Deno.errors.NotFound)) throw err
          }
        }
      }
    }
    await walk(this.path)
    return total
  }
}
