/**
 * The `consensus.raft` section (env CLUSTER_RAFT_<KEY>): the keys of IPFS Cluster 1.1.6
 * `consensus/raft/config.go` (jsonConfig). Legacy keys from its v0.2.0–v0.3.5 releases are
 * accepted and reported.
 */
import { type ConfigOf, defineSection, duration, int, str, strList } from '../../config/schema.ts'

/** Field definitions of `consensus.raft`. */
export const raftSection = defineSection('consensus.raft', 'RAFT', {
  init_peerset: strList([]),
  wait_for_leader_timeout: duration(15_000, { positive: true }),
  network_timeout: duration(10_000, { positive: true }),
  commit_retries: int(1, { min: 0 }),
  commit_retry_delay: duration(200),
  backups_rotate: int(6, { min: 1, zeroIsDefault: true }),
  heartbeat_timeout: duration(1000, { positive: true }),
  election_timeout: duration(1000, { positive: true }),
  commit_timeout: duration(50, { positive: true }),
  max_append_entries: int(64, { min: 1 }),
  trailing_logs: int(10240, { min: 0 }),
  snapshot_interval: duration(120_000, { positive: true }),
  snapshot_threshold: int(8192, { min: 1 }),
  leader_lease_timeout: duration(500, { positive: true }),
  data_folder: { ...str(''), omitDefault: true },
  datastore_namespace: { ...str('/r'), omitDefault: true },
}, {
  legacy: {
    start_as_leader: 'IPFS Cluster 0.3 and older; ignored (as 1.1.6 does): use init_peerset',
    shutdown_on_remove: 'IPFS Cluster 0.2 only; ignored (as 1.1.6 does)',
  },
})

/** The loaded `consensus.raft` section. */
export type RaftConfig = ConfigOf<typeof raftSection.fields>
