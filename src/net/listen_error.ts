/**
 * One clear line when a listener cannot start: the service.json key, the address, what went
 * wrong and what to do — instead of an engine's message (libp2p's advice about
 * `transportManager.faultTolerance`, a Node stack trace). Every listener of the daemon uses it:
 * the HTTP APIs through `listenError`, libp2p hosts by building their transport with
 * `listenFailures().wrap(tcp())` and calling `rethrow` when the host fails to start.
 *
 * @example
 * ```ts
 * throw listenError('api.restapi.http_listen_multiaddress', '/ip4/127.0.0.1/tcp/9094', err)
 * // cannot listen on /ip4/127.0.0.1/tcp/9094 (api.restapi.http_listen_multiaddress): address
 * // already in use; stop the program using it or set another address in service.json
 * ```
 */
import { ConfigError, errorMessage } from '../errors.ts'

/** A listener that could not start; the message is the whole story, on one line. */
export class ListenError extends ConfigError {
  override name = 'ListenError'
  /** The service.json key holding the address. */
  readonly key: string
  readonly address: string
  /** The OS error code (EADDRINUSE…), when known. */
  readonly code?: string
  constructor(key: string, address: string, message: string, code?: string) {
    super(message)
    this.key = key
    this.address = address
    this.code = code
  }
}

const ADVICE: Record<string, string> = {
  EADDRINUSE: 'address already in use; stop the program using it or set another address',
  EACCES: 'permission denied (ports below 1024 need privileges); use another port',
  EADDRNOTAVAIL:
    'no interface of this machine has that IP address; use one of its addresses, 127.0.0.1 or 0.0.0.0',
  ENOENT: 'the folder of the socket does not exist; create it or set another path',
}

/** The OS error code of a listen error from Deno (`err.code`) or Node (`err.code`). */
function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code
  return typeof c === 'string' ? c : undefined
}

/** Builds the one-line error for a listener at `address` (from config key `key`) that failed. */
export function listenError(key: string, address: string, err: unknown): ListenError {
  const code = codeOf(err)
  const advice = code && ADVICE[code]
  const what = advice
    ? `${advice} in service.json`
    : `${errorMessage(err).split('\n')[0]}; check the address in service.json`
  return new ListenError(key, address, `cannot listen on ${address} (${key}): ${what}`, code)
}

/** A libp2p transport factory (`tcp()`), loosely typed: only `createListener` is wrapped. */
// deno-lint-ignore no-explicit-any
type TransportFactory = (components: any) => any

/** Records which address a libp2p transport failed to listen on, and why. */
export interface ListenFailures {
  /** The same transport factory, with listen failures recorded. */
  wrap<T extends TransportFactory>(factory: T): T
  /** The first failure, if any. */
  first(): { address: string; error: unknown } | undefined
  /**
   * Throws the `listenError` of the first failure when there was one, else `err` itself. Call it
   * with what starting the host threw.
   */
  rethrow(key: string, err: unknown): never
}

/** A fresh failure record for one libp2p host. */
export function listenFailures(): ListenFailures {
  const failures: { address: string; error: unknown }[] = []
  const record: ListenFailures = {
    wrap(factory) {
      return ((components: unknown) => {
        const transport = factory(components)
        const createListener = transport.createListener.bind(transport)
        transport.createListener = (opts: unknown) => {
          const listener = createListener(opts)
          const listen = listener.listen.bind(listener)
          listener.listen = async (ma: { toString(): string }) => {
            try {
              return await listen(ma)
            } catch (error) {
              failures.push({ address: ma.toString(), error })
              throw error
            }
          }
          return listener
        }
        return transport
      }) as typeof factory
    },
    first: () => failures[0],
    rethrow(key, err) {
      const f = failures[0]
      throw f ? listenError(key, f.address, f.error) : err
    },
  }
  return record
}
