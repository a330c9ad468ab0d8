/**
 * The parts of a peer chosen by which sections service.json holds: informers (only those with a
 * section, as the reference), the allocator (`allocate_by` ["freespace"] when the section is
 * absent) and the peer monitor with its gossipsub transport.
 */
import type { Informer, IPFSConnector, PeerMonitor, PinTracker } from './components.ts'
import type { ServiceConfig } from './service_config.ts'
import { diskInformer } from './informer/disk.ts'
import { numpinInformer } from './informer/numpin.ts'
import { tagsInformer } from './informer/tags.ts'
import { pinqueueInformer } from './informer/pinqueue.ts'
import { balancedAllocator } from './allocator/balanced.ts'
import { allocationFunction } from './allocator/allocate.ts'
import { localMonitor, type MetricsTransport } from './monitor/local.ts'
import { pubsubmonSection } from './monitor/config.ts'
import type { Logger } from './util/log.ts'

/** Informers for the sections present. */
export function buildInformers(
  cfg: ServiceConfig,
  ipfs: IPFSConnector,
  tracker: PinTracker,
  peerId: string,
): Informer[] {
  const out: Informer[] = []
  if (cfg.disk) out.push(diskInformer(cfg.disk, { ipfs, peerId }))
  if (cfg.tags) out.push(tagsInformer(cfg.tags, { peerId }))
  if (cfg.pinqueue) out.push(pinqueueInformer(cfg.pinqueue, { tracker, peerId }))
  if (cfg.numpin) out.push(numpinInformer(cfg.numpin, { ipfs, peerId }))
  return out
}

/**
 * The peer monitor over a metrics transport (the host's gossipsub: pubsub_transport.ts); the
 * peerset it answers for and checks is `peers()` (Raft's voters, as the reference's Raft peers).
 */
export function buildMonitor(
  cfg: ServiceConfig,
  deps: { transport: MetricsTransport; peers?: () => string[]; log: Logger },
): PeerMonitor {
  const { log } = deps
  return localMonitor(cfg.pubsubmon ?? pubsubmonSection.defaults(), {
    peers: deps.peers,
    transport: deps.transport,
    log: (level, msg) => log[level](msg),
  })
}

/**
 * The allocation function the cluster calls; `pin_only_on_trusted_peers` /
 * `pin_only_on_untrusted_peers` with the consensus's trust (under Raft every member is trusted).
 */
export function buildAllocate(
  cfg: ServiceConfig,
  monitor: PeerMonitor,
  isTrusted: (peer: string) => boolean,
  log: Logger,
) {
  const allocator = balancedAllocator(cfg.balanced ?? { allocate_by: ['freespace'] })
  return allocationFunction({
    allocator,
    monitor,
    isTrusted,
    onlyTrusted: cfg.cluster.pin_only_on_trusted_peers,
    onlyUntrusted: cfg.cluster.pin_only_on_untrusted_peers,
    log: (msg) => log.warn(msg),
  })
}
