/**
 * `--enc=json` output: each object as Go's `json.MarshalIndent(obj, "", "    ")` writes it —
 * 4-space indent, `<`, `>`, `&`, U+2028 and U+2029 escaped, integers beyond 2^53 with their exact
 * digits. Field order and zero values come from the client's decoders.
 *
 * @example
 * ```ts
 * goJsonIndent({ version: '1.1.6' }) // '{\n    "version": "1.1.6"\n}'
 * ```
 */
import { exactInt } from '../../src/api/rest/client_json.ts'

type RawJSON = (text: string) => unknown

/** Marshals like Go's MarshalIndent with a 4-space indent (no trailing newline). */
export function goJsonIndent(value: unknown): string {
  const rawJSON = (JSON as unknown as { rawJSON: RawJSON }).rawJSON
  const replacer = function (this: unknown, key: string, v: unknown) {
    const digits = exactInt(this, key)
    return digits !== undefined ? rawJSON(digits) : v
  }
  const text = JSON.stringify(value === undefined ? null : value, replacer, 4)
  // These characters only ever occur inside JSON strings, so a global replace is safe.
  return text
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029')
}
