/**
 * An in-memory stand-in for the CRDT replica (src/consensus/crdt/types.ts `Replica`), for the
 * consensus component's unit tests: last write wins per key, each write (local, batch or
 * "remote") is one KV commit of the owner's `view` mutations followed by its hooks, as the real
 * replica does. It records what the component asked of it.
 */
import type { CID } from 'multiformats/cid'
import type { Replica, ReplicaHooks } from '../../../src/consensus/crdt/types.ts'
import { commitMutations } from '../../../src/state/kv_batch.ts'

/** What the fake saw, and the controls tests use. */
export interface FakeReplica extends Replica {
  puts: { key: string; value: Uint8Array }[]
  deletes: string[]
  batches: { key: string; value?: Uint8Array }[][]
  started: boolean
  stopped: boolean
  /** A merge from another peer: `value` wins for `key` (undefined: tombstoned, nothing left). */
  remote(key: string, value: Uint8Array | undefined): Promise<void>
  /**
   * A tombstone of a version that was not the winning one: the value stays, and go-ds-crdt still
   * fires its delete hook.
   */
  remoteTombstone(key: string): void
  /** Makes `commitBatch` wait until the returned function is called. */
  holdBatches(): () => void
}

/** A fake replica writing the view to `kv` with `hooks`. */
export function fakeReplica(kv: Deno.Kv, hooks: ReplicaHooks): FakeReplica {
  const values = new Map<string, Uint8Array>()
  let hold: Promise<void> | undefined
  const apply = async (changes: { key: string; value?: Uint8Array; tombstoned?: boolean }[]) => {
    const mutations = changes.flatMap((c) => hooks.view?.(c.key, c.value) ?? [])
    if (changes.length > 0) mutations.push(...(hooks.merged?.() ?? []))
    await commitMutations(kv, mutations)
    for (const c of changes) {
      if (c.value === undefined) values.delete(c.key)
      else values.set(c.key, c.value)
    }
    for (const c of changes) {
      if (c.tombstoned) hooks.onDelete?.(c.key)
      if (c.value !== undefined) hooks.onPut?.(c.key, c.value)
    }
  }
  const r: FakeReplica = {
    puts: [],
    deletes: [],
    batches: [],
    started: false,
    stopped: false,
    start() {
      r.started = true
      return Promise.resolve()
    },
    async put(key, value) {
      r.puts.push({ key, value })
      await apply([{ key, value }])
    },
    async delete(key) {
      r.deletes.push(key)
      if (!values.has(key)) return
      await apply([{ key, tombstoned: true }])
    },
    async commitBatch(ops) {
      const list = await Array.fromAsync(ops)
      r.batches.push(list)
      await hold
      const last = new Map<string, { key: string; value?: Uint8Array; tombstoned?: boolean }>()
      for (const op of list) {
        last.set(
          op.key,
          op.value ? { key: op.key, value: op.value } : {
            key: op.key,
            tombstoned: values.has(op.key) || last.has(op.key),
          },
        )
      }
      await apply([...last.values()].filter((c) => c.value || c.tombstoned))
    },
    get: (key) => Promise.resolve(values.get(key)),
    async *list() {
      for (const [key, value] of [...values].sort(([a], [b]) => (a < b ? -1 : 1))) {
        yield { key, value }
      }
    },
    heads: () => Promise.resolve([] as { cid: CID; height: number }[]),
    idle: () => Promise.resolve(),
    repair: () => Promise.resolve(),
    stats: () => ({ blocksFetched: 0, blocksProcessed: 0, dirty: false }),
    stop() {
      r.stopped = true
      return Promise.resolve()
    },
    remote: (key, value) =>
      apply([value === undefined ? { key, tombstoned: true } : { key, value }]),
    remoteTombstone: (key) => hooks.onDelete?.(key),
    holdBatches() {
      const d = Promise.withResolvers<void>()
      hold = d.promise
      return () => {
        hold = undefined
        d.resolve()
      }
    },
  }
  return r
}
