/** The simulator's event queue: timed events, ties broken by insertion order (deterministic runs). */
import { MinHeap } from '../../src/util/heap.ts'

export interface TimedEvent {
  time: number
  seq: number
  run: () => void
}

/** The simulator's event queue. */
export class EventQueue {
  #heap = new MinHeap<TimedEvent>((a, b) => a.time < b.time || (a.time === b.time && a.seq < b.seq))
  #seq = 0

  get size(): number {
    return this.#heap.size
  }

  push(time: number, run: () => void): void {
    this.#heap.push({ time, seq: this.#seq++, run })
  }

  peekTime(): number | undefined {
    return this.#heap.peek()?.time
  }

  pop(): TimedEvent | undefined {
    return this.#heap.pop()
  }
}
