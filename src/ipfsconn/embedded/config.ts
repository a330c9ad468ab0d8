/**
 * The `ipfs_connector.embedded` section (env CLUSTER_EMBEDDED_<KEY>): a Helia node inside the
 * peer. Not in the reference (it has no embedded node); see docs/compat.md and docs/embedded.md.
 *
 * The node is a networked IPFS node by default (libp2p + bitswap over TCP on
 * `listen_multiaddress`), but it reaches only the nodes it is told about (`peering`, the
 * connector's `connectSwarms`, pin origins, nodes that dial it) unless `public_network` is on.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  type Field,
  maddrList,
  str,
} from '../../config/schema.ts'
import { parseStorageSize } from './storage_size.ts'

/**
 * The default swarm port: next to the cluster's own 9094–9097, and not Kubo's 4001, so that a
 * peer runs beside a Kubo daemon on the same machine without a clash.
 */
export const DEFAULT_SWARM_PORT = 9098

/** A multiaddress list whose every element passes `check` (which returns a message or nothing). */
function maddrs(def: string[], check: (a: string) => string | undefined): Field<string[]> {
  return {
    ...maddrList(def),
    check(v) {
      for (const a of v) {
        const msg = check(a)
        if (msg) return `${a}: ${msg}`
      }
    },
  }
}

const names = (a: string) => multiaddr(a).getComponents().map((c) => c.name)

/** What the TCP transport can listen on: /ip4|ip6/<address>/tcp/<port>. */
function listenable(a: string): string | undefined {
  const n = names(a)
  if (n.length === 2 && (n[0] === 'ip4' || n[0] === 'ip6') && n[1] === 'tcp') return
  return 'the embedded node listens on TCP only: use /ip4/<address>/tcp/<port> or ' +
    '/ip6/<address>/tcp/<port>'
}

/** What other nodes can dial: an IP or DNS name and a TCP port. */
function announceable(a: string): string | undefined {
  const n = names(a)
  const host = ['ip4', 'ip6', 'dns', 'dns4', 'dns6']
  if (n.length === 2 && host.includes(n[0]) && n[1] === 'tcp') return
  return 'use /ip4/<address>/tcp/<port>, /ip6/… or /dns4/<name>/tcp/<port>'
}

/** A peer to stay connected to: any dialable address that ends with /p2p/<peer ID>. */
function peerAddress(a: string): string | undefined {
  const c = multiaddr(a).getComponents()
  const last = c[c.length - 1]
  if (c.length < 2 || last.name !== 'p2p' || !last.value) {
    return 'must end with /p2p/<peer ID>, e.g. /ip4/10.0.0.2/tcp/9098/p2p/12D3KooW…'
  }
  try {
    peerIdFromString(last.value)
  } catch {
    return `${last.value} is not a peer ID`
  }
}

/** Field definitions of `ipfs_connector.embedded`. */
export const embeddedSection = defineSection('ipfs_connector.embedded', 'EMBEDDED', {
  /** Where blocks and the node's datastore live; relative paths are under the config folder. */
  folder: str('ipfs'),
  /**
   * Run libp2p (TCP, bitswap) for the embedded node. Off = a purely local store that serves only
   * the blocks added to it and never listens or dials.
   */
  libp2p: bool(true),
  /** Swarm listen addresses (TCP). All interfaces, like Kubo, on a port Kubo does not use. */
  listen_multiaddress: maddrs([`/ip4/0.0.0.0/tcp/${DEFAULT_SWARM_PORT}`], listenable),
  /** The addresses told to other nodes instead of the listen addresses (empty: the listen ones). */
  announce_multiaddress: maddrs([], announceable),
  /**
   * IPFS nodes to stay connected to (Kubo's `Peering.Peers`): dialled at start and re-dialled
   * with backoff whenever the connection drops.
   */
  peering: maddrs([], peerAddress),
  /**
   * Join the public IPFS network: its bootstrap peers, the Amino DHT and delegated routing
   * (finding and announcing content). Off: nothing but the listen and peering addresses.
   */
  public_network: bool(false),
  /** A pin fails when no new block arrives for this long (no total limit: big DAGs take long). */
  pin_timeout: duration(2 * 60_000, { positive: true }),
  /** Storage limit reported as StorageMax (for the freespace informer), in bytes; 0 = disk size. */
  storage_max: {
    ...str('10GB'),
    check(v: string) {
      try {
        parseStorageSize(v)
      } catch (err) {
        return (err as Error).message
      }
    },
  },
})

/** The loaded `ipfs_connector.embedded` section. */
export type EmbeddedConfig = ConfigOf<typeof embeddedSection.fields>
