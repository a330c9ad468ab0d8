/**
 * What a CLI command may touch: output streams, environment, stdin, prompts and OS signals.
 * Commands receive this instead of reaching for Deno globals, so tests run them in-process.
 *
 * @example
 * ```ts
 * const code = await serviceMain(args, stdio())
 * ```
 */

/** IO of a CLI run. */
export interface CliIO {
  stdout(s: string): void | Promise<void>
  stderr(s: string): void | Promise<void>
  env: Record<string, string>
  /** stderr is a terminal (progress bars go there). */
  stderrIsTerminal?: boolean
  stdin(): ReadableStream<Uint8Array>
  /** Asks a yes/no question; no answer (EOF) means no. */
  confirm(question: string): Promise<boolean>
  /** Asks for a line of text. */
  prompt(question: string): Promise<string>
  /** Signals that stop a daemon (SIGINT, SIGTERM, SIGHUP), as an AbortSignal-like hook. */
  signals?: (onSignal: (name: string) => void) => () => void
}

const encoder = new TextEncoder()

async function readLine(): Promise<string | null> {
  const buf = new Uint8Array(1)
  const bytes: number[] = []
  while (true) {
    const n = await Deno.stdin.read(buf)
    if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null
    if (buf[0] === 10) return new TextDecoder().decode(new Uint8Array(bytes))
    bytes.push(buf[0])
  }
}

/** The process's real IO. */
export function stdio(): CliIO {
  const write = (f: { writeSync(b: Uint8Array): number }) => (s: string) => {
    const b = encoder.encode(s)
    let off = 0
    while (off < b.length) off += f.writeSync(b.subarray(off))
  }
  return {
    stdout: write(Deno.stdout),
    stderr: write(Deno.stderr),
    env: Deno.env.toObject(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    stdin: () => Deno.stdin.readable,
    async confirm(question) {
      write(Deno.stdout)(`${question} `)
      const line = await readLine()
      return line !== null && /^y(es)?$/i.test(line.trim())
    },
    async prompt(question) {
      write(Deno.stdout)(question)
      return (await readLine()) ?? ''
    },
    signals(onSignal) {
      const names: Deno.Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
      const handlers = names.map((n) => {
        const h = () => onSignal(n)
        Deno.addSignalListener(n, h)
        return [n, h] as const
      })
      return () => handlers.forEach(([n, h]) => Deno.removeSignalListener(n, h))
    },
  }
}
