/**
 * The IPFS proxy as users meet it: our daemon (a process, the service task's permissions) beside a
 * real Kubo, reached by the proxy over Kubo's unix socket, and real clients pointed at the proxy
 * instead of Kubo — the `ipfs` CLI with `--api` and kubo-rpc-client. What they pin is the
 * cluster's (`ctl pin ls` shows it with the cluster's default replication, and the cluster pins
 * it in Kubo); what they read (`cat`) is Kubo's, passed through.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { create } from 'kubo-rpc-client'
import { startKubo } from '../support/kubo.ts'
import { runCmd, startPeerProcess, TOOLS_BIN } from '../support/peer.ts'

const IPFS = join(TOOLS_BIN, 'ipfs')

/**
 * kubo-rpc-client under Deno picks its Node multipart encoder, whose body yields views of Node's
 * shared Buffer pool; Deno's fetch must detach each chunk it sends and refuses those ("ArrayBuffer
 * is not detachable"), whichever server is asked. Copying the chunks is all it takes.
 */
const copyingFetch = (realFetch: typeof fetch): typeof fetch => (input, init) => {
  const body = init?.body as unknown
  if (
    body && typeof body === 'object' && Symbol.asyncIterator in body &&
    !(body instanceof ReadableStream)
  ) {
    const copies = async function* () {
      for await (const c of body as AsyncIterable<Uint8Array>) yield new Uint8Array(c)
    }
    init = { ...init, body: ReadableStream.from(copies()) }
  }
  return realFetch(input, init)
}

/** Polls until `cond` holds (the cluster pins in Kubo in the background), at most `ms`. */
async function until(what: string, cond: () => Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

Deno.test('e2e: the ipfs CLI and kubo-rpc-client through the proxy pin in the cluster', async (t) => {
  const kubo = await startKubo({ unixSocket: true })
  const peer = await startPeerProcess({
    ipfs: kubo.apiMultiaddr,
    edit: (cfg) => (cfg.api.ipfsproxy.node_multiaddress = kubo.apiUnixMultiaddr),
  })
  const cliDir = await Deno.makeTempDir({ prefix: 'ipfs-cli-' })
  try {
    const cfg = JSON.parse(await Deno.readTextFile(join(peer.configDir, 'service.json')))
    const proxy: string = [cfg.api.ipfsproxy.listen_multiaddress].flat()[0]
    const port = Number(/\/tcp\/(\d+)$/.exec(proxy)![1])
    // The CLI needs no repo of its own with --api; IPFS_PATH keeps it off the user's.
    const ipfs = (...args: string[]) =>
      runCmd(IPFS, ['--api', proxy, ...args], { env: { IPFS_PATH: cliDir } })
    /** Kubo's own view, asked directly. */
    const kuboPins = async () => {
      const res = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?type=recursive`, { method: 'POST' })
      return Object.keys((await res.json()).Keys ?? {})
    }
    const clusterPins = async () => (await peer.ctl(['pin', 'ls'])).stdout

    let cid = ''
    const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7) % 256)
    await t.step('ipfs add: the cluster adds and pins, with its default replication', async () => {
      const file = join(cliDir, 'data.bin')
      await Deno.writeFile(file, bytes)
      const r = await ipfs('add', '-Q', file)
      assert.equal(r.code, 0, r.stderr)
      cid = r.stdout.trim()
      assert.match(cid, /^Qm/)
      const ls = await clusterPins()
      // Unnamed, as the reference's proxy pins it (Kubo's add sends no name).
      assert.match(ls, new RegExp(`^${cid} \\|  \\| PIN \\| Repl\\. Factor: -1 \\|`, 'm'))
      await until('Kubo to hold the pin', async () => (await kuboPins()).includes(cid))
    })

    await t.step("ipfs cat: Kubo's bytes, passed through", async () => {
      const out = join(cliDir, 'out.bin')
      const r = await runCmd('bash', ['-c', `"$0" --api ${proxy} cat ${cid} > ${out}`, IPFS], {
        env: { IPFS_PATH: cliDir },
      })
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(await Deno.readFile(out), bytes)
    })

    await t.step('ipfs pin ls / rm / add follow the cluster pinset', async () => {
      let r = await ipfs('pin', 'ls', '--type=recursive')
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), `${cid} recursive`)
      r = await ipfs('pin', 'ls', '--stream', cid)
      assert.equal(r.stdout.trim(), `${cid} recursive`)
      r = await ipfs('pin', 'rm', cid)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), `unpinned ${cid}`)
      assert.doesNotMatch(await clusterPins(), new RegExp(cid))
      await until('Kubo to drop the pin', async () => !(await kuboPins()).includes(cid))
      r = await ipfs('pin', 'ls', cid)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, new RegExp(`path '${cid}' is not pinned`))
      r = await ipfs('pin', 'add', cid)
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim(), `pinned ${cid} recursively`)
      assert.match(await clusterPins(), new RegExp(`^${cid} .*Repl\\. Factor: -1`, 'm'))
      await until('Kubo to hold the pin again', async () => (await kuboPins()).includes(cid))
    })

    await t.step("ipfs repo stat: the cluster's sum (one peer: its Kubo's)", async () => {
      const r = await ipfs('repo', 'stat')
      assert.equal(r.code, 0, r.stderr)
      const direct = await (await fetch(`${kubo.apiUrl}/api/v0/repo/stat`, { method: 'POST' }))
        .json()
      assert.match(r.stdout, new RegExp(`RepoSize: +${direct.RepoSize}\\n`))
      assert.match(r.stdout, new RegExp(`StorageMax: +${direct.StorageMax}\\n`))
    })

    await t.step('kubo-rpc-client: add, cat, pin ls/rm/add, repo stat', async () => {
      const client = create({ url: `http://127.0.0.1:${port}/api/v0` })
      const realFetch = globalThis.fetch
      globalThis.fetch = copyingFetch(realFetch)
      try {
        const added = await client.add('through the proxy\n')
        const c = added.cid.toString()
        assert.match(await clusterPins(), new RegExp(`^${c} .*Repl\\. Factor: -1`, 'm'))
        let text = ''
        for await (const b of client.cat(added.cid)) text += new TextDecoder().decode(b)
        assert.equal(text, 'through the proxy\n')
        const listed: string[] = []
        for await (const p of client.pin.ls()) listed.push(`${p.cid} ${p.type}`)
        assert.deepEqual(listed.sort(), [`${c} recursive`, `${cid} recursive`].sort())
        assert.equal((await client.pin.rm(added.cid)).toString(), c)
        assert.doesNotMatch(await clusterPins(), new RegExp(c))
        assert.equal((await client.pin.add(added.cid)).toString(), c)
        assert.match(await clusterPins(), new RegExp(c))
        const stat = await client.repo.stat()
        assert.ok(stat.repoSize > 0n && stat.storageMax > 0n, String(stat.repoSize))
      } finally {
        globalThis.fetch = realFetch
      }
    })
  } finally {
    const code = await peer.stop()
    await kubo.stop()
    await Deno.remove(cliDir, { recursive: true })
    assert.equal(code, 0, peer.logs())
  }
})
