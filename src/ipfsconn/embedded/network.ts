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
 * const problem = listenProblem(['/ip4/0.0.0.0/tcp/9098']) // { addr, what: 'address already in use; …' }
 * ```
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'

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
): Promise<Libp2pOptions> {
  const init: Libp2pOptions = {
    privateKey,
    addresses: {
      listen: opts.listen,
      announce: opts.announce.length ? opts.announce : undefined,
    },
    transports: [tcp()],
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

/** Why a listen address cannot be listened on. */
export interface ListenProblem {
  addr: string
  /** What went wrong and what to do, e.g. "address already in use; stop the program using it…". */
  what: string
}

/**
 * Tries each TCP listen address (after libp2p failed to listen) and returns the first that
 * cannot be bound, with the reason; undefined when all bind now (the failure was elsewhere).
 */
export function listenProblem(addrs: string[]): ListenProblem | undefined {
  for (const addr of addrs) {
    const opts = tcpListenOptions(addr)
    if (!opts) continue
    try {
      Deno.listen({ ...opts, transport: 'tcp' }).close()
    } catch (err) {
      return { addr, what: explainListenError(err) }
    }
  }
  return undefined
}

/**
 * What a Deno.listen error means and what to do, in the words src/net/listen_error.ts (the
 * daemon's other listeners) uses for the same OS errors.
 */
export function explainListenError(err: unknown): string {
  if (err instanceof Deno.errors.AddrInUse) {
    return 'address already in use; stop the program using it or set another address'
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return 'no interface of this machine has that IP address; use one of its addresses, ' +
      '127.0.0.1 or 0.0.0.0'
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return 'permission denied (ports below 1024 need privileges); use another port'
  }
  return `${err instanceof Error ? err.message : String(err)}; check the address`
}

function tcpListenOptions(addr: string): { hostname: string; port: number } | undefined {
  try {
    const c = multiaddr(addr).getComponents()
    if (c.length !== 2 || c[1].name !== 'tcp' || !c[0].value) return undefined
    if (c[0].name !== 'ip4' && c[0].name !== 'ip6') return undefined
    return { hostname: c[0].value, port: Number(c[1].value) }
  } catch {
    return undefined
  }
}
