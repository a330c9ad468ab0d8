/** The `pin_tracker.stateless` section (env CLUSTER_STATELESS_<KEY>). */
import { type ConfigOf, defineSection, duration, int } from '../config/schema.ts'

/** Field definitions of `pin_tracker.stateless`. */
export const statelessSection = defineSection('pin_tracker.stateless', 'STATELESS', {
  concurrent_pins: int(10, { min: 1, zeroIsDefault: true }),
  priority_pin_max_age: duration(24 * 3_600_000),
  priority_pin_max_retries: int(5, { min: 0 }),
  max_pin_queue_size: { ...int(1_000_000, { min: 1, zeroIsDefault: true }), omitDefault: true },
})

/** The loaded `pin_tracker.stateless` section. */
export type StatelessConfig = ConfigOf<typeof statelessSection.fields>
