/**
 * A fix for the XSalsa20 stream cipher under `@libp2p/pnet` (npm `xsalsa20` 1.2.0, the private
 * network's encryption of every byte between peers). All its ciphers share one WebAssembly memory,
 * and each keeps a view of it; when one grows the memory (an input larger than any before), every
 * other cipher's view is detached, reads as empty, and that cipher "grows" the memory again by its
 * whole input on its next call. Under a sustained transfer (an add streaming blocks to two peers)
 * the memory doubles round after round until WebAssembly refuses (`Maximum memory size
 * exceeded`), the connection's encryption throws, and the transfer fails. Measured: three ciphers
 * taking 3 MB each fail on the 8th round; with this fix, never.
 *
 * The fix wraps the cipher's update: a detached view is refreshed first (a grow by zero pages
 * hands back the current memory without growing it), and inputs go through in slices of at most
 * 1 MiB (the cipher streams: any slicing gives the same bytes), so the memory stays near 1 MiB.
 * It is applied once, when the host module loads, to the one `xsalsa20` instance pnet imports.
 *
 * @example
 * ```ts
 * fixXsalsa20() // idempotent; host.ts calls it before building a libp2p node with pnet
 * ```
 */
import xsalsa20 from 'xsalsa20'

/** The most a single call hands the WebAssembly cipher (a multiple of its 64-byte block). */
export const XSALSA20_SLICE = 1 << 20

interface WasmCipher {
  _memory: Uint8Array
  realloc(size: number): void
  update(input: Uint8Array, output: Uint8Array): void
}

const FIXED = Symbol.for('ipfs-cluster-deno.xsalsa20-fixed')

/** Patches the shared cipher prototype (no-op when already patched or when WebAssembly is off). */
export function fixXsalsa20(): void {
  const probe = xsalsa20(new Uint8Array(24), new Uint8Array(32)) as unknown as {
    _xor: WasmCipher
    finalize(): void
  }
  const proto = Object.getPrototypeOf(probe._xor) as WasmCipher & { [FIXED]?: true }
  probe.finalize()
  // The pure-JS fallback (no WebAssembly) has no shared memory and needs nothing.
  if (typeof proto.realloc !== 'function' || proto[FIXED]) return
  const update = proto.update
  proto.update = function (this: WasmCipher, input: Uint8Array, output: Uint8Array) {
    for (let off = 0; off < input.length || off === 0; off += XSALSA20_SLICE) {
      if (this._memory.length === 0) this.realloc(0)
      const end = Math.min(input.length, off + XSALSA20_SLICE)
      update.call(this, input.subarray(off, end), output.subarray(off, end))
      if (end === input.length) break
    }
  }
  proto[FIXED] = true
}
