/**
 * The `api.ipfsproxy` section (env CLUSTER_IPFSPROXY_<KEY>): the keys of IPFS Cluster 1.1.6
 * `api/ipfsproxy/config.go` (jsonConfig), plus the `proxy_*` keys of its v0.8.0–v0.9.0 releases.
 * `init` writes it (with the Kubo connector), and the daemon starts the proxy when a file has it.
 *
 * @example
 * ```ts
 * const cfg = ipfsProxySection.load({ node_multiaddress: '/unix//run/ipfs/api.sock' })
 * cfg.listen_multiaddress // ['/ip4/127.0.0.1/tcp/9095']
 * ```
 */
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  int,
  maddr,
  maddrList,
  str,
  strList,
} from '../../config/schema.ts'
import { parseNodeAddress } from '../../ipfsconn/ipfshttp/address.ts'

/** Field definitions of `api.ipfsproxy`. */
export const ipfsProxySection = defineSection('api.ipfsproxy', 'IPFSPROXY', {
  // A list, as the reference's config.Strings (one address is written as a plain string there).
  listen_multiaddress: maddrList(['/ip4/127.0.0.1/tcp/9095']),
  node_multiaddress: maddr('/ip4/127.0.0.1/tcp/5001'),
  node_https: { ...bool(false), omitDefault: true },
  log_file: str(''),
  read_timeout: duration(0),
  read_header_timeout: duration(5000),
  write_timeout: duration(0),
  idle_timeout: duration(60_000),
  max_header_bytes: int(4096, { min: 4096 }),
  extract_headers_extra: { ...strList([]), omitDefault: true },
  extract_headers_path: { ...str('/api/v0/version'), omitDefault: true },
  extract_headers_ttl: { ...duration(5 * 60_000), omitDefault: true },
}, {
  legacy: Object.fromEntries(
    ['listen_multiaddress', 'read_timeout', 'read_header_timeout', 'write_timeout', 'idle_timeout']
      .map((
        k,
      ) => [`proxy_${k}`, `IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): ${k} replaces it`]),
  ),
  validate(cfg) {
    if (cfg.listen_multiaddress.length === 0) return 'listen_multiaddress not set'
    if (!cfg.extract_headers_path.startsWith('/')) {
      return `extract_headers_path must be a path starting with "/", got ${
        JSON.stringify(cfg.extract_headers_path)
      }`
    }
    try {
      parseNodeAddress(cfg.node_multiaddress)
    } catch (err) {
      // The parser names the connector's key; this one is the proxy's.
      return (err as Error).message.replace(/^ipfs_connector\.ipfshttp\./, '')
    }
  },
})

/** The loaded `api.ipfsproxy` section. */
export type IPFSProxyConfig = ConfigOf<typeof ipfsProxySection.fields>
