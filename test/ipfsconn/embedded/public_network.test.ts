/**
 * The public-network switch turned on, on a machine without internet access: the test runs
 * itself again inside a network namespace whose only interface is `lo` (`unshare -n`), so the
 * bootstrap dials, DNS lookups and delegated-routing requests of the node fail there and nothing
 * leaves this machine. A real peer process (service task permissions) started with
 * `init --ipfs-public-network` must come up, pin what is added to it, keep serving while every
 * public dial fails, and stop with exit code 0 and no unhandled rejection.
 *
 * What this cannot show here: that the node finds content on the public network (no internet
 * on the test machines), nor that announcements reach it. network.test.ts shows what the switch
 * builds and how pinned roots are queued for announcement.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runMain, startPeerProcess } from '../../support/peer.ts'
import { loopbackNetns } from '../../support/netns.ts'

const INSIDE = 'EMBEDDED_PUBLIC_NETNS'
const inside = Deno.env.get(INSIDE) === '1'
const netns = inside ? undefined : await loopbackNetns()

Deno.test({
  name: 'public network on, no internet: the peer comes up, pins, keeps serving, stops cleanly',
  ignore: !inside && !netns,
  async fn() {
    if (!inside) {
      // Outside: run this very test inside the namespace and report how it went.
      const out = await new Deno.Command(netns!.cmd, {
        args: netns!.args(Deno.execPath(), [
          'test',
          '-A',
          '--no-check',
          '--filter',
          'public network on',
          fileURLToPath(import.meta.url),
        ]),
        env: { [INSIDE]: '1' },
        stdout: 'piped',
        stderr: 'piped',
      }).output()
      const dec = new TextDecoder()
      assert.equal(out.code, 0, dec.decode(out.stdout) + dec.decode(out.stderr))
      return
    }

    // Inside the namespace: only lo exists.
    const ifaces = Deno.networkInterfaces().filter((i) => i.family === 'IPv4')
    assert.deepEqual([...new Set(ifaces.map((i) => i.address))], ['127.0.0.1'])

    const dir = await Deno.makeTempDir({ prefix: 'embedded-public-' })
    const configDir = join(dir, 'peer')
    const init = await runMain([
      'service',
      '--config',
      configDir,
      'init',
      '--ipfs',
      'embedded',
      '--ipfs-public-network',
      '--randomports',
    ])
    assert.equal(init.code, 0, init.stderr)
    const written = JSON.parse(await Deno.readTextFile(join(configDir, 'service.json')))
    assert.equal(written.ipfs_connector.embedded.public_network, true)
    const refused = await runMain([
      'service',
      '--config',
      join(dir, 'k'),
      'init',
      '--ipfs-public-network',
    ])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^--ipfs-public-network applies to the embedded IPFS node/)

    const peer = await startPeerProcess({
      ipfs: 'embedded',
      configDir,
    })
    try {
      assert.match(
        peer.logs(),
        /public IPFS network: on \(bootstrap peers, Amino DHT, delegated routing\)/,
      )
      await Deno.writeTextFile(join(dir, 'f.txt'), `public ${crypto.randomUUID()}\n`)
      const add = await peer.ctl(['add', '-Q', join(dir, 'f.txt')])
      assert.equal(add.code, 0, add.stderr)
      const cid = add.stdout.trim()
      const st = await peer.ctl(['status', cid])
      assert.match(st.stdout, /PINNED/)
      const id = await peer.ctl(['id'])
      assert.equal(id.code, 0, id.stderr)
    } finally {
      const code = await peer.stop()
      assert.equal(code, 0, peer.logs())
      assert.ok(!peer.logs().includes('unhandled rejection'), peer.logs())
      await Deno.remove(dir, { recursive: true })
    }
  },
})
