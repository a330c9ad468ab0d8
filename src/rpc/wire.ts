/**
 * The RPC wire between cluster peers: serves this peer's handlers on one libp2p protocol and
 * gives the client that calls any peer's (`methods.ts` lists the methods). Frames are in
 * `frames.ts`; errors and how they cross in `errors.ts`; the design and figures in docs/rpc.md.
 *
 * - Streams are reused: a call takes an idle stream to the peer (or opens one, ~1 ms of
 *   multistream negotiation) and gives it back when the callee's DONE or ERROR arrived, so many
 *   concurrent calls to one peer use as many streams, and sequential calls one.
 * - Streamed items travel in batches (up to `BATCH_ITEMS` items or `BATCH_BYTES` bytes, or what
 *   the producer had ready within one turn of the event loop), and the receiver grants credit in
 *   batches (`WINDOW`): a consumer that stops reading stops its producer after at most `WINDOW`
 *   batches, whatever yamux's receive window has grown to (up to 16 MiB a stream, past libp2p's
 *   4 MiB read buffer, which resets the stream). Sending also waits for `onDrain` when the
 *   stream says so.
 * - Cancelling (the caller's signal, its deadline, breaking out of a stream) sends CANCEL and
 *   gives the stream up; the callee aborts the handler's `ctx.signal`. A deadline travels as the
 *   time left, and bounds the handler on the callee too. `stop()` aborts the running handlers.
 * - The policy (`POLICY`, with `isTrusted`) is applied in one place, `authorize`, to the peer
 *   the libp2p connection authenticated, never to anything the frame says.
 * - A call to this peer itself calls the handler directly: no stream, no policy.
 *
 * @example
 * ```ts
 * const rpc = await rpcWire({ libp2p: host.libp2p, handlers, isTrusted: (p) => members.has(p) })
 * const info = await rpc.client.call(peer, 'PinTracker.Status', [cid], { timeoutMs: 10_000 })
 * await rpc.stop()
 * ```
 *
 * @module
 */
import { clusterMetrics } from '../observations/metrics.ts'
import type { Libp2p } from 'libp2p'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { setImmediate } from 'node:timers'
import { errorMessage, ShutdownError, ValidationError } from '../errors.ts'
import { type Clock, systemClock, timeoutReason } from '../util/clock.ts'
import { type Logger, nullLogger } from '../util/log.ts'
import {
  type Batch,
  CALL,
  CANCEL,
  CREDIT,
  DONE,
  encodeFrame,
  END,
  ERROR,
  type Frame,
  type Framed,
  FrameDecoder,
  ItemBatch,
  type ItemCodec,
  ITEMS,
  itemsOf,
} from './frames.ts'
import {
  errorFromWire,
  errorToWire,
  RpcForbiddenError,
  RpcUnknownMethodError,
  RpcUnreachableError,
} from './errors.ts'
import {
  JSON_ITEMS,
  KIND,
  POLICY,
  type Policy,
  type RpcClient,
  type RpcHandlers,
  type RpcMethod,
} from './methods.ts'

/** Our protocol id. Not the reference's `/ipfscluster/1.0/rpc`: this wire is not gorpc/msgpack. */
export const RPC_PROTOCOL_ID = '/ipfs-cluster-deno/rpc/1.0.0'

/** A batch is sent when it holds this many items… */
export const BATCH_ITEMS = 1024
/** …or this many bytes (one larger item makes a batch of its own). */
export const BATCH_BYTES = 64 * 1024
/** Batches a receiver takes before it has consumed any: the most a producer runs ahead. */
export const WINDOW = 16
/**
 * Streams to one peer at most (further calls wait for one to be given back), and being opened at
 * once. The second stays low because a stream muxer (@libp2p/utils AbstractStreamMuxer, yamux's
 * `maxEarlyStreams` = 10) aborts the whole connection when more than 10 streams arrive before the
 * receiving side finished setting the connection up: 64 calls at once over a fresh connection lost
 * it every time. Identify, ping and Raft open streams early too, so RPC keeps to 4.
 */
const MAX_STREAMS_PER_PEER = 64
const MAX_OPENING = 4
/** Streams of this protocol a connection may carry at once, each way. */
const MAX_STREAMS = 1024
/** How long giving up a cancelled call's stream may take before it is reset. */
const CLOSE_TIMEOUT_MS = 5_000

/** What the wire needs. */
export interface RpcWireOptions {
  libp2p: Libp2p
  /** This peer's methods, served to other peers and to local calls. */
  handlers: RpcHandlers
  /** Whether a peer may call `trusted` methods (members of the consensus peerset). */
  isTrusted: (peer: string) => boolean
  /**
   * This peer's departures from the policy table (the reference's per-peer `RPCPolicy`):
   * ipfs-cluster-follow closes `Cluster.RepoGCLocal`, so that trusted peers cannot garbage-collect
   * a follower's IPFS.
   */
  policy?: Readonly<Partial<Record<RpcMethod, Policy>>>
  log?: Logger
  clock?: Clock
}

/** A running wire. */
export interface RpcWire {
  client: RpcClient
  /** Stops serving, aborts running handlers, closes streams; later calls fail with ShutdownError. */
  stop(): Promise<void>
}

/**
 * Why a peer may not call a method, or undefined when it may: the one place the policy is
 * applied. `peer` is the remote peer the connection authenticated.
 */
export function authorize(
  peer: string,
  method: string,
  isTrusted: (peer: string) => boolean,
  overrides: Readonly<Partial<Record<RpcMethod, Policy>>> = {},
): Error | undefined {
  if (!Object.hasOwn(KIND, method)) return new RpcUnknownMethodError(`unknown RPC method ${method}`)
  const policy = overrides[method as RpcMethod] ?? POLICY[method as RpcMethod]
  if (policy === 'open') return undefined
  if (policy === 'trusted' && isTrusted(peer)) return undefined
  const why = policy === 'trusted' ? 'trusted peers only' : 'this peer only'
  return new RpcForbiddenError(`peer ${peer} is not allowed to call ${method} (${why})`)
}

/** Starts serving `handlers` on the host and returns the client. */
export async function rpcWire(opts: RpcWireOptions): Promise<RpcWire> {
  const { libp2p, handlers, isTrusted } = opts
  const log = opts.log ?? nullLogger
  const clock = opts.clock ?? systemClock
  const self = libp2p.peerId.toString()
  const stopping = new AbortController()
  const served = new Set<Channel>()
  const running = new Set<Promise<void>>()

  // ---- serving ----

  const serve = (stream: Stream, connection: Connection) => {
    const peer = connection.remotePeer.toString()
    const between: Listener = {
      frame(f) {
        // A CANCEL or CREDIT that crossed the call's DONE is late, not wrong.
        if (f[0] !== CALL) return
        if (stopping.signal.aborted) {
          ch.send(encodeFrame([ERROR, ...errorToWire(stopping.signal.reason)])).catch(() => {})
          return ch.close()
        }
        const call = new ServedCall(ch, between, peer, f)
        ch.listener = call
        const run = call.run().finally(() => {
          running.delete(run)
          // Handed back before its last frame went out (`answer`), or ended without one.
          if (ch.listener !== call) return
          if (!call.gone) return void (ch.listener = between)
          served.delete(ch)
          ch.close()
        })
        running.add(run)
      },
      closed() {
        served.delete(ch)
        ch.close()
      },
    }
    const ch = new Channel(stream, between, clock)
    served.add(ch)
  }

  class ServedCall implements Listener {
    #scope: Scope
    #credit = 0
    #inputs: Batch[] = []
    #inputsEnded = false
    #wake = new Wake()
    /** The caller went away (cancelled, closed, or the connection broke). */
    gone = false

    constructor(
      readonly ch: Channel,
      /** What the stream's frames go to once this call has answered. */
      readonly next: Listener,
      readonly peer: string,
      readonly f: Extract<Frame, [typeof CALL, ...unknown[]]>,
    ) {
      this.#credit = credit(f[4])
      const left = f[3]
      const deadline = typeof left === 'number' && left >= 0 ? left : undefined
      this.#scope = scope(clock, deadline, stopping.signal)
    }

    frame(f: Frame) {
      switch (f[0]) {
        case CANCEL:
          this.#scope.abort(new DOMException('the caller cancelled the call', 'AbortError'))
          break
        case CREDIT:
          this.#credit += credit(f[1])
          break
        case ITEMS:
          // Past the credit granted: a caller that does not follow the protocol.
          if (this.#inputs.length >= WINDOW || !isBatch(f[1])) {
            return this.ch.abort(new Error(`ITEMS beyond the credit granted to ${this.peer}`))
          }
          this.#inputs.push(f[1])
          break
        case END:
          this.#inputsEnded = true
          break
        default:
          this.ch.abort(new Error(`unexpected RPC frame ${f[0]} during a call`))
      }
      this.#wake.wake()
    }

    closed(err?: Error) {
      this.gone = true
      this.#scope.abort(
        new DOMException(`the caller went away${err ? `: ${err.message}` : ''}`, 'AbortError'),
      )
      this.#wake.wake()
    }

    async run(): Promise<void> {
      const [, method, args] = this.f
      const signal = this.#scope.signal
      const metrics = clusterMetrics
      const t0 = metrics ? performance.now() : 0
      let result = 'ok'
      try {
        const refused = authorize(this.peer, method, isTrusted, opts.policy)
        if (refused) throw refused
        if (!Array.isArray(args)) throw new ValidationError(`arguments of ${method} are not a list`)
        const m = method as RpcMethod
        const ctx = { peer: this.peer, signal }
        // deno-lint-ignore no-explicit-any
        const handler = handlers[m] as (...a: any[]) => any
        let result: unknown
        if (KIND[m] === 'unary') {
          result = await raceAbort(handler(args, ctx), signal)
        } else if (KIND[m] === 'stream') {
          await pump(handler(args, ctx), signal, codecOf(m), async (frame) => {
            while (this.#credit === 0) await this.#wake.wait(signal)
            this.#credit--
            await this.ch.send(frame, signal)
            return true
          })
        } else {
          // Credit only once the policy said yes: no upload bytes flow before that.
          await this.ch.send(encodeFrame([CREDIT, WINDOW]), signal)
          result = await raceAbort(handler(args, this.#uploaded(signal), ctx), signal)
        }
        await this.#answer(encodeFrame([DONE, result]), signal)
      } catch (err) {
        result = 'error'
        if (!(err instanceof RpcForbiddenError || err instanceof RpcUnknownMethodError)) {
          log.debug(`${method} from ${this.peer}: ${errorMessage(err)}`)
        } else {
          log.warn(err.message)
        }
        if (!this.gone && this.ch.writable) {
          const frame = encodeFrame([ERROR, ...errorToWire(err)])
          await this.#answer(frame, clock.timeoutSignal(CLOSE_TIMEOUT_MS)).catch(() => {})
        }
      } finally {
        this.#scope.done()
        if (metrics) {
          // A name a peer made up is one label value, not one series per name it tries.
          const label = Object.hasOwn(KIND, method) ? String(method) : 'unknown'
          metrics.rpcRequests.inc(1, label, result)
          metrics.rpcDuration.observe((performance.now() - t0) / 1000, label)
        }
      }
    }

    /**
     * Sends the call's last frame (DONE or ERROR), handing the stream back first: the caller may
     * send its next CALL as soon as the answer arrives, which can be before this send's wait for
     * drain is over. A CALL reaching this call instead would be an unexpected frame, and reset.
     */
    #answer(frame: Framed, signal: AbortSignal): Promise<void> {
      if (this.ch.listener === this) this.ch.listener = this.next
      return this.ch.send(frame, signal)
    }

    /** The caller's upload, read as the handler asks, granting credit as batches are used. */
    async *#uploaded(signal: AbortSignal): AsyncGenerator<unknown> {
      let used = 0
      while (true) {
        const batch = this.#inputs.shift()
        if (batch === undefined) {
          if (this.#inputsEnded) return
          await this.#wake.wait(signal)
          continue
        }
        const items = itemsOf(batch)
        for (let i = 0; i < items.length; i++) yield items[i]
        if (++used >= WINDOW / 2) {
          await this.ch.send(encodeFrame([CREDIT, used]), signal)
          used = 0
        }
      }
    }
  }

  await libp2p.handle(RPC_PROTOCOL_ID, serve, {
    maxInboundStreams: MAX_STREAMS,
    maxOutboundStreams: MAX_STREAMS,
  })

  // ---- calling ----

  /** The streams to one peer. */
  interface PeerStreams {
    /** Every stream to the peer, busy or idle. */
    all: Set<Channel>
    idle: Channel[]
    opening: number
    /** Calls waiting for a stream (all are busy and there are as many as allowed). */
    waiting: (() => void)[]
  }
  const pools = new Map<string, PeerStreams>()

  const forget = (p: PeerStreams, ch: Channel) => {
    if (!p.all.delete(ch)) return
    const at = p.idle.indexOf(ch)
    if (at >= 0) p.idle.splice(at, 1)
    p.waiting.shift()?.()
  }

  /** An idle stream to `peer`, a new one, or the next one given back when there are enough. */
  const acquire = async (peer: string, signal: AbortSignal): Promise<Channel> => {
    let p = pools.get(peer)
    if (!p) {
      try {
        peerIdFromString(peer)
      } catch {
        throw new ValidationError(`invalid peer ID ${JSON.stringify(peer)}`)
      }
      p = { all: new Set(), idle: [], opening: 0, waiting: [] }
      pools.set(peer, p)
    }
    while (true) {
      const ch = p.idle.pop()
      if (ch?.writable) return ch
      if (ch) {
        forget(p, ch)
        continue
      }
      if (p.all.size + p.opening < MAX_STREAMS_PER_PEER && p.opening < MAX_OPENING) break
      await waitTurn(p.waiting, signal)
    }
    p.opening++
    let stream: Stream
    try {
      stream = await libp2p.dialProtocol(peerIdFromString(peer), RPC_PROTOCOL_ID, { signal })
    } catch (err) {
      signal.throwIfAborted()
      throw new RpcUnreachableError(`cannot reach peer ${peer}: ${errorMessage(err)}`)
    } finally {
      p.opening--
      p.waiting.shift()?.()
    }
    const ch = new Channel(stream, IGNORE, clock)
    p.all.add(ch)
    return ch
  }

  /** Gives a stream back after its call: kept if the call ended cleanly, else given up. */
  const release = (peer: string, ch: Channel, call: Calling) => {
    const p = pools.get(peer)
    if (!p?.all.has(ch)) return // given up already, or stopped
    if (!call.ended) {
      // Still running at the callee: tell it, then close our side; late frames are dropped.
      ch.listener = IGNORE
      if (ch.writable) ch.send(encodeFrame([CANCEL])).catch(() => {})
      ch.close()
      return forget(p, ch)
    }
    if (stopping.signal.aborted || !ch.writable) {
      ch.listener = IGNORE
      ch.close()
      return forget(p, ch)
    }
    ch.listener = {
      frame: () => ch.abort(new Error('RPC frame on an idle stream')),
      closed: () => forget(p, ch),
    }
    p.idle.push(ch)
    p.waiting.shift()?.()
  }

  /** Opens a remote call: a stream, the CALL frame sent. */
  const open = async (
    peer: string,
    method: RpcMethod,
    args: unknown[],
    s: Scope,
    credit: number,
  ): Promise<[Channel, Calling]> => {
    const ch = await acquire(peer, s.signal)
    const call = new Calling(peer, method)
    ch.listener = call
    try {
      // The time left, not the whole timeout: waiting for a stream used some of it.
      await ch.send(encodeFrame([CALL, method, args, s.left() ?? null, credit]), s.signal)
    } catch (err) {
      release(peer, ch, call)
      s.signal.throwIfAborted()
      throw new RpcUnreachableError(
        `peer ${peer}: ${method} could not be sent: ${errorMessage(err)}`,
      )
    }
    return [ch, call]
  }

  const started = (o: { signal?: AbortSignal; timeoutMs?: number } = {}): Scope => {
    if (stopping.signal.aborted) throw new ShutdownError('RPC is shut down')
    return scope(clock, o.timeoutMs, o.signal, stopping.signal)
  }

  // deno-lint-ignore no-explicit-any
  const local = (method: RpcMethod): (...a: any[]) => any => {
    if (!Object.hasOwn(KIND, method)) {
      throw new RpcUnknownMethodError(`unknown RPC method ${method}`)
    }
    // deno-lint-ignore no-explicit-any
    return handlers[method] as (...a: any[]) => any
  }

  const client: RpcClient = {
    self,
    async call(peer, method, args, o) {
      const s = started(o)
      try {
        if (peer === self) {
          return await raceAbort(local(method)(args, { peer: self, signal: s.signal }), s.signal)
        }
        const [ch, call] = await open(peer, method, args, s, 0)
        try {
          return await call.result(s.signal)
        } finally {
          release(peer, ch, call)
        }
      } finally {
        s.done()
      }
    },

    async *stream(peer, method, args, o) {
      const s = started(o)
      try {
        if (peer === self) {
          const it: AsyncIterator<unknown> = local(method)(args, { peer: self, signal: s.signal })
            [Symbol.asyncIterator]()
          try {
            while (true) {
              const r = await raceAbort(it.next(), s.signal)
              if (r.done) return
              yield r.value
            }
          } finally {
            // The consumer stopped early or the call failed: the producer learns it both ways.
            s.abort(new DOMException('the caller stopped reading', 'AbortError'))
            it.return?.()?.catch?.(() => {})
          }
        }
        const [ch, call] = await open(peer, method, args, s, WINDOW)
        // A consumer may hold the iterator without reading: an abort still reaches the callee.
        const cancel = () => release(peer, ch, call)
        s.signal.addEventListener('abort', cancel, { once: true })
        try {
          let used = 0
          while (true) {
            const batch = call.batches.shift()
            if (batch === undefined) {
              if (call.error) throw call.error
              if (call.ended) return
              await call.wake.wait(s.signal)
              continue
            }
            let items: unknown[]
            try {
              items = itemsOf(batch)
            } catch (err) {
              // As a frame that does not decode: the callee does not follow the protocol.
              ch.abort(err as Error)
              throw new RpcUnreachableError(
                `peer ${peer}: malformed items answering ${method}: ${errorMessage(err)}`,
              )
            }
            for (let i = 0; i < items.length; i++) {
              yield items[i]
              s.signal.throwIfAborted()
            }
            if (++used >= WINDOW / 2 && !call.ended) {
              await ch.send(encodeFrame([CREDIT, used]), s.signal)
              used = 0
            }
          }
        } finally {
          s.signal.removeEventListener('abort', cancel)
          release(peer, ch, call)
        }
      } finally {
        s.done()
      }
    },

    async upload(peer, method, args, input, o) {
      const s = started(o)
      try {
        if (peer === self) {
          return await raceAbort(
            local(method)(args, input, { peer: self, signal: s.signal }),
            s.signal,
          )
        }
        const [ch, call] = await open(peer, method, args, s, 0)
        try {
          const sent = await pump(input, s.signal, codecOf(method), async (frame) => {
            while (call.credit === 0 && !call.ended) await call.wake.wait(s.signal)
            if (call.ended) return false // refused or failed: its answer says why
            call.credit--
            await ch.send(frame, s.signal)
            return true
          })
          if (sent && !call.ended) await ch.send(encodeFrame([END]), s.signal)
          return await call.result(s.signal)
        } finally {
          release(peer, ch, call)
        }
      } finally {
        s.done()
      }
    },
  } as RpcClient

  let stopped: Promise<void> | undefined
  return {
    client,
    stop() {
      stopped ??= (async () => {
        stopping.abort(new ShutdownError('RPC is shut down'))
        // Handlers were aborted: let them answer (a ShutdownError reaches their callers).
        await Promise.allSettled([...running])
        for (const ch of served) ch.close()
        await libp2p.unhandle(RPC_PROTOCOL_ID).catch(() => {})
        for (const p of pools.values()) for (const ch of [...p.all]) ch.close()
        pools.clear()
      })()
      return stopped
    },
  }
}

// ---- the parts ----

/** What a stream's frames and its end go to: the call it carries, or the idle handling. */
interface Listener {
  frame(f: Frame): void
  /** The remote closed its side (err undefined) or the stream broke. */
  closed(err?: Error): void
}

const IGNORE: Listener = { frame() {}, closed() {} }

/** One libp2p stream, both sides: frames in to its listener, frames out with backpressure. */
class Channel {
  #decoder = new FrameDecoder()
  #ended = false

  constructor(readonly stream: Stream, public listener: Listener, readonly clock: Clock) {
    stream.addEventListener('message', (e) => {
      try {
        for (const f of this.#decoder.push(e.data)) this.listener.frame(f)
      } catch (err) {
        this.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })
    stream.addEventListener('remoteCloseWrite', () => this.#end())
    stream.addEventListener('close', (e) => this.#end(e.error))
  }

  #end(err?: Error) {
    if (this.#ended) return
    this.#ended = true
    this.listener.closed(err)
  }

  /** True while both sides can still send. */
  get writable(): boolean {
    return !this.#ended && this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  async send(bytes: Framed, signal?: AbortSignal): Promise<void> {
    if (!this.stream.send(bytes)) await this.stream.onDrain({ signal })
  }

  close() {
    if (this.stream.status !== 'open') return
    this.stream.close({ signal: this.clock.timeoutSignal(CLOSE_TIMEOUT_MS) })
      .catch((err) => this.abort(err))
  }

  abort(err: Error) {
    this.stream.abort(err)
  }
}

/** The caller's side of one remote call. */
class Calling implements Listener {
  batches: Batch[] = []
  /** Upload credit the callee granted, in batches. */
  credit = 0
  /** DONE or ERROR arrived (or the stream broke): the callee is done with the call. */
  ended = false
  error?: Error
  #value: unknown
  wake = new Wake()

  constructor(readonly peer: string, readonly method: string) {}

  frame(f: Frame) {
    switch (f[0]) {
      case ITEMS:
        if (this.batches.length >= WINDOW || !isBatch(f[1])) {
          return this.closed(new Error('ITEMS beyond the credit granted'))
        }
        this.batches.push(f[1])
        break
      case CREDIT:
        this.credit += credit(f[1])
        break
      case DONE:
        this.ended = true
        this.#value = f[1]
        break
      case ERROR:
        this.ended = true
        this.error = errorFromWire(f[1], f[2])
        break
      default:
        this.ended = true
        this.error = new RpcUnreachableError(
          `peer ${this.peer}: unexpected RPC frame ${f[0]} answering ${this.method}`,
        )
    }
    this.wake.wake()
  }

  closed(err?: Error) {
    if (!this.ended) {
      this.ended = true
      this.error = new RpcUnreachableError(
        `peer ${this.peer}: connection lost during ${this.method}${err ? `: ${err.message}` : ''}`,
      )
    }
    this.wake.wake()
  }

  /** The unary or upload result, once it arrives. */
  async result(signal: AbortSignal): Promise<unknown> {
    while (!this.ended) await this.wake.wait(signal)
    if (this.error) throw this.error
    return this.#value
  }
}

/** One waiter woken by the next event (a frame, an end), or rejected by its signal. */
class Wake {
  #resolve?: () => void

  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      this.#resolve = () => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
    })
  }

  wake() {
    const r = this.#resolve
    this.#resolve = undefined
    r?.()
  }
}

/** The signal of one call: its parents' aborts and its deadline; `done` releases both. */
interface Scope {
  signal: AbortSignal
  abort(reason: unknown): void
  /** Milliseconds to the deadline (0 once passed), or undefined without one. */
  left(): number | undefined
  done(): void
}

function scope(
  clock: Clock,
  timeoutMs: number | undefined,
  ...parents: (AbortSignal | undefined)[]
): Scope {
  const ac = new AbortController()
  const undo: (() => void)[] = []
  for (const p of parents) {
    if (!p) continue
    if (p.aborted) {
      ac.abort(p.reason)
      continue
    }
    const onAbort = () => ac.abort(p.reason)
    p.addEventListener('abort', onAbort, { once: true })
    undo.push(() => p.removeEventListener('abort', onAbort))
  }
  if (timeoutMs !== undefined && !ac.signal.aborted) {
    undo.push(clock.timeout(timeoutMs, () => ac.abort(timeoutReason())))
  }
  const end = timeoutMs === undefined ? undefined : clock.now() + timeoutMs
  return {
    signal: ac.signal,
    abort: (reason) => ac.abort(reason),
    left: () => end === undefined ? undefined : Math.max(0, end - clock.now()),
    done: () => {
      for (const u of undo) u()
    },
  }
}

/** An ITEMS frame's payload: a list of items or a JSON batch's text. */
function isBatch(b: unknown): b is Batch {
  return Array.isArray(b) || typeof b === 'string'
}

/** How a method's streamed items are encoded. */
function codecOf(method: RpcMethod): ItemCodec {
  return JSON_ITEMS.has(method) ? 'json' : 'cbor'
}

/** A CREDIT frame's count, or 0 for anything but a small positive integer. */
function credit(n: unknown): number {
  return Number.isSafeInteger(n) && (n as number) > 0 && (n as number) <= WINDOW ? n as number : 0
}

/** Waits until woken through `queue` (one turn each), or rejects when the signal aborts. */
function waitTurn(queue: (() => void)[], signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const go = () => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }
    const onAbort = () => {
      const at = queue.indexOf(go)
      if (at >= 0) queue.splice(at, 1)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    queue.push(go)
  })
}

/** Rejects with the signal's reason once it aborts, whatever `p` does. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {})
    return Promise.reject(signal.reason)
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

const TURN = Symbol('turn')
let turn: Promise<typeof TURN> | undefined

/** Resolves once the event loop turned: what a producer had ready by then makes one batch. */
function nextTurn(): Promise<typeof TURN> {
  return turn ??= new Promise((r) =>
    setImmediate(() => {
      turn = undefined
      r(TURN)
    })
  )
}

/**
 * Reads `source` into batches and hands each ITEMS frame to `flush` (which waits for credit and
 * sends; false = the other side is done, stop). A batch goes when full, or when the producer has
 * nothing more ready this turn. Returns whether the source was read to its end.
 */
async function pump(
  source: AsyncIterable<unknown>,
  signal: AbortSignal,
  codec: ItemCodec,
  flush: (frame: Framed) => Promise<boolean>,
): Promise<boolean> {
  const it = source[Symbol.asyncIterator]()
  const batch = new ItemBatch(BATCH_ITEMS, BATCH_BYTES, codec)
  let finished = false
  try {
    let next = it.next()
    while (true) {
      let r: IteratorResult<unknown> | typeof TURN = batch.count === 0
        ? await raceAbort(next, signal)
        : await Promise.race([next, nextTurn()])
      if (r === TURN) {
        if (!(await flush(batch.take()))) return false
        r = await raceAbort(next, signal)
      }
      if (r.done) break
      batch.add(r.value)
      if (batch.full && !(await flush(batch.take()))) return false
      next = it.next()
    }
    finished = true
    if (batch.count > 0) return await flush(batch.take())
    return true
  } finally {
    if (!finished) it.return?.()?.catch(() => {})
  }
}
