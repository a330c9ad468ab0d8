/**
 * The `allocator.balanced` section (env CLUSTER_BALANCED_<KEY>): the key of IPFS Cluster 1.1.6
 * `allocator/balanced/config.go` (jsonConfig).
 */
import { type ConfigOf, defineSection, strList } from '../config/schema.ts'

/** Field definitions of `allocator.balanced`. */
export const balancedSection = defineSection('allocator.balanced', 'BALANCED', {
  allocate_by: strList(['tag:group', 'freespace']),
}, {
  validate: (
    c,
  ) => (!c.allocate_by?.length ? 'allocate_by must list at least one metric' : undefined),
})

/** The loaded `allocator.balanced` section. */
export type BalancedConfig = ConfigOf<typeof balancedSection.fields>
