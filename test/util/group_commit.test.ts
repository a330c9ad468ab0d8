import assert from 'node:assert/strict'
import { groupCommit } from '../../src/util/group_commit.ts'

/** A flush whose calls are recorded and which finishes only when released. */
function gatedFlush<T>() {
  const calls: T[][] = []
  const gates: (() => void)[] = []
  let failWith: Error | undefined
  const flush = (items: T[]) => {
    calls.push(items)
    return new Promise<void>((resolve, reject) => {
      gates.push(() => (failWith ? reject(failWith) : resolve()))
    })
  }
  const release = async () => {
    // Let pending microtasks queue the next flush first.
    await new Promise((r) => setTimeout(r, 0))
    gates.shift()?.()
  }
  return { flush, calls, release, fail: (e?: Error) => (failWith = e) }
}

Deno.test('submits of the same turn go out in one flush', async () => {
  const calls: number[][] = []
  const submit = groupCommit<number>((items) => {
    calls.push(items)
    return Promise.resolve()
  })
  await Promise.all([1, 2, 3, 4, 5].map(submit))
  assert.deepEqual(calls, [[1, 2, 3, 4, 5]])
})

Deno.test('items arriving during a flush are batched into the next one; order kept', async () => {
  const g = gatedFlush<number>()
  const submit = groupCommit<number>(g.flush)
  const done: number[] = []
  const track = (n: number) => submit(n).then(() => done.push(n))
  const first = track(1)
  await new Promise((r) => setTimeout(r, 0))
  assert.deepEqual(g.calls, [[1]])
  const rest = [2, 3, 4].map(track)
  await new Promise((r) => setTimeout(r, 0))
  assert.equal(g.calls.length, 1, 'no second flush while the first runs')
  assert.deepEqual(done, [], 'nothing resolves before its flush finishes')
  await g.release()
  await first
  await new Promise((r) => setTimeout(r, 0))
  assert.deepEqual(g.calls, [[1], [2, 3, 4]])
  assert.deepEqual(done, [1])
  await g.release()
  await Promise.all(rest)
  assert.deepEqual(done, [1, 2, 3, 4])
})

Deno.test('a failed flush rejects every submit of its batch, and only those', async () => {
  const g = gatedFlush<string>()
  const submit = groupCommit<string>(g.flush)
  const a = submit('a')
  await new Promise((r) => setTimeout(r, 0))
  const b = submit('b')
  const c = submit('c')
  const boom = new Error('disk full')
  g.fail(boom)
  await g.release()
  await assert.rejects(a, boom)
  g.fail(undefined)
  await g.release()
  await Promise.all([b, c])
  assert.deepEqual(g.calls, [['a'], ['b', 'c']])
  // The committer keeps working after a failure.
  const d = submit('d')
  await g.release()
  await d
})

Deno.test('a batch that fails rejects all its members with the same error', async () => {
  const boom = new Error('conflict')
  const submit = groupCommit<number>(() => Promise.reject(boom))
  const results = await Promise.allSettled([1, 2, 3].map(submit))
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  for (const r of results) assert.equal((r as PromiseRejectedResult).reason, boom)
})

Deno.test('a flush that throws synchronously is a failed batch, not a crash', async () => {
  const submit = groupCommit<number>(() => {
    throw new Error('sync')
  })
  await assert.rejects(submit(1), /sync/)
})

Deno.test('maxItems caps a flush; the backlog drains in order in several flushes', async () => {
  const calls: number[][] = []
  const submit = groupCommit<number>((items) => {
    calls.push(items)
    return Promise.resolve()
  }, { maxItems: 4 })
  await Promise.all(Array.from({ length: 10 }, (_, i) => submit(i)))
  assert.deepEqual(calls, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
  const big = groupCommit<number>((items) => {
    calls.push(items)
    return Promise.resolve()
  })
  calls.length = 0
  await Promise.all(Array.from({ length: 1200 }, (_, i) => big(i)))
  assert.deepEqual(calls.map((c) => c.length), [500, 500, 200], 'default maxItems is 500')
})
