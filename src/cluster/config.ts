/**
 * The `cluster` section of service.json: identity-independent peer settings, with the reference's
 * keys and defaults. Env overrides are `CLUSTER_<KEY>` (e.g. CLUSTER_PEERNAME, CLUSTER_SECRET).
 *
 * Keys, defaults and legacy keys are those of IPFS Cluster 1.1.6 `cluster_config.go` (configJSON
 * and its connection_manager / resource_manager / pubsub structs); the legacy keys are the JSON
 * tags older releases' `cluster_config.go` had (v0.2.0–v0.11.0), which 1.1.6 still reads past.
 */
import {
  bool,
  type ConfigOf,
  defineSection,
  duration,
  int,
  maddrList,
  nested,
  str,
  strList,
} from '../config/schema.ts'

/**
 * What a valid secret looks like, as the reference's DecodeClusterSecret wants it (hex of 32
 * bytes, either case). The message never echoes the secret itself.
 */
export function checkSecret(v: string): string | undefined {
  if (v === '' || /^[0-9a-fA-F]{64}$/.test(v)) return undefined
  const want = 'must be 64 hexadecimal characters (32 bytes, as "ipfs-cluster-service init" ' +
    'writes), or "" for no private network'
  const bad = /[^0-9a-fA-F]/.exec(v)
  const got = bad
    ? `got ${v.length} characters, and ${JSON.stringify(bad[0])} (character ${
      bad.index + 1
    }) is not hexadecimal`
    : `got ${v.length} characters`
  return `${want}; ${got}`
}

const IDENTITY = 'IPFS Cluster 0.10 and older kept the identity here; identity.json holds it ' +
  'now, and this value is used only to create identity.json when that file is missing'

/** Field definitions of `cluster`. */
export const clusterSection = defineSection('cluster', '', {
  peername: str(''),
  secret: { ...str(''), check: checkSecret },
  leave_on_shutdown: bool(false, false),
  listen_multiaddress: maddrList(['/ip4/0.0.0.0/tcp/9096']),
  announce_multiaddress: maddrList([]),
  no_announce_multiaddress: maddrList([]),
  enable_relay_hop: bool(true, false),
  connection_manager: nested('cluster.connection_manager', {
    high_water: int(400, { min: 1 }),
    low_water: int(100, { min: 1 }),
    grace_period: duration(120_000),
  }),
  resource_manager: nested('cluster.resource_manager', {
    enabled: bool(true),
    memory_limit_bytes: int(0, { min: 0 }),
    file_descriptors_limit: int(0, { min: 0 }),
  }),
  pubsub: nested('cluster.pubsub', {
    seen_messages_ttl: duration(30 * 60_000),
    heartbeat_interval: duration(10_000),
    d_factor: int(4, { min: 1 }),
    history_gossip: int(2, { min: 1 }),
    history_length: int(6, { min: 1 }),
    flood_publish: bool(false),
  }),
  dial_peer_timeout: duration(3000, { positive: true }),
  state_sync_interval: duration(5 * 60_000, { positive: true }),
  pin_recover_interval: duration(12 * 60_000, { positive: true }),
  replication_factor_min: int(-1, { min: -1, zeroIsDefault: true }),
  replication_factor_max: int(-1, { min: -1, zeroIsDefault: true }),
  monitor_ping_interval: duration(15_000, { positive: true }),
  peer_watch_interval: duration(5_000, { positive: true }),
  mdns_interval: duration(10_000),
  pin_only_on_trusted_peers: bool(false, false),
  pin_only_on_untrusted_peers: bool(false, false),
  disable_repinning: bool(true, false),
  follower_mode: { ...bool(false, false), omitDefault: true },
  peerstore_file: { ...str(''), omitDefault: true },
  peer_addresses: strList([]),
  // Multiaddrs of members to join through when this peer has no Raft data yet: what
  // `daemon --bootstrap` does, kept in service.json (IPFS Cluster 1.1.6 ignores the key).
  bootstrap: { ...maddrList([]), omitDefault: true },
}, {
  legacy: {
    id: IDENTITY,
    private_key: IDENTITY,
    replication_factor: 'IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): ' +
      'use replication_factor_min and replication_factor_max',
    peers: 'IPFS Cluster 0.9 and older; ignored (as 1.1.6 does): ' +
      'use consensus.raft.init_peerset and the peerstore file',
    ipfs_sync_interval: 'IPFS Cluster 0.11 and older; ignored (as 1.1.6 does): ' +
      'state_sync_interval and pin_recover_interval replace it',
  },
  advise: (c) =>
    c.secret === ''
      ? 'secret is empty: the cluster runs on an unprotected network (any peer may join)'
      : undefined,
  validate: (c) => {
    const min = c.replication_factor_min
    const max = c.replication_factor_max
    if ((min === -1) !== (max === -1)) {
      return 'replication_factor_min and replication_factor_max must both be -1 or both be positive'
    }
    if (max !== -1 && min > max) return 'cluster.replication_factor_min is larger than max'
    if (c.connection_manager.low_water > c.connection_manager.high_water) {
      return 'connection_manager.low_water must be at most high_water'
    }
    if (c.pin_only_on_trusted_peers && c.pin_only_on_untrusted_peers) {
      return 'pin_only_on_trusted_peers and pin_only_on_untrusted_peers cannot both be true'
    }
  },
})

/** The loaded `cluster` section. */
export type ClusterConfig = ConfigOf<typeof clusterSection.fields>

/** Generates a new random cluster secret (32 bytes, hex). */
export function newSecret(): string {
  const b = crypto.getRandomValues(new Uint8Array(32))
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}
