/**
 * The `api.ipfsproxy` section (env CLUSTER_IPFSPROXY_<KEY>): the keys of IPFS Cluster 1.1.6
 * `api/ipfsproxy/config.go` (jsonConfig), plus the `proxy_*` keys of its v0.8.0–v0.9.0 releases.
 * The proxy itself is not implemented here: a file with this section loads, with a warning.
 */
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  int,
  maddr,
  str,
  strList,
} from '../../config/schema.ts'

/** Field definitions of `api.ipfsproxy`. */
export const ipfsProxySection = defineSection('api.ipfsproxy', 'IPFSPROXY', {
  listen_multiaddress: maddr('/ip4/127.0.0.1/tcp/9095'),
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
  unimplemented: 'the IPFS proxy API is not implemented here: not started',
})

/** The loaded `api.ipfsproxy` section. */
export type IPFSProxyConfig = ConfigOf<typeof ipfsProxySection.fields>
