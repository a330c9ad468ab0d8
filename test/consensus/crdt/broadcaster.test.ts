/**
 * The CRDT broadcaster on real cluster hosts (libp2p on 127.0.0.1, one cluster secret, gossipsub
 * as the cluster configures it): heads reach every peer of a line a–b–c, c hearing a's through b,
 * byte for byte with the author's peer ID; a message whose author b does not trust is rejected
 * at b, so b does not deliver it and c (which trusts everyone) never sees it, while the same
 * author's messages pass once trusted. Then, on a stand-in pubsub (no network): unsigned
 * messages and a failing trust check are rejected, readers end at abort and at stop, a slow
 * reader loses its oldest payloads only, and a stopped broadcaster leaves the topic.
 */
import '../../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { type ClusterHost, startHost } from '../../../src/net/host.ts'
import { DEFAULT_PUBSUB, type GossipSub } from '../../../src/net/pubsub.ts'
import {
  type PubsubBroadcaster,
  pubsubBroadcaster,
} from '../../../src/consensus/crdt/broadcaster.ts'
import { ShutdownError } from '../../../src/errors.ts'
import { waitFor } from '../../support/wait.ts'

// The topic of the default cluster name "ipfs-cluster" (crdt-interop.md §1.1).
const TOPIC = 'fzhnp2UwTBkgNabrJi1VanzwgN'
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

interface Peer {
  host: ClusterHost
  bc: PubsubBroadcaster
  got: { from: string; data: string }[]
  reading: AbortController
  done: Promise<void>
}

/** A line of hosts, each with a broadcaster trusting what `trust(i)` says and a reader. */
async function line(n: number, trust: (i: number) => (id: string) => boolean): Promise<Peer[]> {
  const hosts = await Promise.all(
    Array.from({ length: n }, async () =>
      startHost({
        privateKey: await generateKeyPair('Ed25519'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        secret: 'c'.repeat(64),
        // A fast heartbeat so that the mesh forms within the test (the default is 10 s).
        pubsub: { ...DEFAULT_PUBSUB, heartbeatMs: 100 },
      })),
  )
  for (let i = 1; i < n; i++) await hosts[i].connect(hosts[i - 1].addresses()[0])
  return hosts.map((host, i) => {
    const bc = pubsubBroadcaster({ pubsub: host.pubsub, topic: TOPIC, isTrusted: trust(i) })
    const got: Peer['got'] = []
    const reading = new AbortController()
    const done = (async () => {
      for await (const m of bc.messages(reading.signal)) {
        got.push({ from: m.from, data: dec(m.data) })
      }
    })()
    return { host, bc, got, reading, done }
  })
}

async function stop(peers: Peer[]) {
  for (const p of peers) {
    p.reading.abort()
    await p.done
    await p.bc.stop()
  }
  await Promise.all(peers.map((p) => p.host.stop({ save: false })))
}

/** Publishes `data` from `p` again and again until `until` holds (the mesh forms meanwhile). */
async function publishUntil(p: Peer, data: string, until: () => boolean, what: string) {
  await waitFor(async () => {
    await p.bc.broadcast(enc(data))
    await new Promise((r) => setTimeout(r, 50))
    return until()
  }, { what })
}

Deno.test('crdt broadcaster: a head reaches every peer of a line, through the middle one, with its author', async () => {
  const peers = await line(3, () => () => true)
  const [a, b, c] = peers
  try {
    await publishUntil(
      a,
      'head-1',
      () => c.got.length > 0 && b.got.length > 0,
      'a’s head at b and c',
    )
    for (const p of [b, c]) {
      assert.deepEqual(p.got[0], { from: a.host.peerId, data: 'head-1' })
    }
    assert.equal(
      c.host.libp2p.getConnections(a.host.libp2p.peerId).length,
      0,
      'a and c not connected',
    )
    assert.deepEqual(a.got, [], 'an author does not receive its own broadcast')
    assert.ok(a.bc.stats().sent >= 1)
    assert.equal(c.bc.stats().rejected, 0)
  } finally {
    await stop(peers)
  }
})

Deno.test('crdt broadcaster: an untrusted author is rejected at b, so neither b nor c behind it gets its message; once trusted it passes', async () => {
  const trustedAtB = new Set<string>()
  const peers = await line(3, (i) => i === 1 ? (id) => trustedAtB.has(id) : () => true)
  const [a, b, c] = peers
  try {
    // b's validator has run on (at least) one of a's messages and rejected it.
    await publishUntil(a, 'untrusted', () => b.bc.stats().rejected > 0, 'b rejecting a’s message')
    trustedAtB.add(a.host.peerId)
    await publishUntil(
      a,
      'trusted',
      () => c.got.some((m) => m.data === 'trusted'),
      'a’s trusted message at c',
    )
    assert.ok(!b.got.some((m) => m.data === 'untrusted'), 'b did not deliver the rejected message')
    assert.ok(!c.got.some((m) => m.data === 'untrusted'), 'b did not forward it to c')
    assert.ok(b.got.some((m) => m.data === 'trusted' && m.from === a.host.peerId))
  } finally {
    await stop(peers)
  }
})

/** A stand-in for the host's gossipsub: what the broadcaster touches, and nothing sent anywhere. */
function fakePubsub() {
  const target = new EventTarget()
  const published: { topic: string; data: Uint8Array }[] = []
  const topics = new Set<string>()
  const fake = Object.assign(target, {
    topicValidators: new Map<string, (p: PeerId, m: Message) => TopicValidatorResult>(),
    subscribe: (t: string) => void topics.add(t),
    unsubscribe: (t: string) => void topics.delete(t),
    getTopics: () => [...topics],
    publish: (topic: string, data: Uint8Array) => {
      published.push({ topic, data })
      return Promise.resolve({ recipients: [] })
    },
  })
  return { pubsub: fake as unknown as GossipSub, fake, published }
}

async function signedMessage(topic: string, data: string): Promise<Message> {
  const from = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return {
    type: 'signed',
    from,
    topic,
    data: enc(data),
    sequenceNumber: 1n,
    signature: new Uint8Array(64),
    key: from.publicKey!,
  } as Message
}

Deno.test('crdt broadcaster: the validator takes only signed messages of trusted authors; a throwing trust check rejects', async () => {
  const { pubsub, fake } = fakePubsub()
  const trusted = await signedMessage(TOPIC, 'x')
  const other = await signedMessage(TOPIC, 'y')
  const bc = pubsubBroadcaster({
    pubsub,
    topic: TOPIC,
    isTrusted: (id) => {
      if (id === (other as { from: PeerId }).from.toString()) throw new Error('trust store down')
      return id === (trusted as { from: PeerId }).from.toString()
    },
  })
  const validate = fake.topicValidators.get(TOPIC)!
  assert.ok(validate, 'a validator is registered on the topic')
  const via = (trusted as { from: PeerId }).from
  assert.equal(validate(via, trusted), TopicValidatorResult.Accept)
  assert.equal(validate(via, other), TopicValidatorResult.Reject)
  const unsigned = { type: 'unsigned', topic: TOPIC, data: enc('z') } as Message
  assert.equal(validate(via, unsigned), TopicValidatorResult.Reject)
  assert.equal(bc.stats().rejected, 2)
  await bc.stop()
  assert.equal(fake.topicValidators.has(TOPIC), false, 'stop removes the validator')
})

Deno.test('crdt broadcaster: readers get payloads in order, a slow one loses its oldest only, abort and stop end them; stop leaves the topic', async () => {
  const { pubsub, fake, published } = fakePubsub()
  const bc = pubsubBroadcaster({ pubsub, topic: TOPIC, isTrusted: () => true, queueLimit: 3 })
  assert.deepEqual(fake.getTopics(), [TOPIC])
  const deliver = async (topic: string, data: string) =>
    fake.dispatchEvent(new CustomEvent('message', { detail: await signedMessage(topic, data) }))

  const ac = new AbortController()
  const slow = bc.messages(ac.signal)[Symbol.asyncIterator]()
  const other = new AbortController()
  const reader2 = bc.messages(other.signal)[Symbol.asyncIterator]()
  for (const d of ['1', '2', '3', '4', '5']) await deliver(TOPIC, d)
  await deliver('monitor.metrics', 'not ours')
  // Queue limit 3: payloads 1 and 2 went, 3-5 wait.
  const first = await slow.next()
  assert.equal(dec(first.value!.data), '3')
  assert.equal(dec((await slow.next()).value!.data), '4')
  assert.equal(dec((await reader2.next()).value!.data), '3')
  assert.equal(bc.stats().dropped, 4, 'two dropped for each reader')
  assert.equal(bc.stats().received, 5, 'the other topic is not counted')

  // Abort ends a reader that is waiting.
  assert.equal(dec((await slow.next()).value!.data), '5')
  const pending = slow.next()
  ac.abort()
  assert.equal((await pending).done, true)

  await bc.broadcast(enc('out'))
  assert.deepEqual(published.map((p) => [p.topic, dec(p.data)]), [[TOPIC, 'out']])

  // Stop ends the other reader (after what it holds) and leaves the topic.
  await bc.stop()
  await bc.stop()
  assert.equal(dec((await reader2.next()).value!.data), '4')
  assert.equal(dec((await reader2.next()).value!.data), '5')
  assert.equal((await reader2.next()).done, true)
  assert.deepEqual(fake.getTopics(), [])
  await assert.rejects(bc.broadcast(enc('late')), ShutdownError)
  // A reader opened after stop ends at once.
  assert.equal(
    (await bc.messages(new AbortController().signal)[Symbol.asyncIterator]().next()).done,
    true,
  )
})
