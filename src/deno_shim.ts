/**
 * Side-effect module imported first by the CLI entry: makes Deno's BroadcastChannel unref-able.
 *
 * mortice (the read/write lock under @libp2p/peer-store and Helia's GC lock) creates a
 * BroadcastChannel and calls `channel.unref?.()` so that the channel never keeps the process
 * alive. Deno's BroadcastChannel has no `unref`, so after every libp2p/Helia node stopped the
 * process still never exits. The channel only coordinates locks between worker threads, which
 * this program does not use, so "unref" is implemented as closing it. Exports nothing.
 *
 * @example
 * ```ts
 * import './src/deno_shim.ts' // first line of cli/main.ts
 * ```
 */
// deno-lint-ignore no-explicit-any
const proto = globalThis.BroadcastChannel?.prototype as any
if (proto && typeof proto.unref !== 'function') {
  proto.unref = function (this: BroadcastChannel) {
    this.close()
  }
}
