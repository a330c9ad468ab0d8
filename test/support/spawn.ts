/**
 * A process the tests start with its stdout and stderr collected in memory, stopped by its PID:
 * the one spawn-and-collect of test/support (the peer processes of `startPeerProcess`, the peer's
 * `deno task start`, the packaging tests' bundles and URL runs, a real Prometheus).
 *
 * @example
 * ```ts
 * const p = spawnLogged(Deno.execPath(), ['run', ...flags, bundle, 'service', 'daemon'])
 * await p.waitLog('IPFS Cluster is READY')
 * await p.stop()
 * ```
 */
import { errorMessage } from '../../src/errors.ts'
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
  /** SIGTERM (SIGKILL after `stopGraceMs`, 30 s by default); resolves with the exit code. */
  stop(): Promise<number>
  /** SIGKILL, no cleanup; resolves once the process is gone and its output read. */
  kill9(): Promise<void>
}

/** Starts `cmd args` (in the repository unless `cwd`) with stdin closed and its output collected. */
export function spawnLogged(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stopGraceMs?: number } = {},
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
  const pumps = Promise.all([child.stdout, child.stderr].map(async (s) => {
    const dec = new TextDecoder() // one per stream: a character split across chunks stays whole
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
      let gone = false
      try {
        await waitFor(() => {
          if (logs.includes(text)) return true
          if (exited) {
            gone = true
            throw new Error(`exited before "${text}":\n${logs}`)
          }
          return false
        }, { what: `"${text}"`, timeoutMs })
      } catch (err) {
        if (gone) throw err
        // The output when the wait gave up (not when it began, which is usually nothing).
        throw new Error(`${errorMessage(err)}; output so far:\n${logs}`)
      }
    },
    async stop() {
      if (!exited) Deno.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(
        () => !exited && Deno.kill(child.pid, 'SIGKILL'),
        opts.stopGraceMs ?? 30_000,
      )
      const s = await status
      clearTimeout(timer)
      await pumps
      return s.code
    },
    async kill9() {
      if (!exited) Deno.kill(child.pid, 'SIGKILL')
      await status
      await pumps
    },
  }
}
