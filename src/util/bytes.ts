/**
 * Byte buffers built from parts: the one way the wire codecs and the block readers lay several
 * `Uint8Array`s end to end.
 *
 * @example
 * ```ts
 * const frame = new Uint8Array(head.length + bytes)
 * frame.set(head)
 * writeAll(frame, head.length, parts)
 * concatBytes([a, b]) // a then b, in a new buffer
 * ```
 */

/** Copies `parts` into `out` one after another from `at`; returns the offset after the last. */
export function writeAll(out: Uint8Array, at: number, parts: Iterable<Uint8Array>): number {
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return at
}

/** `parts` end to end in a new buffer (`bytes`: their total length, when the caller knows it). */
export function concatBytes(
  parts: readonly Uint8Array[],
  bytes = parts.reduce((n, p) => n + p.byteLength, 0),
): Uint8Array {
  const out = new Uint8Array(bytes)
  writeAll(out, 0, parts)
  return out
}
