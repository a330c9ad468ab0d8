/**
 * The embedded IPFS connector: a Helia node inside the peer, behind the same IPFSConnector
 * interface as the Kubo one. Blocks and pins live under `<configDir>/<folder>`. With `libp2p`
 * on (the default) the node listens on `listen_multiaddress` and swaps blocks over bitswap with
 * the IPFS nodes it is connected to: those of `peering` (kept connected, peering.ts), those
 * `connectSwarms` and pin origins dial, and those that dial it. With `public_network` on it also
 * joins the public IPFS network (public_network.ts) and announces the roots it pins there.
 *
 * The node starts on first use (`ready()` or any call) and `stop()` closes it (idempotent).
 * Pins are walked by this package's deduping, prefetching walker and recorded by `PinStore`
 * (see pin_store.ts for why not Helia's `pins.add/rm`). A pin has no total time limit: it fails
 * when no block arrives for `pin_timeout`, like the Kubo connector's progress watchdog. GC runs
 * under a write lock that pins hold shared, so it never deletes a block a pin has fetched but
 * not yet recorded.
 *
 * @example
 * ```ts
 * const ipfs = embeddedConnector(embeddedSection.defaults(), { configDir: '/home/me/.ipfs-cluster' })
 * await ipfs.ready()
 * await ipfs.pin(newPin('bafy…'))
 * await ipfs.stop()
 * ```
 */
import { progressWatchdog } from '../../util/watchdog.ts'
import type { Clock } from '../../util/clock.ts'
import { isAbsolute, join } from 'node:path'
import { statfs } from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import * as raw from 'multiformats/codecs/raw'
import type {
  IPFSConnector,
  IPFSPinOptions,
  IPFSPinStatus,
  IPFSRepoGCItem,
  IPFSRepoStat,
} from '../../components.ts'
import type { IPFSID, Pin } from '../../types/mod.ts'
import { multihashKey, parseCid } from '../../types/cid.ts'
import { formatDuration } from '../../types/duration.ts'
import {
  ConfigError,
  errorMessage,
  IPFSError,
  ShutdownError,
  ValidationError,
} from '../../errors.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import type { EmbeddedConfig } from './config.ts'
import { type EmbeddedNode, openNode } from './node.ts'
import { type Peering, startPeering } from './peering.ts'
import { type Announcer, announcer } from './announcer.ts'
import { PinStore } from './pin_store.ts'
import { RWLock } from './locks.ts'
import { resolvePath } from './resolve.ts'
import { parseStorageSize } from './storage_size.ts'
import { type BlockSource, readBlock, walkDag } from './walker.ts'

/** What the embedded connector needs besides its config section. */
export interface EmbeddedDeps {
  /** The peer's config folder; a relative `folder` is taken under it. */
  configDir: string
  log?: Logger
  /** Times the pin watchdog and peering's redials (tests drive it by hand). */
  clock?: Clock
}

/** The embedded connector: an IPFSConnector plus where its repo lives. */
export interface EmbeddedConnector extends IPFSConnector {
  /** The absolute repo folder. */
  readonly repoPath: string
}

/** Blocks fetched ahead of a pin's walk (bitswap wants in flight per pin). */
const PIN_PREFETCH = 8
/** Block writes in flight during blockStream. */
const BLOCK_WRITES = 16
/** How long stop() waits for running pins and GC to let go. */
const STOP_WAIT = 5_000

interface Running {
  node: EmbeddedNode
  pins: PinStore
  peering?: Peering
  /** Present when the public network is on. */
  announcer?: Announcer
  /** Where walks, blockGet and resolve read: the network-backed store when libp2p is on. */
  source: BlockSource
}

/** Builds the connector; the node opens on first use. Throws ConfigError for a bad storage_max. */
export function embeddedConnector(config: EmbeddedConfig, deps: EmbeddedDeps): EmbeddedConnector {
  let storageMax: number
  try {
    storageMax = parseStorageSize(config.storage_max)
  } catch (err) {
    throw new ConfigError(`ipfs_connector.embedded.storage_max: ${errorMessage(err)}`)
  }
  const repoPath = isAbsolute(config.folder) ? config.folder : join(deps.configDir, config.folder)
  const log = deps.log ?? nullLogger
  const life = new AbortController()
  const gcLock = new RWLock()
  let starting: Promise<Running> | undefined
  let stopping: Promise<void> | undefined

  const start = async (): Promise<Running> => {
    const node: EmbeddedNode = await openNode({
      dir: repoPath,
      network: config.libp2p
        ? {
          listen: config.listen_multiaddress,
          announce: config.announce_multiaddress,
          publicNetwork: config.public_network,
        }
        : undefined,
    })
    const pins = new PinStore(node.datastore)
    let peering: Peering | undefined
    let roots: Announcer | undefined
    if (node.libp2p) {
      const addrs = node.libp2p.getMultiaddrs().map((a) => a.toString()).join(', ') || 'none'
      const net = config.public_network
        ? 'on (bootstrap peers, Amino DHT, delegated routing)'
        : 'off (ipfs_connector.embedded.public_network)'
      log.info(
        `embedded IPFS node ${node.peerId} listening on ${addrs}; public IPFS network: ${net}`,
      )
      if (config.peering.length) {
        peering = startPeering(node.libp2p, config.peering, { log, clock: deps.clock })
      }
      if (config.public_network) {
        const helia = node.helia
        roots = announcer((cid, signal) => helia.routing.provide(cid, { signal }), { log })
      }
    } else {
      log.info(
        `embedded IPFS node ${node.peerId} started without libp2p ` +
          `(ipfs_connector.embedded.libp2p is false): it serves only the blocks added to it`,
      )
    }
    return {
      node,
      pins,
      peering,
      announcer: roots,
      source: config.libp2p ? node.helia.blockstore : localSource(node),
    }
  }

  /** The running node (started on first call), or ShutdownError once stopped. */
  const running = async (signal?: AbortSignal): Promise<Running> => {
    if (life.signal.aborted) throw new ShutdownError('the embedded IPFS node is stopped')
    signal?.throwIfAborted()
    if (!starting) {
      starting = start()
      // A failed start is retried by the next call rather than remembered forever.
      starting.catch(() => starting = undefined)
    }
    try {
      return await starting
    } catch (err) {
      // A config problem (busy port) is already one line that says what to change.
      if (err instanceof ConfigError) throw err
      throw new IPFSError(`cannot start the embedded IPFS node: ${errorMessage(err)}`)
    }
  }

  /** The caller's signal combined with the connector's life. */
  const bound = (signal?: AbortSignal): AbortSignal =>
    signal ? AbortSignal.any([signal, life.signal]) : life.signal

  const pinOnce = async (pin: Pin, opts: IPFSPinOptions): Promise<void> => {
    const r = await running(opts.signal)
    const cid = parseCid(pin.cid)
    const depth = pin.max_depth < 0 ? Infinity : pin.max_depth
    const signal = bound(opts.signal)
    const release = await gcLock.read(signal)
    try {
      const existing = await r.pins.get(cid, signal)
      if (existing) {
        if (existing.depth === depth || (depth > 0 && depth < existing.depth)) return
        // Kubo's answer to `pin add --recursive=false` on a recursive pin.
        if (depth === 0) throw new IPFSError(`pin: ${cid} already pinned recursively`)
        // Deeper than before (direct → recursive): PinStore.add upgrades in place.
      }
      dialOrigins(r, pin.origins ?? [], signal)
      const stall = new AbortController()
      const walkSignal = AbortSignal.any([signal, stall.signal])
      const dog = progressWatchdog(config.pin_timeout, () => stall.abort(), deps.clock)
      let blocks = 0
      try {
        const walk = walkDag(cid, r.source, r.node.helia.getCodec, {
          depth,
          signal: walkSignal,
          prefetch: PIN_PREFETCH,
        })
        await r.pins.add(cid, depth, walk, {
          signal: walkSignal,
          onBlock: () => {
            blocks++
            dog.progress(blocks)
            opts.onProgress?.(blocks)
          },
        })
        // Public network on: tell it this node provides the root (Kubo's "roots" strategy).
        r.announcer?.add(cid)
      } catch (err) {
        if (stall.signal.aborted && !signal.aborted) {
          // No "pin <cid>:" prefix: the caller (the tracker) says which operation on which
          // CID failed; both prefixing it logged "pin <cid>: pin <cid>: …".
          throw new IPFSError(
            `no block arrived for ${formatDuration(config.pin_timeout)} ` +
              `(pin_timeout); ${blocks} blocks fetched`,
          )
        }
        signal.throwIfAborted()
        throw err instanceof IPFSError ? err : new IPFSError(errorMessage(err))
      } finally {
        dog.stop()
        // Stops any prefetch still waiting for a block.
        stall.abort()
      }
    } finally {
      release()
    }
  }

  /** Like the Kubo connector: connect to (up to 10 of) the pin's origins, in the background. */
  const dialOrigins = (r: Running, origins: string[], signal: AbortSignal): void => {
    const libp2p = r.node.libp2p
    if (!libp2p) return
    for (const o of origins.slice(0, 10)) {
      Promise.resolve().then(() => libp2p.dial(multiaddr(o), { signal })).then(
        () => log.debug(`connected to origin ${o}`),
        (err) => log.debug(`cannot connect to origin ${o}: ${errorMessage(err)}`),
      )
    }
  }

  const unpinOnce = async (cidText: string, signal?: AbortSignal): Promise<void> => {
    const r = await running(signal)
    const cid = parseCid(cidText)
    const s = bound(signal)
    // Held shared like a pin, so that stop() waits for the records to be written.
    const release = await gcLock.read(s)
    try {
      await r.pins.rm(
        cid,
        (depth) =>
          walkDag(cid, r.node.blocks, r.node.helia.getCodec, {
            depth,
            signal: s,
            // A block gone missing cannot hold anything below it.
            onMissing: (missing, err) => {
              log.warn(`unpin ${cid}: block ${missing} is missing: ${errorMessage(err)}`)
              return true
            },
          }),
        s,
      )
      if (r.announcer) {
        r.announcer.remove(cid)
        await r.node.helia.routing.cancelReprovide(cid, { signal: s }).catch((err) =>
          log.debug(`cannot stop announcing ${cid}: ${errorMessage(err)}`)
        )
      }
    } finally {
      release()
    }
  }

  return {
    repoPath,

    async ready(signal) {
      await running(signal)
    },

    async id(signal): Promise<IPFSID> {
      const { node } = await running(signal)
      return {
        id: node.peerId,
        addresses: node.libp2p?.getMultiaddrs().map((a) => a.toString()) ?? [],
        error: '',
      }
    },

    pin(pin, opts = {}) {
      return pinOnce(pin, opts)
    },

    unpin(cid, signal) {
      return unpinOnce(cid, signal)
    },

    async pinLsCid(pin, signal): Promise<IPFSPinStatus> {
      const r = await running(signal)
      const cid = parseCid(pin.cid)
      const found = await r.pins.get(cid, signal)
      if (found) return found.depth === 0 ? 'direct' : 'recursive'
      return await r.pins.isPinned(cid, signal) ? 'indirect' : 'unpinned'
    },

    async *pinLs(type, signal) {
      const r = await running(signal)
      const s = bound(signal)
      for await (const p of r.pins.ls(s)) {
        const t = p.depth === 0 ? 'direct' : 'recursive'
        if (type === 'all' || type === t) yield { cid: p.cid.toString(), type: t }
      }
      if (type !== 'all') return
      // Indirect pins, as Kubo lists them for type=all: the blocks under recursive pins that
      // are not pins themselves, each once (this walks every recursive DAG in the local store).
      const seen = new Set<string>()
      for await (const p of r.pins.ls(s)) {
        if (p.depth === 0) continue
        const walk = walkDag(p.cid, r.node.blocks, r.node.helia.getCodec, {
          depth: p.depth,
          signal: s,
          onMissing: () => true,
        })
        for await (const n of walk) {
          if (n.depth === 0) continue
          const key = multihashKey(n.cid)
          if (seen.has(key)) continue
          seen.add(key)
          if (await r.pins.get(n.cid, s)) continue
          yield { cid: n.cid.toString(), type: 'indirect' }
        }
      }
    },

    async swarmPeers(signal) {
      const { node } = await running(signal)
      if (!node.libp2p) return []
      return [...new Set(node.libp2p.getConnections().map((c) => c.remotePeer.toString()))]
    },

    async connectSwarms(addrs, signal) {
      const { node } = await running(signal)
      const libp2p = node.libp2p
      if (!libp2p) return
      const s = bound(signal)
      await Promise.all(addrs.map(async (a) => {
        try {
          await libp2p.dial(multiaddr(a), { signal: s })
          log.debug(`connected to ${a}`)
        } catch (err) {
          // As the reference: one unreachable address does not fail the others.
          log.debug(`cannot connect to ${a}: ${errorMessage(err)}`)
        }
      }))
    },

    async configKey(path, signal) {
      const { node } = await running(signal)
      const cfg: Record<string, unknown> = {
        Datastore: { StorageMax: config.storage_max },
        Identity: { PeerID: node.peerId },
        Addresses: { Swarm: config.libp2p ? config.listen_multiaddress : [] },
      }
      const parts = path.split('/').filter((p) => p !== '')
      if (parts.length === 0) throw new IPFSError('cannot lookup without a path')
      let v: unknown = cfg
      for (const part of parts) {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) {
          throw new IPFSError('invalid path')
        }
        if (!(part in v)) throw new IPFSError('key not found in configuration')
        v = (v as Record<string, unknown>)[part]
      }
      return v
    },

    async repoStat(signal): Promise<IPFSRepoStat> {
      const { node } = await running(signal)
      let max = storageMax
      if (max === 0) {
        // "0 = the disk's size" (config.ts): the filesystem holding the repo.
        const fs = await statfs(repoPath)
        max = fs.blocks * fs.bsize
      }
      return { repoSize: node.blocks.bytes, storageMax: max }
    },

    async *repoGC(signal): AsyncGenerator<IPFSRepoGCItem> {
      const r = await running(signal)
      const s = bound(signal)
      const release = await gcLock.write(s)
      try {
        for await (const { cid } of r.node.blocks.getAll({ signal: s })) {
          try {
            if (await r.pins.isPinned(cid, s)) continue
            await r.node.blocks.delete(cid, { signal: s })
            // Kubo reports removed blocks as CIDv1 raw: the blockstore only knows multihashes.
            yield { key: CID.createV1(raw.code, cid.multihash).toString() }
          } catch (err) {
            s.throwIfAborted()
            yield { error: `${cid}: ${errorMessage(err)}` }
          }
        }
      } finally {
        release()
      }
    },

    async resolve(path, signal) {
      const r = await running(signal)
      return await resolvePath(path, r.source, bound(signal))
    },

    async blockGet(cidText, signal) {
      const r = await running(signal)
      const cid = parseCid(cidText)
      try {
        return await readBlock(r.source, cid, bound(signal))
      } catch (err) {
        signal?.throwIfAborted()
        throw new IPFSError(`block ${cid}: ${errorMessage(err)}`)
      }
    },

    async blockStream(blocks, signal) {
      const r = await running(signal)
      const s = bound(signal)
      // Each block is a file write (temp file + rename): a few in flight at once is several
      // times faster than one by one. Hashes are checked before anything is written.
      const writing = new Set<Promise<void>>()
      let failed: unknown
      try {
        for await (const b of blocks) {
          s.throwIfAborted()
          if (failed) break
          const cid = parseCid(b.cid)
          await verifyBlock(r.node, cid, b.bytes)
          // Through Helia's blockstore so that bitswap peers waiting for the block get it.
          const w: Promise<void> = Promise.resolve(
            r.node.helia.blockstore.put(cid, b.bytes, { signal: s }),
          )
            .then(() => {}, (err: unknown) => void (failed ??= err))
            .finally(() => writing.delete(w))
          writing.add(w)
          if (writing.size >= BLOCK_WRITES) await Promise.race(writing)
        }
      } finally {
        await Promise.all(writing)
      }
      if (failed) {
        s.throwIfAborted()
        throw new IPFSError(`cannot store block: ${errorMessage(failed)}`)
      }
    },

    stop() {
      stopping ??= (async () => {
        life.abort(new ShutdownError('the embedded IPFS node is stopping'))
        const r = await starting?.catch(() => undefined)
        if (!r) return
        // Waits for a running GC or pin to notice the abort and let go, so that nothing is
        // writing while the stores close; bounded, in case a GC stream was left unconsumed.
        const release = await gcLock.write(AbortSignal.timeout(STOP_WAIT)).catch(() => {
          log.warn('stopping the embedded IPFS node while a pin or GC still runs')
          return () => {}
        })
        try {
          r.peering?.stop()
          r.announcer?.stop()
          await r.node.stop()
          log.info('embedded IPFS node stopped')
        } finally {
          release()
        }
      })()
      return stopping
    },
  }
}

/** Checks that the bytes hash to the CID's multihash (a ValidationError otherwise). */
async function verifyBlock(node: EmbeddedNode, cid: CID, bytes: Uint8Array): Promise<void> {
  let hasher
  try {
    hasher = await node.helia.getHasher(cid.multihash.code)
  } catch {
    throw new ValidationError(
      `block ${cid}: unsupported hash function 0x${cid.multihash.code.toString(16)}`,
    )
  }
  const digest = await hasher.digest(bytes)
  if (!equals(digest.bytes, cid.multihash.bytes)) {
    throw new ValidationError(`block ${cid}: the bytes do not match the CID's hash`)
  }
}

/** Reads only the local blockstore (libp2p off), with a clear error for a missing block. */
function localSource(node: EmbeddedNode): BlockSource {
  return {
    async *get(cid, opts) {
      if (!await node.blocks.has(cid, opts)) {
        throw new IPFSError(
          `block ${cid} is not in the embedded IPFS node's store (its libp2p is off, so it ` +
            `cannot fetch blocks from other nodes: set ipfs_connector.embedded.libp2p to true)`,
        )
      }
      yield* node.blocks.get(cid, opts)
    },
  }
}
