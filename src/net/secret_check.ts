/**
 * Tells a cluster-secret mismatch apart, at once and on both sides, instead of a dial that hangs
 * until its timeout.
 *
 * libp2p's private network (pnet) exchanges two plain nonces and then XORs everything with a
 * keystream of the shared key. With two different keys the nonce exchange succeeds and each side
 * reads the other's bytes as noise: the dialer waits for an answer until its address dial
 * timeout (~6 s, `EncryptionFailedError … aborted due to timeout`) and the listener fails at
 * random — at once or after its 10 s upgrade timeout — with no word of the cause.
 *
 * The check needs no change to the wire: the first bytes either side receives after the nonces
 * are always multistream-select's header (`\x13/multistream/1.0.0\n`), since both ends open the
 * encryption negotiation with it. A side that decrypts anything else knows the keys differ. The
 * listener, which receives first, logs one line, answers with its own header — noise under the
 * dialer's key, so the dialer knows too, one round trip later — and closes; the dialer logs one
 * line and fails its dial with `SecretMismatchError`. Lines are rate-limited per remote address,
 * since a misconfigured peer retries forever.
 *
 * A host without a secret runs the same check on the plain connection (no pnet underneath): a
 * peer with a secret sends it a nonce where the header belongs; to such a dialer it answers a
 * nonce of its own and then the header, which the dialer decrypts into noise. So both sides say
 * it whichever of the two has no secret.
 *
 * @example
 * ```ts
 * connectionProtector: checkSecret(psk ? preSharedKey({ psk }) : undefined, { log, clock })
 * ```
 */
import type { ConnectionProtector } from '@libp2p/interface'
import type { Clock } from '../util/clock.ts'
import type { Logger } from '../util/log.ts'
import { ClusterError } from '../errors.ts'

/** What both sides say; connect() finds it in a failed dial's error. */
export const SECRET_MISMATCH = 'the peer uses another cluster secret (or none)'

/** A connection refused because the two peers' cluster secrets differ. */
export class SecretMismatchError extends ClusterError {
  override name = 'SecretMismatchError'
}

/** How long one remote address stays quiet in the log after a mismatch line. */
export const MISMATCH_LOG_INTERVAL_MS = 60_000

/** multistream-select's opening message: varint length 19, then the protocol id. */
const MSS_HEADER = new TextEncoder().encode('\x13/multistream/1.0.0\n')

/** A pnet nonce (24 bytes), as a host without a secret answers a dialer that has one. */
const fakeNonce = () => crypto.getRandomValues(new Uint8Array(24))

/** The pieces of pnet's stream this check touches (an AbstractMessageStream). */
interface BoxStream {
  direction?: 'inbound' | 'outbound'
  remoteAddr?: { toString(): string }
  readBuffer: { subarray(): Uint8Array; consume(n: number): void; byteLength: number }
  onData(data: Uint8Array): void
  send(data: Uint8Array): boolean
  close(opts?: { signal?: AbortSignal }): Promise<void>
  abort(err: Error): void
}

/** Options of `checkSecret`. */
export interface SecretCheckOptions {
  log: Logger
  clock: Clock
}

/**
 * Wraps pnet's protector factory (`preSharedKey(…)`) with the mismatch check; without one (no
 * secret), a protector that only checks.
 */
export function checkSecret<C>(
  inner: ((components: C) => ConnectionProtector) | undefined,
  opts: SecretCheckOptions,
): (components: C) => ConnectionProtector {
  const lastLine = new Map<string, number>()
  const say = (key: string, line: string) => {
    const now = opts.clock.now()
    const last = lastLine.get(key)
    if (last !== undefined && now - last < MISMATCH_LOG_INTERVAL_MS) return
    if (lastLine.size > 1024) lastLine.clear() // many addresses: keep memory bounded
    lastLine.set(key, now)
    opts.log.warn(line)
  }
  return (components) => {
    const protector = inner?.(components)
    return {
      async protect(connection, options) {
        const box = protector ? await protector.protect(connection, options) : connection
        // Noise already in the read buffer fails the upgrade here, before it writes anything.
        const err = watch(box as unknown as BoxStream, say, !protector)
        if (err) throw err
        return box
      },
    }
  }
}

/**
 * Compares the first decrypted bytes with the header as they arrive; once they all matched the
 * stream is left alone. Bytes that pnet decrypted before this ran (a segment that held the nonce
 * and more) wait in the stream's read buffer: nothing reads it before the upgrade's
 * multistream-select starts, which is after `protect` returned.
 */
function watch(
  box: BoxStream,
  say: (key: string, line: string) => void,
  plain: boolean,
): SecretMismatchError | undefined {
  const onData = box.onData.bind(box)
  let seen = 0
  let failed = false
  const mismatch = (): SecretMismatchError => {
    failed = true
    box.onData = () => {} // noise, never handed to multistream-select
    const addr = String(box.remoteAddr ?? 'an unknown address')
    if (box.direction === 'inbound') {
      const host = addr.split('/').slice(0, 3).join('/') // the IP: a retry comes from a new port
      say(host, `refused a connection from ${addr}: ${SECRET_MISMATCH}`)
      // Our header is noise under the dialer's key: it learns the same now, not at its timeout.
      const err = new SecretMismatchError(`connection from ${addr}: ${SECRET_MISMATCH}`)
      try {
        box.send(plain ? new Uint8Array([...fakeNonce(), ...MSS_HEADER]) : MSS_HEADER)
      } catch {
        // already closing: the dialer sees the close instead
      }
      box.close({ signal: AbortSignal.timeout(1000) }).catch(() => {}).finally(() => box.abort(err))
      return err
    }
    say(addr, `cannot connect to ${addr}: ${SECRET_MISMATCH}`)
    const err = new SecretMismatchError(`cannot connect to ${addr}: ${SECRET_MISMATCH}`)
    box.abort(err)
    return err
  }
  /** Checks `data` against the header; returns false on a mismatch. */
  const check = (data: Uint8Array): boolean => {
    const n = Math.min(data.byteLength, MSS_HEADER.byteLength - seen)
    for (let i = 0; i < n; i++) {
      if (data[i] !== MSS_HEADER[seen + i]) return false
    }
    seen += n
    return true
  }
  const buffered = box.readBuffer.byteLength ? box.readBuffer.subarray() : undefined
  if (buffered && !check(buffered)) {
    box.readBuffer.consume(box.readBuffer.byteLength)
    return mismatch()
  }
  if (seen === MSS_HEADER.byteLength) return
  box.onData = (data: Uint8Array) => {
    if (failed) return
    if (!check(data)) return void mismatch()
    if (seen === MSS_HEADER.byteLength) box.onData = onData
    onData(data)
  }
}
