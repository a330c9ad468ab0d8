/**
 * The one way tests wait for something to happen: poll a condition until it holds. It waits for
 * real work (I/O, another process) to get done, never for time to pass: timers of the code under
 * test run on a manual clock (manual_clock.ts). The deadline only turns a hang into a failure,
 * so it is generous.
 *
 * @example
 * ```ts
 * await waitFor(() => double.state.calls.get('pin/add') === 1, { what: 'the pin request' })
 * ```
 */

/** Polls `cond` every few ms until it holds; throws after `timeoutMs` (default 20 s). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  opts: { what?: string; timeoutMs?: number } = {},
): Promise<void> {
  const end = Date.now() + (opts.timeoutMs ?? 20_000)
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}
