/**
 * The same Deno KV database behind a proxy that sees its calls: atomic commits go through
 * `commit` (to count, fail or "crash" them), every other method call through `call`. Tests use
 * it to inject disk failures and to know when no KV operation is in flight.
 *
 * @example
 * ```ts
 * let failing = false
 * const flaky = proxyKv(kv, {
 *   commit: (run) => failing ? Promise.reject(new Error('disk I/O error')) : run(),
 * })
 * ```
 */

/** Runs the real commit. */
export type RunCommit = () => Promise<Deno.KvCommitResult | Deno.KvCommitError>

/** What the proxy does with calls (each hook gets a function that makes the real call). */
export interface KvHooks {
  commit?: (run: RunCommit) => ReturnType<RunCommit>
  /** Any other method (`get`, `list`, `close`…), with its name. */
  call?: (method: string | symbol, run: () => unknown) => unknown
}

/** Wraps `kv`; methods without a hook are the real ones. */
export function proxyKv(kv: Deno.Kv, hooks: KvHooks): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === 'atomic' && hooks.commit) {
        const wrap = hooks.commit
        return () => {
          const a = target.atomic()
          const commit = a.commit.bind(a)
          a.commit = () => wrap(commit)
          return a
        }
      }
      const v = Reflect.get(target, prop) as unknown
      if (typeof v !== 'function') return v
      const call = hooks.call
      if (!call) return v.bind(target)
      return (...args: unknown[]) => call(prop, () => v.apply(target, args))
    },
  })
}
