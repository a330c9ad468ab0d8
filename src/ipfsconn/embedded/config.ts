/**
 * The `ipfs_connector.embedded` section (env CLUSTER_EMBEDDED_<KEY>): a Helia node inside the
 * peer. Not in the reference (it has no embedded node); see docs/compat.md.
 */
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  maddrList,
  str,
} from '../../config/schema.ts'
import { parseStorageSize } from './storage_size.ts'

/** Field definitions of `ipfs_connector.embedded`. */
export const embeddedSection = defineSection('ipfs_connector.embedded', 'EMBEDDED', {
  /** Where blocks and the node's datastore live; relative paths are under the config folder. */
  folder: str('ipfs'),
  /** Start libp2p (bitswap) for the embedded node; off = a purely local store. */
  libp2p: bool(false),
  /** Swarm listen addresses when libp2p is on (loopback by default). */
  listen_multiaddress: maddrList(['/ip4/127.0.0.1/tcp/0']),
  /** A pin fails when no new block arrives for this long (no total limit: big DAGs take long). */
  pin_timeout: duration(2 * 60_000, { positive: true }),
  /** Storage limit reported as StorageMax (for the freespace informer), in bytes; 0 = disk size. */
  storage_max: {
    ...str('10GB'),
    check(v: string) {
      try {
        parseStorageSize(v)
      } catch (err) {
        return (err as Error).message
      }
    },
  },
})

/** The loaded `ipfs_connector.embedded` section. */
export type EmbeddedConfig = ConfigOf<typeof embeddedSection.fields>
