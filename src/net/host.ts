/**
 * The cluster's libp2p host: TCP + Noise + Yamux, identify and ping, and the cluster secret as a
 * libp2p private network (pnet), as in IPFS Cluster. Cluster RPC and Raft traffic ride on it.
 *
 * @example
 * ```ts
 * const host = await startHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], secret })
 * host.addresses() // ['/ip4/127.0.0.1/tcp/40123/p2p/12D3…']
 * await host.stop()
 * ```
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import type { PrivateKey } from '@libp2p/interface'
import { listenFailures } from './listen_error.ts'

/** Options of the cluster host. */
export interface HostOptions {
  privateKey: PrivateKey
  /** Listen multiaddrs; UDP/QUIC ones are skipped (TCP only, as the reference does with pnet). */
  listen: string[]
  /** 64-hex cluster secret; '' = no private network. */
  secret: string
  announce?: string[]
}

/** A running host. */
export interface ClusterHost {
  libp2p: Libp2p
  peerId: string
  /** Listen addresses with the /p2p/ suffix, as `GET /id` shows them. */
  addresses(): string[]
  stop(): Promise<void>
}

/** Turns a 64-hex cluster secret into the swarm.key v1 text libp2p's pnet expects. */
export function secretToSwarmKey(secretHex: string): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${secretHex}`)
}

/**
 * Starts the host. An address it cannot listen on fails with a one-line `ListenError` naming
 * `cluster.listen_multiaddress`.
 */
export async function startHost(opts: HostOptions): Promise<ClusterHost> {
  const listen = opts.listen.filter((a) => a.includes('/tcp/') && !a.includes('/quic'))
  const failures = listenFailures()
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen, announce: opts.announce?.length ? opts.announce : undefined },
    transports: [failures.wrap(tcp())],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: opts.secret
      ? preSharedKey({ psk: secretToSwarmKey(opts.secret) })
      : undefined,
    services: { identify: identify(), ping: ping() },
  }).catch((err) => failures.rethrow('cluster.listen_multiaddress', err))
  let stopped: Promise<void> | undefined
  const peerId = node.peerId.toString()
  return {
    libp2p: node,
    peerId,
    addresses() {
      return node.getMultiaddrs().map((m) => {
        const s = m.toString()
        return s.includes('/p2p/') ? s : `${s}/p2p/${peerId}`
      })
    },
    stop() {
      stopped ??= Promise.resolve(node.stop())
      return stopped
    },
  }
}
