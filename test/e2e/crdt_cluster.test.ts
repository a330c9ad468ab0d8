/**
 * CRDT consensus end to end: four of our peers as processes (`consensus.crdt`, as `init
 * --consensus crdt` writes it), each beside a real Kubo, reaching each other through their
 * peerstores. Peers 0–2 trust each other only; peer 3 trusts everyone and is trusted by nobody.
 *
 * - a pin made on any trusted peer reaches every peer's pinset (`ctl pin ls`) and every Kubo;
 * - a peer killed while others pin and unpin catches up after its restart;
 * - a pin and an unpin of one CID made at once on two peers end in one state on every peer;
 * - what the untrusted peer pins is never applied by the others (their gossipsub validator
 *   rejects its broadcasts), while it applies theirs.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  content,
  ctl,
  kuboCluster,
  kuboPins,
  kuboSwarmPeers,
  quickTimings,
  waitAllReady,
} from './cluster_support.ts'
import { waitFor } from '../support/wait.ts'
import type { ClusterPeer, TestCluster } from '../support/cluster.ts'

/** The pinset `ctl pin ls` shows on a peer: CID → name. */
async function pinLs(peer: ClusterPeer): Promise<Map<string, string>> {
  const r = await ctl(peer, ['--enc', 'json', 'pin', 'ls'])
  assert.equal(r.code, 0, r.stderr)
  // One indented JSON object per pin, one after the other.
  const text = r.stdout.trim()
  const pins = text ? JSON.parse(`[${text.replace(/^}\s*\n{/gm, '},{')}]`) : []
  return new Map(pins.map((p: { cid: string; name: string }) => [p.cid, p.name]))
}

const show = (m: Map<string, string>) => JSON.stringify([...m].sort())

async function waitPinset(
  peers: ClusterPeer[],
  want: (m: Map<string, string>) => boolean,
  what: string,
) {
  for (const p of peers) {
    await waitFor(async () => want(await pinLs(p)), {
      what: `${p.name}: ${what}`,
      timeoutMs: 90_000,
    })
  }
}

Deno.test({
  name: 'crdt: pins converge on every peer and Kubo, a restarted peer catches up, trust holds',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { cluster, kubos } = await kuboCluster(4, {
      consensus: 'crdt',
      clusterName: 'e2e-crdt',
      logLevel: 'info,consensus:debug',
      edit: (cfg) => {
        quickTimings(cfg)
        cfg.consensus.crdt.rebroadcast_interval = '1s'
      },
    })
    let passed = false
    try {
      const [p0, p1, p2, p3] = cluster.peers
      for (const p of [p0, p1, p2]) {
        await cluster.editConfig(p, (cfg) => {
          cfg.consensus.crdt.trusted_peers = [p0.id, p1.id, p2.id]
        })
      }
      cluster.startAll()
      await waitAllReady(cluster)
      // The Kubos meet directly, as over the DHT in a deployment: the cluster's one ConnectSwarms
      // runs at start, when a CRDT peer's peerset is still only itself.
      for (const k of kubos) {
        for (const other of kubos) {
          if (other === k) continue
          const addr = encodeURIComponent(other.swarmAddrs[0])
          const r = await fetch(`${k.apiUrl}/api/v0/swarm/connect?arg=${addr}`, { method: 'POST' })
          assert.equal(r.status, 200, await r.text())
        }
      }
      const trusted = [p0, p1, p2]
      const everyone = [...trusted, p3]

      // A pin from each trusted peer reaches every pinset and every Kubo.
      const cids: string[] = []
      for (const [i, p] of trusted.entries()) {
        const cid = await content(kubos[i], `from ${p.name}`)
        cids.push(cid)
        const r = await ctl(p, ['pin', 'add', '--name', `n${i}`, cid])
        assert.equal(r.code, 0, r.stderr)
      }
      await waitPinset(everyone, (m) => cids.every((c) => m.has(c)), 'the three pins')
      for (const [i, k] of kubos.entries()) {
        await waitFor(async () => {
          const pins = await kuboPins(k)
          return cids.every((c) => pins.has(c))
        }, { what: `Kubo ${i} pins the three`, timeoutMs: 90_000 }).catch(async (err) => {
          // What the peer's tracker says of the missing ones, and whom its Kubo is connected to.
          const pins = await kuboPins(k)
          for (const c of cids.filter((c) => !pins.has(c))) {
            console.error((await ctl(cluster.peers[i], ['status', '--local', c])).stdout)
          }
          console.error('swarm', [...await kuboSwarmPeers(k)], 'kubos', kubos.map((x) => x.peerId))
          throw err
        })
      }

      // The untrusted peer pins: it has it, nobody else ever applies it.
      const untrusted = await content(kubos[3], 'untrusted')
      assert.equal((await ctl(p3, ['pin', 'add', untrusted])).code, 0)
      assert.ok((await pinLs(p3)).has(untrusted))

      // Peer 2 goes away while the others pin and unpin.
      await cluster.kill9(p2)
      const later = await content(kubos[0], 'while p2 was down')
      assert.equal((await ctl(p0, ['pin', 'add', '--name', 'later', later])).code, 0)
      assert.equal((await ctl(p1, ['pin', 'rm', cids[0]])).code, 0)
      const after = (m: Map<string, string>) =>
        m.has(later) && !m.has(cids[0]) && m.has(cids[1]) && m.has(cids[2])
      await waitPinset([p0, p1, p3], after, 'the pins made while p2 was down')
      // By now the untrusted pin had every chance to spread (rebroadcasts every second).
      for (const p of [p0, p1]) assert.equal((await pinLs(p)).has(untrusted), false, p.name)

      cluster.start(p2)
      await cluster.waitReady(p2, 90_000)
      await waitPinset([p2], after, 'caught up after its restart')
      assert.equal((await pinLs(p2)).has(untrusted), false, 'p2 never applies the untrusted pin')
      await waitFor(async () => {
        const pins = await kuboPins(kubos[2])
        return pins.has(later) && !pins.has(cids[0])
      }, { what: 'Kubo 2 follows the catch-up', timeoutMs: 90_000 })

      // A pin and an unpin of one CID at once on two peers: one outcome, the same everywhere.
      const contested = cids[1]
      const [a, b] = await Promise.all([
        ctl(p0, ['pin', 'rm', contested]),
        ctl(p1, ['pin', 'add', '--name', 'contested', contested]),
      ])
      assert.equal(a.code, 0, a.stderr)
      assert.equal(b.code, 0, b.stderr)
      await waitConverged(cluster, trusted)
      const final = await pinLs(p0)
      // p3 trusts everyone: it holds what the trusted peers hold, plus its own pin.
      await waitFor(async () => {
        const m = await pinLs(p3)
        m.delete(untrusted)
        return show(m) === show(final)
      }, { what: 'p3 to hold the trusted pinset', timeoutMs: 90_000 })
      // What Kubo 0 pins follows the outcome.
      await waitFor(
        async () => (await kuboPins(kubos[0])).has(contested) === final.has(contested),
        {
          what: 'Kubo 0 to follow the contested outcome',
          timeoutMs: 90_000,
        },
      )
      assert.ok(
        await Deno.stat(join(p0.dir, 'crdt', 'state.kv')).then(() => true),
        'the CRDT database is <config>/crdt/state.kv',
      )
      passed = true
    } finally {
      // A failure keeps the peers' logs for a look.
      if (!passed) console.error(`crdt e2e failed: logs kept in ${cluster.workDir}/logs`)
      await cluster.close({ keep: !passed })
    }
  },
})

/** Waits until `peers` list the same pinset (CIDs and names) twice in a row. */
async function waitConverged(cluster: TestCluster, peers: ClusterPeer[]): Promise<void> {
  let previous = ''
  await waitFor(async () => {
    const sets = await Promise.all(peers.map(pinLs))
    const first = show(sets[0])
    const same = sets.every((s) => show(s) === first)
    const stable = same && first === previous
    previous = same ? first : ''
    return stable
  }, { what: `${cluster.peers.length} peers to agree`, timeoutMs: 90_000 })
}
