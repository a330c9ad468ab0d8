/**
 * The IPFS connector for a Kubo daemon: every call of the reference's `ipfshttp` component over
 * the Kubo RPC API (`POST /api/v0/<cmd>`), through a small HTTP/1.1 client (http1.ts; see
 * docs/ipfshttp.md for why neither kubo-rpc-client nor fetch), over TCP or a unix socket.
 *
 * @example
 * ```ts
 * const ipfs = ipfsHttpConnector(ipfsHttpSection.defaults())
 * await ipfs.ready(AbortSignal.timeout(30_000))
 * await ipfs.pin(newPin('bafy…'), { onProgress: (n) => console.log(n, 'blocks') })
 * await ipfs.stop()
 * ```
 */
import { clusterMetrics } from '../../observations/metrics.ts'
import { tracedLeaf, tracingEnabled } from '../../observations/tracing.ts'
import type {
  IPFSConnector,
  IPFSPinOptions,
  IPFSPinStatus,
  IPFSRepoGCItem,
  IPFSRepoStat,
} from '../../components.ts'
import { errorMessage, IPFSError, isAbortError, ShutdownError } from '../../errors.ts'
import { multihashKey, parseCid } from '../../types/cid.ts'
import { formatDuration } from '../../types/duration.ts'
import type { IPFSID } from '../../types/id.ts'
import type { Pin } from '../../types/pin.ts'
import { parseNodeAddress } from './address.ts'
import { blockLinks } from './links.ts'
import {
  IPFSRequestError,
  type KuboCall,
  KuboClient,
  kuboErrorMessage,
  responseError,
} from './client.ts'
import type { KuboClientDeps } from './client.ts'
import { blockPutQuery } from './codecs.ts'
import type { IPFSHttpConfig } from './config.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { multipartStream } from './multipart.ts'
import { parseJsonLine, readJsonLines, readLineBatches } from './ndjson.ts'
import {
  cidFromJson,
  cidOfResolvedPath,
  isPeerId,
  isPinnedAtDepth,
  pinAddArgs,
  pinStatusFromType,
  pinTypeForDepth,
  resolveTarget,
  streamErrorOf,
  toCount,
} from './parse.ts'
import { type CancelTimer, type Clock, systemClock } from '../../util/clock.ts'
import { progressWatchdog } from '../../util/watchdog.ts'

/** How often `ready()` retries `id` (the reference's 1 s). */
export const READY_RETRY_MS = 1000
/** At most this many `origins` are swarm-connected before a pin (the reference's bound). */
export const MAX_ORIGINS = 10
/** Most CIDs in one `pin/add` of pins asked for together (see `pin`). */
export const MAX_PIN_BATCH = 32
/**
 * A `pin/add` of several CIDs not done by then is waiting for blocks (Kubo pins its arguments one
 * after the other): it is cancelled and each pin goes alone, so that one CID being fetched holds
 * no other. Kubo keeps what it pinned before the cancel; those pins answer at once.
 */
export const PIN_BATCH_PATIENCE_MS = 1000

/** A pin waiting for the `pin/add` that carries the pins asked for with it. */
interface QueuedPin {
  pin: Pin
  signal?: AbortSignal
  resolve: () => void
  reject: (err: unknown) => void
}

/** What the connector takes from outside; all optional. */
export interface IPFSHttpDeps extends KuboClientDeps {
  log?: Logger
  /**
   * The IPFS swarm addresses of the other cluster peers. With it and `connect_swarms_delay` > 0,
   * the connector runs ConnectSwarms that long after it becomes ready (the reference asks
   * `Cluster.Peers` over RPC for the same list).
   */
  swarmAddrs?: (signal: AbortSignal) => Promise<string[]>
  /**
   * Asks the cluster to push informer metrics now; called every `informer_trigger_interval`
   * pins and block streams (0 = never), so freespace/pinqueue stay fresh under load.
   */
  triggerInformers?: () => void
}

/**
 * Builds the Kubo RPC connector. Nothing is sent until a method is called; `ready()` waits for
 * the daemon; `stop()` aborts every request in flight.
 */
export function ipfsHttpConnector(
  config: IPFSHttpConfig,
  deps: IPFSHttpDeps = {},
): IPFSConnector {
  return new IPFSHttpConnector(config, deps)
}

class IPFSHttpConnector implements IPFSConnector {
  readonly #cfg: IPFSHttpConfig
  readonly #deps: IPFSHttpDeps
  readonly #log: Logger
  readonly #client: KuboClient
  readonly #clock: Clock
  #ready = false
  #triggerCount = 0
  /** Pins asked for since the last microtask, by their `pin/add` options (see `pin`). */
  readonly #queued = new Map<string, QueuedPin[]>()
  #cancelSwarmTimer?: CancelTimer

  constructor(config: IPFSHttpConfig, deps: IPFSHttpDeps) {
    this.#cfg = config
    this.#deps = deps
    this.#log = deps.log ?? nullLogger
    this.#clock = deps.clock ?? systemClock
    this.#client = new KuboClient(parseNodeAddress(config.node_multiaddress), {
      ...deps,
      log: this.#log,
    })
  }

  async ready(signal?: AbortSignal): Promise<void> {
    if (this.#ready) return
    const stopOrCaller = this.#scopeSignal(signal)
    for (let i = 1;; i++) {
      this.#checkStopped()
      signal?.throwIfAborted()
      try {
        await this.id(signal)
        break
      } catch (err) {
        if (this.#client.stopped || signal?.aborted) throw this.#abortReason(signal, err)
        if (i % 10 === 0) {
          this.#log.warn(
            `ipfs does not seem to be available after ${i} retries: ${errorMessage(err)}`,
          )
        }
      }
      try {
        await this.#clock.sleep(READY_RETRY_MS, stopOrCaller)
      } catch (err) {
        throw this.#abortReason(signal, err)
      }
    }
    if (this.#ready) return
    this.#ready = true
    this.#log.info('IPFS daemon is ready')
    this.#scheduleConnectSwarms()
  }

  async id(signal?: AbortSignal): Promise<IPFSID> {
    const v = await this.#postJson('id', signal, this.#cfg.ipfs_request_timeout)
    const obj = asObject(v, 'id')
    if (!isPeerId(obj.ID)) {
      throw new IPFSError(`IPFS id response has an invalid peer ID: ${JSON.stringify(obj.ID)}`)
    }
    const addresses: string[] = []
    for (const a of Array.isArray(obj.Addresses) ? obj.Addresses : []) {
      if (typeof a === 'string' && a.startsWith('/')) addresses.push(a)
      else this.#log.warn(`cannot parse IPFS multiaddress: ${JSON.stringify(a)}... ignoring`)
    }
    return { id: obj.ID, addresses, error: '' }
  }

  /**
   * One request for a new pin: `pin/add`, which Kubo answers at once for a CID already pinned
   * that way. The reference asks `pin/ls` first every time, which doubles the IPFS requests of an
   * ingest (and of every peer applying it) to learn what `pin/add` says anyway.
   *
   * Pins asked for together — in one turn of the event loop, as the tracker's workers do when a
   * batch of pins arrives — share one `pin/add` of up to `MAX_PIN_BATCH` CIDs (one request and
   * one pinset flush in Kubo instead of one each). Should it fail as a whole (a CID refused, a
   * caller's abort, `PIN_BATCH_PATIENCE_MS` passed), each pin goes again alone, so each caller
   * gets its own outcome. Pins with origins or a progress callback always go alone.
   */
  pin(pin: Pin, opts: IPFSPinOptions = {}): Promise<void> {
    const m = clusterMetrics
    if (!m && !tracingEnabled()) return this.#pin(pin, opts)
    // The reference's pins/pin_add, pins/pin_add_errors and pins/ipfs_pins; one span a pin.
    return tracedLeaf('ipfsconn/Pin', pin.cid, async () => {
      m?.ipfsPinAdd.inc()
      try {
        await this.#pin(pin, opts)
      } catch (err) {
        m?.ipfsPinAddErrors.inc()
        throw err
      }
      m?.ipfsPins.inc()
    })
  }

  async #pin(pin: Pin, opts: IPFSPinOptions): Promise<void> {
    const signal = opts.signal
    this.#maybeTriggerInformers()
    // Origins are dialled in the background and given up when the pin ends, as in the reference.
    const dial = (pin.origins ?? []).slice(0, MAX_ORIGINS)
    const origins = dial.length > 0 ? new AbortController() : undefined
    try {
      if (origins) {
        const bg = AbortSignal.any(signal ? [origins.signal, signal] : [origins.signal])
        for (const o of dial) {
          this.#swarmConnect(o, bg, 0).then(
            () => this.#log.debug(`swarm-connect success to origin: ${o}`),
            (err) => this.#log.debug(`swarm-connect to origin ${o} failed: ${errorMessage(err)}`),
          )
        }
      }
      if (pin.pin_update) {
        // pin/update reuses the old DAG, but only when the old CID is pinned recursively here.
        const from = await this.#pinLsCid(pin.pin_update, 'recursive', signal).catch((err) => {
          if (signal?.aborted || this.#client.stopped) throw err
          return 'unpinned' as const
        })
        if (from === 'recursive') {
          await this.#pinUpdate(pin.pin_update, pin.cid, signal)
          return
        }
      }
      if (pin.max_depth > 0) await this.#pinToDepth(pin, signal)
      else if (origins || opts.onProgress) await this.#pinAdd([pin], opts)
      else await this.#pinTogether(pin, signal)
      this.#log.info(`IPFS Pin request succeeded: ${pin.cid}`)
    } finally {
      origins?.abort()
      this.#maybeTriggerInformers()
    }
  }

  /**
   * `pin/rm`; "not pinned" counts as done. A depth-limited pin (`maxDepth` > 0) first drops the
   * direct pins of the blocks below its node (see `#pinToDepth`), read from this daemon's copy.
   */
  async unpin(cid: string, signal?: AbortSignal, maxDepth = -1): Promise<void> {
    this.#checkStopped()
    if (this.#cfg.unpin_disable) {
      throw new IPFSError('ipfs unpinning is disallowed by configuration on this peer')
    }
    if (maxDepth > 0) await this.#unpinBelow(cid, maxDepth, signal)
    try {
      await this.#postJson(`pin/rm?arg=${cid}`, signal, this.#cfg.unpin_timeout)
      clusterMetrics?.ipfsPins.inc(-1)
      this.#log.info(`IPFS Unpin request succeeded: ${cid}`)
    } catch (err) {
      // Kubo: "not pinned or pinned indirectly"; js-ipfs: "… is not pinned". Both mean done.
      if (err instanceof IPFSRequestError && /not pinned/.test(err.ipfsMessage ?? '')) {
        this.#log.debug(`IPFS object is already unpinned: ${cid}`)
        return
      }
      throw err
    }
  }

  pinLsCid(pin: Pin, signal?: AbortSignal): Promise<IPFSPinStatus> {
    return this.#pinLsCid(pin.cid, pinTypeForDepth(pin.max_depth), signal)
  }

  /**
   * Lists recursive, direct, or both (`all`: recursive then direct — not indirect, which the
   * cluster never needs and which can be huge). The reference meant to list both but stops after
   * the first type; see docs/compat.md. One `ipfs_request_timeout` covers the whole listing.
   */
  async *pinLs(
    type: 'recursive' | 'direct' | 'all',
    signal?: AbortSignal,
  ): AsyncGenerator<{ cid: string; type: IPFSPinStatus }> {
    const types = type === 'all' ? ['recursive', 'direct'] as const : [type]
    const deadline = this.#clock.now() + this.#cfg.ipfs_request_timeout
    for (const t of types) {
      const call = this.#call(`pin/ls?stream=true&type=${t}`, signal, deadline - this.#clock.now())
      try {
        const res = await call.post()
        for await (const lines of readLineBatches(res)) {
          for (const line of lines) {
            const fast = pinLine(line)
            if (fast) {
              yield pinEntry(call, fast.cid, fast.type)
              continue
            }
            const v = parseJsonLine(line) // its error is named by call.error below
            checkStreamError(call, v)
            const obj = asObject(v, call.path)
            if (obj.Keys && typeof obj.Keys === 'object') {
              // A daemon that ignored stream=true answers one {"Keys":{cid:{Type}}} object.
              for (const [k, info] of Object.entries(obj.Keys as Record<string, unknown>)) {
                yield pinEntry(call, k, (info as Record<string, unknown> | null)?.Type)
              }
              continue
            }
            yield pinEntry(call, obj.Cid, obj.Type)
          }
        }
      } catch (err) {
        throw call.error(err)
      } finally {
        call.end()
      }
    }
  }

  async pinCount(signal?: AbortSignal): Promise<number> {
    let n = 0
    const deadline = this.#clock.now() + this.#cfg.ipfs_request_timeout
    for (const t of ['recursive', 'direct'] as const) {
      const call = this.#call(`pin/ls?stream=true&type=${t}`, signal, deadline - this.#clock.now())
      try {
        const res = await call.post()
        // Count lines, not objects: one `{"Cid","Type"}` per line, so no JSON is decoded. A
        // daemon that ignores stream=true sends one {"Keys":…} object: decode just that.
        let head: Uint8Array | undefined
        let lines = 0
        let last = 10
        for (let chunk; (chunk = await res.read()) !== null;) {
          head ??= chunk.slice(0, 16) // a copy: the chunk is only valid until the next read
          for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++
          if (chunk.length) last = chunk[chunk.length - 1]
        }
        if (last !== 10) lines++
        if (head && new TextDecoder().decode(head).includes('"Keys"')) {
          for await (const _ of this.pinLs(t, signal)) n++
        } else {
          n += lines
        }
      } catch (err) {
        throw call.error(err)
      } finally {
        call.end()
      }
    }
    clusterMetrics?.ipfsPins.set(n) // the exact count: what pin/unpin moved is set right again
    return n
  }

  async swarmPeers(signal?: AbortSignal): Promise<string[]> {
    const v = asObject(
      await this.#postJson('swarm/peers', signal, this.#cfg.ipfs_request_timeout),
      'swarm/peers',
    )
    // Kubo sends "Peers": null when there are none, js-ipfs sends [].
    const peers = Array.isArray(v.Peers) ? v.Peers : []
    const out: string[] = []
    for (const p of peers) {
      const id = (p as Record<string, unknown> | null)?.Peer
      if (isPeerId(id)) out.push(id)
      else this.#log.warn(`swarm/peers: ignoring invalid peer ${JSON.stringify(p)}`)
    }
    return out
  }

  async connectSwarms(addrs: string[], signal?: AbortSignal): Promise<void> {
    const deadline = this.#clock.now() + this.#cfg.ipfs_request_timeout
    for (const addr of addrs) {
      try {
        await this.#swarmConnect(addr, signal, deadline - this.#clock.now())
        this.#log.debug(`ipfs successfully connected to ${addr}`)
      } catch (err) {
        if (signal?.aborted || this.#client.stopped) throw this.#abortReason(signal, err)
        if (this.#clock.now() >= deadline) throw err
        this.#log.debug(`swarm/connect ${addr}: ${errorMessage(err)}`)
      }
    }
  }

  async configKey(path: string, signal?: AbortSignal): Promise<unknown> {
    const cfg = await this.#postJson('config/show', signal, this.#cfg.ipfs_request_timeout)
    if (typeof path !== 'string' || path === '') {
      throw new IPFSError('cannot lookup without a path')
    }
    // The reference splits only once ("A/B/C" looks up "B/C" inside A); every level works here.
    let cur: unknown = cfg
    for (const key of path.split('/')) {
      if (!cur || typeof cur !== 'object' || Array.isArray(cur)) {
        throw new IPFSError('invalid path')
      }
      if (!Object.hasOwn(cur, key)) throw new IPFSError('key not found in configuration')
      cur = (cur as Record<string, unknown>)[key]
    }
    return cur
  }

  async repoStat(signal?: AbortSignal): Promise<IPFSRepoStat> {
    const v = asObject(
      await this.#postJson('repo/stat?size-only=true', signal, this.#cfg.ipfs_request_timeout),
      'repo/stat',
    )
    return {
      repoSize: toCount(v.RepoSize, 'RepoSize'),
      storageMax: toCount(v.StorageMax, 'StorageMax'),
    }
  }

  async *repoGC(signal?: AbortSignal): AsyncGenerator<IPFSRepoGCItem> {
    const call = this.#call('repo/gc?stream-errors=true', signal, this.#cfg.repogc_timeout)
    try {
      const res = await call.post()
      for await (const v of readJsonLines(res)) {
        const obj = asObject(v, call.path)
        const item: IPFSRepoGCItem = {}
        const key = cidFromJson(obj.Key)
        if (key) item.key = key
        if (typeof obj.Error === 'string' && obj.Error !== '') item.error = obj.Error
        else if (!key) checkStreamError(call, v)
        yield item
      }
    } catch (err) {
      throw call.error(err)
    } finally {
      call.end()
      // Freespace has probably changed.
      if (!this.#client.stopped) this.#maybeTriggerInformers()
    }
  }

  async resolve(path: string, signal?: AbortSignal): Promise<string> {
    const target = resolveTarget(path)
    if ('cid' in target) return target.cid
    const v = asObject(
      await this.#postJson(
        `resolve?arg=${encodeURIComponent(target.path)}`,
        signal,
        this.#cfg.ipfs_request_timeout,
      ),
      'resolve',
    )
    return cidOfResolvedPath(v.Path)
  }

  blockGet(cid: string, signal?: AbortSignal): Promise<Uint8Array> {
    return this.#blockGet(cid, signal, false)
  }

  /** `block/get`; `offline`: only this daemon's copy (Kubo's per-request `offline` option). */
  async #blockGet(cid: string, signal: AbortSignal | undefined, offline: boolean) {
    const path = `block/get?arg=${cid}${offline ? '&offline=true' : ''}`
    const call = this.#call(path, signal, this.#cfg.ipfs_request_timeout)
    try {
      const res = await call.post()
      return await res.bytes()
    } catch (err) {
      throw call.error(err)
    } finally {
      call.end()
    }
  }

  async blockStream(
    blocks: AsyncIterable<{ cid: string; bytes: Uint8Array }>,
    signal?: AbortSignal,
  ): Promise<void> {
    this.#checkStopped()
    const it = blocks[Symbol.asyncIterator]()
    const first = await it.next()
    if (first.done) throw new IPFSError('BlockStream: no blocks to peek in blocks channel')
    // Kubo hashes every block with the parameters given once in the query: they come from the
    // first block, so one stream must use one CID prefix (as the reference's /add does).
    const path = `block/put?${blockPutQuery(parseCid(first.value.cid))}`
    const call = this.#call(path, signal, 0)
    const m = clusterMetrics
    m?.blocksPut.inc()
    // Multihashes sent and not yet confirmed, with a count (the same block may be sent twice).
    const pending = new Map<string, { cid: string; n: number }>()
    const source = async function* () {
      let done = false
      try {
        yield first.value
        for (;;) {
          const n = await it.next()
          if (n.done) {
            done = true
            return
          }
          yield n.value
        }
      } catch (err) {
        done = true
        // The producer failed: end the request with its error, not as a transport failure.
        call.cancel(err instanceof Error ? err : new IPFSError(String(err)))
        throw err
      } finally {
        // The request ended early (error, abort): let the producer release its resources.
        if (!done) await it.return?.()
      }
    }
    const { body, contentType } = multipartStream(
      source(),
      (b) => ({ name: b.cid, bytes: b.bytes }),
      (b) => {
        const k = multihashKey(parseCid(b.cid))
        if (m) {
          m.blocksAdded.inc()
          m.blocksAddedSize.inc(b.bytes.length)
        }
        const e = pending.get(k)
        if (e) e.n++
        else pending.set(k, { cid: b.cid, n: 1 })
      },
    )
    try {
      const res = await call.post(body, contentType)
      for await (const v of readJsonLines(res)) {
        checkStreamError(call, v)
        const key = cidFromJson(asObject(v, call.path).Key)
        const k = key ? multihashKey(parseCid(key)) : undefined
        const e = k ? pending.get(k) : undefined
        if (!e) {
          this.#log.warn(
            `blockPut response CID (${key}) does not match the multihash of any blocks sent`,
          )
          continue
        }
        if (--e.n === 0) pending.delete(k!)
      }
    } catch (err) {
      m?.blocksPutErrors.inc()
      throw call.error(err)
    } finally {
      call.end()
    }
    if (pending.size > 0) {
      m?.blocksPutErrors.inc()
      const [firstMissing] = pending.values()
      throw new IPFSError(
        `block/put: IPFS did not confirm ${pending.size} of the blocks sent ` +
          `(first: ${firstMissing.cid}) (${path})`,
      )
    }
    this.#maybeTriggerInformers()
  }

  stop(): Promise<void> {
    this.#cancelSwarmTimer?.()
    this.#cancelSwarmTimer = undefined
    this.#client.stop()
    return Promise.resolve()
  }

  // --- internals ---

  async #pinLsCid(
    cid: string,
    type: 'recursive' | 'direct' | 'all',
    signal?: AbortSignal,
  ): Promise<IPFSPinStatus> {
    const call = this.#call(
      `pin/ls?stream=true&arg=${cid}&type=${type}`,
      signal,
      this.#cfg.ipfs_request_timeout,
    )
    try {
      const res = await call.send()
      if (res.status !== 200) {
        const text = await res.text()
        // Kubo: "path '<cid>' is not pinned"; the reference matches the suffix. It is the answer
        // for every new pin, so it is read without raising an error first.
        if (kuboErrorMessage(text)?.endsWith('not pinned')) return 'unpinned'
        throw responseError(call.path, res.status, text)
      }
      for await (const v of readJsonLines(res)) {
        checkStreamError(call, v)
        const obj = asObject(v, call.path)
        if (obj.Keys && typeof obj.Keys === 'object') {
          const want = multihashKey(parseCid(cid))
          for (const [k, info] of Object.entries(obj.Keys as Record<string, unknown>)) {
            const c = cidFromJson(k)
            if (c && multihashKey(parseCid(c)) === want) {
              return pinEntry(call, k, (info as Record<string, unknown> | null)?.Type).type
            }
          }
          continue
        }
        return pinEntry(call, obj.Cid ?? cid, obj.Type).type
      }
      return 'unpinned'
    } catch (err) {
      throw call.error(err)
    } finally {
      call.end()
    }
  }

  /** Queues `pin` for the `pin/add` sent at the next microtask with the pins queued meanwhile. */
  #pinTogether(pin: Pin, signal?: AbortSignal): Promise<void> {
    this.#checkStopped()
    signal?.throwIfAborted()
    const key = pinAddArgs(pin.max_depth)
    return new Promise<void>((resolve, reject) => {
      let q = this.#queued.get(key)
      if (!q) {
        q = []
        this.#queued.set(key, q)
        queueMicrotask(() => {
          // Unless it filled up and went already.
          if (this.#queued.get(key) === q) {
            this.#queued.delete(key)
            void this.#sendBatch(q!)
          }
        })
      }
      q.push({ pin, signal, resolve, reject })
      if (q.length >= MAX_PIN_BATCH) {
        this.#queued.delete(key)
        void this.#sendBatch(q)
      }
    })
  }

  /** One `pin/add` for the batch; if it fails as a whole, each pin alone (see `pin`). */
  async #sendBatch(batch: QueuedPin[]): Promise<void> {
    const alone = (m: QueuedPin) => {
      if (m.signal?.aborted) return m.reject(m.signal.reason)
      this.#pinAdd([m.pin], { signal: m.signal }).then(m.resolve, m.reject)
    }
    if (batch.length === 1) return alone(batch[0])
    const ac = new AbortController()
    const onAbort = () => ac.abort(new IPFSError('a pin of the batch was cancelled'))
    for (const m of batch) m.signal?.addEventListener('abort', onAbort, { once: true })
    const cancelPatience = this.#clock.timeout(PIN_BATCH_PATIENCE_MS, () => {
      ac.abort(new IPFSError(`the batch took over ${PIN_BATCH_PATIENCE_MS} ms`))
    })
    try {
      await this.#pinAdd(batch.map((m) => m.pin), { signal: ac.signal }, false)
      for (const m of batch) m.resolve()
    } catch (err) {
      if (this.#client.stopped) {
        for (const m of batch) m.reject(err)
        return
      }
      this.#log.debug(`IPFS pin/add of ${batch.length} CIDs: ${errorMessage(err)}; each alone`)
      for (const m of batch) alone(m)
    } finally {
      cancelPatience()
      for (const m of batch) m.signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * `pin/add` of `pins` (one depth). A stream that ends without its `Pins` line is checked with
   * `pin/ls` when `verify` (one pin), else an error.
   */
  async #pinAdd(pins: readonly Pin[], opts: IPFSPinOptions, verify = true): Promise<void> {
    const [pin] = pins
    const args = pins.map((p) => `arg=${p.cid}&`).join('')
    const path = `pin/add?${args}${pinAddArgs(pin.max_depth)}&progress=true`
    const what = pins.length === 1 ? pin.cid : `${pins.length} CIDs (${pin.cid}, …)`
    // No total limit: a big DAG may take hours. The watchdog cancels a pin that stopped moving.
    const call = this.#call(path, opts.signal, 0)
    const timeout = this.#cfg.pin_timeout
    const dog = progressWatchdog(timeout, () => {
      call.cancel(
        new IPFSError(
          `IPFS pin of ${what} made no progress for ${formatDuration(timeout)}: cancelled (${
            pins.length === 1 ? path : 'pin/add'
          })`,
        ),
      )
    }, this.#clock)
    let confirmed = false
    try {
      const res = await call.post()
      for await (const v of readJsonLines(res)) {
        checkStreamError(call, v)
        const obj = asObject(v, call.path)
        if (obj.Progress !== undefined) {
          const n = toCount(obj.Progress, 'Progress')
          dog.progress(n)
          opts.onProgress?.(n)
        }
        if (Array.isArray(obj.Pins)) confirmed = true
      }
    } catch (err) {
      throw call.error(err)
    } finally {
      dog.stop()
      call.end()
    }
    if (confirmed) return
    if (!verify) throw new IPFSError(`IPFS pin/add of ${what} ended without its Pins line`)
    // Kubo reports an error that happens mid-stream only in the X-Stream-Error trailer, which
    // fetch does not expose; a stream that ended without its final Pins line is checked instead.
    const status = await this.#pinLsCid(pin.cid, pinTypeForDepth(pin.max_depth), opts.signal)
    if (!isPinnedAtDepth(status, pin.max_depth)) {
      throw new IPFSError(`IPFS pin/add of ${pin.cid} ended without pinning it (${path})`)
    }
  }

  /**
   * A depth-limited pin: a shard, its node and the blocks it links (depth 1). Kubo has none (its
   * `max-depth` was never merged; the option the reference sends is ignored and the whole DAG
   * below gets pinned, so the peer of a file's last shard, which links the file's root, would
   * fetch and hold all of it). Every block within the depth is pinned direct, in batches, and
   * the node last: once the node is pinned, so is everything below it.
   */
  async #pinToDepth(pin: Pin, signal?: AbortSignal): Promise<void> {
    const below = await this.#blocksBelow(pin.cid, pin.max_depth, false, signal)
    for (let i = 0; i < below.length; i += MAX_PIN_BATCH) {
      await this.#pinDirect(below.slice(i, i + MAX_PIN_BATCH), pin, signal)
    }
    await this.#pinDirect([pin.cid], pin, signal)
  }

  /** Direct pins of `cids` in one `pin/add`; if it fails as a whole, one at a time. */
  async #pinDirect(cids: string[], like: Pin, signal?: AbortSignal): Promise<void> {
    const pins = cids.map((cid): Pin => ({ ...like, cid, max_depth: 0, mode: 'direct' }))
    const alone = async (p: Pin) => {
      try {
        await this.#pinAdd([p], { signal })
      } catch (err) {
        // Pinned recursively already (by a user, or an older peer): held, and more.
        if (!/already pinned recursively/.test(errorMessage(err))) throw err
      }
    }
    if (pins.length === 1) return alone(pins[0])
    try {
      await this.#pinAdd(pins, { signal }, false)
    } catch (err) {
      if (signal?.aborted || this.#client.stopped) throw err
      for (const p of pins) await alone(p)
    }
  }

  /**
   * Drops the direct pins `#pinToDepth` made below a node. Only this daemon's copy of the blocks
   * is read: a node it no longer has is logged and its children left pinned (nothing else says
   * what they were). Blocks pinned recursively (by someone else) keep their pin.
   */
  async #unpinBelow(cid: string, depth: number, signal?: AbortSignal): Promise<void> {
    let below: string[]
    try {
      below = await this.#blocksBelow(cid, depth, true, signal)
    } catch (err) {
      if (signal?.aborted || this.#client.stopped) throw err
      this.#log.warn(`unpin ${cid}: blocks below it left pinned: ${errorMessage(err)}`)
      return
    }
    const rm = (cids: string[]) =>
      this.#postJson(
        `pin/rm?${cids.map((c) => `arg=${c}&`).join('')}recursive=false`,
        signal,
        this.#cfg.unpin_timeout,
      )
    for (let i = 0; i < below.length; i += MAX_PIN_BATCH) {
      const batch = below.slice(i, i + MAX_PIN_BATCH)
      try {
        await rm(batch)
        continue
      } catch (err) {
        if (signal?.aborted || this.#client.stopped) throw err
      }
      // Kubo stops at the first CID it cannot unpin, keeping the rest: each alone.
      for (const c of batch) {
        await rm([c]).catch((err) => {
          if (!/not pinned|pinned recursively/.test(errorMessage(err))) throw err
        })
      }
    }
  }

  /** The CIDs within `depth` links below `root` (not `root`), each once, parents first. */
  async #blocksBelow(
    root: string,
    depth: number,
    offline: boolean,
    signal?: AbortSignal,
  ): Promise<string[]> {
    const out: string[] = []
    const seen = new Set<string>([parseCid(root).toString()])
    let level = [root]
    for (let d = 0; d < depth && level.length > 0; d++) {
      const next: string[] = []
      for (const c of level) {
        for (const link of blockLinks(c, await this.#blockGet(c, signal, offline))) {
          if (seen.has(link)) continue
          seen.add(link)
          next.push(link)
        }
      }
      out.push(...next)
      level = next
    }
    return out
  }

  async #pinUpdate(from: string, to: string, signal?: AbortSignal): Promise<void> {
    await this.#postJson(`pin/update?arg=${from}&arg=${to}&unpin=false`, signal, 0)
    this.#log.info(`IPFS Pin Update request succeeded. ${from} -> ${to} (unpin=false)`)
  }

  async #swarmConnect(addr: string, signal: AbortSignal | undefined, timeoutMs: number) {
    await this.#postJson(`swarm/connect?arg=${encodeURIComponent(addr)}`, signal, timeoutMs)
  }

  /** Posts and parses a single JSON answer (an empty body gives undefined). */
  async #postJson(path: string, signal: AbortSignal | undefined, timeoutMs: number) {
    const call = this.#call(path, signal, timeoutMs)
    try {
      const res = await call.post()
      let value: unknown
      for await (const v of readJsonLines(res)) {
        checkStreamError(call, v)
        if (value === undefined) value = v
      }
      return value
    } catch (err) {
      throw call.error(err)
    } finally {
      call.end()
    }
  }

  #call(path: string, signal: AbortSignal | undefined, timeoutMs: number): KuboCall {
    this.#checkStopped()
    if (timeoutMs < 0) timeoutMs = 1 // a shared deadline already passed: fail at once
    return this.#client.call(path, { signal, timeoutMs })
  }

  #checkStopped() {
    if (this.#client.stopped) throw new ShutdownError('IPFS connector is shut down')
  }

  #scopeSignal(signal?: AbortSignal): AbortSignal {
    return signal ? AbortSignal.any([signal, this.#client.stopSignal]) : this.#client.stopSignal
  }

  #abortReason(signal: AbortSignal | undefined, err: unknown): unknown {
    if (signal?.aborted) return signal.reason
    if (this.#client.stopped) return new ShutdownError('IPFS connector is shut down')
    return err
  }

  #maybeTriggerInformers() {
    const n = this.#cfg.informer_trigger_interval
    if (n <= 0 || !this.#deps.triggerInformers) return
    if (++this.#triggerCount >= n) {
      this.#triggerCount = 0
      try {
        this.#deps.triggerInformers()
      } catch (err) {
        this.#log.error(`triggering informers: ${errorMessage(err)}`)
      }
    }
  }

  #scheduleConnectSwarms() {
    const delay = this.#cfg.connect_swarms_delay
    const source = this.#deps.swarmAddrs
    if (delay <= 0 || !source || this.#client.stopped) return
    this.#cancelSwarmTimer = this.#clock.timeout(delay, async () => {
      this.#cancelSwarmTimer = undefined
      const signal = this.#client.stopSignal
      try {
        await this.connectSwarms(await source(signal), signal)
      } catch (err) {
        if (!isAbortError(err) && !this.#client.stopped) {
          this.#log.error(`ConnectSwarms: ${errorMessage(err)}`)
        }
      }
    })
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
  throw new IPFSError(`unexpected IPFS response (${what}): ${JSON.stringify(v) ?? 'empty body'}`)
}

/** A stream value that is a Kubo error object ends the call with it. */
function checkStreamError(call: KuboCall, v: unknown) {
  const msg = streamErrorOf(v)
  if (msg !== undefined) {
    throw new IPFSRequestError(
      `IPFS error (${call.path}). Code: 200. Message: ${msg}`,
      call.path,
      200,
      msg,
    )
  }
}

/**
 * A `pin/ls` line as Kubo writes it, `{"Cid":"<cid>","Type":"<type>"}`, read without JSON.parse
 * (a million of them at every start-up sync); undefined for any other shape, which then takes
 * JSON.parse. CID strings and pin types hold no character JSON escapes.
 */
function pinLine(line: string): { cid: string; type: string } | undefined {
  if (!line.startsWith(PIN_LINE_CID)) return undefined
  const end = line.indexOf('"', PIN_LINE_CID.length)
  if (end < 0 || !line.startsWith(PIN_LINE_TYPE, end)) return undefined
  const typeAt = end + PIN_LINE_TYPE.length
  const typeEnd = line.length - 2
  if (line.charCodeAt(typeEnd) !== 34 || line.charCodeAt(typeEnd + 1) !== 125) return undefined // "}
  const type = line.slice(typeAt, typeEnd)
  if (type.includes('"') || type.includes('\\')) return undefined
  const cid = line.slice(PIN_LINE_CID.length, end)
  return cid.includes('\\') ? undefined : { cid, type }
}
const PIN_LINE_CID = '{"Cid":"'
const PIN_LINE_TYPE = '","Type":"'

function pinEntry(
  call: KuboCall,
  cid: unknown,
  type: unknown,
): { cid: string; type: IPFSPinStatus } {
  const c = cidFromJson(cid)
  const t = pinStatusFromType(type)
  if (!c || !t) {
    throw new IPFSError(
      `unexpected pin in IPFS response (${call.path}): ${JSON.stringify({ Cid: cid, Type: type })}`,
    )
  }
  return { cid: c, type: t }
}
