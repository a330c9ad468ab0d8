/**
 * Issue 7's join, stage by stage: three of our peers found a cluster holding N pins (`state import`
 * into the first founder, its `state.kv` copied to the others before their first start), then a
 * fourth peer joins with `daemon --bootstrap <leader>`. Printed, in seconds from the joiner's
 * spawn (each stage from the peers' own log lines, which carry their time):
 *
 * - `join asked`: the joiner asks the leader to add it (`joining the cluster through`);
 * - `snapshot taken`: the leader's snapshot of the pinset is in KV chunks (`took snapshot`);
 * - `snapshot sent`: every chunk was acknowledged (`sent snapshot`);
 * - `snapshot staged`: the joiner verified the whole stream (`received snapshot`);
 * - `installed`: its pinset is the snapshot's (`installed snapshot`);
 * - `voter`: the joiner's promotion applied on the leader (`membership change applied: addVoter`);
 * - `READY`, and `serves the last pin` from its own state (`GET /allocations/<last cid>`).
 *
 * `bench/cluster.ts` times the same join (READY, member, last pin) beside IPFS Cluster 1.1.6; this
 * script is its stage-by-stage view, for work on the snapshot path.
 *
 * @example
 * ```sh
 * deno run -A bench/join.ts --pins 1000000 [--runs 1] [--keep] [--network-timeout 60s]
 * ```
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { benchCid, inputFile } from './cids.ts'
import { sleep } from './process.ts'
import { type ClusterPeer, TestCluster } from '../test/support/cluster.ts'

const TIMEOUT_MS = 600_000

/** Log lines that end a stage: [stage, peer, pattern]. */
const STAGES: [string, 'leader' | 'joiner', RegExp][] = [
  ['join asked', 'joiner', /joining the cluster through/],
  ['snapshot taken', 'leader', /raft: took snapshot/],
  ['snapshot sent', 'leader', /raft: sent snapshot/],
  ['snapshot staged', 'joiner', /raft: received snapshot/],
  ['installed', 'joiner', /raft: installed snapshot/],
  ['voter', 'leader', /membership change applied: addVoter/],
  ['READY', 'joiner', /IPFS Cluster is READY/],
]

/** Seconds from `t0` (epoch ms) to the first log line matching `re`, with the line. */
async function stageOf(peer: ClusterPeer, re: RegExp, t0: number) {
  const log = await Deno.readTextFile(peer.proc!.logPath).catch(() => '')
  for (const line of log.split('\n')) {
    if (!re.test(line)) continue
    const t = Date.parse(line.split('\t')[0])
    if (Number.isNaN(t)) continue
    return { s: (t - t0) / 1000, line: line.split('\t').slice(3).join(' ') }
  }
  return undefined
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      pins: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '1' },
      keep: { type: 'boolean', default: false },
      // The founders' consensus.raft.network_timeout: a promotion waits max(6×, 60 s) for the
      // learner, so a slower join than that needs a longer one to be measured at all.
      'network-timeout': { type: 'string' },
    },
  })
  const pins = Number(values.pins)
  const log = (m: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`)
  const pinsFile = await inputFile('pins', pins, log)
  const cidFile = await inputFile('cids', pins, log)
  for (let run = 0; run < Number(values.runs); run++) {
    const cluster = await TestCluster.create({
      impl: 'ours',
      peers: 3,
      doublePinned: cidFile,
      roleLog: false,
      log,
      edit: (cfg) => {
        if (values['network-timeout']) {
          cfg.consensus.raft.network_timeout = values['network-timeout']
        }
      },
    })
    // Stopped from outside: the peers and doubles go too (they are not our children's children).
    const onTerm = () => cluster.close().finally(() => Deno.exit(143))
    Deno.addSignalListener('SIGTERM', onTerm)
    try {
      log(`state import of ${pins} pins`)
      await cluster.importState(0, pinsFile)
      const from = join(cluster.peers[0].dir, 'raft')
      for (const p of cluster.peers.slice(1)) {
        await Deno.mkdir(join(p.dir, 'raft'), { recursive: true })
        for await (const f of Deno.readDir(from)) {
          await Deno.copyFile(join(from, f.name), join(p.dir, 'raft', f.name))
        }
      }
      cluster.startAll()
      const t1 = Date.now()
      for (const p of cluster.peers) await cluster.waitReady(p, TIMEOUT_MS)
      await cluster.waitFormed(TIMEOUT_MS)
      const leader = await cluster.waitLeader(TIMEOUT_MS)
      // The founders' start-up sync walks the whole pinset: the join is timed once it is done.
      for (const p of cluster.peers) {
        while (!(await Deno.readTextFile(p.proc!.logPath)).includes('start-up sync')) {
          if (Date.now() - t1 > TIMEOUT_MS) throw new Error(`${p.name}: no start-up sync`)
          await sleep(200)
        }
      }
      const joiner = await cluster.addJoiner()
      log(`${joiner.name} joins through ${leader.name}`)
      const t0 = Date.now()
      cluster.startJoiner(joiner, leader)
      const stages = async () => {
        const load = (await Deno.readTextFile('/proc/loadavg')).split(' ').slice(0, 3).join(' ')
        console.log(`join of ${pins} pins, run ${run + 1} (load ${load}):`)
        for (const [stage, who, re] of STAGES) {
          const r = await stageOf(who === 'leader' ? leader : joiner, re, t0)
          console.log(
            `  ${stage.padEnd(20)} ${r ? r.s.toFixed(2).padStart(7) : '      ?'} s  ${
              r?.line ?? ''
            }`,
          )
        }
      }
      try {
        await cluster.waitReady(joiner, TIMEOUT_MS)
      } catch (err) {
        await stages()
        throw err
      }
      const last = benchCid(pins - 1)
      while ((await cluster.request(joiner, 'GET', `/allocations/${last}`)).status !== 200) {
        if (Date.now() - t0 > TIMEOUT_MS) throw new Error('the joiner never served the last pin')
        await sleep(50)
      }
      const served = (Date.now() - t0) / 1000
      await stages()
      console.log(`  ${'serves the last pin'.padEnd(20)} ${served.toFixed(2).padStart(7)} s`)
    } finally {
      Deno.removeSignalListener('SIGTERM', onTerm)
      await cluster.close({ keep: values.keep })
    }
  }
}

if (import.meta.main) await main()
