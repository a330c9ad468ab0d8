/**
 * Opens the embedded IPFS node: blockstore-fs and datastore-fs under the repo folder, a
 * persistent Ed25519 identity kept in the datastore's keychain (the same `self` key Helia's
 * libp2p mixin would load; its own peer ID, distinct from the cluster peer's), and a Helia built
 * from its light pieces. With `network` it adds the libp2p of network.ts and bitswap;
 * `createHelia()`'s defaults are never used (they add mDNS, UPnP, auto-TLS and more that probe
 * the LAN or dial public hosts).
 *
 * The byte count of the blockstore is saved at a clean stop and trusted at the next start;
 * after a crash (no saved count) the block folder is walked once.
 *
 * @example
 * ```ts
 * const node = await openNode({
 *   dir: '/data/ipfs',
 *   network: { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], publicNetwork: false },
 * })
 * node.peerId // '12D3Koo…'
 * await node.stop()
 * ```
 */
import { join } from 'node:path'
import { createHeliaLight, type Helia } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { loadOrCreateSelfKey } from '@libp2p/config'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Libp2p } from '@libp2p/interface'
import { libp2pOptions, type NetworkOptions } from './network.ts'
import { listenFailures } from '../../net/listen_error.ts'
import { SizedBlockstore } from './sized_blockstore.ts'
import { loadHasher as addHasher } from '../../types/multihash.ts'

/** What to open. */
export interface NodeOptions {
  /** The repo folder (absolute); holds `blocks/` and `datastore/`. */
  dir: string
  /** libp2p + bitswap; absent = a purely local store. */
  network?: NetworkOptions
}

/** The service.json key of the node's listen addresses, for the one-line listen error. */
const LISTEN_KEY = 'ipfs_connector.embedded.listen_multiaddress'

/** An open node. */
export interface EmbeddedNode {
  helia: Helia
  blocks: SizedBlockstore
  datastore: FsDatastore
  peerId: string
  /** Present when libp2p is on. */
  libp2p?: Libp2p
  /** Stops Helia (and libp2p), saves the byte count and closes the stores. Idempotent. */
  stop(): Promise<void>
}

const SIZE_KEY = new Key('/ipfs-cluster/repo-size')

/** Opens the stores and starts the node; on failure everything opened is closed again. */
export async function openNode(opts: NodeOptions): Promise<EmbeddedNode> {
  await Deno.mkdir(opts.dir, { recursive: true })
  const blocks = new SizedBlockstore(join(opts.dir, 'blocks'))
  const datastore = new FsDatastore(join(opts.dir, 'datastore'))
  await blocks.open()
  await datastore.open()
  let helia: Helia | undefined
  const failures = listenFailures()
  try {
    blocks.bytes = await loadSize(datastore) ?? await blocks.scan()
    // Deleted while running: a crash leaves no count behind, and the next start re-scans.
    await datastore.delete(SIZE_KEY)
    const privateKey = await loadOrCreateSelfKey(datastore)
    const peerId = peerIdFromPrivateKey(privateKey).toString()
    // Blocks added with another hash function (`add --hash`) are checked with its hasher.
    const loadHasher = (code: number) =>
      addHasher(code) ?? Promise.reject(new Error(`no hasher for multihash 0x${code.toString(16)}`))
    const light = createHeliaLight({ blockstore: blocks, datastore, loadHasher })
    let libp2p: Libp2p | undefined
    if (opts.network) {
      const h = withBitswap(
        withLibp2pLight(light, await libp2pOptions(privateKey, opts.network, failures)),
      )
      helia = h
      await h.start()
      libp2p = h.libp2p
    } else {
      helia = light
      await light.start()
    }
    const started = helia
    let stopped: Promise<void> | undefined
    return {
      helia: started,
      blocks,
      datastore,
      peerId,
      libp2p,
      stop() {
        stopped ??= (async () => {
          try {
            await started.stop()
          } finally {
            await saveSize(datastore, blocks.bytes).catch(() => {})
            await blocks.close()
            await datastore.close()
          }
        })()
        return stopped
      },
    }
  } catch (err) {
    await helia?.stop().catch(() => {})
    await blocks.close().catch(() => {})
    await datastore.close().catch(() => {})
    // An address it could not listen on: one line naming the key (src/net/listen_error.ts).
    return failures.rethrow(LISTEN_KEY, err)
  }
}

async function loadSize(ds: FsDatastore): Promise<number | undefined> {
  try {
    const n = JSON.parse(new TextDecoder().decode(await ds.get(SIZE_KEY)))
    return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined
  } catch {
    return undefined
  }
}

async function saveSize(ds: FsDatastore, bytes: number): Promise<void> {
  await ds.put(SIZE_KEY, new TextEncoder().encode(JSON.stringify(bytes)))
}
