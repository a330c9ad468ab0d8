/**
 * Two small locks for the embedded node's pin bookkeeping. `KeyedMutex` serializes the
 * read-modify-write of one pinned-block record (two pins sharing a block must not lose each
 * other's count); `RWLock` lets pins run together (readers) while keeping GC (the writer) from
 * deleting blocks a pin has fetched but not yet recorded. Waiting is FIFO, so a waiting GC is
 * not starved by a stream of new pins, and it can be abandoned with an AbortSignal.
 *
 * @example
 * ```ts
 * const gc = new RWLock()
 * const release = await gc.read(signal)
 * try { … } finally { release() }
 * ```
 */

// One KeyedMutex for the program: the Pinning Service API serialises its writes of a CID with it.
export { KeyedMutex } from '../../util/keyed_mutex.ts'

interface Waiter {
  write: boolean
  grant: () => void
}

/** A FIFO readers/writer lock. */
export class RWLock {
  #readers = 0
  #writer = false
  #queue: Waiter[] = []

  /** Takes a shared hold; resolves to its release function (idempotent). */
  read(signal?: AbortSignal): Promise<() => void> {
    return this.#acquire(false, signal)
  }

  /** Takes the exclusive hold; resolves to its release function (idempotent). */
  write(signal?: AbortSignal): Promise<() => void> {
    return this.#acquire(true, signal)
  }

  #acquire(write: boolean, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        write,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          let done = false
          resolve(() => {
            if (done) return
            done = true
            if (write) this.#writer = false
            else this.#readers--
            this.#pump()
          })
        },
      }
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter)
        if (i < 0) return
        this.#queue.splice(i, 1)
        reject(signal!.reason)
        this.#pump()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
      this.#pump()
    })
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]
      if (head.write ? this.#writer || this.#readers > 0 : this.#writer) return
      this.#queue.shift()
      if (head.write) this.#writer = true
      else this.#readers++
      head.grant()
    }
  }
}
