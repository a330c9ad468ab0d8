/** The `monitor.pubsubmon` section (env CLUSTER_PUBSUBMON_<KEY>). */
import { type ConfigOf, defineSection, duration } from '../config/schema.ts'

/** Field definitions of `monitor.pubsubmon`. */
export const pubsubmonSection = defineSection('monitor.pubsubmon', 'PUBSUBMON', {
  check_interval: duration(15_000, { positive: true }),
})

/** The loaded `monitor.pubsubmon` section. */
export type PubsubmonConfig = ConfigOf<typeof pubsubmonSection.fields>
