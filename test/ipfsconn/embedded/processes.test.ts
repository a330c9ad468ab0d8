/**
 * Two real peer processes (`cli/main.ts service daemon` with the service task's permissions,
 * embedded IPFS, everything on 127.0.0.1): B's embedded node peers with A's (the `peering` key),
 * each peer pins what was added only to the other, and both stop and exit cleanly. A third peer
 * configured on A's busy swarm port fails to start with one line naming the key.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { initPeerConfig, type PeerProcess, runMain, startPeerProcess } from '../../support/peer.ts'

/** The embedded node's addresses as the peer's REST API reports them (`GET /id`). */
async function ipfsAddresses(restUrl: string): Promise<string[]> {
  const r = await fetch(`${restUrl}/id`)
  const id = await r.json()
  return id.ipfs.addresses
}

/** Adds a new ~400 KB file through `from`, then pins its CID through `to` and waits for PINNED. */
async function addThenPin(from: PeerProcess, to: PeerProcess, file: string): Promise<void> {
  await Deno.writeTextFile(file, `${file} ${crypto.randomUUID()}\n`.repeat(9000))
  const add = await from.ctl(['add', '-Q', file])
  assert.equal(add.code, 0, add.stderr)
  const pin = await to.ctl(['pin', 'add', '--wait', '--wt', '60s', add.stdout.trim()])
  assert.equal(pin.code, 0, pin.stderr + to.logs())
  assert.match(pin.stdout, /PINNED/)
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
      await addThenPin(a, b, join(dir, 'a.txt'))
      // Added to B only; A pins it over the connection B's peering list opened.
      await addThenPin(b, a, join(dir, 'b.txt'))
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
      `error running: cannot listen on ${busy} (ipfs_connector.embedded.listen_multiaddress): ` +
      'address already in use; stop the program using it or set another address in service.json',
    ])
    assert.ok(!/\bat |faultTolerance/.test(r.stderr), r.stderr)
  } finally {
    assert.equal(await a.stop(), 0, a.logs())
    if (dir) await Deno.remove(dir, { recursive: true })
  }
})
