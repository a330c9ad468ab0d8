/**
 * Builds a peer's CRDT consensus on its cluster host, as IPFS Cluster 1.1.6 does in
 * `consensus/crdt/consensus.go` (`New` and `setup`): the replica's blocks in the peer's KV
 * database (blockstore.ts), bitswap on the host serving and fetching them (block_exchange.ts),
 * the CRDT topic on the host's gossipsub with the trust validator (broadcaster.ts), the replica
 * (replica.ts, go-ds-crdt's options: 2 min per fetch batch, 50 workers, 1 MiB batch deltas), and
 * the consensus component over it (crdt_consensus.ts). The daemon imports this module only for a
 * CRDT peer: bitswap brings @helia/bitswap into the process.
 *
 * @example
 * ```ts
 * const consensus = await startCrdtConsensus(cfg.crdt, { peerId, kv, state, host, hooks,
 *   validPeers: (m) => monitor.latestMetrics(m).map((x) => x.peer), log })
 * await consensus.ready()
 * ```
 *
 * @module
 */
import type { Libp2p } from '@libp2p/interface'
import type { ApplyHooks } from '../../components.ts'
import type { GossipSub } from '../../net/pubsub.ts'
import type { PinState } from '../../state/kv_state.ts'
import { type Clock, systemClock } from '../../util/clock.ts'
import type { Logger } from '../../util/log.ts'
import { startBlockExchange } from './block_exchange.ts'
import { kvBlockstore } from './blockstore.ts'
import { pubsubBroadcaster } from './broadcaster.ts'
import { topicName } from './codec.ts'
import { type CrdtConfig, trustChecker } from './config.ts'
import { type CrdtConsensus, crdtConsensus } from './crdt_consensus.ts'
import { crdtReplica } from './replica.ts'
import type { ReplicaOptions } from './types.ts'

/** go-ds-crdt's options as IPFS Cluster 1.1.6 sets them, with the section's intervals. */
export function replicaOptions(cfg: CrdtConfig): ReplicaOptions {
  return {
    rebroadcastIntervalMs: cfg.rebroadcast_interval,
    repairIntervalMs: cfg.repair_interval,
    dagSyncerTimeoutMs: 120_000,
    workers: 50,
    maxBatchBytes: 1 << 20,
  }
}

/** What a peer's CRDT consensus is built from. */
export interface CrdtStartDeps {
  peerId: string
  /** The peer's database: the replica's keys and blocks, and the pinset view. */
  kv: Deno.Kv
  state: PinState
  /** The cluster host's libp2p node and gossipsub. */
  host: { libp2p: Libp2p; pubsub: GossipSub }
  hooks: ApplyHooks
  /** Peers whose latest metric of this name is valid (the monitor). */
  validPeers: (metric: string) => string[]
  /** Peers trusted beyond `trusted_peers` (the `--bootstrap` peers, unless `--no-trust`). */
  trusted?: string[]
  clock?: Clock
  log: Logger
}

/**
 * Joins the CRDT topic, starts bitswap and the replica, and returns the consensus; its `stop`
 * stops the replica, then leaves the topic and stops bitswap.
 */
export async function startCrdtConsensus(
  cfg: CrdtConfig,
  deps: CrdtStartDeps,
): Promise<CrdtConsensus> {
  const { kv, log } = deps
  const exchange = await startBlockExchange({
    libp2p: deps.host.libp2p,
    blocks: kvBlockstore(kv),
    log,
  })
  const broadcaster = pubsubBroadcaster({
    pubsub: deps.host.pubsub,
    topic: topicName(cfg.cluster_name),
    // The consensus's own rule (crdt-interop §1.4), built from the same inputs.
    isTrusted: trustChecker(cfg, deps.peerId, deps.trusted),
    log,
  })
  const inner = crdtConsensus(cfg, {
    peerId: deps.peerId,
    state: deps.state,
    hooks: deps.hooks,
    validPeers: deps.validPeers,
    trusted: deps.trusted,
    clock: deps.clock,
    log,
    replica: (hooks) =>
      crdtReplica({
        kv,
        blocks: exchange.blocks,
        broadcaster,
        fetcher: exchange,
        hooks,
        clock: deps.clock ?? systemClock,
        log,
      }, replicaOptions(cfg)),
  })
  let stopping: Promise<void> | undefined
  return {
    ...inner,
    stop: () =>
      stopping ??= (async () => {
        try {
          await inner.stop()
        } finally {
          await broadcaster.stop()
          await exchange.stop()
        }
      })(),
  }
}
