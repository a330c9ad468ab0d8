/**
 * A single-consumer async queue: producers push, one consumer iterates. With a capacity, `push`
 * waits while the queue is full (backpressure from the consumer to the producer). `close(err)`
 * ends the iteration, with an error if given.
 *
 * @example
 * ```ts
 * const q = new AsyncQueue<Uint8Array>(64)
 * await q.push(block)
 * q.close()
 * for await (const b of q) …
 * ```
 */

/** An async queue with optional capacity. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = []
  #closed = false
  #error: unknown
  #hasError = false
  #wakeConsumer: (() => void) | undefined
  #spaceWaiters: (() => void)[] = []
  readonly #capacity: number

  constructor(capacity = Infinity) {
    this.#capacity = capacity
  }

  get size(): number {
    return this.#items.length
  }

  /** Adds an item; waits while full. Throws if the queue was closed with an error. */
  async push(item: T): Promise<void> {
    while (this.#items.length >= this.#capacity && !this.#closed) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve))
    }
    if (this.#hasError) throw this.#error
    if (this.#closed) throw new Error('queue is closed')
    this.#items.push(item)
    this.#wakeConsumer?.()
  }

  /** Ends the queue; the consumer sees the remaining items, then `err` if given. */
  close(err?: unknown): void {
    if (this.#closed) return
    this.#closed = true
    if (err !== undefined) {
      this.#hasError = true
      this.#error = err
    }
    this.#wakeConsumer?.()
    for (const w of this.#spaceWaiters.splice(0)) w()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      while (true) {
        if (this.#items.length > 0) {
          const item = this.#items.shift() as T
          this.#spaceWaiters.shift()?.()
          yield item
          continue
        }
        if (this.#closed) {
          if (this.#hasError) throw this.#error
          return
        }
        await new Promise<void>((resolve) => (this.#wakeConsumer = resolve))
        this.#wakeConsumer = undefined
      }
    } finally {
      // The consumer left: release producers waiting for space.
      if (!this.#closed) this.close(new Error('queue consumer stopped'))
    }
  }
}
