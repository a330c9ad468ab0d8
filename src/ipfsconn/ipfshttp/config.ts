/**
 * The `ipfs_connector.ipfshttp` section (env CLUSTER_IPFSHTTP_<KEY>): the keys of IPFS Cluster
 * 1.1.6 `ipfsconn/ipfshttp/config.go` (jsonConfig), plus the legacy keys its v0.2.0–v0.10.1
 * releases had (the proxy lived here until v0.9.0).
 */
import { bool, type ConfigOf, defineSection, duration, int, maddr } from '../../config/schema.ts'

/** Field definitions of `ipfs_connector.ipfshttp`. */
export const ipfsHttpSection = defineSection('ipfs_connector.ipfshttp', 'IPFSHTTP', {
  node_multiaddress: maddr('/ip4/127.0.0.1/tcp/5001'),
  connect_swarms_delay: duration(30_000),
  ipfs_request_timeout: duration(5 * 60_000, { positive: true }),
  pin_timeout: duration(2 * 60_000, { positive: true }),
  unpin_timeout: duration(3 * 3_600_000, { positive: true }),
  repogc_timeout: duration(24 * 3_600_000, { positive: true }),
  informer_trigger_interval: int(0, { min: 0 }),
  unpin_disable: { ...bool(false), omitDefault: true },
}, {
  legacy: {
    pin_method: 'IPFS Cluster 0.10 and older; ignored (as 1.1.6 does): pins use pin/add',
    ...Object.fromEntries(
      [
        'listen_multiaddress',
        'read_timeout',
        'read_header_timeout',
        'write_timeout',
        'idle_timeout',
      ]
        .map((k) => [
          `proxy_${k}`,
          `IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): api.ipfsproxy.${k} replaces it`,
        ]),
    ),
  },
})

/** The loaded `ipfs_connector.ipfshttp` section (durations in ms). */
export type IPFSHttpConfig = ConfigOf<typeof ipfsHttpSection.fields>
