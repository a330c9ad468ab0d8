/**
 * A follower that catches up from a Raft snapshot gets its pins without an apply hook per pin:
 * the install fires `onRestore`, and the stateless tracker walks the new pinset and pins it in
 * its IPFS. Real consensus on KV files (kv_cluster.ts), the real tracker, an IPFS double.
 */
import assert from 'node:assert/strict'
import type { StateReader } from '../../../src/components.ts'
import { statelessSection } from '../../../src/pintracker/config.ts'
import { statelessTracker } from '../../../src/pintracker/stateless.ts'
import { fakeIpfs } from '../../support/fake_ipfs.ts'
import { waitFor } from '../../support/wait.ts'
import type { Pin } from '../../../src/types/pin.ts'
import { KvCluster, testConfig, testPin } from './kv_cluster.ts'

/** A pin for every peer (replication factor -1): each tracker pins it. */
async function everywhere(i: number, tag: string): Promise<Pin> {
  return { ...await testPin(i, tag), replication_factor_min: -1, replication_factor_max: -1 }
}

Deno.test('a follower that installs a snapshot pins the snapshot’s pins in its IPFS', async () => {
  const c = new KvCluster(['a', 'b', 'c'], testConfig({ trailing_logs: 0 }))
  const ipfs = fakeIpfs()
  let state: StateReader | undefined
  const lines: string[] = []
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const fid = [...c.nodes.keys()].find((id) => id !== leader.id)!
    // The follower again, now with a tracker behind its apply hooks (as the daemon wires it).
    await c.stop(fid)
    const tracker = statelessTracker(statelessSection.defaults(), {
      peerId: fid,
      peername: () => fid,
      ipfs,
      state: () => state!,
      clock: c.clock,
      log: (level, msg) => void lines.push(`${level} ${msg}`),
    })
    const f = await c.start(fid, {
      hooks: {
        onPin: (p) => void tracker.track(p).catch(() => {}),
        onUnpin: (p) => void tracker.untrack(p).catch(() => {}),
        onRestore: () => tracker.resync(),
      },
    })
    state = f.state
    await tracker.start()
    try {
      const early = await everywhere(0, 'early')
      await leader.consensus.logPin(early)
      await c.converge()
      await waitFor(() => ipfs.isPinned(early.cid), { what: 'the pin applied from the log' })

      c.net.isolate(fid)
      const pins = await Promise.all(Array.from({ length: 300 }, (_, i) => everywhere(i, 'behind')))
      await Promise.all(pins.map((p) => leader.consensus.logPin(p)))
      await leader.consensus.compactNow()
      c.net.heal()
      await c.converge()

      assert.ok(f.consensus.status().snapshotIndex > 1, 'the follower installed a snapshot')
      assert.deepEqual(f.hooked.filter((h) => h.kind === 'pin').length, 1, 'no hook per pin')
      assert.ok(f.hooked.some((h) => h.kind === 'restore'), 'the install fired onRestore')
      await waitFor(() => pins.every((p) => ipfs.isPinned(p.cid)), {
        what: 'the snapshot’s pins in IPFS',
      })
      assert.ok(ipfs.isPinned(early.cid))
    } finally {
      await tracker.stop()
    }
  } finally {
    await c.close()
  }
})
