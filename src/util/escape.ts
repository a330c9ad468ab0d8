/**
 * Control characters made visible, for text that ends up on a terminal or in a line-based log:
 * a pin name holding CR, LF or an escape sequence must not forge output lines or drive the
 * terminal. Escapes are those of Go's strconv.Quote (`\n`, `\r`, `\t`, `\a`, `\b`, `\f`, `\v`,
 * `\x00`…`\x1f`, `\x7f`, `\u0080`…`\u009f`); every other character, backslash included, is
 * left as it is, so text without control characters comes back unchanged (the same string).
 *
 * @example
 * ```ts
 * escapeControl('name\r\nX-Injected: 1') // 'name\\r\\nX-Injected: 1'
 * escapeControl('plain ünïcode') // 'plain ünïcode' (same string)
 * ```
 */

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/
// deno-lint-ignore no-control-regex
const CONTROL_ALL = /[\x00-\x1f\x7f-\x9f]/g

const NAMED: Record<number, string> = {
  0x07: '\\a',
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0b: '\\v',
  0x0c: '\\f',
  0x0d: '\\r',
}

function escapeOne(c: string): string {
  const code = c.charCodeAt(0)
  const hex = code.toString(16).padStart(2, '0')
  return NAMED[code] ?? (code < 0x80 ? `\\x${hex}` : `\\u00${hex}`)
}

/** `s` with its control characters (Unicode category Cc) escaped as Go's strconv.Quote does. */
export function escapeControl(s: string): string {
  return CONTROL.test(s) ? s.replace(CONTROL_ALL, escapeOne) : s
}
