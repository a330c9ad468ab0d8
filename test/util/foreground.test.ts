import assert from 'node:assert/strict'
import { Foreground } from '../../src/util/foreground.ts'

Deno.test('foreground: busy from begin until end, and for the grace period after the last end', () => {
  let t = 1000
  const fg = new Foreground(() => t, 100)
  assert.equal(fg.busy(), false, 'nothing has happened yet')
  const a = fg.begin()
  const b = fg.begin()
  t += 5000
  assert.equal(fg.busy(), true, 'in flight, however long')
  a()
  a() // a second call is a no-op: b is still in flight
  assert.equal(fg.busy(), true)
  b()
  t += 99
  assert.equal(fg.busy(), true, 'within the grace period')
  t += 1
  assert.equal(fg.busy(), false)
})
