/**
 * The stateless tracker against a real Kubo daemon through the Kubo RPC connector: start-up sync,
 * pinning (recursive and direct), dropping pins allocated elsewhere, unpinning, and the status
 * listing that reads Kubo's pin lists.
 */
import assert from 'node:assert/strict'
import { ipfsHttpSection } from '../../src/ipfsconn/ipfshttp/config.ts'
import { ipfsHttpConnector } from '../../src/ipfsconn/ipfshttp/connector.ts'
import { statelessSection } from '../../src/pintracker/config.ts'
import { statelessTracker } from '../../src/pintracker/stateless.ts'
import { newPin, type Pin } from '../../src/types/pin.ts'
import { formatTime } from '../../src/types/time.ts'
import { startKubo } from '../support/kubo.ts'
import { collect, mapState, waitFor } from './helpers.ts'

const SELF = '12D3KooWSelfPeer'
const OTHER = '12D3KooWOtherPeer'

Deno.test('stateless tracker keeps a real Kubo in line with the pinset', async () => {
  const kubo = await startKubo({ offline: true })
  const ipfs = ipfsHttpConnector({
    ...ipfsHttpSection.defaults(),
    node_multiaddress: kubo.apiMultiaddr,
    connect_swarms_delay: 0,
  })
  const state = mapState()
  const tracker = statelessTracker(statelessSection.defaults(), {
    peerId: SELF,
    peername: () => 'peer0',
    ipfs,
    state: () => state,
    ipfsId: () => ({ id: kubo.peerId, addresses: [] }),
  })
  try {
    await ipfs.ready(AbortSignal.timeout(20_000))
    const bytes = (s: string) => new TextEncoder().encode(s)
    const here = (cid: string, extra: Partial<Pin> = {}): Pin => ({
      ...newPin(cid, { replication_factor_min: 1, replication_factor_max: 1 }),
      allocations: [SELF],
      timestamp: formatTime(Date.now()),
      ...extra,
    })
    const missing = here(await kubo.add(bytes('missing from kubo'), { pin: false }))
    const present = here(await kubo.add(bytes('already pinned'), { pin: true }))
    const elsewhere = here(await kubo.add(bytes('allocated elsewhere'), { pin: true }), {
      allocations: [OTHER],
    })
    for (const p of [missing, present, elsewhere]) state.put(p)

    // Start-up sync pins what the state has and Kubo lacks.
    assert.equal((await tracker.status(missing.cid)).status, 'unexpectedly_unpinned')
    await tracker.start()
    await waitFor(async () => (await ipfs.pinLsCid(missing)) === 'recursive')

    // A pin allocated to another peer is dropped from this Kubo.
    await tracker.track(elsewhere)
    assert.equal(await ipfs.pinLsCid(elsewhere), 'unpinned')

    // A direct pin, tracked like the consensus apply hook would.
    const directCid = await kubo.add(bytes('direct pin'), { pin: false })
    const direct = { ...here(directCid), ...newPin(directCid, { mode: 'direct' }) }
    direct.allocations = [SELF]
    state.put(direct)
    await tracker.track(direct)
    await waitFor(async () => (await tracker.status(direct.cid)).status === 'pinned')
    assert.equal(await ipfs.pinLsCid(direct), 'direct')

    const statuses = new Map((await collect(tracker.statusAll(0))).map((p) => [p.cid, p.status]))
    assert.deepEqual(
      Object.fromEntries(statuses),
      {
        [missing.cid]: 'pinned',
        [present.cid]: 'pinned',
        [elsewhere.cid]: 'remote',
        [direct.cid]: 'pinned',
      },
    )
    const info = await tracker.status(present.cid)
    assert.equal(info.ipfs_peer_id, kubo.peerId)

    // Unpin: the item leaves the state and Kubo.
    state.delete(missing.cid)
    await tracker.untrack(missing)
    await waitFor(async () => (await ipfs.pinLsCid(missing)) === 'unpinned')
    await waitFor(() => tracker.operationCount() === 0)
    assert.equal((await tracker.status(missing.cid)).status, 'unpinned')
  } finally {
    await tracker.stop()
    await ipfs.stop()
    await kubo.stop()
  }
})
