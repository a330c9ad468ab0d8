/**
 * The multi-peer harness against the real IPFS Cluster 1.1.6 in Raft mode (the reference our
 * peers must behave like): founders form one cluster, leader() names the peer that leads, a
 * kill -9 of it elects another, a joiner by --bootstrap becomes a member, SIGSTOP/SIGCONT, and
 * every process is gone after close(). The Go peers run in the harness's own loopback-only
 * namespace and are reached through it.
 */
import assert from 'node:assert/strict'
import { TestCluster } from './cluster.ts'

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, 'SIGCONT') // signal 0 is not offered; SIGCONT is harmless to a running process
    return true
  } catch {
    return false
  }
}

Deno.test({
  name: 'cluster harness: Go 1.1.6 founders form one cluster, fail over on kill -9, take a joiner',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await TestCluster.create({ impl: 'go', peers: 3 })
    const pids: number[] = []
    try {
      cluster.startAll()
      for (const p of cluster.peers) await cluster.waitReady(p, 60_000)
      await cluster.waitFormed(30_000)
      const leader = await cluster.waitLeader(30_000)
      pids.push(...cluster.peers.map((p) => p.proc!.pid))

      const follower = cluster.peers.find((p) => p !== leader)!
      const pin = await cluster.request(follower, 'POST', `/pins/${CID}`)
      assert.equal(pin.status, 200, pin.body)

      // SIGSTOP of a follower: the others keep taking writes; SIGCONT brings it back.
      const other = cluster.peers.find((p) => p !== leader && p !== follower)!
      cluster.sigstop(other)
      assert.equal((await cluster.request(leader, 'GET', `/allocations/${CID}`)).status, 200)
      cluster.sigcont(other)

      await cluster.kill9(leader)
      assert.ok(!leader.proc!.running())
      const next = await cluster.waitLeader(30_000, leader)
      assert.notEqual(next, leader)

      const joiner = await cluster.join(next)
      await cluster.waitReady(joiner, 60_000)
      pids.push(joiner.proc!.pid)
      const peers = await cluster.request(next, 'GET', '/peers')
      assert.ok(peers.body.includes(joiner.id), peers.body)
      const got = await cluster.request(joiner, 'GET', `/allocations/${CID}`)
      assert.equal(got.status, 200, 'the joiner has the pinset')
    } finally {
      await cluster.close()
    }
    for (const pid of pids) assert.ok(!alive(pid), `process ${pid} still running after close()`)
  },
})

Deno.test('cluster harness: a cluster that cannot form says why instead of waiting', async () => {
  // One founder of three: no quorum, so no leader; the Go peer waits for one and gives up.
  const cluster = await TestCluster.create({
    impl: 'go',
    peers: 3,
    edit: (cfg) => {
      cfg.consensus.raft.wait_for_leader_timeout = '3s'
    },
  })
  try {
    cluster.start(0)
    const t0 = Date.now()
    await assert.rejects(() => cluster.waitReady(0, 60_000), /p0 (could not start|exited)/)
    assert.ok(Date.now() - t0 < 50_000, 'failed before its time limit')
  } finally {
    await cluster.close()
  }
})

Deno.test('cluster harness: ours as a one-peer cluster — task flags, config, leader(), REST, stop', async () => {
  const cluster = await TestCluster.create({ impl: 'ours', peers: 1 })
  try {
    const p0 = cluster.start(0)
    await cluster.waitReady(p0, 60_000)
    await cluster.waitFormed(30_000)
    assert.equal(await cluster.waitLeader(30_000), p0)
    const pin = await cluster.request(p0, 'POST', `/pins/${CID}`)
    assert.equal(pin.status, 200, pin.body)
    const got = await cluster.client(p0).allocation(CID)
    assert.equal(got.cid, CID)
    assert.equal(await cluster.stop(p0), 0)
    assert.equal(await cluster.leader(), undefined, 'a stopped peer does not lead')
  } finally {
    await cluster.close()
  }
})
