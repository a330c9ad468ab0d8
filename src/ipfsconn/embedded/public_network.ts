/**
 * What the embedded node adds to its libp2p when `public_network` is on: the public IPFS
 * network's bootstrap peers, the Amino DHT (`/ipfs/kad/1.0.0`, client mode until AutoNAT finds
 * the node publicly dialable), delegated HTTP routing at delegated-ipfs.dev, AutoNAT and
 * identify-push — the routing half of Helia's `createHelia()` defaults, for the transports this
 * node has (TCP). Left out on purpose: mDNS and UPnP (they probe the LAN and the router),
 * circuit relay, WebRTC, WebSockets and auto-TLS.
 *
 * Loaded only when the switch is on (a dynamic import from network.ts), so a node without it
 * neither builds nor loads any of this.
 *
 * @example
 * ```ts
 * const extra = publicNetworkParts()
 * createLibp2p({ ...base, peerDiscovery: extra.peerDiscovery, services: { ...base.services, ...extra.services } })
 * ```
 */
import { bootstrap } from '@libp2p/bootstrap'
import { kadDHT, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { autoNAT } from '@libp2p/autonat'
import { identifyPush } from '@libp2p/identify'
import {
  delegatedRoutingV1HttpApiClientContentRouting,
  delegatedRoutingV1HttpApiClientPeerRouting,
} from '@helia/delegated-routing-v1-http-api-client'
import type { Libp2pOptions } from 'libp2p'

/**
 * The public network's bootstrap peers: Kubo 0.43's built-in list (boxo's
 * `autoconf.FallbackBootstrapPeers`), TCP entries only since this node speaks TCP.
 */
export const PUBLIC_BOOTSTRAP_PEERS = [
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt',
  '/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8',
  '/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ',
]

/** The delegated routing endpoint Kubo and Helia use by default (IPNI + DHT behind HTTP). */
export const DELEGATED_ROUTING_URL = 'https://delegated-ipfs.dev'

/** The libp2p discovery and services of the public network. */
export function publicNetworkParts(): Required<Pick<Libp2pOptions, 'peerDiscovery'>> & {
  services: NonNullable<Libp2pOptions['services']>
} {
  const delegated = {
    url: DELEGATED_ROUTING_URL,
    // Providers this node can fetch from: bitswap over TCP.
    filterProtocols: ['unknown', 'transport-bitswap'],
    filterAddrs: ['tcp'],
  }
  const dht = kadDHT({ peerInfoMapper: removePrivateAddressesMapper })
  return {
    peerDiscovery: [bootstrap({ list: PUBLIC_BOOTSTRAP_PEERS })],
    services: {
      // kad-dht reads the `ping` service from its components, which network.ts always adds.
      dht: (components) => dht(components as unknown as Parameters<typeof dht>[0]),
      autoNAT: autoNAT(),
      identifyPush: identifyPush(),
      delegatedContentRouting: delegatedRoutingV1HttpApiClientContentRouting(delegated),
      delegatedPeerRouting: delegatedRoutingV1HttpApiClientPeerRouting(delegated),
    },
  }
}
