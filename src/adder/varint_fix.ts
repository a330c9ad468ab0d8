/**
 * A fix for the protobuf writer under `ipfs-unixfs` (npm `protons-runtime` 7.1.2): its `uint64`
 * keeps the low 32 bits as a signed number, so a value from 2^31 to 2^32-1 with no high bits is
 * written as a varint of zeros. UnixFS writes a file's size that way: every file of 2 to 4 GiB was
 * added with `filesize` 0 and a root CID other than Kubo's (measured: 2,048 MiB of random bytes,
 * Kubo `QmNvm9pD…`, the importer `QmWmPnwd…`; 2,047 MiB agreed). Values up to 2^53-1 now go through
 * the writer's own `uint64Number` (a plain varint), larger ones as before.
 *
 * Applied once, before the first add, to the writer every user of that protons-runtime shares
 * (libp2p's codecs too, which it only makes correct).
 *
 * @example
 * ```ts
 * fixUint64Varints() // idempotent; the adder calls it before importing
 * ```
 */
import { writer } from 'protons-runtime'

interface Uint64Writer {
  uint64(value: bigint): unknown
  uint64Number(value: number): unknown
}

const FIXED = Symbol.for('ipfs-cluster-deno.protons-uint64-fixed')
const SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** Patches the shared writer prototype (no-op when already patched). */
export function fixUint64Varints(): void {
  const proto = Object.getPrototypeOf(writer()) as Uint64Writer & { [FIXED]?: true }
  if (proto[FIXED] || typeof proto.uint64Number !== 'function') return
  const uint64 = proto.uint64
  proto.uint64 = function (this: Uint64Writer, value: bigint) {
    if (value >= 0n && value <= SAFE) return this.uint64Number(Number(value))
    return uint64.call(this, value)
  }
  proto[FIXED] = true
}
