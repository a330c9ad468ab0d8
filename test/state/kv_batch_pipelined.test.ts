/**
 * PipelinedKvWriter: commits overlap, yet two writes of one key land in the order they were added,
 * and `flush`'s last commit lands after everything. The KV here is a double whose commits land
 * newest first (one per macrotask, i.e. whenever the writer waits): what real KV may do with
 * commits in flight, made certain.
 */
import assert from 'node:assert/strict'
import {
  deleteMutation,
  type Mutation,
  PipelinedKvWriter,
  setMutation,
} from '../../src/state/kv_batch.ts'

/** A Deno.Kv double whose commits land last-in first-out. */
function lifoKv() {
  const data = new Map<string, unknown>()
  const landed: string[][] = []
  const waiting: { ops: [string, unknown][]; done: () => void }[] = []
  let inFlight = 0
  let maxInFlight = 0
  let failNext = false
  const pump = () => {
    const c = waiting.pop()
    if (!c) return
    for (const [k, v] of c.ops) v === undefined ? data.delete(k) : data.set(k, v)
    landed.push(c.ops.map(([k]) => k))
    inFlight--
    c.done()
    if (waiting.length > 0) setTimeout(pump, 0)
  }
  const kv = {
    atomic() {
      const ops: [string, unknown][] = []
      const a = {
        set(k: Deno.KvKey, v: unknown) {
          ops.push([k.join('/'), v])
          return a
        },
        delete(k: Deno.KvKey) {
          ops.push([k.join('/'), undefined])
          return a
        },
        commit(): Promise<{ ok: boolean }> {
          if (failNext) {
            failNext = false
            return Promise.resolve({ ok: false })
          }
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          return new Promise((resolve) => {
            waiting.push({ ops, done: () => resolve({ ok: true }) })
            if (waiting.length === 1) setTimeout(pump, 0)
          })
        },
      }
      return a
    },
  }
  return {
    kv: kv as unknown as Deno.Kv,
    data,
    landed,
    get maxInFlight() {
      return maxInFlight
    },
    failNext() {
      failNext = true
    },
  }
}

/** One mutation per commit, so that every write is a commit of its own. */
const ONE = { maxMutations: 1, maxBytes: 1 << 30, maxKeyBytes: 1 << 30 }
const set = (k: string, v: number): Mutation => setMutation(['pin', k], v, 8)
const del = (k: string): Mutation => deleteMutation(['pin', k])

Deno.test('writes in key order overlap, up to depth commits in flight', async () => {
  const d = lifoKv()
  const w = new PipelinedKvWriter(d.kv, { depth: 4, limits: ONE })
  for (let i = 0; i < 20; i++) await w.add(set(`k${String(i).padStart(2, '0')}`, i))
  await w.flush([setMutation(['meta', 'applied'], 9, 8)])
  assert.equal(d.maxInFlight, 4)
  assert.equal(d.data.size, 21)
  // Landed out of order (the double's doing), yet the last commit after all the others.
  assert.notDeepEqual(d.landed.slice(0, 20).flat(), [...d.landed.slice(0, 20).flat()].sort())
  assert.deepEqual(d.landed.at(-1), ['meta/applied'])
})

Deno.test('a key written again waits for the commits in flight: its writes land in order', async () => {
  const d = lifoKv()
  const w = new PipelinedKvWriter(d.kv, { depth: 4, limits: ONE })
  // The shape of a snapshot: a scan in key order, then a replayed tail that repeats keys.
  await w.add(set('a', 1))
  await w.add(set('b', 1))
  await w.add(set('c', 1))
  await w.add(del('a'))
  await w.add(set('b', 2))
  await w.add(set('d', 1))
  await w.add(del('d'))
  await w.flush()
  assert.deepEqual(Object.fromEntries(d.data), { 'pin/b': 2, 'pin/c': 1 })
})

Deno.test('a failed commit fails the writer, never silently', async () => {
  const d = lifoKv()
  const w = new PipelinedKvWriter(d.kv, { depth: 2, limits: ONE })
  await w.add(set('a', 1))
  d.failNext()
  await w.add(set('b', 1))
  await assert.rejects(async () => {
    await w.add(set('c', 1))
    await w.flush([setMutation(['meta', 'applied'], 1, 8)])
  }, /KV commit failed/)
  assert.equal(d.data.has('meta/applied'), false)
})
