/**
 * Two real peer processes (`cli/main.ts service daemon` with the service task's permissions,
 * embedded IPFS, everything on 127.0.0.1): B's embedded node peers with A's (the `peering` key),
 * each peer pins what was added only to the other, and both stop and exit cleanly. A third peer
 * configured on A's busy swarm port fails to start with one line naming the key.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { initPeerConfig, runMain, startPeerProcess } from '../../support/peer.ts'

/** The embedded node's addresses as the peer's REST API reports them (`GET /id`). */
async function ipfsAddresses(restUrl: string): Promise<string[]> {
  const r = await fetch(`${restUrl}/id`)
  const id = await r.json()
  return id.ipfs.addresses
}

Deno.test("two peers on 127.0.0.1: their embedded nodes fetch each other's blocks", async () => {
  const dir = await Deno.makeTempDir({ prefix: 'embedded-peers-' })
  const a = await startPeerProcess({ ipfs: 'embedded' })
  try {
    const addrsA = await ipfsAddresses(a.restUrl)
    assert.ok(
      addrsA.length > 0 && addrsA.every((x) => x.startsWith('/ip4/127.0.0.1/tcp/')),
      String(addrsA),
    )
    const b = await startPeerProcess({
      ipfs: 'embedded',
      edit: (cfg) => cfg.ipfs_connector.embedded.peering = addrsA,
    })
    try {
      // Added to A only; B pins it, its node fetching every block from A's.
      await Deno.writeTextFile(
        join(dir, 'a.txt'),
        `only on A ${crypto.randomUUID()}\n`.repeat(9000),
      )
      const addA = await a.ctl(['add', '-Q', join(dir, 'a.txt')])
      assert.equal(addA.code, 0, addA.stderr)
      const cidA = addA.stdout.trim()
      const pinB = await b.ctl(['pin', 'add', '--wait', '--wt', '60s', cidA])
      assert.equal(pinB.code, 0, pinB.stderr + b.logs())
      assert.match(pinB.stdout, /PINNED/)

      // Added to B only; A pins it over the connection B's peering list opened.
      await Deno.writeTextFile(
        join(dir, 'b.txt'),
        `only on B ${crypto.randomUUID()}\n`.repeat(9000),
      )
      const addB = await b.ctl(['add', '-Q', join(dir, 'b.txt')])
      assert.equal(addB.code, 0, addB.stderr)
      const cidB = addB.stdout.trim()
      const pinA = await a.ctl(['pin', 'add', '--wait', '--wt', '60s', cidB])
      assert.equal(pinA.code, 0, pinA.stderr + a.logs())
      assert.match(pinA.stdout, /PINNED/)
    } finally {
      assert.equal(await b.stop(), 0, b.logs())
    }
  } finally {
    assert.equal(await a.stop(), 0, a.logs())
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('a peer whose embedded swarm port is taken exits 1 with one line naming the key', async () => {
  const a = await startPeerProcess({ ipfs: 'embedded' })
  let dir = ''
  try {
    const busy = (await ipfsAddresses(a.restUrl))[0].replace(/\/p2p\/.*$/, '')
    dir = await initPeerConfig({
      ipfs: 'embedded',
      edit: (cfg) => cfg.ipfs_connector.embedded.listen_multiaddress = [busy],
    })
    const r = await runMain(['service', '--config', dir, 'daemon'])
    assert.equal(r.code, 1, r.stderr)
    const errors = r.stderr.split('\n').filter((l) => /error|Error/.test(l))
    assert.deepEqual(errors, [
      `error running: ipfs_connector.embedded.listen_multiaddress: cannot listen on ${busy}: ` +
      'the address is already in use; stop the program holding that port (another cluster ' +
      'peer or IPFS node?) or choose a free port in service.json',
    ])
    assert.ok(!/\bat |faultTolerance/.test(r.stderr), r.stderr)
  } finally {
    assert.equal(await a.stop(), 0, a.logs())
    if (dir) await Deno.remove(dir, { recursive: true })
  }
})
