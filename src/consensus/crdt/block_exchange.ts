/**
 * The CRDT DAG's blocks over bitswap, on the cluster host itself, as IPFS Cluster 1.1.6 runs an
 * ipfs-lite peer (boxo bitswap) on its own pnet host (crdt-interop.md §4): the replica's blocks
 * are served to any connected peer that wants them, and blocks the replica lacks are wanted from
 * the directly connected peers. There is no content routing (Go passes no provider finder), so a
 * block comes only from a peer already connected; a want stays open until the block arrives or
 * the fetch is aborted, and each peer that connects meanwhile gets the wantlist at once.
 *
 * The engine is @helia/bitswap (4.0.19, `/ipfs/bitswap/1.2.0`, which Go speaks too). It is built
 * through its one export, `withBitswap`, given a stand-in for Helia that carries the host's
 * libp2p, a blockstore adapter over the replica's `CrdtBlockstore`, and a routing that finds
 * nobody; no Helia node is started (Helia would bring its own stores and locks).
 *
 * Hand `exchange.blocks` (not the bare store) to the replica: its `put` also tells bitswap, so a
 * peer that asked for a block before it arrived here gets it as soon as it is stored.
 *
 * Inbound streams stay open when idle. @helia/bitswap resets an inbound stream on which nothing
 * came for `messageReceiveTimeout` (10 s); a JS peer opens a stream per message, but a Go peer
 * (boxo v0.39 bsnet) keeps one sender stream per peer for the whole connection, and the first
 * write that fails on it marks this peer unresponsive: Go's bitswap then sends it no more wants
 * until this peer sends Go a message or reconnects. Seen in test/compat/go_crdt_wire.test.ts: a
 * Go peer asked for our delta node on the stream we had reset after 1 s idle, logged
 * `failed to send message … stream reset (remote)` and `PeerDisconnected`, and never fetched it.
 * So the libp2p node bitswap is given wraps its inbound bitswap streams and ignores that one
 * abort (the idle timeout), as Go's server leaves inbound streams to the remote.
 *
 * @example
 * ```ts
 * const exchange = await startBlockExchange({ libp2p: host.libp2p, blocks: kvBlockstore(kv) })
 * const bytes = await exchange.fetch(cid, AbortSignal.timeout(120_000))
 * await exchange.blocks.put(cid, bytes) // stored, and sent to peers waiting for it
 * await exchange.stop()
 * ```
 *
 * @module
 */
import { withBitswap } from '@helia/bitswap'
import type { HeliaWithLibp2p } from '@helia/libp2p'
import type { Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { type Logger, nullLogger } from '../../util/log.ts'
import { loadHasher } from '../../types/multihash.ts'
import { errorMessage, ShutdownError } from '../../errors.ts'
import type { BlockFetcher, CrdtBlockstore } from './types.ts'

/** What the exchange is built from. */
export interface BlockExchangeOptions {
  /** The cluster host's libp2p node (`host.libp2p`): pnet, Noise, Yamux. */
  libp2p: Libp2p
  /** The replica's blocks, served to peers and completed by fetches. */
  blocks: CrdtBlockstore
  log?: Logger
  /**
   * @helia/bitswap's `messageReceiveTimeout` (10 s by default): after this long without a message
   * on an inbound stream bitswap would reset it; here the stream is kept (module comment) and a
   * debug line says so. Tests shorten it.
   */
  messageReceiveTimeoutMs?: number
  /**
   * How often the wants still open are sent again to every connected peer (Go's bitswap
   * rebroadcasts its wantlist too; module comment). Default 5 s; 0 = never.
   */
  resendWantsMs?: number
}

/** Bitswap on the cluster host: a fetcher, and the blockstore to hand to the replica. */
export interface BlockExchange extends BlockFetcher {
  /** The replica's blockstore; `put` also sends the block to peers that want it. */
  blocks: CrdtBlockstore
  /** CIDs this peer wants right now (open fetches). */
  wants(): CID[]
  /** CIDs a connected peer has asked this one for and not yet received or cancelled. */
  peerWants(peerId: string): CID[]
  /** Counts since the start. */
  stats(): { fetched: number; served: number }
  /** Stops bitswap (its protocol handler and topology); open fetches reject. Idempotent. */
  stop(): Promise<void>
}

/** The bitswap block broker `withBitswap` builds (what of it this module uses). */
interface Broker {
  start(): Promise<void>
  stop(): Promise<void>
  retrieve(cid: CID, options: { signal: AbortSignal }): Promise<Uint8Array>
  announce(cid: CID, options?: { signal?: AbortSignal }): Promise<void>
  bitswap: {
    getWantlist(): { cid: CID }[]
    getPeerWantlist(peer: PeerId): { cid: CID }[] | undefined
    /** @helia/bitswap 4.0.19's WantList: what it wants, and per peer the wants it sent. */
    wantList?: {
      peers?: Map<unknown, Set<string>>
      sendMessagesDebounced?(): Promise<void>
    }
  }
}

/** The mixin `withBitswap` registers on the Helia it is given. */
interface Mixin {
  start(helia: unknown): Promise<void>
}

/** interface-store's not-found, by name: bitswap's ledger matches `err.name === 'NotFoundError'`. */
class BlockNotFoundError extends Error {
  override name = 'NotFoundError'
}

/**
 * Starts bitswap on the host's libp2p node over `opts.blocks`.
 *
 * @example
 * ```ts
 * const exchange = await startBlockExchange({ libp2p: host.libp2p, blocks })
 * ```
 */
export async function startBlockExchange(opts: BlockExchangeOptions): Promise<BlockExchange> {
  const { libp2p, blocks } = opts
  const log = opts.log ?? nullLogger
  const counts = { fetched: 0, served: 0 }

  // What bitswap's ledger reads when a peer wants a block: `has` first, then `get` as chunks.
  const served = {
    has: (cid: CID) => blocks.has(cid),
    async *get(cid: CID) {
      const bytes = await blocks.get(cid)
      if (!bytes) throw new BlockNotFoundError(`block ${cid} not found`)
      counts.served++
      yield bytes
    },
  }
  // Go's client, like this one, finds no providers: blocks come from connected peers only.
  const routing = {
    // deno-lint-ignore require-yield
    async *findProviders() {
      return
    },
  }
  const getHasher = (code: number) =>
    loadHasher(code) ?? Promise.reject(new Error(`no hasher for multihash 0x${code.toString(16)}`))

  let mixin: Mixin | undefined
  let broker: Broker | undefined
  const stand = {
    status: 'starting',
    libp2p: keepIdleInboundStreams(libp2p, log),
    blockstore: served,
    routing,
    logger: libp2p.logger,
    getHasher,
    addMixin: (m: Mixin) => mixin = m,
    hasBlockBroker: () => broker !== undefined,
    addBlockBroker: (b: Broker) => broker = b,
  }
  withBitswap(stand as unknown as HeliaWithLibp2p, {
    messageReceiveTimeout: opts.messageReceiveTimeoutMs,
  })
  if (!mixin) throw new Error('@helia/bitswap registered no mixin')
  await mixin.start(stand)
  if (!broker) throw new Error('@helia/bitswap created no block broker')
  const bitswap: Broker = broker

  let stopped: Promise<void> | undefined
  const open = new Set<AbortController>()

  // A want whose message failed to go out is lost for that peer: @helia/bitswap logs the send
  // error but records the want as sent (network.js swallows it), and never sends it again while
  // the connection lasts — the fetch then waits for the DAG syncer's timeout (2 min) while the
  // replica handles nothing else. Forgetting what was sent makes the next send carry every open
  // want to every peer again (Go's bitswap rebroadcasts its wantlist every 30 s for the same
  // reason). Only while wants are open: an idle exchange sends nothing.
  const resendMs = opts.resendWantsMs ?? 5_000
  const wantList = bitswap.bitswap.wantList
  const resend = resendMs > 0 && wantList?.peers && wantList.sendMessagesDebounced
    ? setInterval(() => {
      if (open.size === 0) return
      log.debug(
        `crdt: ${open.size} block fetches open; wants sent again to ${wantList.peers!.size} ` +
          `peers (connected: ${libp2p.getPeers().length})`,
      )
      for (const sent of wantList.peers!.values()) sent.clear()
      wantList.sendMessagesDebounced!().catch(() => {})
    }, resendMs)
    : undefined
  if (resendMs > 0 && resend === undefined) {
    log.warn('crdt: this @helia/bitswap has no WantList internals: open wants are not resent')
  }

  return {
    blocks: {
      has: (cid) => blocks.has(cid),
      get: (cid) => blocks.get(cid),
      async put(cid, bytes) {
        await blocks.put(cid, bytes)
        if (stopped) return
        // Peers whose want arrived before the block did.
        await bitswap.announce(cid).catch((err) =>
          log.debug(`crdt: could not offer ${cid} to waiting peers: ${errorMessage(err)}`)
        )
      },
    },

    async fetch(cid, signal) {
      if (stopped) throw new ShutdownError('crdt block exchange is stopped')
      signal.throwIfAborted()
      const local = await blocks.get(cid)
      if (local) return local
      const ctl = new AbortController()
      open.add(ctl)
      try {
        const bytes = await bitswap.retrieve(cid, { signal: AbortSignal.any([signal, ctl.signal]) })
        counts.fetched++
        return bytes
      } catch (err) {
        // Bitswap's own abort error says only "Want was aborted": give the caller its reason.
        signal.throwIfAborted()
        if (ctl.signal.aborted) throw new ShutdownError('crdt block exchange is stopped')
        throw err
      } finally {
        open.delete(ctl)
      }
    },

    wants: () => bitswap.bitswap.getWantlist().map((w) => w.cid),

    peerWants: (peerId) =>
      (bitswap.bitswap.getPeerWantlist(peerIdFromString(peerId)) ?? []).map((w) => w.cid),

    stats: () => ({ ...counts }),

    stop() {
      stopped ??= (async () => {
        clearInterval(resend)
        for (const ctl of open) ctl.abort()
        await bitswap.stop()
      })()
      return stopped
    },
  }
}

/** @helia/bitswap's reason when an inbound stream was idle for `messageReceiveTimeout`. */
function isIdleTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === 'TimeoutError' &&
    err.message.startsWith('Incoming Bitswap stream timed out')
}

/**
 * The libp2p node as bitswap sees it: the same node, but the inbound streams of the protocols
 * bitswap handles ignore bitswap's idle-timeout abort (module comment). Every other call goes to
 * the node itself (bound to it: libp2p keeps private state).
 */
function keepIdleInboundStreams(libp2p: Libp2p, log: Logger): Libp2p {
  const wrap = (stream: Stream): Stream =>
    passThrough(stream, {
      abort: (err: Error) => {
        if (isIdleTimeout(err)) {
          log.debug(`crdt: kept idle inbound bitswap stream ${stream.id} open`)
          return
        }
        stream.abort(err)
      },
    })
  return passThrough(libp2p, {
    handle: (protocols: string | string[], handler: StreamHandler, opts?: object) =>
      libp2p.handle(protocols, (stream, conn) => handler(wrap(stream), conn), opts),
  })
}

/** `target` with some members replaced; the others read from it, methods bound to it. */
function passThrough<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop]
      const v = Reflect.get(t, prop, t)
      return typeof v === 'function' ? v.bind(t) : v
    },
  })
}
