/**
 * A binary min-heap over an order the caller gives: the one heap of the program (the k-way merge
 * of `state import`'s sorted runs, the Raft simulator's event queue).
 *
 * @example
 * ```ts
 * const h = new MinHeap<number>((a, b) => a < b)
 * h.push(3); h.push(1)
 * h.peek() // 1
 * h.pop()  // 1
 * ```
 */
export class MinHeap<T> {
  readonly #items: T[] = []

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.#items.length
  }

  /** The least item, left in place. */
  peek(): T | undefined {
    return this.#items[0]
  }

  push(item: T): void {
    const h = this.#items
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  /** Takes the least item out. */
  pop(): T | undefined {
    const h = this.#items
    const top = h[0]
    const last = h.pop()
    if (h.length > 0) {
      h[0] = last!
      this.#down()
    }
    return top
  }

  /**
   * Puts the least item back after the caller changed what orders it (a merge source that moved
   * to its next record): one sift down, cheaper than pop and push.
   */
  reorderTop(): void {
    if (this.#items.length > 1) this.#down()
  }

  #down(): void {
    const h = this.#items
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l], h[m])) m = l
      if (r < h.length && this.less(h[r], h[m])) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m], h[i]]
      i = m
    }
  }
}
