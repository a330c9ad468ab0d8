/**
 * The RPC wire between real libp2p hosts on 127.0.0.1 (TCP + Noise + Yamux, a cluster secret):
 * the three call shapes, cancellation and deadlines carried to the callee, typed errors, the
 * policy applied to the connection's peer, local calls without the wire, backpressure, a peer
 * that goes away mid-call, and shutdown.
 */
import assert from 'node:assert/strict'
import {
  ClusterError,
  ConfigError,
  ConsensusError,
  IPFSError,
  NotFoundError,
  ShutdownError,
  UnauthorizedError,
  ValidationError,
} from '../../src/errors.ts'
import {
  RpcForbiddenError,
  RpcRemoteError,
  RpcUnknownMethodError,
  RpcUnreachableError,
} from '../../src/rpc/errors.ts'
import { authorize, BATCH_ITEMS, RPC_PROTOCOL_ID, rpcWire, WINDOW } from '../../src/rpc/wire.ts'
import { manualClock } from '../support/manual_clock.ts'
import { waitFor } from '../support/wait.ts'
import { handlersWith, pinInfo, rpcPeers, stopAll } from './hosts.ts'
import { startHost } from '../../src/net/host.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PinInfo } from '../../src/types/mod.ts'
import * as lp from 'it-length-prefixed'
import { CALL, DONE, encodeFrame, type Frame, FrameDecoder, ITEMS } from '../../src/rpc/frames.ts'
import { peerIdFromString } from '@libp2p/peer-id'

/** A promise that settles when the signal aborts, with its reason. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason)
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true })
  })
}

function rpcStreams(from: { host: { libp2p: import('libp2p').Libp2p } }, to: string): number {
  return from.host.libp2p.getConnections().filter((c) => c.remotePeer.toString() === to)
    .flatMap((c) => c.streams).filter((s) => s.protocol === RPC_PROTOCOL_ID).length
}

Deno.test('unary: the result arrives with its key order; the callee knows the caller from the connection; sequential calls reuse one stream', async () => {
  const callers: string[] = []
  const [a, b] = await rpcPeers(2, () => ({
    'Cluster.Version': () => Promise.resolve('1.1.6'),
    'PinTracker.Status': ([cid], ctx) => {
      callers.push(ctx.peer)
      return Promise.resolve({ ...pinInfo(1, ctx.peer), cid })
    },
  }))
  try {
    assert.equal(await a.rpc.client.call(b.id, 'Cluster.Version', []), '1.1.6')
    const pi = await a.rpc.client.call(b.id, 'PinTracker.Status', ['bafyX'])
    assert.equal(pi.cid, 'bafyX')
    assert.deepEqual(Object.keys(pi), Object.keys(pinInfo(1)))
    assert.deepEqual(callers, [a.id])
    for (let i = 0; i < 50; i++) await a.rpc.client.call(b.id, 'Cluster.Version', [])
    assert.equal(rpcStreams(a, b.id), 1)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('unary: a callee still waiting for its answer to drain takes the next call on that stream (no reset)', async () => {
  const big = 'x'.repeat(1 << 20)
  const [a, b] = await rpcPeers(2, () => ({
    'Cluster.Version': () => Promise.resolve(big),
    'PinTracker.Status': () => Promise.resolve(pinInfo(7)),
  }))
  try {
    const stream = await a.host.libp2p.dialProtocol(peerIdFromString(b.id), RPC_PROTOCOL_ID)
    const frames: Frame[] = []
    const dec = new FrameDecoder()
    let reset = false
    stream.addEventListener('message', (e) => frames.push(...dec.push(e.data)))
    stream.addEventListener('close', (e) => reset = !!e.error)
    // Not reading: the 1 MiB answer outgrows yamux's window and b waits for it to drain.
    stream.pause()
    stream.send(encodeFrame([CALL, 'Cluster.Version', [], null, 0]))
    const served = () =>
      b.host.libp2p.getConnections().flatMap((c) => c.streams)
        .filter((s) => s.protocol === RPC_PROTOCOL_ID)
    await waitFor(() => served().some((s) => s.writableNeedsDrain), { timeoutMs: 10_000 })
    stream.send(encodeFrame([CALL, 'PinTracker.Status', ['bafyX'], null, 0]))
    stream.resume()
    await waitFor(() => frames.length === 2 || reset, { timeoutMs: 10_000 })
    assert.equal(reset, false)
    assert.deepEqual(frames.map((f) => f[0]), [DONE, DONE])
    assert.equal((frames[0] as [number, string])[1].length, big.length)
    assert.deepEqual(frames[1], [DONE, pinInfo(7)])
    await stream.close()
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('unary: 200 concurrent calls to one peer, before any connection to it, all answer (the muxer is not flooded with early streams)', async () => {
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.Status': ([cid]) => Promise.resolve({ ...pinInfo(0), cid }),
  }))
  try {
    const cids = Array.from({ length: 200 }, (_, i) => `cid${i}`)
    const got = await Promise.all(
      cids.map((c) => a.rpc.client.call(b.id, 'PinTracker.Status', [c])),
    )
    assert.deepEqual(got.map((p) => p.cid), cids)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('stream: statuses of StatusAll and RecoverAllLocal arrive as their JSON, key for key', async () => {
  // Mostly one shape (columns), with items that vary in every field and some of another shape.
  const infos = Array.from({ length: 3000 }, (_, i) => {
    const pi = pinInfo(i) as unknown as Record<string, unknown>
    pi.allocations = i % 5 ? [] : ['12D3KooWA', '12D3KooWB']
    if (i % 97 === 3) {
      pi.status = 'pin_error'
      pi.error = `failed ${i}`
      pi.attempt_count = i % 4
    }
    if (i % 500 === 9) pi.metadata = { k: `v${i}` }
    if (i === 1234) delete pi.ipfs_peer_addresses
    if (i === 2345) pi.ipfs_peer_id = undefined
    return pi
  })
  const serve = async function* () {
    for (const pi of infos) yield pi as unknown as PinInfo
  }
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.StatusAll': serve,
    'Cluster.RecoverAllLocal': serve,
  }))
  try {
    for (const m of ['PinTracker.StatusAll', 'Cluster.RecoverAllLocal'] as const) {
      const got: string[] = []
      for await (
        const pi of a.rpc.client.stream(b.id, m, m === 'Cluster.RecoverAllLocal' ? [] : [0])
      ) {
        got.push(JSON.stringify(pi))
      }
      assert.deepEqual(got, infos.map((pi) => JSON.stringify(pi)), m)
    }
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('stream: 100,000 items arrive in order, in batches', async () => {
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.StatusAll': async function* ([n]) {
      for (let i = 0; i < n; i++) yield pinInfo(i)
    },
  }))
  try {
    let i = 0
    for await (const pi of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [100_000])) {
      assert.equal(pi.name, `pin ${i}`)
      i++
    }
    assert.equal(i, 100_000)
    // An empty stream ends too.
    let none = 0
    for await (const _ of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])) none++
    assert.equal(none, 0)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('upload: the callee reads every input in order, small and large ones', async () => {
  const seen: { cid: string; size: number }[] = []
  const [a, b] = await rpcPeers(2, () => ({
    'IPFSConnector.BlockStream': async (_args, input) => {
      for await (const blk of input) seen.push({ cid: blk.cid, size: blk.bytes.length })
    },
  }))
  try {
    const sizes = Array.from({ length: 3000 }, (_, i) => (i % 500 === 7 ? 300_000 : 1024))
    const blocks = async function* () {
      for (let i = 0; i < sizes.length; i++) {
        yield { cid: `c${i}`, bytes: new Uint8Array(sizes[i]).fill(i & 0xff) }
      }
    }
    await a.rpc.client.upload(b.id, 'IPFSConnector.BlockStream', [], blocks())
    assert.deepEqual(seen, sizes.map((size, i) => ({ cid: `c${i}`, size })))
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('cancel: breaking out of a stream and aborting a unary call abort the remote handler', async () => {
  const signals: AbortSignal[] = []
  let produced = 0
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.StatusAll': async function* (_args, ctx) {
      signals.push(ctx.signal)
      while (!ctx.signal.aborted) {
        yield pinInfo(produced++)
        if (produced % 100 === 0) await new Promise((r) => setTimeout(r, 0))
      }
    },
    'PinTracker.Status': async (_args, ctx) => {
      signals.push(ctx.signal)
      await aborted(ctx.signal)
      throw ctx.signal.reason
    },
  }))
  try {
    let n = 0
    for await (const _ of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])) {
      if (++n === 10) break
    }
    await waitFor(() => signals[0]?.aborted, { what: 'the producer to see its signal abort' })
    assert.equal((signals[0].reason as DOMException).name, 'AbortError')

    const ac = new AbortController()
    const call = a.rpc.client.call(b.id, 'PinTracker.Status', ['x'], { signal: ac.signal })
    await waitFor(() => signals.length === 2, { what: 'the unary handler to start' })
    ac.abort()
    await assert.rejects(call, (e: Error) => e.name === 'AbortError')
    await waitFor(() => signals[1].aborted, { what: 'the unary handler to see its signal abort' })
    // A consumer that holds the iterator without reading: aborting its signal still cancels.
    const held = new AbortController()
    const it = a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0], { signal: held.signal })
      [Symbol.asyncIterator]()
    await it.next()
    held.abort()
    await waitFor(() => signals[2]?.aborted, { what: 'the held stream to be cancelled' })
    await assert.rejects(it.next(), (e: Error) => e.name === 'AbortError')
    // The wire is still usable after cancelled calls.
    signals.length = 0
    let m = 0
    for await (const _ of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])) {
      if (++m === 3) break
    }
    assert.equal(m, 3)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('deadline: the caller fails with TimeoutError and the callee, on its own clock, aborts the handler', async () => {
  const clocks = [manualClock(), manualClock()]
  const reasons: unknown[] = []
  let started = 0
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.Status': async (_args, ctx) => {
      started++
      reasons.push(await aborted(ctx.signal))
      throw ctx.signal.reason
    },
  }), { clockFor: (i) => clocks[i] })
  try {
    // The callee's clock passes the deadline first: its handler stops, the caller gets why.
    const first = assert.rejects(
      a.rpc.client.call(b.id, 'PinTracker.Status', ['x'], { timeoutMs: 1000 }),
      (e: Error) => e instanceof DOMException && e.name === 'TimeoutError',
    )
    await waitFor(() => started === 1, { what: 'the call to reach the callee' })
    await clocks[1].advance(999)
    assert.equal(reasons.length, 0)
    await clocks[1].advance(1)
    await first
    assert.equal((reasons[0] as DOMException).name, 'TimeoutError')

    // The caller's clock passes it first: the call fails and the callee's handler is cancelled.
    const second = assert.rejects(
      a.rpc.client.call(b.id, 'PinTracker.Status', ['y'], { timeoutMs: 500 }),
      (e: Error) => e instanceof DOMException && e.name === 'TimeoutError',
    )
    await waitFor(() => started === 2, { what: 'the second call to reach the callee' })
    await clocks[0].advance(500)
    await second
    await waitFor(() => reasons.length === 2, { what: 'the callee to see the cancel' })
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('errors: every typed class crosses with its message and status; others become RpcRemoteError', async () => {
  const classes = [
    ClusterError,
    ValidationError,
    NotFoundError,
    ConfigError,
    IPFSError,
    ConsensusError,
    ShutdownError,
    UnauthorizedError,
    RpcForbiddenError,
    RpcUnknownMethodError,
    RpcUnreachableError,
    RpcRemoteError,
  ]
  class LocalValidation extends ValidationError {
    override name = 'LocalValidation'
  }
  const [a, b] = await rpcPeers(2, () => ({
    'Cluster.PeerAdd': ([name]) => {
      if (name === 'TypeError') throw new TypeError('bad type')
      if (name === 'LocalValidation') throw new LocalValidation('a subclass')
      const C = classes.find((c) => c.name === name)!
      throw new C(`message of ${name}`)
    },
  }))
  try {
    for (const C of classes) {
      const err = await a.rpc.client.call(b.id, 'Cluster.PeerAdd', [C.name]).then(
        () => assert.fail('no error'),
        (e) => e,
      )
      assert.equal(err.constructor, C, C.name)
      assert.equal(err.message, `message of ${C.name}`)
      assert.equal(err.status, new C('x').status)
    }
    await assert.rejects(
      a.rpc.client.call(b.id, 'Cluster.PeerAdd', ['TypeError']),
      (e: Error) => e instanceof RpcRemoteError && e.message === 'bad type',
    )
    await assert.rejects(
      a.rpc.client.call(b.id, 'Cluster.PeerAdd', ['LocalValidation']),
      (e: Error) => e.constructor === (ValidationError as unknown) && e.message === 'a subclass',
    )
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('policy: open methods for anyone; trusted ones refused to an untrusted peer until it is trusted; unknown methods refused', async () => {
  let statusCalls = 0
  let uploads = 0
  const [a, b] = await rpcPeers(2, () => ({
    'Cluster.Version': () => Promise.resolve('1.1.6'),
    'PinTracker.Status': ([cid]) => {
      statusCalls++
      return Promise.resolve({ ...pinInfo(0), cid })
    },
    'IPFSConnector.BlockStream': () => {
      uploads++
      return Promise.resolve()
    },
  }), { trustOthers: false })
  try {
    assert.equal(await a.rpc.client.call(b.id, 'Cluster.Version', []), '1.1.6')
    await assert.rejects(
      a.rpc.client.call(b.id, 'PinTracker.Status', ['c']),
      (e: Error) =>
        e instanceof RpcForbiddenError &&
        e.message === `peer ${a.id} is not allowed to call PinTracker.Status (trusted peers only)`,
    )
    let pulled = 0
    const blocks = async function* () {
      for (let i = 0; i < 100_000; i++) {
        pulled++
        yield { cid: `c${i}`, bytes: new Uint8Array(10) }
      }
    }
    await assert.rejects(
      a.rpc.client.upload(b.id, 'IPFSConnector.BlockStream', [], blocks()),
      RpcForbiddenError,
    )
    assert.equal(statusCalls + uploads, 0)
    // Nothing was sent before the callee granted credit: at most one batch was read.
    assert.ok(pulled <= BATCH_ITEMS + 1, `${pulled} inputs read`)
    await assert.rejects(
      a.rpc.client.call(b.id, 'Cluster.Nope' as 'Cluster.ID', []),
      (e: Error) => e instanceof RpcUnknownMethodError && /Cluster\.Nope/.test(e.message),
    )
    b.trusted.add(a.id)
    assert.equal((await a.rpc.client.call(b.id, 'PinTracker.Status', ['c'])).cid, 'c')
    assert.equal(statusCalls, 1)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('authorize: the one policy check', () => {
  const trusted = (p: string) => p === 'T'
  assert.equal(authorize('X', 'Cluster.ID', trusted), undefined)
  assert.equal(authorize('T', 'PinTracker.StatusAll', trusted), undefined)
  const e = authorize('X', 'PinTracker.StatusAll', trusted)
  assert.ok(e instanceof RpcForbiddenError)
  assert.ok(authorize('T', 'toString', trusted) instanceof RpcUnknownMethodError)
  assert.ok(authorize('T', 'Cluster.Pin', trusted) instanceof RpcUnknownMethodError)
  // A peer's own departures from the table (ipfs-cluster-follow closes RepoGCLocal).
  const closed = { 'Cluster.RepoGCLocal': 'closed' } as const
  assert.equal(authorize('T', 'Cluster.RepoGCLocal', trusted), undefined)
  assert.ok(authorize('T', 'Cluster.RepoGCLocal', trusted, closed) instanceof RpcForbiddenError)
  assert.equal(authorize('T', 'PinTracker.StatusAll', trusted, closed), undefined)
})

Deno.test('local calls: the handler directly, no stream, no policy, the signal honoured', async () => {
  const host = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: '',
  })
  const self = host.peerId
  const peers: string[] = []
  const rpc = await rpcWire({
    libp2p: host.libp2p,
    isTrusted: () => false,
    handlers: handlersWith({
      'PinTracker.Status': ([cid], ctx) => {
        peers.push(ctx.peer)
        return Promise.resolve({ ...pinInfo(0), cid })
      },
      'PinTracker.StatusAll': async function* ([n], ctx) {
        for (let i = 0; i < n && !ctx.signal.aborted; i++) yield pinInfo(i)
      },
      'IPFSConnector.BlockStream': async (_a, input) => {
        for await (const _ of input) peers.push('block')
      },
      'Cluster.ID': async (_a, ctx) => {
        await aborted(ctx.signal)
        throw ctx.signal.reason
      },
    }),
  })
  try {
    assert.equal((await rpc.client.call(self, 'PinTracker.Status', ['c'])).cid, 'c')
    let n = 0
    for await (const _ of rpc.client.stream(self, 'PinTracker.StatusAll', [1000])) n++
    assert.equal(n, 1000)
    const two = async function* () {
      yield { cid: 'a', bytes: new Uint8Array(1) }
      yield { cid: 'b', bytes: new Uint8Array(1) }
    }
    await rpc.client.upload(self, 'IPFSConnector.BlockStream', [], two())
    assert.deepEqual(peers, [self, 'block', 'block'])
    const ac = new AbortController()
    const pending = rpc.client.call(self, 'Cluster.ID', [], { signal: ac.signal })
    ac.abort()
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError')
    await assert.rejects(
      rpc.client.call(self, 'Cluster.Nope' as 'Cluster.ID', []),
      RpcUnknownMethodError,
    )
    assert.equal(host.libp2p.getConnections().length, 0)
  } finally {
    await rpc.stop()
    await host.stop()
  }
})

Deno.test('backpressure: a consumer that stops reading stops the producer within the credit window', async () => {
  let produced = 0
  const total = 60_000
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.StatusAll': async function* () {
      for (let i = 0; i < total; i++) {
        produced++
        yield pinInfo(i)
      }
    },
  }))
  try {
    const it = a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])[Symbol.asyncIterator]()
    for (let i = 0; i < 10; i++) assert.equal((await it.next()).value?.name, `pin ${i}`)
    const bound = 10 + (WINDOW + 1) * BATCH_ITEMS + 1
    await waitFor(() => produced >= WINDOW * 10, { what: 'the producer to run ahead' })
    // Generous real time for a producer without a bound to pass it (it makes ~100,000 a second).
    await new Promise((r) => setTimeout(r, 1000))
    assert.ok(produced <= bound, `producer ran ${produced} items ahead (bound ${bound})`)
    let n = 10
    while (!(await it.next()).done) n++
    assert.equal(n, total)
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('a peer that goes away mid-call: RpcUnreachableError naming it, not a hang; an unknown peer too', async () => {
  let started = 0
  const [a, b, c] = await rpcPeers(3, () => ({
    'PinTracker.Status': async (_args, ctx) => {
      started++
      await aborted(ctx.signal)
      throw ctx.signal.reason
    },
    'PinTracker.StatusAll': async function* (_args, ctx) {
      started++
      yield pinInfo(0)
      await aborted(ctx.signal)
    },
  }))
  try {
    const unary = a.rpc.client.call(b.id, 'PinTracker.Status', ['x'])
    const stream = (async () => {
      let n = 0
      for await (const _ of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])) n++
      return n
    })()
    await waitFor(() => started === 2, { what: 'both handlers to start' })
    // Both are watched before either fails: neither rejection goes unhandled meanwhile.
    const lost = [unary, stream].map((p) =>
      assert.rejects(p, (e: Error) => e instanceof RpcUnreachableError && e.message.includes(b.id))
    )
    await b.host.stop()
    await Promise.all(lost)
    await assert.rejects(
      a.rpc.client.call(b.id, 'PinTracker.Status', ['x']),
      (e: Error) => e instanceof RpcUnreachableError && e.message.includes(b.id),
    )
    // A peer whose address nobody knows.
    const stranger = await startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: [],
      secret: '',
    })
    await assert.rejects(
      c.rpc.client.call(stranger.peerId, 'Cluster.Version', []),
      (e: Error) => e instanceof RpcUnreachableError && e.message.includes(stranger.peerId),
    )
    await stranger.stop()
  } finally {
    await stopAll([a, b, c])
  }
})

Deno.test('a callee whose JSON batch does not parse: RpcUnreachableError naming it, the stream given up', async () => {
  const [a, b] = await rpcPeers(2, () => ({}))
  try {
    // b answers any call with an ITEMS frame whose JSON text is cut short ("[{").
    await b.host.libp2p.unhandle(RPC_PROTOCOL_ID)
    await b.host.libp2p.handle(RPC_PROTOCOL_ID, (stream) => {
      stream.addEventListener('message', () => {
        stream.send(lp.encode.single(new Uint8Array([0x82, ITEMS, 0x62, 0x5b, 0x7b])))
      }, { once: true })
    })
    await assert.rejects(
      (async () => {
        for await (const _ of a.rpc.client.stream(b.id, 'PinTracker.StatusAll', [0])) { /* none */ }
      })(),
      (e: Error) =>
        e instanceof RpcUnreachableError && e.message.includes(b.id) &&
        e.message.includes('malformed items'),
    )
  } finally {
    await stopAll([a, b])
  }
})

Deno.test('stop: running handlers are aborted and their callers get ShutdownError; later calls too; twice is harmless', async () => {
  let started = 0
  const [a, b] = await rpcPeers(2, () => ({
    'PinTracker.Status': async (_args, ctx) => {
      started++
      await aborted(ctx.signal)
      throw ctx.signal.reason
    },
  }))
  try {
    const pending = a.rpc.client.call(b.id, 'PinTracker.Status', ['x'])
    await waitFor(() => started === 1, { what: 'the call to arrive' })
    await b.rpc.stop()
    await b.rpc.stop()
    await assert.rejects(pending, ShutdownError)
    await assert.rejects(b.rpc.client.call(a.id, 'Cluster.Version', []), ShutdownError)
    await assert.rejects(
      a.rpc.client.call(b.id, 'Cluster.Version', []),
      RpcUnreachableError,
    )
  } finally {
    await stopAll([a, b])
  }
})
