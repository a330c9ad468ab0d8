/**
 * Traffic by protocol on real hosts (127.0.0.1, a cluster secret): bytes a protocol's streams
 * send and receive are counted on both sides, by protocol; rates are bytes a second over the last
 * samples, on the injected clock; protocols' own traffic (identify) is unharmed by the counting.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { startHost } from '../../src/net/host.ts'
import { manualClock } from '../support/manual_clock.ts'
import { waitFor } from '../support/wait.ts'

const PROTO = '/test/bandwidth/1.0.0'

Deno.test('bandwidth: bytes by protocol on both sides; rates over the last seconds', async () => {
  const clock = manualClock()
  const start = async () =>
    startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      secret: 'c'.repeat(64),
      clock,
    })
  const a = await start()
  const b = await start()
  try {
    let got = 0
    await b.libp2p.handle(PROTO, (stream) => {
      stream.addEventListener('message', (e) => {
        got += e.data.byteLength
      })
    })
    await a.connect(b.addresses()[0])
    // identify ran both ways, counted on both hosts, and still worked.
    await waitFor(() => (a.bandwidth()['/ipfs/id/1.0.0']?.total_in ?? 0) > 0, { what: 'identify' })
    assert.ok(b.bandwidth()['/ipfs/id/1.0.0'].total_out > 0)
    assert.deepEqual(
      await a.libp2p.peerStore.get(b.libp2p.peerId).then((p) => p.protocols.includes(PROTO)),
      true,
    )

    const stream = await a.libp2p.dialProtocol(peerIdFromString(b.peerId), PROTO)
    stream.send(new Uint8Array(3000))
    await waitFor(() => got === 3000, { what: 'the first 3000 bytes' })
    await clock.advance(1000) // a sample: 3000 out so far
    stream.send(new Uint8Array(5000))
    await waitFor(() => got === 8000, { what: 'the next 5000 bytes' })
    const out = a.bandwidth()[PROTO]
    assert.equal(out.total_out, 8000)
    assert.equal(out.total_in, 0)
    assert.equal(out.rate_out, 5000)
    const inb = b.bandwidth()[PROTO]
    assert.equal(inb.total_in, 8000)
    assert.equal(inb.total_out, 0)
    await stream.close()
  } finally {
    await a.stop({ save: false })
    await b.stop({ save: false })
  }
})
