/**
 * TCP proxies between cluster peers on 127.0.0.1, one per ordered pair, so that a test can cut the
 * link between two peers (or a minority off the rest) and heal it again, with real sockets and
 * without a network namespace per peer.
 *
 * Peer `a` reaches peer `b` only through the proxy `a>b` (the harness writes that address into
 * `a`'s peerstore and keeps `b` from announcing its own listener). A cut closes every connection
 * both proxies of the pair carry and refuses new ones until the pair is healed; libp2p reuses a
 * connection in both directions, so both proxies of a pair go down together.
 *
 * @example
 * ```ts
 * const links = new LinkProxies()
 * const port = links.open('A', 'B', 4001) // A dials 127.0.0.1:<port> to reach B on :4001
 * links.cut('A', 'B')
 * links.heal('A', 'B')
 * await links.close()
 * ```
 */

/** One ordered pair's listener and the connections it carries. */
interface Link {
  listener: Deno.TcpListener
  target: number
  cut: boolean
  conns: Set<Deno.TcpConn>
  loop: Promise<void>
}

/** The proxies of one cluster. */
export class LinkProxies {
  #links = new Map<string, Link>()

  /** Opens the proxy `from>to` towards `127.0.0.1:targetPort`; returns the port it listens on. */
  open(from: string, to: string, targetPort: number): number {
    const key = pairKey(from, to)
    const existing = this.#links.get(key)
    if (existing) {
      if (existing.target !== targetPort) {
        throw new Error(`link ${key} already proxies to port ${existing.target}`)
      }
      return (existing.listener.addr as Deno.NetAddr).port
    }
    const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
    const link: Link = { listener, target: targetPort, cut: false, conns: new Set(), loop: null! }
    link.loop = this.#accept(link)
    this.#links.set(key, link)
    return (listener.addr as Deno.NetAddr).port
  }

  /** The port of the proxy `from>to` (throws when there is none). */
  port(from: string, to: string): number {
    return (this.#link(from, to).listener.addr as Deno.NetAddr).port
  }

  /** Cuts `a`–`b` both ways: open connections are closed and new ones refused. */
  cut(a: string, b: string): void {
    for (const link of [this.#links.get(pairKey(a, b)), this.#links.get(pairKey(b, a))]) {
      if (!link) continue
      link.cut = true
      for (const c of link.conns) closeQuietly(c)
      link.conns.clear()
    }
  }

  /** Lets `a`–`b` carry connections again. */
  heal(a: string, b: string): void {
    for (const link of [this.#links.get(pairKey(a, b)), this.#links.get(pairKey(b, a))]) {
      if (link) link.cut = false
    }
  }

  /** Cuts every pair with one end in `group` and the other among `all` outside it. */
  isolate(group: string[], all: string[]): void {
    for (const a of group) for (const b of all) if (!group.includes(b)) this.cut(a, b)
  }

  /** Heals every pair. */
  healAll(): void {
    for (const link of this.#links.values()) link.cut = false
  }

  /** Whether `from>to` is cut. */
  isCut(from: string, to: string): boolean {
    return this.#link(from, to).cut
  }

  /** Connections the proxy `from>to` carries now. */
  connections(from: string, to: string): number {
    return this.#link(from, to).conns.size
  }

  /** Closes every listener and connection; resolves when the accept loops have ended. */
  async close(): Promise<void> {
    const links = [...this.#links.values()]
    this.#links.clear()
    for (const link of links) {
      closeQuietly(link.listener)
      for (const c of link.conns) closeQuietly(c)
      link.conns.clear()
    }
    await Promise.all(links.map((l) => l.loop))
  }

  #link(from: string, to: string): Link {
    const link = this.#links.get(pairKey(from, to))
    if (!link) throw new Error(`no link ${pairKey(from, to)}`)
    return link
  }

  async #accept(link: Link): Promise<void> {
    try {
      for await (const inbound of link.listener) {
        if (link.cut) {
          closeQuietly(inbound)
          continue
        }
        void this.#carry(link, inbound)
      }
    } catch {
      // the listener was closed
    }
  }

  async #carry(link: Link, inbound: Deno.TcpConn): Promise<void> {
    let outbound: Deno.TcpConn
    try {
      outbound = await Deno.connect({ hostname: '127.0.0.1', port: link.target })
    } catch {
      closeQuietly(inbound)
      return
    }
    // Cut while connecting, or the proxies closed meanwhile.
    if (link.cut || !this.#has(link)) {
      closeQuietly(inbound)
      closeQuietly(outbound)
      return
    }
    inbound.setNoDelay(true)
    outbound.setNoDelay(true)
    link.conns.add(inbound)
    link.conns.add(outbound)
    const pump = async (from: Deno.TcpConn, to: Deno.TcpConn) => {
      try {
        await from.readable.pipeTo(to.writable, { preventClose: true })
      } catch {
        // reset or closed by a cut
      }
    }
    // Either side ending ends the pair: a half-open proxy would hide a cut peer's death.
    await Promise.race([pump(inbound, outbound), pump(outbound, inbound)])
    link.conns.delete(inbound)
    link.conns.delete(outbound)
    closeQuietly(inbound)
    closeQuietly(outbound)
  }

  #has(link: Link): boolean {
    for (const l of this.#links.values()) if (l === link) return true
    return false
  }
}

function pairKey(from: string, to: string): string {
  return `${from}>${to}`
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close()
  } catch {
    // already closed
  }
}
