/** A binary min-heap of timed events; ties break by insertion order, keeping runs deterministic. */
export interface TimedEvent {
  time: number
  seq: number
  run: () => void
}

/** The simulator's event queue. */
export class EventQueue {
  #heap: TimedEvent[] = []
  #seq = 0

  get size(): number {
    return this.#heap.length
  }

  push(time: number, run: () => void): void {
    const e = { time, seq: this.#seq++, run }
    const h = this.#heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  peekTime(): number | undefined {
    return this.#heap[0]?.time
  }

  pop(): TimedEvent | undefined {
    const h = this.#heap
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && less(h[l], h[m])) m = l
        if (r < h.length && less(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

function less(a: TimedEvent, b: TimedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
