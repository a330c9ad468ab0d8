/**
 * Where the Kubo RPC API listens, from the `node_multiaddress` config key.
 *
 * Parsed by hand rather than with `@multiformats/multiaddr`: that library wants `/unix/` paths
 * URI-encoded (`/unix/%2Ftmp%2Fapi.sock`), while Kubo and the reference write them plain
 * (`/unix//tmp/api.sock`, `/unix/tmp/api.sock`), and users copy Kubo's form into service.json.
 *
 * @example
 * ```ts
 * parseNodeAddress('/ip4/127.0.0.1/tcp/5001') // { baseUrl: 'http://127.0.0.1:5001/api/v0', hostname: '127.0.0.1', port: 5001, … }
 * parseNodeAddress('/unix//run/ipfs/api.sock') // { baseUrl: 'http://ipfs/api/v0', unixPath: '/run/ipfs/api.sock', … }
 * ```
 */
import { ConfigError } from '../../errors.ts'

/** The HTTP base of the RPC API and, for unix sockets, the socket path to dial. */
export interface NodeAddress {
  /** `http://host:port/api/v0`, without a trailing slash (as error messages show it). */
  baseUrl: string
  /** The request path of the API: `/api/v0`. */
  path: string
  /** Host (without brackets) and port to dial, for TCP. */
  hostname?: string
  port?: number
  /** Set when the API listens on a unix socket; requests then go through it. */
  unixPath?: string
}

const API_PATH = '/api/v0'

/** Host name used in URLs sent over a unix socket (the reference's `http+unix://ipfs`). */
const UNIX_HOST = 'ipfs'

/**
 * Parses `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/http]` or `/unix/<path>`.
 * Throws ConfigError naming `node_multiaddress` and the accepted forms.
 */
export function parseNodeAddress(maddr: string): NodeAddress {
  const bad = (why: string) =>
    new ConfigError(
      `ipfs_connector.ipfshttp.node_multiaddress: ${why} in ${JSON.stringify(maddr)} ` +
        '(use /ip4/<ip>/tcp/<port>, /ip6/<ip>/tcp/<port>, /dns[4|6]/<host>/tcp/<port> or /unix/<path>)',
    )
  if (typeof maddr !== 'string' || !maddr.startsWith('/')) throw bad('not a multiaddress')
  if (maddr.startsWith('/unix/')) {
    // The path protocol takes the rest of the address; both `/unix/tmp/s` and `/unix//tmp/s` name /tmp/s.
    let path = maddr.slice('/unix/'.length)
    if (path.includes('%')) path = decodeURIComponent(path)
    path = '/' + path.replace(/^\/+/, '')
    if (path === '/') throw bad('empty unix socket path')
    return { baseUrl: `http://${UNIX_HOST}${API_PATH}`, path: API_PATH, unixPath: path }
  }
  const parts = maddr.split('/').slice(1)
  if (parts.length < 4) throw bad('missing parts')
  const [proto, host, transport, portStr, ...rest] = parts
  if (transport !== 'tcp') throw bad(`transport must be tcp, got "${transport}"`)
  if (rest.length > 1 || (rest.length === 1 && rest[0] !== 'http' && rest[0] !== '')) {
    throw bad(`unsupported suffix "/${rest.join('/')}"`)
  }
  const port = Number(portStr)
  if (!/^\d+$/.test(portStr) || port < 1 || port > 65535) throw bad(`bad port "${portStr}"`)
  let hostPart: string
  switch (proto) {
    case 'ip4':
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) throw bad(`bad ip4 address "${host}"`)
      hostPart = host
      break
    case 'ip6':
      if (!host.includes(':')) throw bad(`bad ip6 address "${host}"`)
      hostPart = `[${host}]`
      break
    case 'dns':
    case 'dns4':
    case 'dns6':
      if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`bad host name "${host}"`)
      hostPart = host
      break
    default:
      throw bad(`unsupported protocol "${proto}"`)
  }
  return {
    baseUrl: `http://${hostPart}:${port}${API_PATH}`,
    path: API_PATH,
    hostname: host,
    port,
  }
}
