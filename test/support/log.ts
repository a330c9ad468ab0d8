/**
 * A Logger that keeps what it is told, for tests that assert what a component logged.
 *
 * @example
 * ```ts
 * const { log, lines } = recordingLogger()
 * log.warn('queue full')
 * lines // ['warn queue full']
 * ```
 */
import type { Logger } from '../../src/util/log.ts'

/** A Logger and the lines it was given, each `<level> <message>`. */
export function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const log: Logger = {
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  }
  return { log, lines }
}
