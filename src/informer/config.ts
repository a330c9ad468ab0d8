/**
 * The `informer.*` sections: disk (freespace/reposize), numpin, tags, pinqueue, with the keys of
 * IPFS Cluster 1.1.6 `informer/{disk,numpin,tags,pinqueue}/config.go` (jsonConfig).
 */
import { type ConfigOf, defineSection, duration, int, str, strMap } from '../config/schema.ts'

/** `informer.disk` (env CLUSTER_DISK_<KEY>). */
export const diskSection = defineSection('informer.disk', 'DISK', {
  metric_ttl: duration(30_000, { positive: true }),
  metric_type: str('freespace', ['freespace', 'reposize']),
})
/** `informer.numpin` (env CLUSTER_NUMPIN_<KEY>). */
export const numpinSection = defineSection('informer.numpin', 'NUMPIN', {
  metric_ttl: duration(10_000, { positive: true }),
})
/** `informer.tags` (env CLUSTER_TAGS_<KEY>). */
export const tagsSection = defineSection('informer.tags', 'TAGS', {
  metric_ttl: duration(30_000, { positive: true }),
  tags: strMap({ group: 'default' }),
})
/** `informer.pinqueue` (env CLUSTER_PINQUEUE_<KEY>). */
export const pinqueueSection = defineSection('informer.pinqueue', 'PINQUEUE', {
  metric_ttl: duration(30_000, { positive: true }),
  weight_bucket_size: int(100_000, { min: 1 }),
})

export type DiskConfig = ConfigOf<typeof diskSection.fields>
export type NumpinConfig = ConfigOf<typeof numpinSection.fields>
export type TagsConfig = ConfigOf<typeof tagsSection.fields>
export type PinqueueConfig = ConfigOf<typeof pinqueueSection.fields>
