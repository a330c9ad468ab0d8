/**
 * Runs a program inside a new network namespace whose only interface is `lo` (up): whatever it
 * dials beyond 127.0.0.1 fails at once, so programs that probe the LAN or the internet on their
 * own (the Go peer's NAT discovery, the embedded node's public-network mode) send nothing off the
 * machine. Root gets `unshare -n`; others a user namespace too (`unshare -rn`).
 *
 * @example
 * ```ts
 * const netns = await loopbackNetns()
 * if (netns) await new Deno.Command(netns.cmd, { args: netns.args(Deno.execPath(), ['run', 'x.ts']) }).output()
 * ```
 */

/** How to start a program in a loopback-only namespace. */
export interface LoopbackNetns {
  cmd: string
  /** The arguments of `cmd` that run `program args…` inside (exec'd: same PID as `unshare`). */
  args(program: string, args: string[]): string[]
}

/** The namespace runner, or undefined when namespaces (or `ip`) are not available here. */
export async function loopbackNetns(): Promise<LoopbackNetns | undefined> {
  const [cmd, ...flags] = Deno.uid?.() === 0 ? ['unshare', '-n'] : ['unshare', '-rn']
  const probe = await new Deno.Command(cmd, {
    args: [...flags, 'sh', '-c', 'ip link set lo up'],
    stdout: 'null',
    stderr: 'null',
  }).output().catch(() => undefined)
  if (!probe || probe.code !== 0) return undefined
  return {
    cmd,
    args: (program, args) => [
      ...flags,
      'sh',
      '-c',
      'ip link set lo up && exec "$0" "$@"',
      program,
      ...args,
    ],
  }
}
