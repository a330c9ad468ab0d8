/**
 * The cluster peers this host knows how to reach, and in which order it tries them: the
 * reference's `pstoremgr` as a pure data structure (the host feeds it and asks it; libp2p's peer
 * store holds what identify learns, which the host merges in when it dials or saves).
 *
 * Priorities, lowest first, as the reference sets them: `cluster.peer_addresses` and addresses
 * given to `connect` are 0; peerstore lines 1, 2, … in file order; a peer the start-up bootstrap
 * failed to reach drops to 9999; a peer with no priority (learnt from identify) counts as 0.
 * Two deliberate differences: a peer named by several lines keeps its first line's rank (the
 * reference's last line wins, which only matters for hand-edited files), and a peer in both
 * `peer_addresses` and the peerstore keeps priority 0 (the reference lets the peerstore line
 * override it, so a "permanent, first" peer could lose its place).
 *
 * `forget(id)` drops a removed peer: its addresses go, it is never dialled by a bootstrap nor
 * saved again, until an address of it is added again.
 *
 * @example
 * ```ts
 * const book = peerBook(selfId)
 * book.add('/ip4/10.0.0.1/tcp/9096/p2p/12D3…', 0)
 * book.ordered(book.peers(), true, Math.random) // by priority, ties shuffled
 * ```
 */
import { parsePeerMultiaddr } from '../config/peer_multiaddr.ts'
import { withoutPeer } from './announce.ts'

/** The priority of a peer a bootstrap could not reach. */
export const FAILED_PRIORITY = 9999

/** A peer address with its `/p2p/<id>` split off. */
export interface PeerAddr {
  peerId: string
  /** The transport part (no /p2p/). */
  addr: string
}

/**
 * Splits `/…/p2p/<id>` (the one parser of peer multiaddresses, config/peer_multiaddr.ts); throws a
 * `ValidationError` saying what is wrong.
 */
export function splitPeerAddr(addr: string): PeerAddr {
  const p = parsePeerMultiaddr(addr)
  return { peerId: p.id, addr: withoutPeer(p.addr) }
}

/** The address book. */
export interface PeerBook {
  /** Adds an address (with /p2p/); keeps the better (lower) priority; returns the peer ID. */
  add(addr: string, priority: number): string
  /** Drops a peer's addresses and keeps it out of bootstraps and saves. */
  forget(peerId: string): void
  isForgotten(peerId: string): boolean
  /** Sets a peer's priority (a failed bootstrap dial: FAILED_PRIORITY). */
  setPriority(peerId: string, priority: number): void
  priority(peerId: string): number
  /** Transport addresses known here for a peer (no /p2p/). */
  addrs(peerId: string): string[]
  /** Peers with addresses here, self and forgotten ones excluded. */
  peers(): string[]
  /** `ids` by priority, ties in random order (`byPriority`), or all shuffled. */
  ordered(ids: string[], byPriority: boolean, random: () => number): string[]
}

/** A new, empty book for the host `selfId`. */
export function peerBook(selfId: string): PeerBook {
  const addrs = new Map<string, Set<string>>()
  const prio = new Map<string, number>()
  const forgotten = new Set<string>()
  const book: PeerBook = {
    add(addr, priority) {
      const p = splitPeerAddr(addr)
      if (p.peerId === selfId) return p.peerId
      forgotten.delete(p.peerId)
      let set = addrs.get(p.peerId)
      if (!set) addrs.set(p.peerId, set = new Set())
      set.add(p.addr)
      const had = prio.get(p.peerId)
      if (had === undefined || priority < had) prio.set(p.peerId, priority)
      return p.peerId
    },
    forget(id) {
      addrs.delete(id)
      prio.delete(id)
      forgotten.add(id)
    },
    isForgotten: (id) => forgotten.has(id),
    setPriority(id, priority) {
      prio.set(id, priority)
    },
    priority: (id) => prio.get(id) ?? 0,
    addrs: (id) => [...addrs.get(id) ?? []],
    peers: () => [...addrs.keys()],
    ordered(ids, byPriority, random) {
      const keyed = ids.map((id) => ({ id, p: byPriority ? book.priority(id) : 0, r: random() }))
      keyed.sort((a, b) => a.p - b.p || a.r - b.r)
      return keyed.map((k) => k.id)
    },
  }
  return book
}

/**
 * The peerstore file's lines for these peers and their addresses: peers by priority (ties by
 * ID, so the file does not change between two saves of the same book), each peer's addresses
 * sorted, only its DNS ones when it has some (they survive an IP change), as the reference
 * writes it.
 */
export function peerstoreLines(
  peers: { peerId: string; addrs: string[]; priority: number }[],
): string[] {
  const sorted = [...peers].sort((a, b) =>
    a.priority - b.priority || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  )
  const lines: string[] = []
  for (const p of sorted) {
    const dns = p.addrs.filter((a) => /^\/dns(4|6|addr)?\//.test(a))
    for (const a of [...new Set(dns.length ? dns : p.addrs)].sort()) {
      lines.push(`${a}/p2p/${p.peerId}`)
    }
  }
  return lines
}
