/**
 * HTTP listen addresses as multiaddrs: `/ip4/<ip>/tcp/<port>`, `/ip6/<ip>/tcp/<port>`,
 * `/dns[46]/<host>/tcp/<port>` and `/unix/<path>`, mapped to listener options and back
 * (the bound address, with the real port when 0 was asked for).
 *
 * @example
 * ```ts
 * listenTarget('/ip4/127.0.0.1/tcp/0') // { transport: 'tcp', hostname: '127.0.0.1', port: 0 }
 * boundMultiaddr({ transport: 'tcp', hostname: '127.0.0.1', port: 9094 }) // '/ip4/127.0.0.1/tcp/9094'
 * ```
 */
import { ConfigError } from '../../errors.ts'

/** Where to listen. */
export type ListenTarget =
  | { transport: 'tcp'; hostname: string; port: number }
  | { transport: 'unix'; path: string }

/** Parses a listen multiaddr; throws ConfigError naming the address when unsupported. */
export function listenTarget(maddr: string): ListenTarget {
  const bad = (why: string) => new ConfigError(`cannot listen on ${JSON.stringify(maddr)}: ${why}`)
  if (maddr.startsWith('/unix/')) {
    const path = maddr.slice('/unix'.length)
    if (path === '/') throw bad('empty unix socket path')
    return { transport: 'unix', path }
  }
  const parts = maddr.split('/')
  if (parts.length !== 5 || parts[0] !== '') {
    throw bad('expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port> or /unix/<path>')
  }
  const [, proto, host, tcp, portStr] = parts
  if (!['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(proto)) {
    throw bad(`unsupported protocol /${proto}`)
  }
  if (tcp !== 'tcp') throw bad(`unsupported transport /${tcp} (only tcp)`)
  if (!/^\d{1,5}$/.test(portStr) || Number(portStr) > 65535) throw bad(`invalid port ${portStr}`)
  if (host === '') throw bad('empty host')
  return { transport: 'tcp', hostname: host, port: Number(portStr) }
}

/** The multiaddr of a bound listener. */
export function boundMultiaddr(addr: Deno.Addr): string {
  if (addr.transport === 'unix' || addr.transport === 'unixpacket') return `/unix${addr.path}`
  if (addr.transport === 'tcp' || addr.transport === 'udp') {
    const proto = addr.hostname.includes(':')
      ? 'ip6'
      : /^[\d.]+$/.test(addr.hostname)
      ? 'ip4'
      : 'dns'
    return `/${proto}/${addr.hostname}/tcp/${addr.port}`
  }
  return String(addr.transport)
}
