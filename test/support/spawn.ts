/**
 * A process the tests start with its stdout and stderr collected in memory, stopped by its PID:
 * the one spawn-and-collect of test/support (the peer's `deno task start`, the packaging tests'
 * bundles and URL runs, a real Prometheus).
 *
 * @example
 * ```ts
 * const p = spawnLogged(Deno.execPath(), ['run', ...flags, bundle, 'service', 'daemon'])
 * await p.waitLog('IPFS Cluster is READY')
 * await p.stop()
 * ```
 */
import { waitFor } from './wait.ts'

const ROOT = new URL('../..', import.meta.url).pathname

/** A running process with its stdout and stderr collected. */
export interface LoggedProcess {
  pid: number
  logs(): string
  /** True once the process has exited. */
  exited(): boolean
  /** Waits until the output contains `text`; fails with the output if the process exits first. */
  waitLog(text: string, timeoutMs?: number): Promise<void>
  /** SIGTERM (SIGKILL after 30 s); resolves with the exit code. */
  stop(): Promise<number>
}

/** Starts `cmd args` (in the repository unless `cwd`) with stdin closed and its output collected. */
export function spawnLogged(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): LoggedProcess {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn()
  let logs = ''
  let exited = false
  const dec = new TextDecoder()
  const pumps = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const b of s) logs += dec.decode(b, { stream: true })
  }))
  const status = child.status.then((s) => {
    exited = true
    return s
  })
  return {
    pid: child.pid,
    logs: () => logs,
    exited: () => exited,
    async waitLog(text, timeoutMs = 120_000) {
      await waitFor(() => {
        if (!logs.includes(text) && exited) throw new Error(`exited before "${text}":\n${logs}`)
        return logs.includes(text)
      }, { what: `"${text}" in:\n${logs}`, timeoutMs })
    },
    async stop() {
      if (!exited) Deno.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(() => !exited && Deno.kill(child.pid, 'SIGKILL'), 30_000)
      const s = await status
      clearTimeout(timer)
      await pumps
      return s.code
    },
  }
}
