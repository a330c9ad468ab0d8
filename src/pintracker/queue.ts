/**
 * The tracker's work queues: a bounded FIFO that grows chunk by chunk (a 1,000,000-slot queue
 * costs nothing until it fills), and a wake-up list for the workers that wait on queues.
 *
 * @example
 * ```ts
 * const q = new BoundedQueue<string>(2)
 * q.push('a') // true
 * q.shift() // 'a'
 * ```
 */

// Chunks keep push/shift O(1) in the worst case and hand memory back as the queue drains, where
// one big array with a moving head would need an occasional O(n) compaction.
const CHUNK = 1024

interface Chunk<T> {
  items: (T | undefined)[]
  next: Chunk<T> | undefined
}

/** A FIFO of at most `capacity` items; `push` answers false when it is full. */
export class BoundedQueue<T> {
  #head: Chunk<T>
  #tail: Chunk<T>
  #headIndex = 0
  #tailIndex = 0
  #size = 0

  constructor(readonly capacity: number) {
    this.#head = this.#tail = { items: [], next: undefined }
  }

  /** Items waiting. */
  get size(): number {
    return this.#size
  }

  /** Appends; false (and nothing changes) when the queue holds `capacity` items. */
  push(item: T): boolean {
    if (this.#size >= this.capacity) return false
    if (this.#tailIndex === CHUNK) {
      const c: Chunk<T> = { items: [], next: undefined }
      this.#tail.next = c
      this.#tail = c
      this.#tailIndex = 0
    }
    this.#tail.items[this.#tailIndex++] = item
    this.#size++
    return true
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined
    if (this.#headIndex === CHUNK) {
      this.#head = this.#head.next!
      this.#headIndex = 0
    }
    const item = this.#head.items[this.#headIndex]
    this.#head.items[this.#headIndex++] = undefined
    this.#size--
    if (this.#size === 0) {
      // Start over in one empty chunk so an idle queue holds no memory.
      this.#head = this.#tail = { items: [], next: undefined }
      this.#headIndex = this.#tailIndex = 0
    }
    return item
  }
}

/**
 * Workers park here when their queues are empty. A push wakes one worker; stop wakes them all.
 * There is no lost wake-up: JavaScript checks the queue and parks in the same synchronous turn.
 */
export class Waiters {
  #waiting: (() => void)[] = []

  /** Resolves at the next `notify` that picks this waiter, or at `notifyAll`. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  /** Wakes the longest-waiting worker, if any. */
  notify(): void {
    this.#waiting.shift()?.()
  }

  /** Wakes every waiting worker (used at stop). */
  notifyAll(): void {
    const all = this.#waiting
    this.#waiting = []
    for (const w of all) w()
  }
}
