/**
 * What the packaging tests share: the flags a packaging file runs the program with, and a fake
 * systemd notification socket (processes: test/support/spawn.ts).
 *
 * @example
 * ```ts
 * runFlags(commandLine(unit, 'ipfs-cluster.js'), 'ipfs-cluster.js') // ['--quiet', '--unstable-kv', …]
 * ```
 */
import { join } from 'node:path'
import { spawnLogged } from '../support/spawn.ts'

/** The repository root. */
export const ROOT = new URL('../..', import.meta.url).pathname

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
