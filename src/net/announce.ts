/**
 * `cluster.no_announce_multiaddress` as a libp2p address filter. libp2p 3 declares a
 * `noAnnounce` option but never reads it; `announceFilter` is what its address manager applies,
 * to `getMultiaddrs()` and to what identify tells other peers. Entries work as the reference's
 * (`makeAddrsFactory`): an exact multiaddress, or an IP range as `/ip4/<net>/ipcidr/<bits>`
 * (`/ip6/…` too) that hides every address inside it.
 *
 * @example
 * ```ts
 * const keep = noAnnounceFilter(['/ip4/10.0.0.0/ipcidr/8', '/ip4/127.0.0.1/tcp/9096'])
 * keep([multiaddr('/ip4/10.1.2.3/tcp/9096/p2p/12D3…')]) // []
 * ```
 */
import { BlockList } from 'node:net'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Drops what `noAnnounce` names from a list of addresses (with or without /p2p/). */
export function noAnnounceFilter(noAnnounce: string[]): (addrs: Multiaddr[]) => Multiaddr[] {
  const exact = new Set<string>()
  const ranges = new BlockList()
  for (const a of noAnnounce) {
    const m = /^\/(ip4|ip6)\/([^/]+)\/ipcidr\/(\d+)$/.exec(a)
    if (m) ranges.addSubnet(m[2], Number(m[3]), m[1] === 'ip4' ? 'ipv4' : 'ipv6')
    else exact.add(withoutPeer(a))
  }
  if (!noAnnounce.length) return (addrs) => addrs
  return (addrs) =>
    addrs.filter((ma) => {
      if (exact.has(withoutPeer(ma.toString()))) return false
      const [ip] = ma.getComponents()
      if (ip?.name === 'ip4' || ip?.name === 'ip6') {
        return !ranges.check(ip.value!, ip.name === 'ip4' ? 'ipv4' : 'ipv6')
      }
      return true
    })
}

/** The address without its trailing `/p2p/<id>`. */
export function withoutPeer(addr: string): string {
  return addr.replace(/\/(p2p|ipfs)\/[^/]+$/, '')
}
