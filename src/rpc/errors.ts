/**
 * The errors of the RPC wire, and how every typed error crosses it. A handler that throws a class
 * of `errors.ts` (or one of these) makes the caller's promise reject with the same class, message
 * and `status`; anything else arrives as an `RpcRemoteError` carrying the message. An abort or a
 * deadline arrives as the `DOMException` it was (`AbortError`, `TimeoutError`).
 *
 * @example
 * ```ts
 * try {
 *   await rpc.call(peer, 'PinTracker.Status', [cid])
 * } catch (err) {
 *   if (err instanceof RpcUnreachableError) … // the peer is down: report it, go on with the others
 *   if (err instanceof NotFoundError) …       // the remote handler's own NotFoundError
 * }
 * ```
 *
 * @module
 */
import {
  ClusterError,
  ConfigError,
  ConsensusError,
  IPFSError,
  NotFoundError,
  ShutdownError,
  UnauthorizedError,
  ValidationError,
} from '../errors.ts'

/** A remote handler failed with an error that is not one of the cluster's typed errors. */
export class RpcRemoteError extends ClusterError {
  override name = 'RpcRemoteError'
}

/** The peer could not be dialled, or the connection was lost before the call ended. */
export class RpcUnreachableError extends ClusterError {
  override name = 'RpcUnreachableError'
  override status = 503
}

/** The remote peer's policy refused the call; the message names the method and why. */
export class RpcForbiddenError extends ClusterError {
  override name = 'RpcForbiddenError'
  override status = 403
}

/** The remote peer has no such method (a newer or older peer, or a typo). */
export class RpcUnknownMethodError extends ClusterError {
  override name = 'RpcUnknownMethodError'
  override status = 404
}

type ErrorClass = new (message: string) => Error

/** The classes that keep their identity over the wire, by `name`. */
const BY_NAME: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ['ClusterError', ClusterError],
  ['ValidationError', ValidationError],
  ['NotFoundError', NotFoundError],
  ['ConfigError', ConfigError],
  ['IPFSError', IPFSError],
  ['ConsensusError', ConsensusError],
  ['ShutdownError', ShutdownError],
  ['UnauthorizedError', UnauthorizedError],
  ['RpcRemoteError', RpcRemoteError],
  ['RpcUnreachableError', RpcUnreachableError],
  ['RpcForbiddenError', RpcForbiddenError],
  ['RpcUnknownMethodError', RpcUnknownMethodError],
])

/** The DOMException names an abort or a deadline carries. */
const ABORT_NAMES = new Set(['AbortError', 'TimeoutError'])

const NAME_OF = new Map<unknown, string>([...BY_NAME].map(([name, c]) => [c, name]))

/**
 * What the wire carries of an error: the class name and the message. A subclass of a known class
 * (a `ListenError`, say) travels as the nearest known class, so the caller can still act on it.
 */
export function errorToWire(err: unknown): [name: string, message: string] {
  if (err instanceof DOMException && ABORT_NAMES.has(err.name)) return [err.name, err.message]
  if (!(err instanceof Error)) return ['RpcRemoteError', String(err)]
  for (let c = err.constructor; c && c !== Error; c = Object.getPrototypeOf(c)) {
    const name = NAME_OF.get(c)
    if (name) return [name, err.message]
  }
  return ['RpcRemoteError', err.message]
}

/** The error a caller sees for what `errorToWire` sent; unknown names become `RpcRemoteError`. */
export function errorFromWire(name: string, message: string): Error {
  if (ABORT_NAMES.has(name)) return new DOMException(message, name)
  const Class = BY_NAME.get(name) ?? RpcRemoteError
  return new Class(message)
}
