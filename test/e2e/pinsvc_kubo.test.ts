/**
 * The Pinning Service API with the client users have: Kubo's `ipfs pin remote` (Kubo 0.43.1, its
 * boxo pinning-service client) run as a process against our `service daemon`, which pins into a
 * second Kubo. The content lives only in the client's Kubo, so the cluster's Kubo has to fetch it
 * (origins, delegates): a pin that reports `pinned` really is in the cluster's Kubo. Answers read
 * over HTTP are checked against the spec's schemas.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { findKuboBinary, type KuboDaemon, startKubo } from '../support/kubo.ts'
import { runCmd, type RunResult, startPeerProcess } from '../support/peer.ts'
import { assertPinResults, assertPinStatus } from '../api/pinsvc/schema.ts'

/** What a Kubo daemon pins recursively. */
async function recursivePins(kubo: KuboDaemon): Promise<Set<string>> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?type=recursive`, { method: 'POST' })
  const body = await res.json() as { Keys?: Record<string, unknown> }
  return new Set(Object.keys(body.Keys ?? {}))
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** `ipfs pin remote ls` lines: [cid, status, name]. */
function lsLines(r: RunResult): string[][] {
  equal(r.code, 0, r.stderr)
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'))
}

Deno.test({
  name: "e2e: Kubo's ipfs pin remote against our Pinning Service API",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const clusterKubo = await startKubo()
    const client = await startKubo()
    let peer = await startPeerProcess({
      ipfs: clusterKubo.apiMultiaddr,
      edit: (cfg) => {
        cfg.api.pinsvcapi.basic_auth_credentials = { alice: 'wonderland' }
      },
    })
    const ipfsBin = await findKuboBinary()
    const ipfs = (...args: string[]) =>
      runCmd(ipfsBin, args, {
        env: { IPFS_PATH: client.repoPath, IPFS_TELEMETRY: 'off', DO_NOT_TRACK: '1' },
        timeoutMs: 60_000,
      })
    const remote = (...args: string[]) => ipfs('pin', 'remote', ...args, '--service=cluster')
    const enc = new TextEncoder()
    try {
      const cfg = JSON.parse(await Deno.readTextFile(join(peer.configDir, 'service.json')))
      const port = /\/tcp\/(\d+)/.exec([cfg.api.pinsvcapi.http_listen_multiaddress].flat()[0])![1]
      const url = `http://127.0.0.1:${port}`
      const tokenRes = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${btoa('alice:wonderland')}` },
      })
      equal(tokenRes.status, 200)
      const { token } = await tokenRes.json() as { token: string }
      const auth = { authorization: `Bearer ${token}` }

      // Content only the client's Kubo has.
      const a = await client.add(enc.encode(`pinsvc A ${crypto.randomUUID()}`))
      const b = await client.add(enc.encode(`pinsvc B ${crypto.randomUUID()}`))

      await t.step(
        'service add with the token of POST /token; service ls --stat counts',
        async () => {
          const r = await ipfs('pin', 'remote', 'service', 'add', 'cluster', url, token)
          equal(r.code, 0, r.stderr)
          const ls = await ipfs('pin', 'remote', 'service', 'ls', '--stat')
          equal(ls.code, 0, ls.stderr)
          match(ls.stdout, new RegExp(`^cluster\\s+${url}\\s+0/0/0/0\\s*$`, 'm'))
        },
      )

      await t.step("pin remote add waits until pinned: the cluster's Kubo fetched it", async () => {
        const r = await remote('add', '--name=alpha', a)
        equal(r.code, 0, r.stderr)
        match(r.stdout, new RegExp(`^CID:\\s+${a}\\nName:\\s+alpha\\nStatus:\\s+pinned\\n$`))
        ok((await recursivePins(clusterKubo)).has(a), "pinned in the cluster's Kubo")
        // The client dialled the delegate (the cluster's Kubo) it was given.
        const peers = await ipfs('swarm', 'peers')
        ok(peers.stdout.includes(clusterKubo.peerId), peers.stdout)
      })

      await t.step('pin remote add --background returns at once; ls lists by status', async () => {
        const r = await remote('add', '--background', '--name=beta', b)
        equal(r.code, 0, r.stderr)
        match(
          r.stdout,
          new RegExp(`^CID:\\s+${b}\\nName:\\s+beta\\nStatus:\\s+(queued|pinning|pinned)\\n$`),
        )
        await waitFor('beta pinned', async () => (await recursivePins(clusterKubo)).has(b))
        await waitFor('beta listed pinned', async () => {
          const lines = lsLines(await remote('ls'))
          return lines.some(([c, s]) => c === b && s === 'pinned')
        })
        const all = lsLines(await remote('ls', '--status=queued,pinning,pinned,failed'))
        deepEqual(all, [[b, 'pinned', 'beta'], [a, 'pinned', 'alpha']])
      })

      await t.step('one CID under a second name is a second request', async () => {
        const r = await remote('add', '--name=alpha-copy', a)
        equal(r.code, 0, r.stderr)
        deepEqual(lsLines(await remote('ls', `--cid=${a}`)), [
          [a, 'pinned', 'alpha-copy'],
          [a, 'pinned', 'alpha'],
        ])
        deepEqual(lsLines(await remote('ls', '--name=alpha')), [[a, 'pinned', 'alpha']])
        deepEqual(lsLines(await remote('ls', '--name=beta', `--cid=${b}`)), [[b, 'pinned', 'beta']])
        deepEqual(lsLines(await remote('ls', '--status=failed')), [])
        // What Kubo read, as the spec's schemas say it.
        const res = await fetch(`${url}/pins?cid=${a}`, { headers: auth })
        const page = assertPinResults(await res.json())
        equal(page.count, 2)
        for (const st of page.results) {
          const ds = st.delegates as string[]
          ok(ds.length > 0 && ds.every((d) => d.endsWith(`/p2p/${clusterKubo.peerId}`)), String(ds))
        }
      })

      await t.step("ls pages past 10 with before (the client's default page)", async () => {
        const more: string[] = []
        for (let i = 0; i < 23; i++) {
          const cid = await client.add(enc.encode(`pinsvc page ${i} ${crypto.randomUUID()}`))
          const res = await fetch(`${url}/pins`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ cid, name: `page-${i}` }),
          })
          equal(res.status, 202)
          assertPinStatus(await res.json())
          more.push(cid)
        }
        const lines = lsLines(await remote('ls', '--status=queued,pinning,pinned,failed'))
        equal(lines.length, 26)
        deepEqual(
          lines.slice(0, 23).map((l) => l[2]),
          more.map((_, i) => `page-${i}`).reverse(),
          'newest first, every one once',
        )
        // Removing them through the API: `rm` of several needs --force, as Kubo asks.
        const rm = await remote('rm', '--name=page-0')
        equal(rm.code, 0, rm.stderr)
        const refused = await remote('rm', '--status=queued,pinning,pinned,failed')
        equal(refused.code, 1)
        match(refused.stderr, /multiple remote pins are matching this query, add --force/)
        // More CIDs than the spec allows in one filter: the spec's 400, in Kubo's words.
        const tooMany = await remote('ls', '--cid=' + more.slice(1, 12).join(','))
        equal(tooMany.code, 1)
        match(
          tooMany.stderr,
          /reason: "BAD_REQUEST", details: "cid: at most 10 CIDs may be given, got 11": 400 Bad Request/,
        )
        equal(lsLines(await remote('ls', '--status=queued,pinning,pinned,failed')).length, 25)
        await waitFor('every request pinned', async () => {
          const st = await ipfs('pin', 'remote', 'service', 'ls', '--stat')
          return new RegExp(`^cluster\\s+${url}\\s+0/0/25/0\\s*$`, 'm').test(st.stdout)
        })
      })

      await t.step(
        'pin remote rm --force removes every match; the CID is unpinned when none is left',
        async () => {
          const rm = await remote('rm', `--cid=${a}`, '--force')
          equal(rm.code, 0, rm.stderr)
          deepEqual(
            lsLines(await remote('ls', `--cid=${a}`, '--status=queued,pinning,pinned,failed')),
            [],
          )
          await waitFor(
            "a unpinned from the cluster's Kubo",
            async () => !(await recursivePins(clusterKubo)).has(a),
          )
          // The other request stays, and so does its pin.
          ok((await recursivePins(clusterKubo)).has(b))
          const r = await peer.ctl(['pin', 'ls', a])
          ok(!r.stdout.includes(a), r.stdout)
        },
      )

      await t.step('restarts: trusted after a clean stop, rebuilt after kill -9', async () => {
        const before = lsLines(await remote('ls'))
        equal(await peer.stop(), 0)
        peer = await startPeerProcess({ ipfs: clusterKubo.apiMultiaddr, configDir: peer.configDir })
        deepEqual(lsLines(await remote('ls')), before)
        ok(!peer.logs().includes('pinning service index: rebuilding'), peer.logs())
        await peer.kill9()
        peer = await startPeerProcess({ ipfs: clusterKubo.apiMultiaddr, configDir: peer.configDir })
        match(peer.logs(), /pinning service index: rebuilding \(no clean stop recorded\)/)
        deepEqual(lsLines(await remote('ls')), before)
      })

      await t.step("a wrong key is refused with the spec's 401", async () => {
        const r = await ipfs('pin', 'remote', 'service', 'add', 'wrong', url, 'not-a-token')
        equal(r.code, 0, r.stderr)
        const ls = await ipfs('pin', 'remote', 'ls', '--service=wrong')
        equal(ls.code, 1)
        match(ls.stderr, /UNAUTHORIZED|401/)
      })
    } finally {
      const code = await peer.stop()
      await client.stop()
      await clusterKubo.stop()
      equal(code, 0, peer.logs())
    }
  },
})
