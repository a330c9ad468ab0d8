/**
 * The embedded node as a networked IPFS node, in one process on 127.0.0.1: the config keys and
 * their errors, what the libp2p is built from with the public network off and on, a busy swarm
 * port, announce addresses, the peering list (with its backoff driven by hand), two nodes
 * fetching each other's blocks, and the queue that announces pinned roots to the public network.
 */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { bytesOf, unixfsFile } from './blocks.ts'
import { embeddedConnector } from '../../../src/ipfsconn/embedded/connector.ts'
import { type EmbeddedConfig, embeddedSection } from '../../../src/ipfsconn/embedded/config.ts'
import { libp2pOptions } from '../../../src/ipfsconn/embedded/network.ts'
import { openNode } from '../../../src/ipfsconn/embedded/node.ts'
import {
  nextDelay,
  PEERING_INITIAL_DELAY,
  PEERING_MAX_DELAY,
  PEERING_TAG,
  startPeering,
} from '../../../src/ipfsconn/embedded/peering.ts'
import { PUBLIC_BOOTSTRAP_PEERS } from '../../../src/ipfsconn/embedded/public_network.ts'
import { announcer } from '../../../src/ipfsconn/embedded/announcer.ts'
import { ConfigError } from '../../../src/errors.ts'
import { type ManualClock, manualClock } from '../../support/manual_clock.ts'
import { waitFor } from '../../support/wait.ts'
import { newPin } from '../../../src/types/pin.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId } from '@libp2p/interface'

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']

function cfg(over: Partial<EmbeddedConfig> = {}): EmbeddedConfig {
  return { ...embeddedSection.defaults(), listen_multiaddress: LOOPBACK, ...over }
}

/** A file of 4 blocks (3 raw leaves of 256 KiB + the root) that no other seed shares. */
async function fileBlocks(seed: number) {
  const f = await unixfsFile(bytesOf(600 * 1024, seed), 256 * 1024)
  return { root: f.root, blocks: f.stream() }
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: 'embedded-net-' })
}

Deno.test('embedded config: networked by default, public network off, keys checked', () => {
  const d = embeddedSection.defaults()
  assert.equal(d.libp2p, true)
  assert.deepEqual(d.listen_multiaddress, ['/ip4/0.0.0.0/tcp/9098'])
  assert.deepEqual(d.announce_multiaddress, [])
  assert.deepEqual(d.peering, [])
  assert.equal(d.public_network, false)

  const load = (json: unknown, env: Record<string, string> = {}) => embeddedSection.load(json, env)
  assert.equal(load({}, { CLUSTER_EMBEDDED_PUBLICNETWORK: 'true' }).public_network, true)
  assert.throws(
    () => load({ listen_multiaddress: ['/ip4/0.0.0.0/udp/4001/quic-v1'] }),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message.startsWith('ipfs_connector.embedded.listen_multiaddress: /ip4/0.0.0.0/udp/') &&
      /TCP only/.test(e.message),
  )
  assert.throws(
    () => load({ peering: ['/ip4/10.0.0.2/tcp/9098'] }),
    /^ConfigError: ipfs_connector\.embedded\.peering: \/ip4\/10\.0\.0\.2\/tcp\/9098: must end with \/p2p\/<peer ID>/,
  )
  assert.throws(
    () => load({ peering: ['/ip4/10.0.0.2/tcp/9098/p2p/notapeer'] }),
    /peering: .*notapeer is not a peer ID/,
  )
  assert.throws(() => load({ public_network: 'yes' }), /public_network: must be true or false/)
  assert.throws(
    () => load({ announce_multiaddress: ['/ip4/1.2.3.4/udp/1'] }),
    /announce_multiaddress: \/ip4\/1\.2\.3\.4\/udp\/1: use/,
  )
  const ok = load({
    peering: [
      '/dnsaddr/cluster.example.com/p2p/12D3KooWLcq6hKWsUPgJbWvJtDyDJLAMn6ZFSHXmQvDGvLGSfEVQ',
    ],
    announce_multiaddress: ['/dns4/ipfs.example.com/tcp/9098'],
  })
  assert.equal(ok.peering.length, 1)
})

Deno.test('embedded libp2p: public network off builds no discovery or routing; on adds them', async () => {
  const key = await generateKeyPair('Ed25519')
  const off = await libp2pOptions(key, { listen: LOOPBACK, announce: [], publicNetwork: false })
  assert.deepEqual(Object.keys(off.services ?? {}).sort(), ['identify', 'ping'])
  assert.equal(off.peerDiscovery, undefined)
  assert.equal(off.addresses?.announce, undefined)

  const on = await libp2pOptions(key, {
    listen: LOOPBACK,
    announce: ['/ip4/192.0.2.7/tcp/4001'],
    publicNetwork: true,
  })
  assert.deepEqual(Object.keys(on.services ?? {}).sort(), [
    'autoNAT',
    'delegatedContentRouting',
    'delegatedPeerRouting',
    'dht',
    'identify',
    'identifyPush',
    'ping',
  ])
  assert.equal(on.peerDiscovery?.length, 1)
  assert.deepEqual(on.addresses?.announce, ['/ip4/192.0.2.7/tcp/4001'])
  assert.ok(PUBLIC_BOOTSTRAP_PEERS.every((a) => a.includes('/p2p/') && !a.includes('/udp/')))

  // Started with the switch off, the node knows no peer and speaks no DHT: nothing to dial.
  const dir = await tempDir()
  const node = await openNode({
    dir,
    network: { listen: LOOPBACK, announce: [], publicNetwork: false },
  })
  try {
    const libp2p = node.libp2p!
    assert.deepEqual(Object.keys(libp2p.services).sort(), ['identify', 'ping'])
    assert.deepEqual(await libp2p.peerStore.all(), [])
    assert.ok(!libp2p.getProtocols().includes('/ipfs/kad/1.0.0'))
    assert.ok(libp2p.getProtocols().includes('/ipfs/bitswap/1.2.0'))
    assert.deepEqual(libp2p.getConnections(), [])
  } finally {
    await node.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('embedded: a busy swarm port is one line naming the key, the address and what to do', async () => {
  const held = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (held.addr as Deno.NetAddr).port
  const dir = await tempDir()
  const addr = `/ip4/127.0.0.1/tcp/${port}`
  let closed = false
  const ipfs = embeddedConnector(cfg({ listen_multiaddress: [...LOOPBACK, addr] }), {
    configDir: dir,
  })
  try {
    const err = await ipfs.ready().then(() => undefined, (e: Error) => e)
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(
      err.message,
      `cannot listen on ${addr} (ipfs_connector.embedded.listen_multiaddress): address ` +
        'already in use; stop the program using it or set another address in service.json',
    )
    // Nothing of the failed start is left: once the port is free, the same repo starts.
    held.close()
    closed = true
    await ipfs.ready()
    assert.ok((await ipfs.id()).addresses.some((a) => a.startsWith(`${addr}/p2p/`)))
  } finally {
    if (!closed) held.close()
    await ipfs.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('embedded: id() reports the real listen addresses, or the announce ones', async () => {
  const dir = await tempDir()
  const a = embeddedConnector(cfg(), { configDir: dir })
  const b = embeddedConnector(
    cfg({ folder: 'b', announce_multiaddress: ['/dns4/ipfs.example.com/tcp/4001'] }),
    { configDir: dir },
  )
  try {
    const ida = await a.id()
    assert.equal(ida.addresses.length, 1)
    assert.match(ida.addresses[0], new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${ida.id}$`))
    const idb = await b.id()
    assert.deepEqual(idb.addresses, [`/dns4/ipfs.example.com/tcp/4001/p2p/${idb.id}`])
    assert.notEqual(ida.id, idb.id)
  } finally {
    await a.stop()
    await b.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('peering backoff: 5 s, then ×1.5–2.5, at most 10 min minus up to 10 %', () => {
  assert.equal(nextDelay(0, () => 0.99), PEERING_INITIAL_DELAY)
  assert.equal(nextDelay(5_000, () => 0), 7_500)
  assert.equal(nextDelay(5_000, () => 0.5), 10_000)
  let d = 0
  for (let i = 0; i < 30; i++) d = nextDelay(d, () => 0.999)
  assert.ok(d <= PEERING_MAX_DELAY && d > PEERING_MAX_DELAY * 0.9, String(d))
  assert.equal(nextDelay(PEERING_MAX_DELAY, () => 0), PEERING_MAX_DELAY)
})

/** Waits until exactly one redial is scheduled on `clock`; returns its delay. */
async function scheduled(clock: ManualClock): Promise<number> {
  await waitFor(() => clock.pending() === 1, { what: 'a redial to be scheduled' })
  return clock.nextAt()! - clock.now()
}

function connectedTo(libp2p: Libp2p, id: PeerId): Promise<void> {
  if (libp2p.getConnections(id).length) return Promise.resolve()
  return new Promise((resolve) => {
    const on = (e: CustomEvent<PeerId>) => {
      if (!e.detail.equals(id)) return
      libp2p.removeEventListener('peer:connect', on)
      resolve()
    }
    libp2p.addEventListener('peer:connect', on)
  })
}

Deno.test('peering: connects at start, redials with backoff while the peer is down, reconnects when it is back', async () => {
  const dirA = await tempDir()
  const dirB = await tempDir()
  const open = (dir: string, listen: string[]) =>
    openNode({ dir, network: { listen, announce: [], publicNetwork: false } })
  let a = await open(dirA, LOOPBACK)
  const b = await open(dirB, LOOPBACK)
  const clock = manualClock()
  try {
    const addrA = a.libp2p!.getMultiaddrs()[0].toString()
    const idA = a.libp2p!.peerId
    const peering = startPeering(b.libp2p!, [addrA], { clock, random: () => 0 })
    assert.deepEqual(peering.peers, [idA.toString()])
    await connectedTo(b.libp2p!, idA)
    const tags = (await b.libp2p!.peerStore.get(idA)).tags
    assert.equal(tags.get(PEERING_TAG)?.value, 100, 'tagged so that the pruner keeps it')
    assert.equal(clock.pending(), 0)

    // A goes away: B schedules a redial after the initial delay.
    await a.stop()
    assert.equal(await scheduled(clock), PEERING_INITIAL_DELAY)

    // Fired while A is down: the dial fails and the next try is further away.
    await clock.advance(PEERING_INITIAL_DELAY - 1)
    assert.equal(clock.pending(), 1, 'not before its time')
    await clock.advance(1)
    assert.equal(await scheduled(clock), 7_500)

    // A is back on the same address with the same identity: the next try reconnects.
    a = await open(dirA, [addrA.replace(/\/p2p\/.*$/, '')])
    assert.ok(a.libp2p!.peerId.equals(idA))
    const back = connectedTo(b.libp2p!, idA)
    await clock.next()
    await back
    assert.equal(clock.pending(), 0)

    peering.stop()
    peering.stop()
    await a.stop()
    assert.equal(clock.pending(), 0, 'stopped: no redial is scheduled')
  } finally {
    await a.stop()
    await b.stop()
    await Deno.remove(dirA, { recursive: true })
    await Deno.remove(dirB, { recursive: true })
  }
})

Deno.test("embedded: two nodes on 127.0.0.1 fetch each other's blocks (B peers with A)", async () => {
  const dir = await tempDir()
  const a = embeddedConnector(cfg({ folder: 'a', pin_timeout: 10_000 }), { configDir: dir })
  try {
    const idA = await a.id()
    const b = embeddedConnector(
      cfg({ folder: 'b', pin_timeout: 10_000, peering: idA.addresses }),
      { configDir: dir },
    )
    try {
      await b.ready()
      const fa = await fileBlocks(1)
      await a.blockStream(fa.blocks)
      const fb = await fileBlocks(2)
      await b.blockStream(fb.blocks)

      // B fetches A's file over the connection its peering list opened…
      let blocks = 0
      await b.pin(newPin(fa.root.toString()), { onProgress: (n) => blocks = n })
      assert.equal(blocks, 4, 'root + 3 chunks of 256 KiB')
      assert.equal(await b.pinLsCid(newPin(fa.root.toString())), 'recursive')
      assert.deepEqual(await b.swarmPeers(), [idA.id])
      // …and A fetches B's over the same connection (A was not told about B).
      await a.pin(newPin(fb.root.toString()))
      assert.equal(await a.pinLsCid(newPin(fb.root.toString())), 'recursive')
      const idB = await b.id()
      assert.deepEqual(await a.swarmPeers(), [idB.id])
    } finally {
      await b.stop()
    }
  } finally {
    await a.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('announcer: one root at a time, bounded queue, unpinned roots dropped, stop aborts', async () => {
  // The public DHT cannot be reached from here: `provide` is a double that the test releases.
  const calls: { cid: string; signal: AbortSignal; done: () => void }[] = []
  const next = () => calls[calls.length - 1]
  const provide = (cid: CID, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ cid: cid.toString(), signal, done: resolve })
      signal.addEventListener('abort', () => reject(signal.reason))
    })
  const roots = await Promise.all([1, 2, 3, 4].map(async (s) => (await fileBlocks(s)).root))
  const a = announcer(provide, { max: 2 })
  a.add(roots[0])
  a.add(roots[0]) // already queued
  a.add(roots[1])
  a.add(roots[2]) // over the bound: not announced
  await new Promise((r) => setTimeout(r, 0))
  assert.deepEqual(calls.map((c) => c.cid), [roots[0].toString()], 'one at a time')
  assert.equal(a.pending, 1)
  a.add(roots[3]) // room again
  a.remove(roots[1]) // unpinned before its turn
  next().done()
  await new Promise((r) => setTimeout(r, 0))
  assert.deepEqual(calls.map((c) => c.cid), [roots[0], roots[3]].map(String))
  a.stop()
  assert.ok(next().signal.aborted, 'stop aborts the running announcement')
  await a.idle()
  a.add(roots[1])
  assert.equal(a.pending, 0, 'stopped: nothing is queued')
  assert.equal(calls.length, 2)
})
