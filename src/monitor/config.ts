/**
 * The `monitor.pubsubmon` section (env CLUSTER_PUBSUBMON_<KEY>): the keys of IPFS Cluster 1.1.6
 * `monitor/pubsubmon/config.go`, plus `failure_threshold` (v0.11.0–v0.14.4). `monitor.monbasic`,
 * the monitor of v0.10.0 and older (`monitor/basic/config.go`), is accepted and ignored.
 */
import { type ConfigOf, defineSection, duration, ignoredSection } from '../config/schema.ts'

/** Field definitions of `monitor.pubsubmon`. */
export const pubsubmonSection = defineSection('monitor.pubsubmon', 'PUBSUBMON', {
  check_interval: duration(15_000, { positive: true }),
}, {
  legacy: {
    failure_threshold: 'IPFS Cluster 0.14 and older; ignored (as 1.1.6 does)',
  },
})

/** `monitor.monbasic` of IPFS Cluster 0.10 and older. */
export const monbasicSection = ignoredSection(
  'monitor.monbasic',
  { check_interval: true },
  'the basic monitor of IPFS Cluster 0.10 and older; ignored (as 1.1.6 does): ' +
    'monitor.pubsubmon replaces it',
)

/** The loaded `monitor.pubsubmon` section. */
export type PubsubmonConfig = ConfigOf<typeof pubsubmonSection.fields>
