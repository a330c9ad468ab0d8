/**
 * The multi-peer harness in CRDT mode (`consensus: 'crdt'`), for both implementations: our daemon
 * and the real IPFS Cluster 1.1.6. Founders written from `init --consensus crdt` find each other
 * through their peerstore files and form one peerset; a batch of pins posted to one peer is
 * committed by size (`consensus.crdt.batching` set through `edit`) and reaches every peer's state;
 * a joiner started with `--bootstrap` syncs the pinset; `copyCrdtState` hands a stopped peer another
 * one's imported state (same heads as an import of its own); and a CRDT cluster has no leader.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { benchCid, writePinsFile } from '../../bench/cids.ts'
import { type ClusterImpl, TestCluster } from './cluster.ts'
import { waitFor } from './wait.ts'

const PINS = 300
const BATCH = 150

for (const impl of ['ours', 'go'] as ClusterImpl[]) {
  Deno.test({
    name:
      `cluster harness, CRDT (${impl}): founders form, a batch reaches every peer, a joiner syncs`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cluster = await TestCluster.create({
        impl,
        peers: 3,
        consensus: 'crdt',
        clusterName: 'harness-crdt',
        log: console.error,
        edit: (cfg) => {
          // Batches close by size only within the test's time (the age is far away).
          cfg.consensus.crdt.batching = { max_batch_size: BATCH, max_batch_age: '1h0m0s' }
          cfg.consensus.crdt.rebroadcast_interval = '2s'
          cfg.cluster.monitor_ping_interval = '2s'
        },
      })
      let passed = false
      try {
        for (const p of cluster.peers) {
          const cfg = JSON.parse(await Deno.readTextFile(join(p.dir, 'service.json')))
          assert.equal(cfg.consensus.raft, undefined, 'no Raft section')
          assert.equal(cfg.consensus.crdt.cluster_name, 'harness-crdt')
          assert.deepEqual(cfg.consensus.crdt.trusted_peers, ['*'])
        }
        await assert.rejects(() => cluster.leader(), /no leader/)

        // Same import on p0 as a copy on p1: the same heads (`state crdt info`).
        const file = join(cluster.workDir, 'pins.ndjson')
        await writePinsFile(file, 10_000, 1)
        await cluster.importState(0, file)
        await cluster.copyCrdtState(0, 1)
        const heads = async (i: number) =>
          /Heads: \[(\S+)\]/.exec(await cluster.run(i, ['state', 'crdt', 'info']))?.[1]
        assert.ok(await heads(0), 'p0 has a head after the import')
        assert.equal(await heads(1), await heads(0))

        cluster.startAll()
        for (const p of cluster.peers) await cluster.waitReady(p, 90_000)
        await cluster.waitFormed(90_000)

        for (let i = 0; i < PINS; i++) {
          const r = await cluster.request(0, 'POST', `/pins/${benchCid(i)}`)
          assert.equal(r.status, 200, r.body)
        }
        for (const p of cluster.peers) {
          await waitFor(async () => (await cluster.countAllocations(p)) === PINS + 1, {
            what: `${p.name} holding ${PINS + 1} pins`,
            timeoutMs: 90_000,
          })
        }
        const log = await Deno.readTextFile(cluster.peers[0].proc!.logPath)
        assert.equal(
          // Go's words, in both.
          log.match(new RegExp(`batch commit \\(size\\): ${BATCH} items`, 'g'))?.length,
          PINS / BATCH,
          'two batches, each closed by its size',
        )

        const joiner = await cluster.join(1)
        await cluster.waitReady(joiner, 90_000)
        await waitFor(async () => (await cluster.countAllocations(joiner)) === PINS + 1, {
          what: 'the joiner holding the pinset',
          timeoutMs: 90_000,
        })
        passed = true
      } finally {
        // A failure keeps the peers' folders and logs (the path is printed).
        await cluster.close({ keep: !passed })
      }
    },
  })
}
