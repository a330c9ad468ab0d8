/**
 * What every ipfs-cluster-service command runs with (IO, environment, config folder, log level,
 * the global --force) and the helpers they share: naming the step that failed, taking the folder
 * lock, logging through the command's IO. Light on purpose: `version` and `--help` load this and
 * nothing heavier.
 *
 * @example
 * ```ts
 * const lock = await lockOrFail(ctx.configDir)
 * try { … } catch (err) { throw doing('exporting state', err) } finally { await lock.release() }
 * ```
 */
import { acquireLock } from '../../src/util/lock.ts'
import { logging } from '../../src/util/log.ts'
import type { CliIO } from '../io.ts'
import { PROGRAM } from './commands.ts'

/** The context of one command run. */
export interface Ctx {
  io: CliIO
  env: Record<string, string>
  configDir: string
  logLevel: string
  force: boolean
}

/**
 * Names the step an error happened in (`error <doing>: <message>` on stderr). The innermost step
 * wins: `reading import file` stays when `importing state` wraps it.
 */
export function doing(what: string, err: unknown): Error {
  const e: Error & { doing?: string } = err instanceof Error ? err : new Error(String(err))
  e.doing ??= what
  return e
}

/** Takes the config folder's lock, or fails with the reference's step name. */
export async function lockOrFail(dir: string) {
  try {
    return await acquireLock(dir, PROGRAM)
  } catch (err) {
    throw doing('obtaining execution lock', err)
  }
}

/** The `service` logger of a command, writing through the command's IO (stderr). */
export function serviceLog(ctx: Ctx) {
  return logging(ctx.logLevel, (line) => void ctx.io.stderr(`${line}\n`)).get('service')
}
