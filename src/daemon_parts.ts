/**
 * The parts of a peer chosen by which sections service.json holds: informers (only those with a
 * section, as the reference), the allocator (`allocate_by` ["freespace"] when the section is
 * absent) and the peer monitor.
 */
import type { Informer, IPFSConnector, PeerMonitor, PinTracker } from './components.ts'
import type { ServiceConfig } from './service_config.ts'
import { diskInformer } from './informer/disk.ts'
import { numpinInformer } from './informer/numpin.ts'
import { tagsInformer } from './informer/tags.ts'
import { pinqueueInformer } from './informer/pinqueue.ts'
import { balancedAllocator } from './allocator/balanced.ts'
import { allocationFunction } from './allocator/allocate.ts'
import { localMonitor } from './monitor/local.ts'
import { pubsubmonSection } from './monitor/config.ts'

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

/** The peer monitor (metrics of this peer; other peers' arrive with the RPC transport). */
export function buildMonitor(cfg: ServiceConfig, peerId: string): PeerMonitor {
  return localMonitor(cfg.pubsubmon ?? pubsubmonSection.defaults(), { peers: () => [peerId] })
}

/** The allocation function the cluster calls. */
export function buildAllocate(cfg: ServiceConfig, monitor: PeerMonitor) {
  const allocator = balancedAllocator(cfg.balanced ?? { allocate_by: ['freespace'] })
  return allocationFunction({ allocator, monitor })
}
