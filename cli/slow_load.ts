/**
 * The one line a first start prints. The tasks run Deno with `--quiet` and download npm packages
 * only when a module first imports them (deno.json `npm-lazy-caching`), so a first start on a new
 * machine would otherwise sit silent while Deno fetches the peer's dependencies. A load that is
 * still running after two seconds prints one line saying so; any later slow load prints nothing.
 *
 * @example
 * ```ts
 * const loading = slowLoadNotice((line) => io.stderr(line))
 * const { runDaemon } = await loading(import('../../src/daemon.ts'))
 * ```
 */

/** What the line says. */
export const SLOW_LOAD_LINE = "ipfs-cluster: loading the peer's modules (a first start downloads " +
  'them from npm into the Deno cache, which takes a minute or two; later starts skip this)…\n'

/** Calls `fn` once, `ms` from now; returns its cancel function (the shape of a Clock's timeout). */
export type Timeout = (ms: number, fn: () => void) => () => void

const platformTimeout: Timeout = (ms, fn) => {
  const t = setTimeout(fn, ms)
  return () => clearTimeout(t)
}

/**
 * Returns a wrapper for module loads: it resolves like the load it wraps, and prints
 * `SLOW_LOAD_LINE` (once for all the loads it ever wraps) when one is still pending after
 * `afterMs`.
 */
export function slowLoadNotice(
  print: (line: string) => void | Promise<void>,
  opts: { afterMs?: number; timeout?: Timeout } = {},
): <T>(load: Promise<T>) => Promise<T> {
  const timeout = opts.timeout ?? platformTimeout
  let printed = false
  return async <T>(load: Promise<T>): Promise<T> => {
    if (printed) return await load
    const cancel = timeout(opts.afterMs ?? 2_000, () => {
      if (printed) return
      printed = true
      void print(SLOW_LOAD_LINE)
    })
    try {
      return await load
    } finally {
      cancel()
    }
  }
}
