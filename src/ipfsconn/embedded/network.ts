/**
 * The embedded node's libp2p: TCP + Noise + Yamux with identify and ping (what Kubo speaks,
 * so the two exchange blocks; bitswap is added by Helia's `withBitswap`), listening where the
 * config says. Nothing discovers or dials on its own unless `publicNetwork` is on, which adds
 * the public network's parts (public_network.ts, loaded only then).
 *
 * Also here: finding out why listening failed. libp2p reports a busy port as one multi-line
 * error with a stack trace and advice about its own `transportManager.faultTolerance`; the
 * connector wants the address and the reason, to say which service.json key to change.
 *
 * @example
 * ```ts
 * const init = await libp2pOptions(privateKey, { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], publicNetwork: false })
 * ```
 */
import type { Libp2pOptions } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { ListenFailures } from '../../net/listen_error.ts'

/** Where and how the node is networked. */
export interface NetworkOptions {
  /** TCP listen multiaddrs (may be empty: the node then only dials). */
  listen: string[]
  /** Addresses told to other nodes instead of the listen ones; empty = the listen ones. */
  announce: string[]
  /** Join the public IPFS network (bootstrap, DHT, delegated routing). */
  publicNetwork: boolean
}

/** The options `withLibp2pLight` gets. */
export async function libp2pOptions(
  privateKey: PrivateKey,
  opts: NetworkOptions,
  failures?: ListenFailures,
): Promise<Libp2pOptions> {
  const init: Libp2pOptions = {
    privateKey,
    addresses: {
      listen: opts.listen,
      announce: opts.announce.length ? opts.announce : undefined,
    },
    transports: [failures ? failures.wrap(tcp()) : tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  }
  if (!opts.publicNetwork) return init
  const { publicNetworkParts } = await import('./public_network.ts')
  const extra = publicNetworkParts()
  return {
    ...init,
    peerDiscovery: extra.peerDiscovery,
    services: { ...init.services, ...extra.services },
  }
}
