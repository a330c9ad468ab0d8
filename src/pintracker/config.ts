/**
 * The `pin_tracker.stateless` section (env CLUSTER_STATELESS_<KEY>): the keys of IPFS Cluster
 * 1.1.6 `pintracker/stateless/config.go`. `pin_tracker.maptracker`, the tracker of v0.11.0 and
 * older (`pintracker/maptracker/config.go`), is accepted and ignored.
 */
import { type ConfigOf, defineSection, duration, ignoredSection, int } from '../config/schema.ts'

/** Field definitions of `pin_tracker.stateless`. */
export const statelessSection = defineSection('pin_tracker.stateless', 'STATELESS', {
  concurrent_pins: int(10, { min: 1, zeroIsDefault: true }),
  priority_pin_max_age: duration(24 * 3_600_000),
  priority_pin_max_retries: int(5, { min: 0 }),
  max_pin_queue_size: { ...int(1_000_000, { min: 1, zeroIsDefault: true }), omitDefault: true },
})

/** `pin_tracker.maptracker` of IPFS Cluster 0.11 and older. */
export const maptrackerSection = ignoredSection(
  'pin_tracker.maptracker',
  {
    concurrent_pins: true,
    max_pin_queue_size: true,
    pinning_timeout: true,
    unpinning_timeout: true,
  },
  'the map pin tracker of IPFS Cluster 0.11 and older; ignored (as 1.1.6 does): pin_tracker.stateless replaces it',
)

/** The loaded `pin_tracker.stateless` section. */
export type StatelessConfig = ConfigOf<typeof statelessSection.fields>
