/**
 * The cluster host's gossipsub, set up as IPFS Cluster 1.1.6 sets up its own
 * (../shared/reference/crdt-interop.md §1.4–1.6): signed messages only, strict signature checks,
 * the mesh degrees scaled by `cluster.pubsub.d_factor`, heartbeat and message-cache history from
 * `cluster.pubsub`, no flood publishing by default, and the Go peer's message IDs (the author's
 * first 16 peer-ID bytes, then the 8-byte sequence number), so that a Go peer and this one name
 * the same message alike in IHAVE/IWANT. The metrics topic (monitor/pubsub_transport.ts) rides
 * on it.
 *
 * @example
 * ```ts
 * services: { pubsub: clusterGossipsub(pubsubOptionsFrom(cfg.cluster.pubsub)) }
 * ```
 *
 * @module
 */
import { type GossipSub, gossipsub, type Message } from '@libp2p/gossipsub'
import type { ClusterConfig } from '../cluster/config.ts'

export type { GossipSub }

/** The `cluster.pubsub` settings gossipsub takes. */
export interface PubsubOptions {
  /** How long a message ID is remembered as seen (`seen_messages_ttl`). */
  seenTtlMs: number
  heartbeatMs: number
  dFactor: number
  historyGossip: number
  historyLength: number
  floodPublish: boolean
}

/** The options of the `cluster.pubsub` section. */
export function pubsubOptionsFrom(cfg: ClusterConfig['pubsub']): PubsubOptions {
  return {
    seenTtlMs: cfg.seen_messages_ttl,
    heartbeatMs: cfg.heartbeat_interval,
    dFactor: cfg.d_factor,
    historyGossip: cfg.history_gossip,
    historyLength: cfg.history_length,
    floodPublish: cfg.flood_publish,
  }
}

/** `cluster.pubsub`'s defaults (as service.json has them). */
export const DEFAULT_PUBSUB: PubsubOptions = {
  seenTtlMs: 30 * 60_000,
  heartbeatMs: 10_000,
  dFactor: 4,
  historyGossip: 2,
  historyLength: 6,
  floodPublish: false,
}

/** A Go peer's message ID: the author's peer-ID bytes cut to 16, then the seqno (8 bytes, BE). */
export function goMessageId(msg: Message): Uint8Array {
  if (msg.type !== 'signed') {
    // Unsigned messages are refused (StrictSign) before an ID is needed; hash them anyway.
    return msg.data.slice(0, 24)
  }
  const from = msg.from.toMultihash().bytes.subarray(0, 16)
  const out = new Uint8Array(from.length + 8)
  out.set(from)
  new DataView(out.buffer).setBigUint64(from.length, BigInt.asUintN(64, msg.sequenceNumber))
  return out
}

/** The gossipsub service for the cluster host. */
export function clusterGossipsub(o: PubsubOptions = DEFAULT_PUBSUB) {
  const d = o.dFactor
  return gossipsub({
    D: 6 * d,
    Dlo: 5 * d,
    Dhi: 12 * d,
    Dscore: 4 * d,
    Dout: 2 * d,
    Dlazy: 6 * d,
    heartbeatInterval: o.heartbeatMs,
    mcacheLength: o.historyLength,
    mcacheGossip: o.historyGossip,
    seenTTL: o.seenTtlMs,
    floodPublish: o.floodPublish,
    globalSignaturePolicy: 'StrictSign',
    msgIdFn: goMessageId,
    // A peer alone (or before the others connect) still publishes its metrics: to nobody.
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
  })
}
