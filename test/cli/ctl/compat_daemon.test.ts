/**
 * Our daemon's REST API as the real ipfs-cluster-ctl 1.1.6 sees it: a `cli/main.ts service`
 * process (embedded IPFS, 127.0.0.1) holding real pins, and both CLIs running the same read-only
 * command lines must print the same stdout with the same exit code. Skipped without the Go binary.
 */
import { equal, ok } from 'node:assert/strict'
import { startPeerProcess } from '../../support/peer.ts'
import { HAVE_BIN, same } from './compat_support.ts'
import { MISSING_CID } from './fake_cluster.ts'

Deno.test({
  name: 'compat daemon: read commands against our peer print what ipfs-cluster-ctl prints',
  ignore: !HAVE_BIN,
  async fn() {
    const dir = await Deno.makeTempDir()
    const peer = await startPeerProcess({ ipfs: 'embedded' })
    try {
      await Deno.writeTextFile(`${dir}/a.txt`, 'compat daemon test\n')
      const added = await peer.ctl([
        'add',
        '-Q',
        '--name',
        'added',
        '--metadata',
        'k=v',
        `${dir}/a.txt`,
      ])
      equal(added.code, 0, added.stderr)
      const cid = added.stdout.trim()
      const st = await peer.ctl(['pin', 'add', '--wait', '--wt', '30s', '--name', 'again', cid])
      equal(st.code, 0, st.stderr)
      ok(st.stdout.includes('PINNED'), st.stdout)
      const lines = [
        ['id'],
        ['peers', 'ls'],
        ['pin', 'ls'],
        ['pin', 'ls', cid],
        ['pin', 'ls', MISSING_CID],
        ['status'],
        ['status', cid],
        ['status', '--filter', 'pinned'],
        ['status', '--local', cid],
        ['version'],
        ['health', 'metrics'],
        ['health', 'graph'],
        ['status', 'notacid'],
      ]
      for (const enc of ['text', 'json']) {
        for (const l of lines) await same(peer.restMaddr, [`--enc=${enc}`, ...l])
      }
    } finally {
      await peer.stop()
      await Deno.remove(dir, { recursive: true })
    }
  },
})
