import assert from 'node:assert/strict'
import { BoundedQueue, Waiters } from '../../src/pintracker/queue.ts'

Deno.test('BoundedQueue keeps FIFO order across chunk boundaries', () => {
  const q = new BoundedQueue<number>(10_000)
  for (let i = 0; i < 5000; i++) assert.equal(q.push(i), true)
  for (let i = 0; i < 2500; i++) assert.equal(q.shift(), i)
  for (let i = 5000; i < 7000; i++) q.push(i)
  assert.equal(q.size, 4500)
  for (let i = 2500; i < 7000; i++) assert.equal(q.shift(), i)
  assert.equal(q.shift(), undefined)
  assert.equal(q.size, 0)
})

Deno.test('BoundedQueue refuses pushes beyond capacity', () => {
  const q = new BoundedQueue<string>(2)
  assert.equal(q.push('a'), true)
  assert.equal(q.push('b'), true)
  assert.equal(q.push('c'), false)
  assert.equal(q.size, 2)
  q.shift()
  assert.equal(q.push('c'), true)
  assert.deepEqual([q.shift(), q.shift()], ['b', 'c'])
})

Deno.test('BoundedQueue with capacity 1,000,000 does not preallocate', () => {
  const before = Deno.memoryUsage().heapUsed
  const queues = Array.from({ length: 100 }, () => new BoundedQueue<number>(1_000_000))
  const grown = Deno.memoryUsage().heapUsed - before
  // 100 preallocated queues would take ≥ 800 MB; empty ones take a few KB each.
  assert.ok(grown < 20_000_000, `grew ${grown} bytes`)
  assert.equal(queues[0].push(1), true)
})

Deno.test('Waiters wakes one waiter per notify and all at notifyAll', async () => {
  const w = new Waiters()
  const woken: number[] = []
  const a = w.wait().then(() => woken.push(1))
  const b = w.wait().then(() => woken.push(2))
  const c = w.wait().then(() => woken.push(3))
  w.notify()
  await a
  assert.deepEqual(woken, [1])
  w.notifyAll()
  await Promise.all([b, c])
  assert.deepEqual(woken, [1, 2, 3])
})
