/**
 * What the packaging tests share: a process whose output is collected (stopped by its PID), the
 * flags a packaging file runs the program with, and a fake systemd notification socket.
 *
 * @example
 * ```ts
 * const p = spawnLogged(Deno.execPath(), ['run', ...flags, bundle, 'service', 'daemon'])
 * await p.waitLog('IPFS Cluster is READY')
 * await p.stop()
 * ```
 */
import { join } from 'node:path'
import { waitFor } from '../support/wait.ts'

/** The repository root. */
export const ROOT = new URL('../..', import.meta.url).pathname

/** A running process with its stdout and stderr collected. */
export interface LoggedProcess {
  pid: number
  logs(): string
  /** Waits until the output contains `text`; fails with the output if the process exits first. */
  waitLog(text: string, timeoutMs?: number): Promise<void>
  /** SIGTERM (SIGKILL after 30 s); resolves with the exit code. */
  stop(): Promise<number>
}

/** Starts `cmd args` with stdin closed and its output collected. */
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

/**
 * The words of the one line of `text` that runs `script` (after `exec ` or `ExecStart=`, shell
 * quotes removed), from the program (`deno` or a path to it) to the end of the line.
 */
export function commandLine(text: string, script: string): string[] {
  const run = /\S*deno["']? run\b/
  const line = text.split('\n').find((l) => l.includes(script) && run.test(l))
  if (!line) throw new Error(`no "deno run … ${script}" line`)
  const words = line.slice(line.search(run)).trim().split(/\s+/)
  return words.map((w) => w.replace(/^["']|["']$/g, '').replace(/'$/, ''))
}

/** The `deno run` flags of a command line: the words between `run` and the script. */
export function runFlags(words: string[], script: string): string[] {
  const run = words.indexOf('run')
  const at = words.findIndex((w) => w.endsWith(script))
  if (run < 0 || at < run) throw new Error(`not a "deno run <flags> ${script}" line: ${words}`)
  return words.slice(run + 1, at)
}

/**
 * A fake systemd notification socket: a unix datagram socket at `path`, bound by a small Deno
 * process of its own (the test process may lack `--unstable-net`), which prints each message it
 * receives on a line.
 */
export async function notifySocket(): Promise<
  { path: string; messages(): string[]; stop(): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: 'notify-test-' })
  const path = join(dir, 'notify.sock')
  const code = `
    const conn = Deno.listenDatagram({ transport: 'unixpacket', path: Deno.args[0] })
    console.log('listening')
    for await (const [data] of conn) console.log(new TextDecoder().decode(data).replaceAll('\\n', ' '))
  `
  const p = spawnLogged(Deno.execPath(), [
    'eval',
    '--unstable-net',
    code,
    path,
  ])
  await p.waitLog('listening', 30_000)
  return {
    path,
    messages: () => p.logs().split('\n').slice(1).filter((l) => l !== ''),
    async stop() {
      await p.stop()
      await Deno.remove(dir, { recursive: true })
    },
  }
}
