/**
 * End to end, as users run it: a real Kubo daemon, our `service daemon` as a process beside it,
 * and our `ctl` processes driving it. Pins must really land in (and leave) Kubo, survive restarts
 * (graceful and kill -9), and move through state export / cleanup / import.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { startKubo } from '../support/kubo.ts'
import { runMain, startPeerProcess } from '../support/peer.ts'

/** What Kubo itself says it pins (recursive + direct), as CID strings. */
async function kuboPins(apiUrl: string): Promise<Map<string, string>> {
  const res = await fetch(`${apiUrl}/api/v0/pin/ls?type=all&stream=true`, { method: 'POST' })
  const out = new Map<string, string>()
  for (const line of (await res.text()).split('\n')) {
    if (!line.trim()) continue
    const o = JSON.parse(line)
    if (o.Type !== 'indirect') out.set(o.Cid, o.Type)
  }
  return out
}

/**
 * The expiry index of a stopped peer's state database: the peer (with its task's permissions)
 * makes Deno KV's index partial (src/state/kv_file.ts).
 */
function expiryIndex(configDir: string): string {
  const db = new DatabaseSync(join(configDir, 'raft', 'state.kv'), { readOnly: true })
  try {
    const row = db.prepare(
      `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'kv_expiration_ms_idx'`,
    ).get() as { sql: string }
    return row.sql
  } finally {
    db.close()
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 150))
  }
  throw new Error(`timed out waiting for ${what}`)
}

Deno.test('e2e with Kubo: pin, status, update, recover, unpin, restarts and state commands', async (t) => {
  const kubo = await startKubo()
  let peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr })
  const enc = new TextEncoder()
  try {
    const a = await kubo.add(enc.encode(`e2e content A ${crypto.randomUUID()}`))
    const b = await kubo.add(enc.encode(`e2e content B ${crypto.randomUUID()}`))
    const c = await kubo.add(enc.encode(`e2e content C ${crypto.randomUUID()}`))

    await t.step('id shows the peer and its Kubo', async () => {
      const r = await peer.ctl(['id'])
      equal(r.code, 0, r.stderr)
      match(r.stdout, /^12D3Koo\S+ \| \S+ \| Sees 0 other peers\n/)
      ok(r.stdout.includes(`  > IPFS: ${kubo.peerId}`), r.stdout)
    })

    await t.step('pin add --wait pins in Kubo', async () => {
      const r = await peer.ctl(['pin', 'add', '--wait', '--name', 'first', a])
      equal(r.code, 0, r.stderr)
      match(r.stdout, new RegExp(`^${a} \\| first:\\n    > \\S+\\s+: PINNED \\|`))
      equal((await kuboPins(kubo.apiUrl)).get(a), 'recursive')
    })

    await t.step('direct mode pins directly; metadata shows in pin ls', async () => {
      const r = await peer.ctl([
        'pin',
        'add',
        '--wait',
        '--mode',
        'direct',
        '--metadata',
        'kind=text',
        b,
      ])
      equal(r.code, 0, r.stderr)
      equal((await kuboPins(kubo.apiUrl)).get(b), 'direct')
      const ls = await peer.ctl(['pin', 'ls', b])
      equal(ls.code, 0, ls.stderr)
      ok(ls.stdout.includes('PIN-DIRECT'), ls.stdout)
      ok(ls.stdout.includes('Metadata: yes'), ls.stdout)
      const js = await peer.ctl(['--enc=json', 'pin', 'ls', b])
      const pin = JSON.parse(js.stdout)
      equal(pin.mode, 'direct')
      deepEqual(pin.metadata, { kind: 'text' })
    })

    await t.step('pin update keeps the old pin and pins the new one', async () => {
      const r = await peer.ctl(['pin', 'update', '--wait', a, c])
      equal(r.code, 0, r.stderr)
      const pins = await kuboPins(kubo.apiUrl)
      equal(pins.get(a), 'recursive')
      equal(pins.get(c), 'recursive')
      const js = JSON.parse((await peer.ctl(['--enc=json', 'pin', 'ls', c])).stdout)
      equal(js.pin_update, a)
      equal(js.name, 'first')
    })

    await t.step('a pin lost behind our back is reported and recovered', async () => {
      const rm = await fetch(`${kubo.apiUrl}/api/v0/pin/rm?arg=${a}`, { method: 'POST' })
      equal(rm.status, 200)
      await rm.body?.cancel()
      const st = await peer.ctl(['status', a])
      ok(st.stdout.includes('UNEXPECTEDLY_UNPINNED'), st.stdout)
      const rec = await peer.ctl(['recover', a])
      equal(rec.code, 0, rec.stderr)
      await waitFor('recovered pin', async () => (await kuboPins(kubo.apiUrl)).has(a))
      const st2 = await peer.ctl(['status', a])
      ok(st2.stdout.includes('PINNED'), st2.stdout)
    })

    await t.step('status lists every pin as pinned', async () => {
      const r = await peer.ctl(['--enc=json', 'status'])
      equal(r.code, 0, r.stderr)
      const items = r.stdout.trim().split(/\n(?=\{)/).map((s) => JSON.parse(s))
      deepEqual(items.map((g) => g.cid).sort(), [a, b, c].sort())
      for (const g of items) {
        for (const p of Object.values(g.peer_map) as { status: string }[]) {
          equal(p.status, 'pinned')
        }
      }
    })

    await t.step('pin rm --wait unpins in Kubo', async () => {
      const r = await peer.ctl(['pin', 'rm', '--wait', c])
      equal(r.code, 0, r.stderr)
      ok(r.stdout.includes('UNPINNED'), r.stdout)
      equal((await kuboPins(kubo.apiUrl)).has(c), false)
    })

    await t.step('a graceful restart keeps the pinset', async () => {
      equal(await peer.stop(), 0)
      match(expiryIndex(peer.configDir), /WHERE expiration_ms >= 0$/)
      peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: peer.configDir })
      const ls = await peer.ctl(['pin', 'ls'])
      equal(ls.code, 0, ls.stderr)
      ok(ls.stdout.includes(a) && ls.stdout.includes(b) && !ls.stdout.includes(c), ls.stdout)
    })

    await t.step('a clean restart against the same Kubo pinset walks nothing', async () => {
      await waitFor(
        'the start-up sync',
        () => Promise.resolve(peer.logs().includes('start-up sync:')),
      )
      equal(await peer.stop(), 0)
      peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: peer.configDir })
      await waitFor(
        'the start-up sync',
        () => Promise.resolve(peer.logs().includes('start-up sync:')),
      )
      ok(peer.logs().includes('same pins as at the last clean stop'), peer.logs())
      // A pin removed in Kubo while the peer is stopped: the next start walks and pins it again.
      equal(await peer.stop(), 0)
      const rm = await fetch(`${kubo.apiUrl}/api/v0/pin/rm?arg=${a}`, { method: 'POST' })
      equal(rm.status, 200, await rm.text())
      peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: peer.configDir })
      await waitFor('the pin to be back', async () => (await kuboPins(kubo.apiUrl)).has(a))
      ok(!peer.logs().includes('same pins as at the last clean stop'), peer.logs())
    })

    await t.step(
      'kill -9 loses no acknowledged pin, and the peer restarts with the task permissions',
      async () => {
        const d = await kubo.add(enc.encode(`e2e content D ${crypto.randomUUID()}`))
        const r = await peer.ctl(['pin', 'add', '--no-status', d])
        equal(r.code, 0, r.stderr)
        await peer.kill9()
        peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: peer.configDir })
        const ls = await peer.ctl(['pin', 'ls', d])
        equal(ls.code, 0, ls.stderr + ls.stdout)
        await waitFor('pin after restart', async () => (await kuboPins(kubo.apiUrl)).has(d))
      },
    )

    await t.step('state export, cleanup and import (offline)', async () => {
      equal(await peer.stop(), 0)
      const dir = peer.configDir
      const file = join(dir, 'export.json')
      const ex = await runMain(['service', '--config', dir, 'state', 'export', '-f', file])
      equal(ex.code, 0, ex.stderr)
      const lines = (await Deno.readTextFile(file)).trim().split('\n').map((l) => JSON.parse(l))
      equal(lines.length, 3)
      ok(lines.some((p) => p.cid === a))
      const clean = await runMain(['service', '--config', dir, 'state', 'cleanup', '-f'])
      equal(clean.code, 0, clean.stderr)
      peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: dir })
      equal((await peer.ctl(['pin', 'ls'])).stdout, '')
      equal(await peer.stop(), 0)
      const bad = await runMain(['service', '--config', dir, 'state', 'import', '-f'], {
        stdin: 'this is not json\n',
      })
      equal(bad.code, 1)
      ok(bad.stderr.startsWith('error importing state'), bad.stderr)
      const imp = await runMain(['service', '--config', dir, 'state', 'import', '-f', file])
      equal(imp.code, 0, imp.stderr)
      match(expiryIndex(dir), /WHERE expiration_ms >= 0$/, 'the imported database too')
      peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: dir })
      const st = await peer.ctl(['--enc=json', 'status', a])
      equal(st.code, 0, st.stderr)
      await waitFor('imported pin pinned', async () => {
        const s = JSON.parse((await peer.ctl(['--enc=json', 'status', a])).stdout)
        return Object.values(s.peer_map).every((p) => (p as { status: string }).status === 'pinned')
      })
    })

    await t.step('a second daemon on the same folder is refused', async () => {
      const r = await runMain(['service', '--config', peer.configDir, 'daemon'], {
        timeoutMs: 30_000,
      })
      equal(r.code, 1)
      ok(r.stderr.includes('cluster.lock'), r.stderr)
    })
  } finally {
    await peer.stop()
    await kubo.stop()
  }
})

Deno.test('e2e: bad input gets a clear error and loses nothing', async (t) => {
  const kubo = await startKubo()
  const peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr })
  try {
    const cid = await kubo.add(new TextEncoder().encode(`bad input ${crypto.randomUUID()}`))
    equal((await peer.ctl(['pin', 'add', '--no-status', cid])).code, 0)

    await t.step('malformed CID', async () => {
      const r = await peer.ctl(['pin', 'add', 'notacid'])
      ok(r.code !== 0)
      match(r.stdout + r.stderr, /notacid|Cid|cid/)
      const res = await fetch(`${peer.restUrl}/pins/notacid`, { method: 'POST' })
      equal(res.status, 400)
      match((await res.json()).message, /^error decoding Cid/)
    })

    await t.step('unknown flag and unknown command', async () => {
      const r = await peer.ctl(['pin', 'add', '--bogus', cid])
      equal(r.code, 1)
      equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      const s = await runMain(['service', '--frobnicate'])
      equal(s.code, 1)
    })

    await t.step('unknown route, bad JSON, bad filter, oversize body', async () => {
      const nf = await fetch(`${peer.restUrl}/nothere`)
      equal(nf.status, 404)
      deepEqual(await nf.json(), { code: 404, message: 'not found' })
      const bj = await fetch(`${peer.restUrl}/peers`, { method: 'POST', body: '{not json' })
      equal(bj.status, 400)
      equal((await bj.json()).code, 400)
      const bf = await fetch(`${peer.restUrl}/pins?filter=bogus`)
      equal(bf.status, 400)
      deepEqual(await bf.json(), { code: 400, message: 'invalid filter value' })
      const big = await fetch(`${peer.restUrl}/peers`, {
        method: 'POST',
        body: 'x'.repeat(4 * 1024 * 1024),
      })
      equal(big.status, 413)
      await big.body?.cancel()
    })

    await t.step('the peer is still serving and the pin is still there', async () => {
      const r = await peer.ctl(['pin', 'ls', cid])
      equal(r.code, 0, r.stderr)
      ok(r.stdout.startsWith(cid))
    })

    await t.step('a bad config value is refused with the key and what is allowed', async () => {
      const dir = await Deno.makeTempDir()
      const init = await runMain(['service', '--config', dir, 'init'])
      equal(init.code, 0, init.stderr)
      const file = join(dir, 'service.json')
      const cfg = JSON.parse(await Deno.readTextFile(file))
      cfg.pin_tracker.stateless.concurrent_pins = 'ten'
      await Deno.writeTextFile(file, JSON.stringify(cfg))
      const r = await runMain(['service', '--config', dir, 'daemon'], { timeoutMs: 30_000 })
      equal(r.code, 1)
      match(r.stderr, /pin_tracker\.stateless\.concurrent_pins: must be an integer/)
      await Deno.remove(dir, { recursive: true })
    })
  } finally {
    await peer.stop()
    await kubo.stop()
  }
})
