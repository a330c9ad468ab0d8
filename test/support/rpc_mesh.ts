/**
 * In-process RPC between the peers of a test: an `RpcClient` per peer over a map peer ID →
 * `RpcHandlers`, with what the wire does on the receiving side — the policy table (`POLICY`:
 * open / trusted / closed) and the callee's trust function — and what it does not let through:
 * shared objects (arguments, results and items are copied). A call to the caller itself skips
 * the policy, as a local call does. Tests can take a peer off the network, make it hang, or make
 * one method fail, and count what streams hand out.
 *
 * @example
 * ```ts
 * const mesh = new RpcMesh()
 * mesh.serve('a', handlersOfA, (caller) => membersOfA.includes(caller))
 * const rpc = mesh.client('a')
 * await rpc.call('b', 'Cluster.ID', [])
 * mesh.down('b') // b's calls fail with RpcUnreachableError
 * ```
 */
import {
  type ArgsOf,
  type CallOptions,
  type InputOf,
  type ItemOf,
  KIND,
  type ResultOf,
  type RpcClient,
  type RpcHandlers,
  type RpcMethod,
  type StreamMethod,
  type UnaryMethod,
  type UploadMethod,
} from '../../src/rpc/methods.ts'
import { RpcUnreachableError } from '../../src/rpc/errors.ts'
import { authorize } from '../../src/rpc/wire.ts'
import { type Clock, systemClock, timeoutReason } from '../../src/util/clock.ts'

/** Decides whether `caller` is trusted by the callee (its consensus peerset, on the wire). */
export type Trust = (caller: string) => boolean | Promise<boolean>

interface Served {
  handlers: RpcHandlers
  trust: Trust
}

/** Peers, their handlers, and the faults a test injected. */
export class RpcMesh {
  readonly #peers = new Map<string, Served>()
  readonly #down = new Set<string>()
  readonly #hung = new Set<string>()
  readonly #failing = new Map<string, { err: Error; after: number }>()
  readonly #clock: Clock
  /** Items handed out by streams so far, per callee. */
  readonly streamed = new Map<string, number>()
  /** Called for each stream item as it is handed to the caller (for counting wrappers). */
  onItem: (callee: string, method: StreamMethod) => void = () => {}

  constructor(clock: Clock = systemClock) {
    this.#clock = clock
  }

  /** Serves `peer`'s handlers; `trust` says which callers its trusted methods accept. */
  serve(peer: string, handlers: RpcHandlers, trust: Trust): void {
    this.#peers.set(peer, { handlers, trust })
  }

  /** Stops serving `peer` (its calls fail as unreachable). */
  unserve(peer: string): void {
    this.#peers.delete(peer)
  }

  /** Takes `peer` off the network: calls to it fail with RpcUnreachableError. */
  down(peer: string): void {
    this.#down.add(peer)
  }

  /** Calls to `peer` never answer (until their deadline or signal). */
  hang(peer: string): void {
    this.#hung.add(peer)
  }

  /** `method` of `peer` fails with `err`; a stream after handing out `after` items. */
  fail(peer: string, method: RpcMethod, err: Error, after = 0): void {
    this.#failing.set(`${peer} ${method}`, { err, after })
  }

  /** Clears every injected fault. */
  heal(): void {
    this.#down.clear()
    this.#hung.clear()
    this.#failing.clear()
  }

  /** The client `self` uses. */
  client(self: string): RpcClient {
    return {
      self,
      call: <M extends UnaryMethod>(
        peer: string,
        method: M,
        args: ArgsOf<M>,
        opts?: CallOptions,
      ): Promise<ResultOf<M>> =>
        this.#withDeadline(opts, async (signal) => {
          const h = await this.#reach(self, peer, method, signal)
          const fn = h[method] as unknown as (
            a: ArgsOf<M>,
            ctx: { peer: string; signal: AbortSignal },
          ) => Promise<ResultOf<M>>
          return structuredClone(await fn(structuredClone(args), { peer: self, signal }))
        }),
      stream: <M extends StreamMethod>(
        peer: string,
        method: M,
        args: ArgsOf<M>,
        opts?: CallOptions,
      ): AsyncIterable<ItemOf<M>> => this.#stream(self, peer, method, args, opts),
      upload: <M extends UploadMethod>(
        peer: string,
        method: M,
        args: ArgsOf<M>,
        input: AsyncIterable<InputOf<M>>,
        opts?: CallOptions,
      ): Promise<ResultOf<M>> =>
        this.#withDeadline(opts, async (signal) => {
          const h = await this.#reach(self, peer, method, signal)
          const fn = h[method] as unknown as (
            a: ArgsOf<M>,
            input: AsyncIterable<InputOf<M>>,
            ctx: { peer: string; signal: AbortSignal },
          ) => Promise<ResultOf<M>>
          return structuredClone(await fn(structuredClone(args), input, { peer: self, signal }))
        }),
    }
  }

  async *#stream<M extends StreamMethod>(
    self: string,
    peer: string,
    method: M,
    args: ArgsOf<M>,
    opts?: CallOptions,
  ): AsyncGenerator<ItemOf<M>> {
    const ac = new AbortController()
    const signal = opts?.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal
    const cancel = opts?.timeoutMs !== undefined
      ? this.#clock.timeout(opts.timeoutMs, () => ac.abort(timeoutReason()))
      : () => {}
    try {
      const h = await this.#reach(self, peer, method, signal)
      const fn = h[method] as unknown as (
        a: ArgsOf<M>,
        ctx: { peer: string; signal: AbortSignal },
      ) => AsyncIterable<ItemOf<M>>
      const failing = this.#failing.get(`${peer} ${method}`)
      if (failing?.after === 0) throw failing.err
      let n = 0
      for await (const item of fn(structuredClone(args), { peer: self, signal })) {
        signal.throwIfAborted()
        if (failing && n++ >= failing.after) throw failing.err
        if (this.#down.has(peer)) throw new RpcUnreachableError(`${peer}: connection closed`)
        this.streamed.set(peer, (this.streamed.get(peer) ?? 0) + 1)
        this.onItem(peer, method)
        yield structuredClone(item)
      }
    } finally {
      cancel()
      ac.abort() // the callee's stream stops when the caller leaves
    }
  }

  /** The callee's handlers once the call passed the network and the callee's policy. */
  async #reach(
    self: string,
    peer: string,
    method: RpcMethod,
    signal: AbortSignal,
  ): Promise<RpcHandlers> {
    signal.throwIfAborted()
    const served = this.#peers.get(peer)
    if (!served || this.#down.has(peer)) {
      throw new RpcUnreachableError(`${peer}: peer unreachable`)
    }
    if (this.#hung.has(peer)) {
      await new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      )
    }
    if (peer !== self) {
      // The wire's own check, so in-process tests exercise the policy as peers apply it.
      const trusted = await served.trust(self)
      const refused = authorize(self, method, () => trusted)
      if (refused) throw refused
    }
    const failing = this.#failing.get(`${peer} ${method}`)
    if (failing && KIND[method] !== 'stream') throw failing.err
    return served.handlers
  }

  /** Runs `fn` with the caller's signal and `timeoutMs` (on the mesh's clock) as one signal. */
  async #withDeadline<T>(
    opts: CallOptions | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ac = new AbortController()
    const cancel = opts?.timeoutMs !== undefined
      ? this.#clock.timeout(opts.timeoutMs, () => ac.abort(timeoutReason()))
      : () => {}
    const signal = opts?.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal
    try {
      return await fn(signal)
    } finally {
      cancel()
    }
  }
}
