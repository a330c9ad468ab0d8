/**
 * "Any IPFS node the user connects": a real Kubo (loopback-only, test/support/kubo.ts) and the
 * embedded node exchange blocks over TCP + Noise + Yamux with bitswap 1.2.0, whichever side
 * dials: the embedded node pins what only Kubo has, and Kubo pins what only the embedded node has.
 */
import assert from 'node:assert/strict'
import { startKubo } from '../../support/kubo.ts'
import { embeddedConnector } from '../../../src/ipfsconn/embedded/connector.ts'
import { type EmbeddedConfig, embeddedSection } from '../../../src/ipfsconn/embedded/config.ts'
import { openNode } from '../../../src/ipfsconn/embedded/node.ts'
import { newPin } from '../../../src/types/pin.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { unixfsFile } from './blocks.ts'
import { CID } from 'multiformats/cid'

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']

function cfg(over: Partial<EmbeddedConfig> = {}): EmbeddedConfig {
  return { ...embeddedSection.defaults(), listen_multiaddress: LOOPBACK, ...over }
}

/** Random bytes: no block of them is anywhere else already. */
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  // getRandomValues fills at most 64 KiB per call.
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, i + 65_536))
  return out
}

/** Kubo RPC call; throws with Kubo's message on an error answer. */
async function kuboRpc(apiUrl: string, cmd: string, args: Record<string, string>) {
  const r = await fetch(`${apiUrl}/api/v0/${cmd}?${new URLSearchParams(args)}`, { method: 'POST' })
  const text = await r.text()
  if (!r.ok) throw new Error(`kubo ${cmd}: ${r.status} ${text}`)
  return text
}

Deno.test('embedded ⇄ Kubo: the embedded node dials Kubo; each pins what only the other has', async () => {
  const kubo = await startKubo()
  const dir = await Deno.makeTempDir({ prefix: 'embedded-kubo-' })
  const ipfs = embeddedConnector(cfg({ pin_timeout: 20_000 }), { configDir: dir })
  try {
    await ipfs.connectSwarms(kubo.swarmAddrs)
    assert.deepEqual(await ipfs.swarmPeers(), [kubo.peerId])

    // Kubo has it (added, not pinned, not announced anywhere); the embedded node fetches it.
    const fromKubo = await kubo.add(randomBytes(1024 * 1024), { cidVersion: 1 })
    let blocks = 0
    await ipfs.pin(newPin(fromKubo), { onProgress: (n) => blocks = n })
    assert.equal(blocks, 5, 'Kubo cuts 1 MiB into 4 leaves of 256 KiB + the root')
    assert.equal(await ipfs.pinLsCid(newPin(fromKubo)), 'recursive')

    // The embedded node has it; Kubo fetches it over the same connection.
    const bytes = randomBytes(700 * 1024)
    const file = await unixfsFile(bytes, 256 * 1024)
    await ipfs.blockStream(file.stream())
    const pinned = JSON.parse(
      await kuboRpc(kubo.apiUrl, 'pin/add', { arg: file.root.toString(), timeout: '30s' }),
    )
    assert.deepEqual(pinned.Pins, [file.root.toString()])
    const cat = await fetch(`${kubo.apiUrl}/api/v0/cat?arg=${file.root}&offline=true`, {
      method: 'POST',
    })
    assert.deepEqual(new Uint8Array(await cat.arrayBuffer()), bytes)

    // What Kubo sees of the embedded node: its peer ID, its bitswap 1.2.0, its real address.
    const id = await ipfs.id()
    const peers = JSON.parse(
      await kuboRpc(kubo.apiUrl, 'swarm/peers', { verbose: 'true', identify: 'true' }),
    ).Peers as { Peer: string; Identify: { Protocols: string[]; Addresses: string[] } }[]
    const me = peers.find((p) => p.Peer === id.id)
    assert.ok(me, JSON.stringify(peers))
    assert.ok(me.Identify.Protocols.includes('/ipfs/bitswap/1.2.0'))
    assert.deepEqual(me.Identify.Addresses, id.addresses)
  } finally {
    await ipfs.stop()
    await kubo.stop()
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('embedded ⇄ Kubo: Kubo dials the embedded node (swarm/connect) and fetches from it; Noise + Yamux', async () => {
  const kubo = await startKubo()
  const dir = await Deno.makeTempDir({ prefix: 'embedded-kubo-' })
  const node = await openNode({
    dir,
    network: { listen: LOOPBACK, announce: [], publicNetwork: false },
  })
  try {
    const addr = node.libp2p!.getMultiaddrs()[0].toString()
    const connect = JSON.parse(await kuboRpc(kubo.apiUrl, 'swarm/connect', { arg: addr }))
    assert.match(connect.Strings[0], /success$/)

    const bytes = randomBytes(300 * 1024)
    const file = await unixfsFile(bytes, 256 * 1024)
    for (const b of file.blocks) {
      await node.helia.blockstore.put(CID.parse(b.cid), b.bytes)
    }
    const got = await fetch(`${kubo.apiUrl}/api/v0/cat?arg=${file.root}&timeout=30s`, {
      method: 'POST',
    })
    assert.equal(got.status, 200)
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes)

    const conns = node.libp2p!.getConnections(peerIdFromString(kubo.peerId))
    assert.equal(conns.length, 1)
    assert.equal(conns[0].direction, 'inbound')
    assert.equal(conns[0].encryption, '/noise')
    assert.equal(conns[0].multiplexer, '/yamux/1.0.0')
  } finally {
    await node.stop()
    await kubo.stop()
    await Deno.remove(dir, { recursive: true })
  }
})
