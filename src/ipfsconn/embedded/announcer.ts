/**
 * Announces pinned roots to the public IPFS network (public_network on): one at a time, each
 * for at most `timeoutMs`, from a bounded queue. A DHT provide first records the node as a
 * provider locally and then looks for the closest peers, which with few or no peers can take
 * minutes; kad-dht's reprovider re-announces every recorded root later anyway, so an attempt
 * that runs out of time is not retried here. The queue bound keeps a peer catching up on a
 * large pinset (or offline) from holding one pending announcement per pin in memory: past it,
 * roots are not announced (counted, logged once per overflow streak).
 *
 * @example
 * ```ts
 * const a = announcer((cid, signal) => helia.routing.provide(cid, { signal }), { log })
 * a.add(cid) // announced in the background
 * a.remove(cid) // unpinned before its turn
 * a.stop()
 * ```
 */
import type { CID } from 'multiformats/cid'
import { errorMessage } from '../../errors.ts'
import { multihashKey } from '../../types/cid.ts'
import { type Logger, nullLogger } from '../../util/log.ts'

/** Roots waiting to be announced, at most (kad-dht's own reprovide queue bound). */
export const ANNOUNCE_QUEUE_MAX = 16_384
/** How long one announcement may take. */
export const ANNOUNCE_TIMEOUT = 60_000

/** A running announcer. */
export interface Announcer {
  /** Queues a root (ignored when already queued, full or stopped). */
  add(cid: CID): void
  /** Drops a root that has not been announced yet. */
  remove(cid: CID): void
  /** Roots waiting. */
  readonly pending: number
  /** Resolves when the queue is empty and nothing runs (for tests and shutdown). */
  idle(): Promise<void>
  /** Aborts the running announcement and drops the queue. Idempotent. */
  stop(): void
}

/** Options of an announcer. */
export interface AnnouncerOptions {
  log?: Logger
  timeoutMs?: number
  max?: number
}

/** Starts an announcer over `provide` (Helia's `routing.provide`). */
export function announcer(
  provide: (cid: CID, signal: AbortSignal) => Promise<void>,
  opts: AnnouncerOptions = {},
): Announcer {
  const log = opts.log ?? nullLogger
  const max = opts.max ?? ANNOUNCE_QUEUE_MAX
  const timeoutMs = opts.timeoutMs ?? ANNOUNCE_TIMEOUT
  const life = new AbortController()
  const queue = new Map<string, CID>()
  let running: Promise<void> | undefined
  let dropped = 0

  const run = async () => {
    while (queue.size > 0 && !life.signal.aborted) {
      const [key, cid] = queue.entries().next().value!
      queue.delete(key)
      const signal = AbortSignal.any([life.signal, AbortSignal.timeout(timeoutMs)])
      try {
        await provide(cid, signal)
        log.debug(`announced ${cid} to the public IPFS network`)
      } catch (err) {
        if (life.signal.aborted) break
        log.debug(`cannot announce ${cid} to the public IPFS network: ${errorMessage(err)}`)
      }
    }
    running = undefined
  }

  return {
    add(cid) {
      if (life.signal.aborted) return
      const key = multihashKey(cid)
      if (queue.has(key)) return
      if (queue.size >= max) {
        if (dropped++ === 0) {
          log.warn(
            `${max} pins wait to be announced to the public IPFS network: newer ones are not ` +
              'announced until they are pinned again',
          )
        }
        return
      }
      if (dropped > 0) {
        log.info(`${dropped} pins were not announced to the public IPFS network (queue full)`)
        dropped = 0
      }
      queue.set(key, cid)
      // Started on a later tick, so that `running` is set before run() can clear it.
      running ??= Promise.resolve().then(run)
    },
    remove(cid) {
      queue.delete(multihashKey(cid))
    },
    get pending() {
      return queue.size
    },
    async idle() {
      while (running) await running
    },
    stop() {
      life.abort()
      queue.clear()
    },
  }
}
