/**
 * The `consensus.crdt` section as IPFS Cluster 1.1.6 writes it (`consensus/crdt/config.go`,
 * jsonConfig and batchingConfigJSON). CRDT consensus is not implemented here: a file holding the
 * section loads, its keys are checked, and the peer runs Raft instead (see docs/compat.md).
 */
import { ignoredSection } from '../../config/schema.ts'

/** The keys of `consensus.crdt`. */
export const crdtSection = ignoredSection('consensus.crdt', {
  cluster_name: true,
  trusted_peers: true,
  batching: { max_batch_size: true, max_batch_age: true, max_queue_size: true },
  repair_interval: true,
  rebroadcast_interval: true,
  peerset_metric: true,
  datastore_namespace: true,
}, 'CRDT consensus is not implemented here')
