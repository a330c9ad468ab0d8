/**
 * Keeps the embedded node connected to the IPFS nodes of `ipfs_connector.embedded.peering`, as
 * Kubo's `Peering.Peers` does: each is dialled at start, re-dialled with a growing, jittered
 * delay (5 s, then ×1.5–2.5 per failure, at most 10 min) while it cannot be reached, and again
 * whenever its connection drops; its connections are tagged so that the connection manager
 * prunes them last. libp2p's own keep-alive reconnection gives up after five tries, so it is
 * not used.
 *
 * The clock and the randomness are injected (tests drive them by hand); `nextDelay` is the
 * pure backoff rule.
 *
 * @example
 * ```ts
 * const peering = startPeering(libp2p, ['/ip4/10.0.0.2/tcp/9098/p2p/12D3KooW…'], { log })
 * peering.stop()
 * ```
 */
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { errorMessage } from '../../errors.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'

/** The first delay after a failed dial or a dropped connection (Kubo's `initialDelay`). */
export const PEERING_INITIAL_DELAY = 5_000
/** The longest delay between two dials (Kubo's `maxBackoff`). */
export const PEERING_MAX_DELAY = 10 * 60_000
/** The connection-manager tag of peering peers (Kubo's `connmgrTag`), at the highest value. */
export const PEERING_TAG = 'ipfs-peering'

/**
 * The delay after `prev` (0 = none yet): Kubo's rule — grow by half plus a random share of
 * itself, and past the maximum stay at it minus up to 10 % (so that peers do not dial in step).
 * `random` returns [0, 1).
 */
export function nextDelay(prev: number, random: () => number): number {
  if (prev <= 0) return PEERING_INITIAL_DELAY
  let d = prev < PEERING_MAX_DELAY ? prev + prev / 2 + Math.floor(random() * prev) : prev
  if (d > PEERING_MAX_DELAY) d = PEERING_MAX_DELAY - Math.floor(random() * PEERING_MAX_DELAY / 10)
  return d
}

/** Options of startPeering. */
export interface PeeringOptions {
  log?: Logger
  clock?: Clock
  random?: () => number
}

/** A running peering service. */
export interface Peering {
  /** The peer IDs kept connected. */
  readonly peers: string[]
  /** Stops dialling (existing connections stay). Idempotent. */
  stop(): void
}

interface PeerState {
  id: PeerId
  addrs: Multiaddr[]
  delay: number
  /** Cancels the scheduled redial, when one is. */
  cancel?: CancelTimer
  dialing: boolean
  /** Failures since the last connection (only the first of a streak is logged as a warning). */
  failures: number
}

/** Starts keeping `addrs` (multiaddrs ending in /p2p/<id>, validated by the config) connected. */
export function startPeering(libp2p: Libp2p, addrs: string[], opts: PeeringOptions = {}): Peering {
  const log = opts.log ?? nullLogger
  const clock = opts.clock ?? systemClock
  const random = opts.random ?? Math.random
  const life = new AbortController()
  const peers = new Map<string, PeerState>()
  for (const a of addrs) {
    const ma = multiaddr(a)
    const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
    if (!id || id === libp2p.peerId.toString()) continue
    const p = peers.get(id) ??
      { id: peerIdFromString(id), addrs: [], delay: 0, dialing: false, failures: 0 }
    p.addrs.push(ma)
    peers.set(id, p)
  }

  const connected = (p: PeerState) => libp2p.getConnections(p.id).length > 0

  const schedule = (p: PeerState) => {
    if (life.signal.aborted || p.cancel !== undefined || p.dialing) return
    p.delay = nextDelay(p.delay, random)
    p.cancel = clock.timeout(p.delay, () => {
      p.cancel = undefined
      redial(p)
    })
  }

  const dial = async (p: PeerState) => {
    if (life.signal.aborted || p.dialing || connected(p)) return
    p.dialing = true
    try {
      await libp2p.dial(p.addrs, { signal: life.signal })
      if (p.failures > 0) log.info(`peering: reconnected to ${p.id}`)
      p.failures = 0
      p.delay = 0
    } catch (err) {
      if (life.signal.aborted) return
      p.failures++
      const msg = `peering: cannot reach ${p.id}: ${errorMessage(err)}`
      // A peer that is down would otherwise log a warning per retry, for as long as it is down.
      if (p.failures === 1) log.warn(`${msg} (retrying with backoff)`)
      else log.debug(msg)
    } finally {
      p.dialing = false
    }
    if (!connected(p)) schedule(p)
  }

  /** dial() from a timer or the start: nothing it throws may become an unhandled rejection. */
  const redial = (p: PeerState) => {
    dial(p).catch((err) => log.debug(`peering: ${p.id}: ${errorMessage(err)}`))
  }

  const onConnect = (evt: CustomEvent<PeerId>) => {
    const p = peers.get(evt.detail.toString())
    if (!p) return
    p.cancel?.()
    p.cancel = undefined
    p.delay = 0
  }
  const onDisconnect = (evt: CustomEvent<PeerId>) => {
    const p = peers.get(evt.detail.toString())
    if (!p || life.signal.aborted) return
    log.debug(`peering: connection to ${p.id} dropped`)
    schedule(p)
  }
  libp2p.addEventListener('peer:connect', onConnect)
  libp2p.addEventListener('peer:disconnect', onDisconnect)

  for (const p of peers.values()) {
    // Known addresses and the tag first, so that a dial by peer ID (bitswap, identify) finds
    // them and the connection manager keeps these connections.
    libp2p.peerStore.merge(p.id, {
      multiaddrs: p.addrs.map((a) => a.decapsulateCode(421)),
      tags: { [PEERING_TAG]: { value: 100 } },
    }).catch((err) => log.debug(`peering: cannot record ${p.id}: ${errorMessage(err)}`))
      .then(() => redial(p))
  }

  return {
    peers: [...peers.keys()],
    stop() {
      if (life.signal.aborted) return
      life.abort()
      libp2p.removeEventListener('peer:connect', onConnect)
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
      for (const p of peers.values()) {
        p.cancel?.()
        p.cancel = undefined
      }
    },
  }
}
