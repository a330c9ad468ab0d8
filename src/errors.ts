/**
 * Typed errors shared by every component. Each carries the HTTP status the REST API answers with,
 * so handlers map errors to responses without string matching.
 *
 * @example
 * ```ts
 * throw new NotFoundError('pin is not part of the pinset')
 * ```
 */

/** Base class: every error the cluster raises on purpose. */
export class ClusterError extends Error {
  override name = 'ClusterError'
  /** HTTP status the REST API answers with. */
  status = 500
}

/** Bad input from a user: a malformed CID, an invalid option. */
export class ValidationError extends ClusterError {
  override name = 'ValidationError'
  override status = 400
}

/** Something asked for does not exist (a pin not in the pinset). */
export class NotFoundError extends ClusterError {
  override name = 'NotFoundError'
  override status = 404
}

/** The reference's exact message for a missing pin; clients match on it. */
export const PIN_NOT_FOUND = 'pin is not part of the pinset'

/** A config file or value is invalid; the message names the key and what is allowed. */
export class ConfigError extends ClusterError {
  override name = 'ConfigError'
  override status = 500
}

/** The IPFS daemon failed or answered something we could not use. */
export class IPFSError extends ClusterError {
  override name = 'IPFSError'
  override status = 500
}

/** Consensus could not take the operation (no leader, not ready, shutting down). */
export class ConsensusError extends ClusterError {
  override name = 'ConsensusError'
  override status = 500
}

/** A component was used after stop(). */
export class ShutdownError extends ClusterError {
  override name = 'ShutdownError'
  override status = 503
  constructor(message = 'component is shut down') {
    super(message)
  }
}

/** Authentication failed at an API. */
export class UnauthorizedError extends ClusterError {
  override name = 'UnauthorizedError'
  override status = 401
}

/** True for an AbortSignal's abort reason or a DOMException named AbortError/TimeoutError. */
export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException && (err.name === 'AbortError' || err.name === 'TimeoutError')
}

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
