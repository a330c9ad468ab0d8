/**
 * The durability promise end to end: our real daemon (Raft in front of the pinset, one voter)
 * ingests pins from concurrent `POST /pins/{cid}` clients, is killed with SIGKILL in the middle,
 * and restarts on the same folder: every pin it acknowledged is in `GET /allocations`.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { startKuboDouble } from '../../support/kubo_double.ts'
import { startPeerProcess } from '../../support/peer.ts'
import { waitFor } from '../../support/wait.ts'

async function cidFor(i: number, salt: string): Promise<string> {
  const mh = await sha256.digest(new TextEncoder().encode(`kill9 ${salt} ${i}`))
  return CID.createV1(0x55, mh).toString()
}

async function allocations(restUrl: string): Promise<Set<string>> {
  const res = await fetch(`${restUrl}/allocations`)
  assert.equal(res.status, 200)
  const out = new Set<string>()
  for (const line of (await res.text()).split('\n')) {
    if (line.trim()) out.add(JSON.parse(line).cid)
  }
  return out
}

Deno.test('kill -9 mid-ingest loses no acknowledged pin', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  let peer = await startPeerProcess({ ipfs: ipfs.multiaddr })
  try {
    const salt = crypto.randomUUID()
    const cids = await Promise.all(Array.from({ length: 20_000 }, (_, i) => cidFor(i, salt)))
    const acked: string[] = []
    let next = 0
    let failures = 0
    const client = async () => {
      while (next < cids.length) {
        const cid = cids[next++]
        try {
          const res = await fetch(`${peer.restUrl}/pins/${cid}`, { method: 'POST' })
          await res.body?.cancel()
          if (res.ok) acked.push(cid)
          else failures++
        } catch {
          // The daemon died under this request: not acknowledged.
          failures++
          return
        }
      }
    }
    const clients = Array.from({ length: 32 }, client)
    // Kill once a good number of pins went through, with requests in flight.
    await waitFor(() => acked.length >= 1500, {
      what: '1500 acknowledged pins',
      timeoutMs: 120_000,
    })
    await peer.kill9()
    await Promise.all(clients)
    assert.ok(acked.length >= 1500)
    assert.ok(failures > 0, 'requests were in flight when the daemon died')

    peer = await startPeerProcess({ ipfs: ipfs.multiaddr, configDir: peer.configDir })
    const pinset = await allocations(peer.restUrl)
    const lost = acked.filter((cid) => !pinset.has(cid))
    assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged pins lost`)
    // And the peer goes on taking pins.
    const more = await cidFor(-1, salt)
    const res = await fetch(`${peer.restUrl}/pins/${more}`, { method: 'POST' })
    await res.body?.cancel()
    assert.equal(res.status, 200)
    assert.ok((await allocations(peer.restUrl)).has(more))
  } finally {
    await peer.stop()
    await ipfs.stop()
    await Deno.remove(peer.configDir, { recursive: true }).catch(() => {})
  }
})
