/**
 * The linearizability checker on hand-written register histories.
 */
import assert from 'node:assert/strict'
import { checkHistory, linearizableRegister, type RegisterOp } from './linearizability.ts'

const put = (value: string, call: number, ret: number): RegisterOp => ({
  kind: 'put',
  key: 'k',
  value,
  call,
  ret,
  label: `put ${value}`,
})
const get = (value: string | null, call: number, ret: number): RegisterOp => ({
  kind: 'get',
  key: 'k',
  value,
  call,
  ret,
  label: `get ${value}`,
})

Deno.test('sequential histories: a read sees the last completed write', () => {
  assert.equal(linearizableRegister([put('a', 0, 1), get('a', 2, 3)]), true)
  assert.equal(linearizableRegister([put('a', 0, 1), put('b', 2, 3), get('a', 4, 5)]), false)
  assert.equal(linearizableRegister([get(null, 0, 1), put('a', 2, 3)]), true)
  assert.equal(linearizableRegister([put('a', 2, 3), get(null, 4, 5)]), false)
})

Deno.test('concurrent operations may take effect in either order, but consistently', () => {
  // put b overlaps both reads: a, then b is fine.
  assert.equal(
    linearizableRegister([put('a', 0, 1), put('b', 2, 9), get('a', 3, 4), get('b', 5, 6)]),
    true,
  )
  // Once a read saw b, a later read cannot see a again.
  assert.equal(
    linearizableRegister([put('a', 0, 1), put('b', 2, 9), get('b', 3, 4), get('a', 5, 6)]),
    false,
  )
})

Deno.test('a write with an unknown outcome may or may not have happened', () => {
  assert.equal(linearizableRegister([put('a', 0, 1), put('b', 2, Infinity), get('a', 3, 4)]), true)
  assert.equal(linearizableRegister([put('a', 0, 1), put('b', 2, Infinity), get('b', 3, 4)]), true)
  assert.equal(
    linearizableRegister([put('a', 0, 1), put('b', 2, Infinity), get('b', 3, 4), get('a', 5, 6)]),
    false,
  )
  assert.equal(
    linearizableRegister([put('b', 5, Infinity), get('b', 3, 4)]),
    false,
    'not before its call',
  )
})

Deno.test('checkHistory checks every key on its own', () => {
  const other = (op: RegisterOp): RegisterOp => ({ ...op, key: 'j' })
  assert.deepEqual(checkHistory([put('a', 0, 1), other(get('a', 2, 3))]), ['j'])
  assert.deepEqual(checkHistory([put('a', 0, 1), get('a', 2, 3), other(get(null, 4, 5))]), [])
})
