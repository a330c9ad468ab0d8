/**
 * What a ctl command runs with: its parsed flags, the REST client, and the reference's output
 * rules — `formatResponse` (text or JSON; API errors printed on stdout, exit 2, or 1 for code 0)
 * and `checkErr` (`error <doing>: <err>` on stderr, exit 1, 62 on a deadline, 125 on cancel).
 * Exiting is a thrown CtlExit, so ctlMain stays testable in-process.
 *
 * @example
 * ```ts
 * await ctx.respond(ctx.client().version(), formatVersion)
 * ```
 */
import { ApiError, type RestClient } from '../../src/api/rest/client.ts'
import { DeadlineExceededError } from '../../src/api/rest/client_wait.ts'
import type { ParsedFlags } from '../flags.ts'
import { type Clock, systemClock } from '../../src/util/clock.ts'
import { goJsonIndent } from './format_json.ts'
import { formatError } from './format_text.ts'
import { escapeControl } from '../../src/util/escape.ts'

/** The I/O ctlMain is given. Only stdout, stderr and env are required. */
export interface CtlIO {
  stdout: (s: string) => void | Promise<void>
  stderr: (s: string) => void | Promise<void>
  env: Record<string, string>
  stdin?: ReadableStream<Uint8Array>
  /**
   * Time: relative times ("Expires in: …"), the 1 s pause of `pin add`, `--wait` polling and
   * deadlines, request timeouts (default: the system clock; tests pass a manual one).
   */
  clock?: Clock
  /** stderr is a terminal: `add` draws its progress bar there. Default false. */
  stderrIsTerminal?: boolean
  /** Writes `health graph --file`; default Deno.writeTextFile. */
  writeFile?: (path: string, text: string) => Promise<void>
}

/** Unwinds ctlMain with an exit code (the reference calls os.Exit). */
export class CtlExit extends Error {
  override name = 'CtlExit'
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

/** Everything an action needs. */
export interface ActionContext {
  flags: ParsedFlags
  args: string[]
  io: CtlIO
  encoding: 'text' | 'json'
  client(): RestClient
  now(): number
  sleep(ms: number): Promise<void>
  /** stdout, as is. */
  write(s: string): Promise<void>
  /** Prints a result in the selected encoding. */
  print<T>(value: T, text: (v: T) => string): Promise<void>
  /** Awaits a call and prints its result, or its error (then exits). */
  respond<T>(p: Promise<T>, text: (v: T) => string): Promise<void>
  /** Prints each streamed item as it arrives, then the stream's error if any (then exits). */
  respondStream<T>(items: AsyncIterable<T>, text: (v: T) => string): Promise<void>
  /** formatResponse for an error: API errors print and exit 2/1, others go to checkErr. */
  error(err: unknown): Promise<never>
  /** checkErr: `error <doing>: <err>` on stderr and exit. */
  fail(doing: string, err: unknown): Promise<never>
}

/** The text of an error as Go's err.Error() gives it. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.toString()
  return err instanceof Error ? err.message : String(err)
}

function exitCodeOf(err: unknown): number {
  if (err instanceof DeadlineExceededError) return 62
  if (err instanceof DOMException && err.name === 'TimeoutError') return 62
  if (err instanceof DOMException && err.name === 'AbortError') return 125
  return 1
}

/** Builds the context of one command run. */
export function actionContext(o: {
  flags: ParsedFlags
  io: CtlIO
  encoding: 'text' | 'json'
  client: () => RestClient
}): ActionContext {
  const { io, encoding } = o
  const write = async (s: string) => {
    if (s !== '') await io.stdout(s)
  }
  const ctx: ActionContext = {
    flags: o.flags,
    args: o.flags.args,
    io,
    encoding,
    client: o.client,
    now: () => (io.clock ?? systemClock).now(),
    sleep: (ms) => (io.clock ?? systemClock).sleep(ms),
    write,
    print: async (value, text) => {
      await write(encoding === 'json' ? goJsonIndent(value) + '\n' : text(value))
    },
    respond: async (p, text) => {
      let v
      try {
        v = await p
      } catch (err) {
        return await ctx.error(err)
      }
      await ctx.print(v, text)
    },
    respondStream: async (items, text) => {
      try {
        for await (const v of items) await ctx.print(v, text)
      } catch (err) {
        if (err instanceof CtlExit) throw err
        await ctx.error(err)
      }
    },
    error: async (err) => {
      if (err instanceof CtlExit) throw err
      if (!(err instanceof ApiError)) return await ctx.fail('', err)
      await write(
        encoding === 'json'
          ? goJsonIndent({ code: err.code, message: err.message }) + '\n'
          : formatError(err.code, err.message),
      )
      throw new CtlExit(err.code === 0 ? 1 : 2)
    },
    fail: async (doing, err) => {
      if (err instanceof CtlExit) throw err
      await io.stderr(`error ${doing}: ${escapeControl(errorText(err))}\n`)
      throw new CtlExit(exitCodeOf(err))
    },
  }
  return ctx
}
