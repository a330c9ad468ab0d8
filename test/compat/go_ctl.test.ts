/**
 * Compatibility: the real `ipfs-cluster-ctl` 1.1.6 (Go, built from the module proxy) drives our
 * peer's REST API unmodified — writes included (pin add/rm/update with --wait, recover), with basic
 * auth and over TLS — while the peer pins in a real Kubo. The same calls through our ctl print the
 * same text.
 */
import { equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { startKubo } from '../support/kubo.ts'
import { runCmd, startPeerProcess, TOOLS_BIN } from '../support/peer.ts'

const GO_CTL = join(TOOLS_BIN, 'ipfs-cluster-ctl')
const FIXTURES = new URL('../fixtures/tls/', import.meta.url).pathname

/** Drops what legitimately differs between two runs: timestamps, the relative expiry. */
function stable(s: string): string {
  return s
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>')
    .replace(/Expires in: .*/g, 'Expires in: <t>')
}

Deno.test('compat: Go ipfs-cluster-ctl 1.1.6 writes through our API (basic auth, TLS)', async (t) => {
  const kubo = await startKubo()
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    edit(cfg) {
      const rest = cfg.api.restapi
      rest.basic_auth_credentials = { testuser: 'testpass' }
      rest.ssl_cert_file = join(FIXTURES, 'cert.pem')
      rest.ssl_key_file = join(FIXTURES, 'key.pem')
    },
  })
  const host = ['--host', peer.restMaddr, '--https', '--no-check-certificate']
  const go = (args: string[], auth = 'testuser:testpass') =>
    runCmd(GO_CTL, [...host, ...(auth ? ['--basic-auth', auth] : []), ...args])
  const ours = (args: string[], auth = 'testuser:testpass') =>
    peer.ctl([...(auth ? ['--basic-auth', auth] : []), ...args])
  try {
    const enc = new TextEncoder()
    const a = await kubo.add(enc.encode(`compat A ${crypto.randomUUID()}`))
    const b = await kubo.add(enc.encode(`compat B ${crypto.randomUUID()}`))

    await t.step('no credentials, wrong credentials: 401 from both CLIs', async () => {
      for (const run of [go, ours]) {
        const none = await run(['id'], '')
        ok(none.code !== 0)
        match(none.stdout + none.stderr, /401|[Uu]nauthorized/)
        const wrong = await run(['id'], 'testuser:nope')
        ok(wrong.code !== 0)
        match(wrong.stdout + wrong.stderr, /401|[Uu]nauthorized/)
      }
    })

    await t.step('id and peers ls', async () => {
      const id = await go(['id'])
      equal(id.code, 0, id.stderr)
      ok(id.stdout.includes(`  > IPFS: ${kubo.peerId}`), id.stdout)
      equal(stable((await ours(['id'])).stdout), stable(id.stdout))
      const peers = await go(['peers', 'ls'])
      equal(peers.code, 0, peers.stderr)
      equal(stable((await ours(['peers', 'ls'])).stdout), stable(peers.stdout))
    })

    await t.step('pin add --wait (Go ctl) pins in Kubo', async () => {
      const r = await go(['pin', 'add', '--wait', '--name', 'from-go', a])
      equal(r.code, 0, r.stderr)
      match(r.stdout, new RegExp(`^${a} \\| from-go:\\n    > \\S+\\s+: PINNED`))
      const ls = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?arg=${a}`, { method: 'POST' })
      equal(ls.status, 200)
      await ls.body?.cancel()
    })

    await t.step(
      'pin ls, status, recover and health metrics read the same in both CLIs',
      async () => {
        for (
          const args of [
            ['pin', 'ls'],
            ['pin', 'ls', a],
            ['status'],
            ['status', a],
            ['recover', a],
            ['health', 'metrics'],
            ['health', 'metrics', 'freespace'],
            ['--enc=json', 'pin', 'ls', a],
          ]
        ) {
          const g = await go(args)
          const o = await ours(args)
          equal(o.code, g.code, `${args.join(' ')}: ${o.stderr}`)
          equal(stable(o.stdout), stable(g.stdout), args.join(' '))
        }
      },
    )

    await t.step('pin update --wait and pin rm --wait (Go ctl)', async () => {
      const up = await go(['pin', 'update', '--wait', a, b])
      equal(up.code, 0, up.stderr)
      ok(up.stdout.includes('PINNED'), up.stdout)
      const rm = await go(['pin', 'rm', '--wait', a])
      equal(rm.code, 0, rm.stderr)
      ok(rm.stdout.includes('UNPINNED'), rm.stdout)
      const ls = await go(['pin', 'ls'])
      ok(ls.stdout.includes(b) && !ls.stdout.includes(a), ls.stdout)
    })

    await t.step('an API error prints and exits the same', async () => {
      const g = await go(['pin', 'rm', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'])
      const o = await ours(['pin', 'rm', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'])
      equal(g.code, 2)
      equal(o.code, g.code)
      equal(o.stdout, g.stdout)
    })

    await t.step('POST /token issues a JWT that authenticates as Bearer', async () => {
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(join(FIXTURES, 'ca.pem'))],
      })
      try {
        const basic = 'Basic ' + btoa('testuser:testpass')
        const tr = await fetch(`${peer.restUrl}/token`, {
          method: 'POST',
          headers: { authorization: basic },
          client,
        })
        equal(tr.status, 200)
        const { token } = await tr.json()
        match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
        const ok1 = await fetch(`${peer.restUrl}/id`, {
          headers: { authorization: `Bearer ${token}` },
          client,
        })
        equal(ok1.status, 200)
        await ok1.body?.cancel()
        const bad = await fetch(`${peer.restUrl}/id`, {
          headers: { authorization: `Bearer ${token}x` },
          client,
        })
        equal(bad.status, 401)
        equal((await bad.json()).message, 'unauthorized: invalid token')
        const health = await fetch(`${peer.restUrl}/health`, { client })
        equal(health.status, 204)
        await health.body?.cancel()
      } finally {
        client.close()
      }
    })

    await t.step('plain HTTP against the TLS API fails', async () => {
      const r = await runCmd(GO_CTL, [
        '--host',
        peer.restMaddr,
        '--basic-auth',
        'testuser:testpass',
        '--force-http',
        'id',
      ])
      ok(r.code !== 0)
    })
  } finally {
    await peer.stop()
    await kubo.stop()
  }
})
