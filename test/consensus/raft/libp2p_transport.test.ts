/**
 * `libp2pTransport` between real libp2p hosts on 127.0.0.1, without consensus: messages arrive in
 * order over one stream per peer; a stalled receiver fills a bounded queue, never more, and the
 * core hears `unreachable`; a peer that cannot be dialled is retried after capped exponential
 * delays measured on an injected clock; snapshot chunks are acknowledged one by one, and a refusal,
 * a broken stream or an abort rejects the send; garbage on the wire costs its stream only; `stop`
 * unregisters the protocols and is idempotent.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Message, SnapshotChunk } from '../../../src/consensus/raft/core/mod.ts'
import {
  backoffMs,
  type Libp2pTransport,
  libp2pTransport,
  type Libp2pTransportOptions,
  RAFT_PROTOCOL,
  SnapshotRejectedError,
} from '../../../src/consensus/raft/libp2p_transport.ts'
import { UnreachableError } from '../../../src/consensus/raft/transport.ts'
import { type ClusterHost, startHost } from '../../../src/net/host.ts'
import { type ManualClock, manualClock, turn } from '../../support/manual_clock.ts'
import { waitFor } from '../../support/wait.ts'

async function host(): Promise<ClusterHost> {
  return await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: '',
  })
}

/** Tells `a`'s peer store where `b` listens. */
async function introduce(a: ClusterHost, b: ClusterHost): Promise<void> {
  await a.libp2p.peerStore.merge(peerIdFromString(b.peerId), {
    multiaddrs: b.libp2p.getMultiaddrs().map((m) => multiaddr(m.toString().split('/p2p/')[0])),
  })
}

interface Side {
  host: ClusterHost
  transport: Libp2pTransport
  got: Message[]
  chunks: SnapshotChunk[]
  unreachable: string[]
  stage: (c: SnapshotChunk) => Promise<void>
}

async function side(opts: Partial<Libp2pTransportOptions> = {}, h?: ClusterHost): Promise<Side> {
  const hh = h ?? await host()
  const s: Side = {
    host: hh,
    transport: libp2pTransport({ libp2p: hh.libp2p, ...opts }),
    got: [],
    chunks: [],
    unreachable: [],
    stage: (c) => {
      s.chunks.push(c)
      return Promise.resolve()
    },
  }
  s.transport.listen(hh.peerId, {
    message: (m) => void s.got.push(m),
    snapshotChunk: (c) => s.stage(c),
    unreachable: (p) => void s.unreachable.push(p),
  })
  return s
}

async function close(...sides: Side[]): Promise<void> {
  for (const s of sides) {
    await s.transport.stop()
    await s.host.stop()
  }
}

function heartbeat(from: string, to: string, commit: number): Message {
  return { type: 'heartbeat', from, to, term: 3, commit }
}

function append(from: string, to: string, index: number, size: number): Message {
  const data = new Uint8Array(size).fill(index & 0xff)
  return {
    type: 'append',
    from,
    to,
    term: 3,
    index,
    logTerm: 3,
    commit: index,
    entries: [{ term: 3, index: index + 1, type: 'normal', data }],
  }
}

Deno.test('backoff doubles from the minimum and stops at the cap', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 50].map((f) => backoffMs(f, 100, 2000)),
    [0, 100, 200, 400, 800, 1600, 2000, 2000],
  )
})

Deno.test('messages to a peer arrive in order, exactly, over one reused stream', async () => {
  const a = await side()
  const b = await side()
  try {
    await introduce(a.host, b.host)
    const sent: Message[] = []
    for (let i = 0; i < 2000; i++) {
      const m = i % 10 === 0 ? append(a.host.peerId, b.host.peerId, i, 3000) : heartbeat(
        a.host.peerId,
        b.host.peerId,
        i,
      )
      sent.push(m)
      a.transport.send([m])
      if (i % 100 === 0) await turn()
    }
    await waitFor(() => b.got.length === sent.length, { what: 'every message delivered' })
    assert.deepStrictEqual(b.got, sent, 'in order, field for field, with the real sender')
    assert.equal(a.transport.stats(b.host.peerId)?.dials, 1, 'one stream for all of them')
    assert.equal(a.transport.stats(b.host.peerId)?.dropped, 0)
    // Local reports never travel.
    a.transport.send([{ type: 'unreachable', from: a.host.peerId, to: b.host.peerId, term: 0 }])
    a.transport.send([heartbeat(a.host.peerId, b.host.peerId, 1_000_000)])
    await waitFor(() => b.got.length === sent.length + 1, { what: 'the next message delivered' })
    assert.equal(b.got.at(-1)?.type, 'heartbeat')
  } finally {
    await close(a, b)
  }
})

Deno.test('a stalled receiver: the queue stays within its bounds, the core hears unreachable, and the stall tears the stream', async () => {
  const clock = manualClock()
  const bounds = { maxQueuedMessages: 100, maxQueuedBytes: 512 * 1024, maxFrameBytes: 64 * 1024 }
  const a = await side({ ...bounds, clock, stallTimeoutMs: 10_000 })
  const b = await host()
  const held: Stream[] = []
  // B accepts the stream and never reads it: Yamux stops granting window, A's stream stops draining.
  await b.libp2p.handle(RAFT_PROTOCOL, (s) => {
    s.pause()
    held.push(s)
  })
  try {
    await introduce(a.host, b)
    const to = b.peerId
    let sent = 0
    const stats = () => a.transport.stats(to)!
    a.transport.send([heartbeat(a.host.peerId, to, 0)])
    await waitFor(() => stats().connected, { what: 'the stream to B is open' })
    // Push until the queue overflows (the socket and Yamux buffers take some first).
    await waitFor(() => {
      for (let i = 0; i < 20; i++) a.transport.send([append(a.host.peerId, to, sent++, 16 * 1024)])
      return stats().dropped > 0
    }, { what: 'the stalled stream to fill the queue' })
    // Keep pushing well past the bound: nothing more is held.
    for (let i = 0; i < 5000; i++) a.transport.send([append(a.host.peerId, to, sent++, 16 * 1024)])
    await turn()
    const s = stats()
    assert.ok(s.queuedMessages <= bounds.maxQueuedMessages, `${s.queuedMessages} messages queued`)
    assert.ok(s.queuedBytes <= bounds.maxQueuedBytes, `${s.queuedBytes} bytes queued`)
    assert.ok(s.queuedBytes > bounds.maxQueuedBytes - 20 * 1024, 'the queue is full')
    assert.ok(s.dropped >= 5000, `${s.dropped} dropped`)
    assert.equal(s.failures, 0, 'a slow peer is not a failed one yet')
    await turn()
    assert.ok(a.unreachable.includes(to), 'the core was told')
    // Past the stall timeout, the stream counts as broken: the queue is emptied, backoff begins.
    await clock.advance(10_000)
    await waitFor(() => stats().failures === 1, { what: 'the stalled stream was torn down' })
    assert.equal(stats().queuedMessages, 0)
    assert.equal(stats().queuedBytes, 0)
    assert.equal(stats().retryAt, clock.now() + 100)
  } finally {
    await close(a)
    await b.stop()
  }
})

/** Sends one heartbeat from `s` to `to` and waits until the transport's writer is idle again. */
async function sendOne(s: Side, to: string): Promise<void> {
  s.transport.send([heartbeat(s.host.peerId, to, 1)])
  for (let i = 0; i < 50; i++) await turn()
}

Deno.test('an unreachable peer is dialled again after capped exponential delays on the injected clock', async () => {
  const clock: ManualClock = manualClock()
  const a = await side({ clock, minBackoffMs: 100, maxBackoffMs: 800 })
  const bKey = await generateKeyPair('Ed25519')
  const to = peerIdFromPrivateKey(bKey).toString()
  let b: Side | undefined
  try {
    const stats = () => a.transport.stats(to)!
    const failed = (n: number) =>
      waitFor(() => stats().failures === n, { what: `dial failure ${n}` })
    // Nobody knows where B is: the dial fails, the message is dropped, the core hears of it.
    await sendOne(a, to)
    await failed(1)
    assert.equal(stats().dials, 1)
    assert.equal(stats().retryAt, clock.now() + 100)
    assert.ok(a.unreachable.includes(to))
    // Within the delay nothing is dialled; messages are dropped at once.
    await clock.advance(99)
    await sendOne(a, to)
    assert.equal(stats().dials, 1)
    // Then the delays double: 100, 200, 400, and stop at 800.
    const delays = [100, 200, 400, 800, 800]
    for (let i = 0; i < delays.length; i++) {
      await clock.advance(i === 0 ? 1 : delays[i - 1] - 1)
      await sendOne(a, to)
      await failed(i + 2)
      assert.equal(stats().dials, i + 2)
      assert.equal(stats().retryAt, clock.now() + delays[i + 1 === delays.length ? i : i + 1])
      if (i + 1 < delays.length) {
        await clock.advance(delays[i + 1] - 1)
        await sendOne(a, to)
        assert.equal(stats().dials, i + 2, `no dial before ${delays[i + 1]} ms`)
      }
    }
    // B comes up where A can find it: the next dial after the delay works and resets the count.
    b = await side(
      {},
      await startHost({ privateKey: bKey, listen: ['/ip4/127.0.0.1/tcp/0'], secret: '' }),
    )
    await introduce(a.host, b.host)
    await clock.advance(800)
    a.transport.send([heartbeat(a.host.peerId, to, 42)])
    await waitFor(() => b!.got.length === 1, { what: 'delivered once B is reachable' })
    assert.equal(stats().failures, 0)
    assert.equal(stats().retryAt, 0)
  } finally {
    await close(a)
    if (b) await close(b)
  }
})

function chunksOf(n: number, log: string[]): AsyncIterable<SnapshotChunk> {
  return (async function* () {
    for (let i = 0; i < n; i++) {
      log.push(`send ${i}`)
      yield {
        from: 'x',
        to: 'y',
        term: 4,
        snapshot: { index: 100, term: 4, confState: { voters: ['x', 'y'], learners: [] } },
        streamId: 9,
        chunkIndex: i,
        offset: i * 1000,
        data: new Uint8Array(1000).fill(i),
        done: i === n - 1,
      }
    }
  })()
}

Deno.test('with a window of one, each snapshot chunk leaves only after the previous one was staged', async () => {
  const a = await side({ snapshotWindow: 1 })
  const b = await side()
  try {
    await introduce(a.host, b.host)
    const log: string[] = []
    b.stage = async (c) => {
      log.push(`staging ${c.chunkIndex}`)
      await new Promise((r) => setTimeout(r, 5))
      b.chunks.push(c)
      log.push(`staged ${c.chunkIndex}`)
    }
    await a.transport.sendSnapshot(b.host.peerId, chunksOf(4, log), new AbortController().signal)
    assert.deepEqual(log, [
      'send 0',
      'staging 0',
      'staged 0',
      'send 1',
      'staging 1',
      'staged 1',
      'send 2',
      'staging 2',
      'staged 2',
      'send 3',
      'staging 3',
      'staged 3',
    ])
    assert.deepEqual(b.chunks.map((c) => [c.from, c.to, c.chunkIndex, c.done, c.data[0]]), [
      [a.host.peerId, b.host.peerId, 0, false, 0],
      [a.host.peerId, b.host.peerId, 1, false, 1],
      [a.host.peerId, b.host.peerId, 2, false, 2],
      [a.host.peerId, b.host.peerId, 3, true, 3],
    ])
  } finally {
    await close(a, b)
  }
})

Deno.test('snapshot chunks travel at most a window ahead of their acknowledgements', async () => {
  const a = await side({ snapshotWindow: 3 })
  const b = await side()
  try {
    await introduce(a.host, b.host)
    const log: string[] = []
    const release: (() => void)[] = []
    b.stage = (c) => {
      log.push(`staging ${c.chunkIndex}`)
      return new Promise((r) => release.push(r))
    }
    const sends = () => log.filter((l) => l.startsWith('send')).length
    const done = a.transport.sendSnapshot(
      b.host.peerId,
      chunksOf(6, log),
      new AbortController().signal,
    )
    await waitFor(() => release.length === 1, { what: 'the first chunk staging' })
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(sends(), 3, 'three chunks out, none staged yet')
    assert.equal(release.length, 1, 'the receiver stages one at a time')
    for (let i = 0; i < 6; i++) {
      release[i]()
      await waitFor(() => release.length === Math.min(i + 2, 6) || i === 5, {
        what: `chunk ${i + 1} staging`,
      })
      assert.ok(sends() <= i + 1 + 3, `at most 3 unacknowledged (${sends()} sent, ${i + 1} staged)`)
    }
    await done
    assert.equal(sends(), 6)
    assert.deepEqual(
      log.filter((l) => l.startsWith('staging')),
      [0, 1, 2, 3, 4, 5].map((i) => `staging ${i}`),
    )
  } finally {
    await close(a, b)
  }
})

Deno.test('an error of the snapshot source comes out of sendSnapshot as it is', async () => {
  const a = await side()
  const b = await side()
  try {
    await introduce(a.host, b.host)
    class TornError extends Error {}
    const torn = new TornError('stored snapshot does not match its manifest')
    const source = async function* () {
      yield* chunksOf(2, [])
      throw torn
    }
    await assert.rejects(
      a.transport.sendSnapshot(b.host.peerId, source(), new AbortController().signal),
      (err) => err === torn,
    )
  } finally {
    await close(a, b)
  }
})

Deno.test('a refused chunk, a receiver that goes away and an abort each reject sendSnapshot', async () => {
  const a = await side()
  const b = await side()
  try {
    await introduce(a.host, b.host)
    const to = b.host.peerId
    const never = new AbortController().signal
    b.stage = (c) => {
      if (c.chunkIndex === 1) return Promise.reject(new Error('torn stream: expected offset 0'))
      return Promise.resolve()
    }
    await assert.rejects(
      a.transport.sendSnapshot(to, chunksOf(3, []), never),
      (err: Error) =>
        err instanceof SnapshotRejectedError &&
        /chunk 1: torn stream: expected offset 0/.test(err.message),
    )
    // An abort while the receiver is staging.
    const ac = new AbortController()
    b.stage = () => {
      ac.abort(new Error('leader stepped down'))
      return new Promise(() => {})
    }
    await assert.rejects(a.transport.sendSnapshot(to, chunksOf(3, []), ac.signal), /stepped down/)
    // The receiver stops listening mid-stream.
    b.stage = () => b.transport.stop()
    await assert.rejects(a.transport.sendSnapshot(to, chunksOf(3, []), never), UnreachableError)
  } finally {
    await close(a, b)
  }
})

Deno.test('garbage on the wire costs its stream only', async () => {
  const a = await side()
  const b = await side()
  try {
    await introduce(a.host, b.host)
    const s = await a.host.libp2p.dialProtocol(peerIdFromString(b.host.peerId), RAFT_PROTOCOL)
    s.send(Uint8Array.of(3, 0xff, 0xff, 0xff))
    await waitFor(() => s.status !== 'open', { what: 'the garbage stream was reset' })
    a.transport.send([heartbeat(a.host.peerId, b.host.peerId, 5)])
    await waitFor(() => b.got.length === 1, { what: 'a good stream still works' })
  } finally {
    await close(a, b)
  }
})

Deno.test('stop unregisters both protocols, closes the streams and is idempotent', async () => {
  const a = await side()
  const b = await side()
  try {
    await introduce(a.host, b.host)
    await introduce(b.host, a.host)
    a.transport.send([heartbeat(a.host.peerId, b.host.peerId, 1)])
    await waitFor(() => b.got.length === 1, { what: 'delivered' })
    await Promise.all([b.transport.stop(), b.transport.stop()])
    await b.transport.stop()
    await assert.rejects(
      a.host.libp2p.dialProtocol(peerIdFromString(b.host.peerId), RAFT_PROTOCOL),
      /could not negotiate|protocol selection failed/i,
    )
    b.transport.send([heartbeat(b.host.peerId, a.host.peerId, 1)])
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(a.got.length, 0, 'a stopped transport sends nothing')
    assert.equal(b.transport.stats(a.host.peerId), undefined)
  } finally {
    await close(a, b)
  }
})

Deno.test('a listener that stops and comes back gets messages again; only the host ID listens', async () => {
  const a = await side()
  const b = await host()
  const tb = libp2pTransport({ libp2p: b.libp2p })
  try {
    await introduce(a.host, b)
    assert.throws(
      () => tb.listen('someone-else', { message() {}, snapshotChunk: () => Promise.resolve() }),
      /not this host's peer ID/,
    )
    const got: number[] = []
    const handlers = {
      message: (m: Message) => void got.push((m as { commit: number }).commit),
      snapshotChunk: () => Promise.resolve(),
    }
    const unlisten = tb.listen(b.peerId, handlers)
    a.transport.send([heartbeat(a.host.peerId, b.peerId, 1)])
    await waitFor(() => got.length === 1, { what: 'delivered' })
    unlisten()
    a.transport.send([heartbeat(a.host.peerId, b.peerId, 2)])
    await waitFor(() => !a.transport.stats(b.peerId)!.connected, { what: 'the stream was closed' })
    tb.listen(b.peerId, handlers)
    // The sender may be backing off after its stream was closed: retransmit, as Raft does.
    await waitFor(() => {
      if (!got.includes(3)) a.transport.send([heartbeat(a.host.peerId, b.peerId, 3)])
      return got.includes(3)
    }, { what: 'delivered after listening again' })
    assert.equal(got[0], 1)
    assert.ok(!got.includes(2), 'nothing is delivered while nobody listens')
  } finally {
    await close(a)
    await tb.stop()
    await b.stop()
  }
})
