/**
 * Bad and unusual input (issue 6) through the real programs, as users run them: our `service`
 * process with its task permissions for `state import`, and a real peer process beside a real
 * Kubo, driven by our `ctl` processes and plain HTTP, for pin options, control characters in
 * names and `add --hash`.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict'
import { join } from 'node:path'
import { startKubo } from '../support/kubo.ts'
import { runMain, startPeerProcess } from '../support/peer.ts'

const CID_A = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
// `ipfs-cluster-service state export` of IPFS Cluster 1.1.6 (one pin).
const GO_PIN =
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},"pin_update":null,"origins":[],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}'

Deno.test('e2e: state import of one pretty-printed pin (as IPFS Cluster 1.1.6 imports it)', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'bad-input-' })
  try {
    const init = await runMain(['service', '--config', dir, 'init'])
    equal(init.code, 0, init.stderr)
    const file = join(dir, 'pin.json')
    await Deno.writeTextFile(file, JSON.stringify(JSON.parse(GO_PIN), null, 2) + '\n')
    const imp = await runMain(['service', '--config', dir, 'state', 'import', '-f', file])
    equal(imp.code, 0, imp.stderr)
    const exp = await runMain(['service', '--config', dir, 'state', 'export'])
    equal(exp.code, 0, exp.stderr)
    equal(exp.stdout, GO_PIN + '\n')
    // A bad value inside a pretty-printed stream: one line naming where it starts; state kept.
    await Deno.writeTextFile(file, `${GO_PIN}\n{\n  "cid": "${CID_A}",\n  "name" 1\n}\n`)
    const bad = await runMain(['service', '--config', dir, 'state', 'import', '-f', file])
    equal(bad.code, 1)
    match(
      bad.stderr,
      /^error importing state: line 2, column 1: invalid JSON: Expected ':' after property name at line 4, column 10\n$/,
    )
    equal((await runMain(['service', '--config', dir, 'state', 'export'])).stdout, GO_PIN + '\n')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('e2e with Kubo: bad pin options, control characters in names, add --hash', async (t) => {
  const kubo = await startKubo()
  const peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr })
  const enc = new TextEncoder()
  const dir = await Deno.makeTempDir({ prefix: 'bad-input-files-' })
  try {
    const cid = await kubo.add(enc.encode(`bad input ${crypto.randomUUID()}`))

    await t.step('bad pin options are a 400 naming the parameter; nothing is pinned', async () => {
      const cases: [string, RegExp][] = [
        ['expire-in=9999999999999h', /^expire-in cannot be parsed: .*out of range/],
        ['replication-min=99999999999999999999999', /^parameter replication-min invalid$/],
        ['user-allocations=notapeer,alsonot', /^parameter user-allocations invalid: /],
      ]
      for (const [q, re] of cases) {
        const res = await fetch(`${peer.restUrl}/pins/${cid}?${q}`, { method: 'POST' })
        equal(res.status, 400, q)
        match((await res.json()).message, re, q)
      }
      const ls = await peer.ctl(['pin', 'ls'])
      deepEqual([ls.code, ls.stdout], [0, ''])
    })

    await t.step(
      'a name with CR/LF prints escaped in pin ls and status, on its own line',
      async () => {
        const r = await peer.ctl(['pin', 'add', '--wait', '--name', 'x\r\nX-Injected: 1', cid])
        equal(r.code, 0, r.stderr)
        for (const args of [['pin', 'ls'], ['status']]) {
          const out = await peer.ctl(args)
          equal(out.code, 0, out.stderr)
          ok(out.stdout.startsWith(`${cid} | x\\r\\nX-Injected: 1`), out.stdout)
          ok(!out.stdout.split('\n').some((l) => l.startsWith('X-Injected')), out.stdout)
        }
        // JSON output carries the name itself.
        const json = await peer.ctl(['--enc=json', 'pin', 'ls', cid])
        equal(JSON.parse(json.stdout).name, 'x\r\nX-Injected: 1')
      },
    )

    await t.step(
      "add --hash sha3-512 gives Kubo's CID, stores the blocks in Kubo, pins",
      async () => {
        const bytes = new Uint8Array(700_000).map((_, i) => (i * 31 + (i >> 10)) % 256)
        const file = join(dir, 'data.bin')
        await Deno.writeFile(file, bytes)
        for (const hash of ['sha3-512', 'blake2b-256', 'blake3']) {
          const form = new FormData()
          form.append('file', new Blob([bytes]), 'data.bin')
          const res = await fetch(
            `${kubo.apiUrl}/api/v0/add?only-hash=true&quieter=true&hash=${hash}`,
            { method: 'POST', body: form },
          )
          const want = (await res.json()).Hash as string
          const r = await peer.ctl(['add', '--wait', '--hash', hash, file])
          equal(r.code, 0, r.stderr)
          equal(r.stdout, `added ${want} data.bin\n`, hash)
          const stat = await fetch(`${kubo.apiUrl}/api/v0/block/stat?arg=${want}`, {
            method: 'POST',
          })
          equal(stat.status, 200, `${hash}: the root block is in Kubo`)
          await stat.body?.cancel()
          const pins = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?arg=${want}`, { method: 'POST' })
          equal(pins.status, 200, `${hash}: Kubo pins it`)
          await pins.body?.cancel()
        }
      },
    )

    await t.step('add --hash with an unknown name: the 400 lists the allowed names', async () => {
      const file = join(dir, 'small.txt')
      await Deno.writeTextFile(file, 'small\n')
      const r = await peer.ctl(['add', '--hash', 'sha3-1024', file])
      equal(r.code, 2)
      match(
        r.stdout,
        /^An error occurred:\n {2}Code: 400\n {2}Message: hash function name not known: "sha3-1024" \(allowed: blake2b-160 … blake2b-512 \(every 8 bits\), .*sha3-512, shake-256\)\n$/,
      )
    })
  } finally {
    await peer.stop()
    await kubo.stop()
    await Deno.remove(dir, { recursive: true })
  }
})
