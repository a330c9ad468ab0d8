/**
 * ipfs-cluster for Deno — the library surface: run a cluster peer in-process, load and write
 * configuration, and talk to any IPFS Cluster 1.x REST API.
 *
 * @example
 * ```ts
 * import { restClient, startPeer, logging } from './mod.ts'
 * const peer = await startPeer({ configDir: '/tmp/peer', env: {}, logging: logging('info') })
 * await peer.ready
 * await peer.stop()
 * ```
 * @module
 */
export { Cluster, type ClusterDeps } from './src/cluster.ts'
export { type Peer, type PeerOptions, runDaemon, startPeer } from './src/daemon.ts'
export {
  defaultServiceConfig,
  loadServiceConfig,
  parseServiceConfig,
  saveServiceConfig,
  type ServiceConfig,
  serviceConfigToJSON,
} from './src/service_config.ts'
export { loadIdentity, newIdentity, saveIdentity } from './src/config/identity.ts'
export { restClient } from './src/api/rest/client.ts'
export { logging } from './src/util/log.ts'
export type * from './src/components.ts'
export * from './src/types/mod.ts'
export * from './src/errors.ts'
