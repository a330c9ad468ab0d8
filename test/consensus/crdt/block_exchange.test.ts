/**
 * Bitswap on real cluster hosts (libp2p on 127.0.0.1, one cluster secret) over in-memory CRDT
 * blockstores: a fetch started before any peer is connected completes when a peer holding the
 * block connects; a peer that asked for a block before its holder had it gets it once the
 * holder stores it through `exchange.blocks`; a block held locally needs no peer; an aborted
 * fetch rejects with the signal's reason and leaves the wantlist; a stopped exchange rejects
 * open and new fetches.
 */
import '../../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type ClusterHost, startHost } from '../../../src/net/host.ts'
import {
  type BlockExchange,
  startBlockExchange,
} from '../../../src/consensus/crdt/block_exchange.ts'
import type { CrdtBlockstore } from '../../../src/consensus/crdt/types.ts'
import { ShutdownError } from '../../../src/errors.ts'
import { logging } from '../../../src/util/log.ts'
import { concatBytes } from '../../../src/util/bytes.ts'
import { waitFor } from '../../support/wait.ts'

/** A CRDT blockstore in memory, counting what it was asked. */
function memoryBlocks(): CrdtBlockstore & { gets: number; size(): number } {
  const m = new Map<string, Uint8Array>()
  const key = (cid: CID) => cid.multihash.bytes.toString()
  const store = {
    gets: 0,
    size: () => m.size,
    has: (cid: CID) => Promise.resolve(m.has(key(cid))),
    get: (cid: CID) => {
      store.gets++
      return Promise.resolve(m.get(key(cid)))
    },
    put: (cid: CID, bytes: Uint8Array) => {
      m.set(key(cid), bytes)
      return Promise.resolve()
    },
  }
  return store
}

async function block(text: string): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  // dag-pb, as the CRDT's delta nodes are; bitswap does not look inside.
  return { cid: CID.createV1(0x70, await sha256.digest(bytes)), bytes }
}

interface Peer {
  host: ClusterHost
  store: ReturnType<typeof memoryBlocks>
  ex: BlockExchange
}

async function peers(n: number): Promise<Peer[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const host = await startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      secret: 'e'.repeat(64),
    })
    const store = memoryBlocks()
    return { host, store, ex: await startBlockExchange({ libp2p: host.libp2p, blocks: store }) }
  }))
}

async function stop(ps: Peer[]) {
  for (const p of ps) await p.ex.stop()
  await Promise.all(ps.map((p) => p.host.stop({ save: false })))
}

Deno.test('crdt block exchange: a fetch waiting with no peer completes when a peer holding the block connects', async () => {
  const ps = await peers(2)
  const [a, b] = ps
  try {
    const blk = await block('delta node')
    await a.ex.blocks.put(blk.cid, blk.bytes)
    const fetching = b.ex.fetch(blk.cid, AbortSignal.timeout(60_000))
    await waitFor(() => b.ex.wants().some((c) => c.equals(blk.cid)), { what: 'the want' })
    assert.equal(b.host.libp2p.getConnections().length, 0)
    await b.host.connect(a.host.addresses()[0])
    assert.deepEqual(await fetching, blk.bytes)
    assert.equal(a.ex.stats().served, 1)
    assert.equal(b.ex.stats().fetched, 1)
    assert.equal(b.store.size(), 0, 'the fetcher does not store: the replica does')
    await waitFor(() => b.ex.wants().length === 0, { what: 'the want to go' })
  } finally {
    await stop(ps)
  }
})

Deno.test('crdt block exchange: a peer that wanted a block before its holder had it gets it when the holder stores it', async () => {
  const ps = await peers(2)
  const [a, b] = ps
  try {
    await b.host.connect(a.host.addresses()[0])
    const blk = await block('arrives later')
    const fetching = b.ex.fetch(blk.cid, AbortSignal.timeout(60_000))
    // a holds b's want (and has answered that it lacks the block) before it gets the block.
    await waitFor(() => a.ex.peerWants(b.host.peerId).some((c) => c.equals(blk.cid)), {
      what: 'b’s want at a',
    })
    assert.equal(a.ex.stats().served, 0)
    await a.ex.blocks.put(blk.cid, blk.bytes)
    assert.deepEqual(await fetching, blk.bytes)
  } finally {
    await stop(ps)
  }
})

Deno.test('crdt block exchange: a block held locally is returned without any peer', async () => {
  const ps = await peers(1)
  const [a] = ps
  try {
    const blk = await block('local')
    await a.ex.blocks.put(blk.cid, blk.bytes)
    assert.deepEqual(await a.ex.fetch(blk.cid, AbortSignal.timeout(60_000)), blk.bytes)
    assert.equal(a.ex.stats().fetched, 0)
  } finally {
    await stop(ps)
  }
})

Deno.test('crdt block exchange: an aborted fetch rejects with the signal’s reason and leaves the wantlist; stop rejects open and new fetches', async () => {
  const ps = await peers(2)
  const [a, b] = ps
  try {
    await b.host.connect(a.host.addresses()[0])
    const missing = await block('nobody has this')
    const ac = new AbortController()
    const fetching = b.ex.fetch(missing.cid, ac.signal)
    await waitFor(() => b.ex.wants().length === 1, { what: 'the want' })
    const why = new Error('walk cancelled')
    ac.abort(why)
    await assert.rejects(fetching, (err) => err === why)
    await waitFor(() => b.ex.wants().length === 0, { what: 'the want to be cancelled' })

    const open = b.ex.fetch((await block('also missing')).cid, AbortSignal.timeout(60_000))
    await waitFor(() => b.ex.wants().length === 1, { what: 'the second want' })
    await b.ex.stop()
    await assert.rejects(open, ShutdownError)
    await assert.rejects(b.ex.fetch(missing.cid, AbortSignal.timeout(1000)), ShutdownError)
    await b.ex.stop()
  } finally {
    await stop(ps)
  }
})

Deno.test('crdt block exchange: an idle inbound stream (as Go keeps one per peer) stays open and still carries wants', async () => {
  const BITSWAP = '/ipfs/bitswap/1.2.0'
  const lines: string[] = []
  const host = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: 'e'.repeat(64),
  })
  const store = memoryBlocks()
  const ex = await startBlockExchange({
    libp2p: host.libp2p,
    blocks: store,
    messageReceiveTimeoutMs: 100,
    log: logging('debug', (l) => lines.push(l)).get('crdt'),
  })
  // The "Go peer": a bare host that writes bitswap messages on one long-lived stream and takes
  // the answers on streams the exchange opens to it.
  const goLike = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: 'e'.repeat(64),
  })
  const received: Uint8Array[] = []
  await goLike.libp2p.handle(BITSWAP, (stream) => {
    stream.addEventListener('message', (evt) => void received.push(evt.data.subarray()))
  })
  try {
    const blk = await block('wanted after a pause')
    await ex.blocks.put(blk.cid, blk.bytes)
    await goLike.connect(host.addresses()[0])
    const sender = await goLike.libp2p.dialProtocol(host.libp2p.peerId, BITSWAP)
    await waitFor(() => lines.some((l) => l.includes('kept idle inbound bitswap stream')), {
      what: 'the idle stream kept',
    })
    assert.equal(sender.status, 'open')
    // Message { wantlist { entries { block: cid, priority: 1 } } }, length-prefixed.
    const entry = [0x0a, blk.cid.bytes.length, ...blk.cid.bytes, 0x10, 0x01]
    const msg = [0x0a, entry.length + 2, 0x0a, entry.length, ...entry]
    sender.send(new Uint8Array([msg.length, ...msg]))
    await waitFor(() => contains(concatBytes(received), blk.bytes), { what: 'the block sent back' })
    assert.equal(ex.stats().served, 1)
  } finally {
    await ex.stop()
    await goLike.stop({ save: false })
    await host.stop({ save: false })
  }
})

Deno.test('crdt block exchange: an open want is sent again to connected peers (a want whose message was lost is not lost for good)', async () => {
  const BITSWAP = '/ipfs/bitswap/1.2.0'
  const host = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: 'e'.repeat(64),
  })
  const ex = await startBlockExchange({
    libp2p: host.libp2p,
    blocks: memoryBlocks(),
    resendWantsMs: 100,
  })
  // A peer that takes wants and never answers (as one whose first want message was lost would
  // look from here: @helia/bitswap counts a failed send as sent).
  const silent = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: 'e'.repeat(64),
  })
  const blk = await block('never answered')
  let wantMessages = 0
  await silent.libp2p.handle(BITSWAP, (stream) => {
    stream.addEventListener('message', (evt) => {
      if (contains(evt.data.subarray(), blk.cid.bytes)) wantMessages++
    })
  })
  const ac = new AbortController()
  try {
    await silent.connect(host.addresses()[0])
    const fetching = ex.fetch(blk.cid, ac.signal)
    fetching.catch(() => {})
    await waitFor(() => wantMessages >= 3, { what: 'the want sent again' })
    ac.abort(new Error('done'))
    await assert.rejects(fetching, /done/)
  } finally {
    await ex.stop()
    await silent.stop({ save: false })
    await host.stop({ save: false })
  }
})

Deno.test('crdt block exchange: a peer whose bitswap started after it connected (identify push) is asked for blocks', async () => {
  const host = () =>
    generateKeyPair('Ed25519').then((privateKey) =>
      startHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], secret: 'e'.repeat(64) })
    )
  // a: host and bitswap up, alone. b: its host dials a first, its bitswap starts after (as a
  // CRDT peer's host dials its peers before its consensus starts).
  const aHost = await host()
  const aEx = await startBlockExchange({ libp2p: aHost.libp2p, blocks: memoryBlocks() })
  const bHost = await host()
  let bEx: BlockExchange | undefined
  try {
    await bHost.connect(aHost.addresses()[0])
    // a has identified b, bitswap not among b's protocols yet.
    await waitFor(async () => {
      const known = await aHost.libp2p.peerStore.get(bHost.libp2p.peerId).catch(() => undefined)
      return (known?.protocols.length ?? 0) > 0
    }, { what: 'a to identify b' })
    const before = (await aHost.libp2p.peerStore.get(bHost.libp2p.peerId)).protocols
    assert.ok(!before.includes('/ipfs/bitswap/1.2.0'), `${before}`)
    const bStore = memoryBlocks()
    const blk = await block('held by the late starter')
    await bStore.put(blk.cid, blk.bytes)
    bEx = await startBlockExchange({ libp2p: bHost.libp2p, blocks: bStore })
    assert.deepEqual(await aEx.fetch(blk.cid, AbortSignal.timeout(10_000)), blk.bytes)
  } finally {
    await bEx?.stop()
    await aEx.stop()
    await aHost.stop({ save: false })
    await bHost.stop({ save: false })
  }
})

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer
    return true
  }
  return false
}
