import { equal, strictEqual } from 'node:assert/strict'
import { escapeControl } from '../../src/util/escape.ts'

Deno.test("escapeControl escapes control characters as Go's strconv.Quote does", () => {
  // Expected values printed by Go 1.x strconv.Quote (quotes removed) for the same code points.
  const go: [number, string][] = [
    [0x00, '\\x00'],
    [0x07, '\\a'],
    [0x08, '\\b'],
    [0x09, '\\t'],
    [0x0a, '\\n'],
    [0x0b, '\\v'],
    [0x0c, '\\f'],
    [0x0d, '\\r'],
    [0x1b, '\\x1b'],
    [0x1f, '\\x1f'],
    [0x7f, '\\x7f'],
    [0x80, '\\u0080'],
    [0x85, '\\u0085'],
    [0x9f, '\\u009f'],
  ]
  for (const [code, want] of go) equal(escapeControl(String.fromCharCode(code)), want)
  equal(escapeControl('pin\r\nX-Injected: 1'), 'pin\\r\\nX-Injected: 1')
})

Deno.test('escapeControl leaves every other character alone and returns the same string', () => {
  for (
    const s of ['', 'plain', 'ünïcödé ✓ 😀', 'back\\slash "quotes" <b>&', '\u00a0nbsp', '\u2028']
  ) {
    strictEqual(escapeControl(s), s)
  }
})
