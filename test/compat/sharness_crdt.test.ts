/**
 * The CRDT paths of IPFS Cluster 1.1.6's sharness suite (sharness/t0021, t0052, t0053, t0054),
 * run against our program the way the suite runs the Go one: `service init --consensus crdt`,
 * the daemon beside a real Kubo, the real Go `ipfs-cluster-ctl` 1.1.6 as the client, and the
 * offline `state export|import|cleanup` between stops. Each step asserts what the sharness line
 * asserts (the `jq`/`grep` checks become JSON and string checks); the suite's `sleep 5`s become
 * polls with a deadline.
 *
 * The sharness data file `test_data/importState` (one pin of `test_53\n` with replication -1) is
 * inlined below.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import {
  initPeerConfig,
  type PeerProcess,
  runCmd,
  runMain,
  startPeerProcess,
  TOOLS_BIN,
} from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'

const GO_CTL = join(TOOLS_BIN, 'ipfs-cluster-ctl')
const enc = new TextEncoder()

/** sharness/test_data/importState. */
const IMPORT_STATE = `{
  "cid": "QmbrCtydGyPeHiLURSPMqrvE5mCgMCwFYq3UD4XLCeAYw6",
  "name": "",
  "allocations": [],
  "replication_factor_min": -1,
  "replication_factor_max": -1
}
`

/** `ipfs-cluster-service --config <dir> <args>` (our program, the service task's permissions). */
const service = (dir: string, args: string[]) => runMain(['service', '--config', dir, ...args])

/** The Go `ipfs-cluster-ctl` against a peer. */
const goCtl = (peer: PeerProcess, args: string[]) =>
  runCmd(GO_CTL, ['--host', peer.restMaddr, ...args])

/** `ipfs-cluster-ctl --enc=json status | jq -n "[inputs] | length"`. */
async function statusCount(peer: PeerProcess): Promise<number> {
  const r = await goCtl(peer, ['--enc=json', 'status'])
  assert.equal(r.code, 0, r.stderr)
  const text = r.stdout.trim()
  return text ? JSON.parse(`[${text.replace(/}\s*\n{/g, '},{')}]`).length : 0
}

/** `pin ls <cid> | grep -q <cid>` and `status <cid> | grep -qi PINNED`, polled. */
async function pinnedEverywhere(peer: PeerProcess, cid: string): Promise<void> {
  await waitFor(async () => {
    const ls = await goCtl(peer, ['pin', 'ls', cid])
    const st = await goCtl(peer, ['status', cid])
    return ls.stdout.includes(cid) && /PINNED/i.test(st.stdout)
  }, { what: `${cid} listed and PINNED`, timeoutMs: 60_000 })
}

async function kuboAdd(kubo: KuboDaemon, text: string): Promise<string> {
  return await kubo.add(enc.encode(text))
}

Deno.test({
  name: 'sharness t0021: init --consensus crdt writes only the crdt section (and raft only raft)',
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: 'sharness-init-' })
    try {
      const read = async () => JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
      let r = await service(dir, ['init', '-f', '--consensus', 'raft'])
      assert.equal(r.code, 0, r.stderr)
      let cfg = await read()
      assert.ok(cfg.consensus.raft)
      assert.equal(cfg.consensus.crdt, undefined)
      r = await service(dir, ['init', '-f', '--consensus', 'crdt'])
      assert.equal(r.code, 0, r.stderr)
      cfg = await read()
      assert.ok(cfg.consensus.crdt)
      assert.equal(cfg.consensus.raft, undefined)
    } finally {
      await Deno.remove(dir, { recursive: true })
    }
  },
})

Deno.test({
  name: 'sharness t0052/t0053/t0054 (crdt): state export, import and cleanup around restarts',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const kubo = await startKubo()
    const dir = await initPeerConfig({ ipfs: kubo.apiMultiaddr, initArgs: ['--consensus', 'crdt'] })
    // test_cluster_init removes the raft folder; a CRDT config has none to remove.
    let peer: PeerProcess | undefined
    const start =
      async () => (peer = await startPeerProcess({ ipfs: kubo.apiMultiaddr, configDir: dir }))
    const kill = async () => {
      await peer?.stop()
      peer = undefined
    }
    try {
      await start()
      await t.step('t0052: state export saves the pinned CID', async () => {
        const cid = await kuboAdd(kubo, 'test_52-1\n')
        const r = await goCtl(peer!, ['pin', 'add', cid])
        assert.equal(r.code, 0, r.stderr)
        await pinnedEverywhere(peer!, cid)
        await kill()
        const file = join(dir, 'export.json')
        const ex = await service(dir, ['--debug', 'state', 'export', '-f', file])
        assert.equal(ex.code, 0, ex.stderr)
        const cids = (await Deno.readTextFile(file)).trim().split('\n').map((l) =>
          JSON.parse(l).cid
        )
        assert.ok(cids.includes(cid), `export holds ${cid}: ${cids}`)
      })

      await t.step('t0053: state import fails on a bad file, succeeds on importState', async () => {
        const bad = join(dir, 'badImportFile')
        await Deno.writeTextFile(bad, 'not exactly json\n')
        const r = await service(dir, ['state', 'import', '-f', bad])
        assert.equal(r.code, 1, `exit 1 expected: ${r.stdout}${r.stderr}`)
        assert.match(r.stderr.trim(), /^error importing state: /)
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)

        const cid = await kuboAdd(kubo, 'test_53\n')
        assert.equal(cid, 'QmbrCtydGyPeHiLURSPMqrvE5mCgMCwFYq3UD4XLCeAYw6')
        const file = join(dir, 'importState')
        await Deno.writeTextFile(file, IMPORT_STATE)
        const ok = await service(dir, ['state', 'import', '-f', file])
        assert.equal(ok.code, 0, ok.stderr)
        await start()
        await pinnedEverywhere(peer!, cid)
        // The import replaced the state: the pin of t0052 is gone.
        assert.equal(await statusCount(peer!), 1)
      })

      await t.step('t0054: state cleanup empties the state on restart', async () => {
        const cid = await kuboAdd(kubo, 'test_54\n')
        const r = await goCtl(peer!, ['pin', 'add', cid])
        assert.equal(r.code, 0, r.stderr)
        await pinnedEverywhere(peer!, cid)
        await kill()
        const c = await service(dir, ['state', 'cleanup', '-f'])
        assert.equal(c.code, 0, c.stderr)
        await start()
        assert.equal(await statusCount(peer!), 0)
      })

      await t.step('t0054: export + cleanup + import == noop', async () => {
        const cid = await kuboAdd(kubo, 'test_54\n')
        const r = await goCtl(peer!, ['pin', 'add', cid])
        assert.equal(r.code, 0, r.stderr)
        await pinnedEverywhere(peer!, cid)
        assert.equal(await statusCount(peer!), 1)
        await kill()
        const file = join(dir, 'import.json')
        for (
          const args of [
            ['state', 'export', '-f', file],
            ['state', 'cleanup', '-f'],
            ['state', 'import', '-f', file],
          ]
        ) {
          const s = await service(dir, args)
          assert.equal(s.code, 0, `${args.join(' ')}: ${s.stderr}`)
        }
        await start()
        await pinnedEverywhere(peer!, cid)
        assert.equal(await statusCount(peer!), 1)
      })
    } finally {
      await kill()
      await kubo.stop()
      await Deno.remove(dir, { recursive: true }).catch(() => {})
    }
  },
})
