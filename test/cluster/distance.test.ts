/**
 * The closest-peer rule: for any CID exactly one member of a peerset says "mine" (so one peer
 * re-pins or unpins it), whatever the order of the list and whether a peer lists itself; without
 * the closest peer, the next closest takes over.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { closestChecker } from '../../src/cluster/distance.ts'

const PEERS = [
  '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N',
  '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U',
  '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K',
  '12D3KooWQm2JRqKuYBoFEg8MgFfVeXjQkwmhpsRDPGzfsk8yvhm8',
  'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
]

async function cids(n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const mh = await sha256.digest(new TextEncoder().encode(`distance ${i}`))
    out.push(i % 2 ? CID.createV0(mh).toString() : CID.createV1(0x70, mh).toString())
  }
  return out
}

Deno.test('closest: exactly one member claims each CID, in any list order, self listed or not', async () => {
  const all = await cids(300)
  const claims = new Map<string, number>()
  for (const self of PEERS) {
    const withSelf = closestChecker(self, [...PEERS].reverse())
    const without = closestChecker(self, PEERS.filter((p) => p !== self))
    for (const c of all) {
      assert.equal(withSelf(c), without(c))
      if (withSelf(c)) claims.set(c, (claims.get(c) ?? 0) + 1)
    }
  }
  for (const c of all) assert.equal(claims.get(c), 1, c)
  // Spread: every peer is closest to some of them.
  for (const self of PEERS) {
    const mine = all.filter(closestChecker(self, PEERS)).length
    assert.ok(mine > 20, `${self}: ${mine} of 300`)
  }
})

Deno.test('closest: with the closest peer excluded (dead), the next closest takes its CIDs', async () => {
  const all = await cids(200)
  const [dead, ...live] = PEERS
  const deadOnes = all.filter(closestChecker(dead, PEERS))
  assert.ok(deadOnes.length > 0)
  for (const c of deadOnes) {
    const claimers = live.filter((p) => closestChecker(p, live)(c))
    assert.equal(claimers.length, 1, c)
  }
  // What a live peer held before it still holds.
  for (const p of live) {
    const before = all.filter(closestChecker(p, PEERS))
    const after = new Set(all.filter(closestChecker(p, live)))
    for (const c of before) assert.ok(after.has(c))
  }
})

Deno.test('closest: alone, a peer claims everything', async () => {
  for (const c of await cids(10)) assert.equal(closestChecker(PEERS[0], [])(c), true)
})
