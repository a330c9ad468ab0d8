/** The `ipfs_connector.ipfshttp` section (env CLUSTER_IPFSHTTP_<KEY>). */
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
})

/** The loaded `ipfs_connector.ipfshttp` section (durations in ms). */
export type IPFSHttpConfig = ConfigOf<typeof ipfsHttpSection.fields>
