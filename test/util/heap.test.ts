import assert from 'node:assert/strict'
import { MinHeap } from '../../src/util/heap.ts'

Deno.test('MinHeap: pops in order, ties as the order says; reorderTop after the top changed', () => {
  const h = new MinHeap<{ k: number; i: number }>((a, b) => a.k < b.k || (a.k === b.k && a.i < b.i))
  const xs = [5, 3, 8, 3, 1, 9, 2, 8].map((k, i) => ({ k, i }))
  for (const x of xs) h.push(x)
  assert.equal(h.size, 8)
  assert.deepEqual(h.peek(), { k: 1, i: 4 })
  // The top moves on (a merge source read its next record): it sinks to its place.
  h.peek()!.k = 7
  h.reorderTop()
  const out: string[] = []
  while (h.size) out.push(`${h.peek()!.k}/${h.pop()!.i}`)
  assert.deepEqual(out, ['2/6', '3/1', '3/3', '5/0', '7/4', '8/2', '8/7', '9/5'])
  assert.equal(h.pop(), undefined)
})
