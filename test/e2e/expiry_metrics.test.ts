/**
 * End to end with Kubo: an expiring pin leaves the pinset (and Kubo) once its time passes, by the
 * state-sync loop; the freespace and numpin informers' metrics are visible through the REST API
 * and `ctl health metrics`.
 */
import { equal, match, ok } from 'node:assert/strict'
import { startKubo } from '../support/kubo.ts'
import { startPeerProcess } from '../support/peer.ts'

Deno.test('e2e with Kubo: expiring pins are removed; freespace and numpin metrics', async (t) => {
  const kubo = await startKubo()
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    edit(cfg) {
      cfg.cluster.state_sync_interval = '1s'
    },
  })
  try {
    const enc = new TextEncoder()
    const keep = await kubo.add(enc.encode(`keep ${crypto.randomUUID()}`))
    const gone = await kubo.add(enc.encode(`expire ${crypto.randomUUID()}`))

    await t.step('a pin with --expire-in leaves the pinset and Kubo after it expires', async () => {
      equal((await peer.ctl(['pin', 'add', '--wait', keep])).code, 0)
      const r = await peer.ctl(['pin', 'add', '--wait', '--expire-in', '2s', gone])
      equal(r.code, 0, r.stderr)
      const ls = await peer.ctl(['pin', 'ls', gone])
      ok(!ls.stdout.includes('Exp: ∞'), ls.stdout)
      const end = Date.now() + 20_000
      let listed = true
      while (Date.now() < end) {
        listed = (await peer.ctl(['pin', 'ls'])).stdout.includes(gone)
        if (!listed) break
        await new Promise((res) => setTimeout(res, 300))
      }
      equal(listed, false, 'the expired pin is still in the pinset')
      const still = (await peer.ctl(['pin', 'ls'])).stdout
      ok(still.includes(keep), still)
      const kls = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?arg=${gone}&type=recursive`, {
        method: 'POST',
      })
      equal(kls.status, 500, 'Kubo still pins the expired CID')
      await kls.body?.cancel()
    })

    await t.step('a consistent read goes through the Raft read barrier', async () => {
      const one = await fetch(`${peer.restUrl}/allocations/${keep}?consistent=true`)
      equal(one.status, 200)
      equal((await one.json()).cid, keep)
      const all = await fetch(`${peer.restUrl}/allocations?consistent=true`)
      equal(all.status, 200)
      ok((await all.text()).includes(keep))
    })

    await t.step('freespace and numpin metrics', async () => {
      const names = await peer.ctl(['health', 'metrics'])
      equal(names.code, 0, names.stderr)
      for (const n of ['freespace', 'numpin', 'ping']) {
        ok(names.stdout.split('\n').includes(n), names.stdout)
      }
      const fs = await peer.ctl(['health', 'metrics', 'freespace'])
      match(fs.stdout, /^\S+ \| freespace: \d+(\.\d+)? [KMGTP]?B \| Expires in: .+ from now\n$/)
      // numpin counts what Kubo pins (recursive and direct): `keep` plus whatever the fresh
      // repository pinned itself (Kubo pins the empty directory at init).
      const kls = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?stream=true`, { method: 'POST' })
      const want = (await kls.text()).trim().split('\n').filter((l) => l.trim()).length
      ok(want >= 1)
      // numpin's TTL is 10 s: the informer loop publishes it again every 5 s.
      const end = Date.now() + 20_000
      let value = ''
      while (Date.now() < end) {
        const res = await fetch(`${peer.restUrl}/monitor/metrics/numpin`)
        const ms = await res.json()
        value = ms[0]?.value ?? ''
        if (value === String(want)) break
        await new Promise((res) => setTimeout(res, 300))
      }
      equal(value, String(want))
    })
  } finally {
    await peer.stop()
    await kubo.stop()
  }
})
