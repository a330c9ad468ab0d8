/**
 * Group commit: callers submit items one at a time; items that arrive while a flush is running are
 * flushed together in the next one. This is how one peer turns 64 concurrent pin requests into one
 * fsynced Deno KV commit instead of 64 (each commit costs an fsync, ~0.3 ms).
 *
 * @example
 * ```ts
 * const submit = groupCommit<Op>((ops) => state.apply(ops), { maxItems: 500 })
 * await submit(op) // resolves once the batch holding op is durable
 * ```
 */

/** Options of a group committer. */
export interface GroupCommitOptions {
  /** Most items in one flush (Deno KV allows 1000 mutations per commit). */
  maxItems?: number
}

/** Returns a submit function that batches items into `flush` calls, one at a time. */
export function groupCommit<T>(
  flush: (items: T[]) => Promise<void>,
  opts: GroupCommitOptions = {},
): (item: T) => Promise<void> {
  const maxItems = opts.maxItems ?? 500
  let pending: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = []
  let running = false

  const run = async () => {
    running = true
    try {
      while (pending.length > 0) {
        const batch = pending.length > maxItems ? pending.splice(0, maxItems) : pending
        if (batch === pending) pending = []
        try {
          await flush(batch.map((b) => b.item))
          for (const b of batch) b.resolve()
        } catch (err) {
          for (const b of batch) b.reject(err)
        }
      }
    } finally {
      running = false
    }
  }

  return (item: T) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ item, resolve, reject })
      // A microtask delay lets every request parsed in this turn join the same batch.
      if (!running) queueMicrotask(run)
      running = true
    })
}
