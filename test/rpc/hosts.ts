/**
 * Real cluster hosts on 127.0.0.1 with an RPC wire each, for the wire's tests and its bench:
 * `rpcPeers(n, handlers)` starts n hosts (TCP + Noise + Yamux, one cluster secret), tells each
 * the others' addresses, and starts a wire on each with the handlers `handlersFor(i)` returns
 * (every method not given throws). Trust is a set per peer the test changes.
 *
 * @example
 * ```ts
 * const [a, b] = await rpcPeers(2, () => ({ 'Cluster.Version': async () => '1.1.6' }))
 * await a.rpc.client.call(b.id, 'Cluster.Version', [])
 * await stopAll([a, b])
 * ```
 */
import '../../src/deno_shim.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type ClusterHost, startHost } from '../../src/net/host.ts'
import { KIND, type RpcHandlers } from '../../src/rpc/methods.ts'
import { type RpcWire, rpcWire } from '../../src/rpc/wire.ts'
import type { Clock } from '../../src/util/clock.ts'
import type { PinInfo } from '../../src/types/mod.ts'

/** One peer of the test. */
export interface RpcPeer {
  id: string
  host: ClusterHost
  rpc: RpcWire
  /** The peers this one trusts (the others by default). */
  trusted: Set<string>
}

/** The cluster secret the test hosts share. */
export const SECRET = 'a'.repeat(64)

/** A PinInfo as a tracker reports one (keys in the reference's order; ~380 bytes of CBOR). */
export function pinInfo(
  i: number,
  peer = '12D3KooWQm2JRqKuYBoFEg8MgFfVeXjQkwmhpsRDPGzfsk8yvhm8',
): PinInfo {
  return {
    cid: `bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtq${String(i).padStart(8, '0')}`,
    name: `pin ${i}`,
    peer,
    allocations: [],
    origins: [],
    created: '2026-01-01T00:00:00Z',
    metadata: null,
    peername: 'peer0',
    ipfs_peer_id: '12D3KooWQm2JRqKuYBoFEg8MgFfVeXjQkwmhpsRDPGzfsk8yvhm8',
    ipfs_peer_addresses: ['/ip4/127.0.0.1/tcp/4001'],
    status: 'pinned',
    timestamp: '2026-01-01T00:00:00Z',
    error: '',
    attempt_count: 0,
    priority_pin: false,
  } as PinInfo
}

/** Handlers for every method: the given ones, and ones that throw for the rest. */
export function handlersWith(given: Partial<RpcHandlers>): RpcHandlers {
  const all: Record<string, unknown> = {}
  for (const m of Object.keys(KIND)) {
    all[m] = () => {
      throw new Error(`${m} is not part of this test`)
    }
  }
  return { ...all, ...given } as RpcHandlers
}

/** Starts `n` connected hosts with a wire each. */
export async function rpcPeers(
  n: number,
  handlersFor: (i: number) => Partial<RpcHandlers>,
  opts: { clockFor?: (i: number) => Clock | undefined; trustOthers?: boolean } = {},
): Promise<RpcPeer[]> {
  const hosts = await Promise.all(
    Array.from({ length: n }, async () =>
      startHost({
        privateKey: await generateKeyPair('Ed25519'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        secret: SECRET,
      })),
  )
  for (const h of hosts) {
    for (const o of hosts) {
      if (o !== h) {
        await h.libp2p.peerStore.merge(o.libp2p.peerId, { multiaddrs: o.libp2p.getMultiaddrs() })
      }
    }
  }
  return await Promise.all(hosts.map(async (host, i) => {
    const trusted = new Set(
      opts.trustOthers === false ? [] : hosts.filter((h) => h !== host).map((h) => h.peerId),
    )
    const rpc = await rpcWire({
      libp2p: host.libp2p,
      handlers: handlersWith(handlersFor(i)),
      isTrusted: (p) => trusted.has(p),
      clock: opts.clockFor?.(i),
    })
    return { id: host.peerId, host, rpc, trusted }
  }))
}

/** Stops every wire, then every host. */
export async function stopAll(peers: RpcPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.rpc.stop()))
  await Promise.all(peers.map((p) => p.host.stop()))
}
