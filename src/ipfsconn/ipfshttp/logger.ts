/**
 * The logging shape the connector writes to. Structural, so any namespaced logger with these four
 * methods (a debug-style logger, a console wrapper in the CLI) can be passed in.
 *
 * @example
 * ```ts
 * const log: Logger = { debug() {}, info() {}, warn: console.warn, error: console.error }
 * ```
 */
export interface Logger {
  debug(msg: string, ...args: unknown[]): void
  info(msg: string, ...args: unknown[]): void
  warn(msg: string, ...args: unknown[]): void
  error(msg: string, ...args: unknown[]): void
}

/** Discards everything: the default when no logger is injected. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}
