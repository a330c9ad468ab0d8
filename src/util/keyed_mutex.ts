/**
 * Runs functions one at a time per key; different keys run concurrently. For read-modify-writes
 * of one record: the embedded node's pinned-block records, the Pinning Service API's writes of a
 * CID's pin.
 *
 * @example
 * ```ts
 * const locks = new KeyedMutex()
 * await locks.run(cid, async () => {
 *   const pin = await read(cid)
 *   await write(cid, change(pin))
 * })
 * ```
 *
 * @module
 */

/** Runs functions one at a time per key; different keys run concurrently. */
export class KeyedMutex {
  #tails = new Map<string, Promise<void>>()

  /** Runs `fn` once every earlier call with the same key has settled. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key)
    let release!: () => void
    const mine = new Promise<void>((resolve) => release = resolve)
    const tail = prev ? prev.then(() => mine) : mine
    this.#tails.set(key, tail)
    try {
      if (prev) await prev
      return await fn()
    } finally {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
