/**
 * The cluster's libp2p host: TCP + Noise + Yamux, identify and ping, the cluster secret as a
 * libp2p private network (pnet), and the reference's peer handling around it:
 *
 * - the peerstore file (peer_book.ts) loaded at start and written by `stop()`, with
 *   `cluster.peer_addresses` added first (priority 0, never dropped);
 * - at start, connections to up to 3 known peers by priority, then the re-bootstrap loop
 *   (bootstrap.ts) on the injected clock;
 * - `announce_multiaddress` replaces and `no_announce_multiaddress` filters (announce.ts) what
 *   `addresses()` returns and identify tells other peers;
 * - a peer with another cluster secret is refused at once, with one line on each side
 *   (secret_check.ts);
 * - `connect(addr)` for `daemon --bootstrap`, `forget(id)` for a removed peer.
 *
 * Connection manager: libp2p 3 has one limit, `maxConnections`, above which it closes the
 * connections of least value (newest, inbound first) until it is back at the limit; it has no
 * low watermark and no grace period. So `high_water` is `maxConnections`, `low_water` is what
 * the re-bootstrap loop tops connections up to (as in the reference), and `grace_period` has no
 * counterpart (docs/compat.md).
 *
 * The RPC wire and the Raft transport ride on `host.libp2p`; the peer monitor's metrics on its
 * gossipsub (`host.pubsub`, pubsub.ts).
 *
 * @example
 * ```ts
 * const host = await startHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], secret })
 * host.addresses() // ['/ip4/127.0.0.1/tcp/40123/p2p/12D3…']
 * const id = await host.connect('/ip4/127.0.0.1/tcp/9096/p2p/12D3…')
 * await host.stop() // saves the peerstore
 * ```
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { fixXsalsa20 } from './xsalsa20_fix.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { isAbsolute, join } from 'node:path'
import { listenFailures } from './listen_error.ts'
import { noAnnounceFilter } from './announce.ts'
import { peerBook, peerstoreLines, splitPeerAddr } from './peer_book.ts'
import { bootstrap, BOOTSTRAP_COUNT, type Dialer, rebootstrapLoop } from './bootstrap.ts'
import { checkSecret, SECRET_MISMATCH } from './secret_check.ts'
import { loadPeerstore, savePeerstore } from '../config/peerstore.ts'
import { type Clock, systemClock } from '../util/clock.ts'
import { type Logger, nullLogger } from '../util/log.ts'
import { ClusterError, errorMessage } from '../errors.ts'
import type { ClusterConfig } from '../cluster/config.ts'
import {
  clusterGossipsub,
  type GossipSub,
  type PubsubOptions,
  pubsubOptionsFrom,
} from './pubsub.ts'
import { bandwidthMeter } from './bandwidth.ts'
import type { BandwidthStats } from '../components.ts'

/** Options of the cluster host. */
export interface HostOptions {
  privateKey: PrivateKey
  /** Listen multiaddrs; UDP/QUIC ones are skipped (TCP only, as the reference does with pnet). */
  listen: string[]
  /** 64-hex cluster secret; '' = no private network. */
  secret: string
  /** Addresses announced instead of the listen addresses (`announce_multiaddress`). */
  announce?: string[]
  /** Addresses, or `/ipcidr/` ranges, never announced (`no_announce_multiaddress`). */
  noAnnounce?: string[]
  /** `connection_manager`: see the module comment for the mapping. */
  connectionManager?: { highWater: number; lowWater: number }
  /** `peer_addresses`: dialled first, kept for good. */
  peerAddresses?: string[]
  /** The peerstore file; none: nothing is loaded or saved. */
  peerstoreFile?: string
  /** How long one dial may take (`dial_peer_timeout`); default 3 s. */
  dialTimeout?: number
  /** Gossipsub's settings (`cluster.pubsub`); default its defaults. */
  pubsub?: PubsubOptions
  clock?: Clock
  log?: Logger
  /** Shuffles peers of equal priority; default Math.random. */
  random?: () => number
}

/** A running host. */
export interface ClusterHost {
  libp2p: Libp2p
  /** The host's gossipsub (pubsub.ts). */
  pubsub: GossipSub
  peerId: string
  /** Peers the start-up bootstrap connected to (the reference logs a ping metric for each). */
  bootstrapped: string[]
  /** Announced addresses with the /p2p/ suffix, as `GET /id` shows them. */
  addresses(): string[]
  /**
   * Adds a peer's address (with /p2p/) to the book at priority 0 and dials it; resolves with the
   * peer's ID (its own, without dialling, for this host's address). Fails with a one-line
   * `ConnectError`.
   */
  connect(addr: string, signal?: AbortSignal): Promise<string>
  /** Drops a removed peer: not dialled by bootstraps, not saved, until `connect` names it. */
  forget(peerId: string): Promise<void>
  /** Every peer with a known address (the book's and libp2p's), self and forgotten ones out. */
  knownPeers(): Promise<string[]>
  /** The addresses known for a peer (the book's and libp2p's), each with /p2p/<peerId>. */
  peerAddresses(peerId: string): Promise<string[]>
  /** Bytes and rates by libp2p protocol (bandwidth.ts), for `GET /health/bandwidth`. */
  bandwidth(): Record<string, BandwidthStats>
  /** Resolves once no re-bootstrap round is running. */
  idle(): Promise<void>
  /** Stops the loop, saves the peerstore (unless `save: false`), stops libp2p; idempotent. */
  stop(opts?: { save?: boolean }): Promise<void>
}

/** A dial that failed; the message is one line: `cannot connect to <addr>: <why>`. */
export class ConnectError extends ClusterError {
  override name = 'ConnectError'
  readonly address: string
  constructor(address: string, why: string) {
    super(`cannot connect to ${address}: ${why}`)
    this.address = address
  }
}

/** pnet's protector, with its cipher's shared memory kept from growing without end. */
function protector(secret: string) {
  fixXsalsa20()
  return preSharedKey({ psk: secretToSwarmKey(secret) })
}

/** Turns a 64-hex cluster secret into the swarm.key v1 text libp2p's pnet expects. */
export function secretToSwarmKey(secretHex: string): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${secretHex}`)
}

/** The host options `cluster` config gives (the caller adds the key, clock and logger). */
export function hostOptionsFrom(
  cfg: ClusterConfig,
  configDir: string,
): Omit<HostOptions, 'privateKey'> {
  const file = cfg.peerstore_file || 'peerstore'
  return {
    listen: cfg.listen_multiaddress,
    secret: cfg.secret,
    announce: cfg.announce_multiaddress,
    noAnnounce: cfg.no_announce_multiaddress,
    connectionManager: {
      highWater: cfg.connection_manager.high_water,
      lowWater: cfg.connection_manager.low_water,
    },
    peerAddresses: cfg.peer_addresses ?? [],
    peerstoreFile: isAbsolute(file) ? file : join(configDir, file),
    dialTimeout: cfg.dial_peer_timeout,
    pubsub: pubsubOptionsFrom(cfg.pubsub),
  }
}

/**
 * Starts the host, loads the peerstore, connects to up to 3 known peers and starts the
 * re-bootstrap loop. An address it cannot listen on fails with a one-line `ListenError` naming
 * `cluster.listen_multiaddress`.
 */
export async function startHost(opts: HostOptions): Promise<ClusterHost> {
  const clock = opts.clock ?? systemClock
  const log = opts.log ?? nullLogger
  const random = opts.random ?? Math.random
  const dialTimeout = opts.dialTimeout ?? 3000
  const listen = opts.listen.filter((a) => a.includes('/tcp/') && !a.includes('/quic'))
  const failures = listenFailures()
  const meter = bandwidthMeter({ clock })
  const node = await createLibp2p({
    metrics: meter.metrics,
    privateKey: opts.privateKey,
    addresses: {
      listen,
      announce: opts.announce?.length ? opts.announce : undefined,
      announceFilter: noAnnounceFilter(opts.noAnnounce ?? []),
    },
    transports: [failures.wrap(tcp())],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: checkSecret(
      opts.secret ? protector(opts.secret) : undefined,
      { log, clock },
    ),
    connectionManager: {
      maxConnections: opts.connectionManager?.highWater,
      dialTimeout,
    },
    // libp2p 3 pings every connection every 10 s and by default aborts it when a ping is late.
    // Behind a bulk transfer (an add streaming blocks to a peer) a ping waits in the same TCP
    // queue as megabytes of data, so it was late and the transfer's connection was cut ("The
    // operation was aborted due to timeout"). Cluster peers judge each other by their ping metrics
    // and Raft's heartbeats; a connection ends when its socket does (as with the Go original).
    connectionMonitor: { abortConnectionOnPingFailure: false },
    // Cluster peers are few and known: libp2p forgets addresses not seen for an hour and peers
    // not updated for six, after which the RPC wire and Raft could no longer dial a member by
    // its ID. The book decides what is dropped (`forget`).
    peerStore: { maxAddressAge: Infinity, maxPeerAge: Infinity },
    services: {
      identify: identify(),
      // Protocols registered after a connection was identified (a CRDT peer's bitswap starts
      // after the host dials its first peers) reach the other side only by a push: without it a
      // peer that connected early never counted this one as a bitswap peer and sent it no wants
      // (the CRDT e2e saw a peer wait for a block with 3 connections and 0 bitswap peers). Go
      // peers push too.
      identifyPush: identifyPush(),
      ping: ping(),
      pubsub: clusterGossipsub(opts.pubsub),
    },
  }).catch((err) => {
    meter.stop()
    return failures.rethrow('cluster.listen_multiaddress', err)
  })
  const peerId = node.peerId.toString()
  const book = peerBook(peerId)

  const idOf = (id: string): PeerId => peerIdFromString(id)
  /** Addresses libp2p's peer store holds for a peer (identify's, the dialled ones). */
  const storeAddrs = async (id: string): Promise<string[]> => {
    try {
      const p = await node.peerStore.get(idOf(id))
      return p.addresses.map((a) => a.multiaddr.toString())
    } catch {
      return []
    }
  }
  const allAddrs = async (id: string) => [...new Set([...book.addrs(id), ...await storeAddrs(id)])]
  const dialer: Dialer = {
    book,
    async knownPeers() {
      const ids = new Set(book.peers())
      for (const p of await node.peerStore.all()) {
        if (p.addresses.length) ids.add(p.id.toString())
      }
      ids.delete(peerId)
      return [...ids].filter((id) => !book.isForgotten(id))
    },
    connections: () => node.getConnections().length,
    isConnected: (id) => node.getConnections(idOf(id)).length > 0,
    async dial(id, signal) {
      const addrs = await allAddrs(id)
      if (!addrs.length) throw new Error('no known address')
      await node.dial(addrs.map((a) => multiaddr(`${a}/p2p/${id}`)), { signal })
    },
    random,
    log,
  }

  /** Adds an address to the book and to libp2p's peer store (dials by peer ID use it). */
  const remember = async (addr: string, priority: number) => {
    const id = book.add(addr, priority)
    if (id !== peerId) {
      await node.peerStore.merge(idOf(id), { multiaddrs: [multiaddr(splitPeerAddr(addr).addr)] })
    }
    return id
  }
  const importAddrs = async (addrs: string[], priority: (i: number) => number, from: string) => {
    for (const [i, a] of addrs.entries()) {
      try {
        multiaddr(a)
        await remember(a, priority(i))
      } catch (err) {
        log.warn(`${from}: skipping ${a}: ${errorMessage(err)}`)
      }
    }
  }
  try {
    await importAddrs(opts.peerAddresses ?? [], () => 0, 'cluster.peer_addresses')
    if (opts.peerstoreFile) {
      await importAddrs(await loadPeerstore(opts.peerstoreFile), (i) => i + 1, opts.peerstoreFile)
    }
  } catch (err) {
    meter.stop()
    await node.stop()
    throw err
  }
  // Dials are one after the other (the order is the priority); a peerstore full of addresses
  // that never answer would hold the start for a dial timeout each, so the start waits for
  // at most a dozen of them and leaves the rest to the loop.
  const bootstrapped = await bootstrap(
    dialer,
    BOOTSTRAP_COUNT,
    true,
    true,
    AbortSignal.timeout(12 * dialTimeout),
  ).catch(() => [] as string[])
  log.debug(`bootstrapped to ${bootstrapped.length} peers`)
  const loop = rebootstrapLoop(dialer, {
    lowWater: opts.connectionManager?.lowWater ?? 100,
    priorityPeers: (opts.peerAddresses ?? []).length > 0,
    clock,
    log,
  })

  const save = async () => {
    if (!opts.peerstoreFile) return
    const peers = []
    for (const id of await dialer.knownPeers()) {
      peers.push({ peerId: id, addrs: await allAddrs(id), priority: book.priority(id) })
    }
    await savePeerstore(opts.peerstoreFile, peerstoreLines(peers))
  }

  let stopped: Promise<void> | undefined
  return {
    libp2p: node,
    pubsub: node.services.pubsub,
    peerId,
    bootstrapped,
    addresses() {
      return node.getMultiaddrs().map((m) => {
        const s = m.toString()
        return s.includes('/p2p/') ? s : `${s}/p2p/${peerId}`
      })
    },
    async connect(addr, signal) {
      let id: string
      try {
        multiaddr(addr)
        id = splitPeerAddr(addr).peerId
        idOf(id)
      } catch (err) {
        throw new ConnectError(addr, `not a peer multiaddress (${errorMessage(err)})`)
      }
      if (id === peerId) return id
      await remember(addr, 0)
      const timeout = AbortSignal.timeout(dialTimeout)
      try {
        await node.dial(multiaddr(addr), {
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        })
      } catch (err) {
        throw new ConnectError(addr, why(err, timeout.aborted, dialTimeout))
      }
      return id
    },
    knownPeers: () => dialer.knownPeers(),
    async peerAddresses(id) {
      return (await allAddrs(id)).map((a) => a.includes('/p2p/') ? a : `${a}/p2p/${id}`)
    },
    async forget(id) {
      book.forget(id)
      try {
        await node.peerStore.delete(idOf(id))
      } catch {
        // not a peer ID libp2p knows: nothing stored
      }
    },
    bandwidth: () => meter.byProtocol(),
    idle: () => loop.idle(),
    stop(stopOpts) {
      stopped ??= (async () => {
        await loop.stop()
        try {
          if (stopOpts?.save !== false) await save()
        } catch (err) {
          log.error(`could not save the peerstore to ${opts.peerstoreFile}: ${errorMessage(err)}`)
        }
        await node.stop()
        meter.stop()
      })()
      return stopped
    },
  }
}

/** Every message in an error and its causes (libp2p nests them in AggregateErrors). */
function messages(err: unknown, depth = 0): string[] {
  if (!(err instanceof Error) || depth > 4) return [String(err)]
  const out = [`${err.name}: ${err.message}`]
  const nested = (err as { errors?: unknown[] }).errors
  if (Array.isArray(nested)) { for (const e of nested) out.push(...messages(e, depth + 1)) }
  if (err.cause) out.push(...messages(err.cause, depth + 1))
  return out
}

/** Why a dial failed, in words. */
function why(err: unknown, timedOut: boolean, timeoutMs: number): string {
  const all = messages(err).join('\n')
  if (all.includes(SECRET_MISMATCH)) return SECRET_MISMATCH
  if (/ECONNREFUSED|connection refused/i.test(all)) {
    return 'connection refused (is a cluster peer running and listening there?)'
  }
  // Noise's check of the remote's key against the /p2p/ part of the address.
  const other = /identity key (\S+) does not match expected remote identity/.exec(all)
  if (other || /UnexpectedPeerError/.test(all)) {
    return `another peer answers at that address${
      other ? ` (${other[1]})` : ''
    }; check the /p2p/ peer ID`
  }
  if (timedOut) return `no answer within ${timeoutMs / 1000} s (cluster.dial_peer_timeout)`
  return errorMessage(err).split('\n')[0]
}
