/**
 * Where a pin's CPU goes on a 3-peer cluster of ours (issue 7): the cluster bench's ingest
 * (bench/cluster.ts, through test/support/cluster.ts) with every daemon under V8's sampling profiler
 * (`deno run --cpu-prof`). Prints each peer's CPU per pin by thread (from `/proc`) and, per peer,
 * the profile by component (`summarize` of bench/ingest_profile.ts).
 *
 * @example
 * ```sh
 * deno run -A bench/cluster_profile.ts --via follower --seconds 5 --connections 64
 * deno run -A bench/cluster_profile.ts --via leader --connections 1    # the latency load
 * deno run -A bench/cluster_profile.ts --no-prof                       # CPU per pin only
 * deno run -A bench/cluster_profile.ts --idle --seconds 5              # no load: what peers burn
 * deno run -A bench/cluster_profile.ts --via leader --connections 1 --warm 3 --no-prof
 * ```
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { benchCid, writeCidFile } from './cids.ts'
import { latestProfile, summarize, threadCpu } from './ingest_profile.ts'
import { ensureWrk, runLoad } from './load.ts'
import { TestCluster } from '../test/support/cluster.ts'

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      via: { type: 'string', default: 'follower' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '64' },
      'no-prof': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      idle: { type: 'boolean', default: false },
      // Seconds of 64-connection load through the target before the measured load: the JIT and
      // the connections warm up first, as they have in bench/cluster.ts's latency row.
      warm: { type: 'string', default: '0' },
    },
  })
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const profile = !values['no-prof']
  const log = (m: string) => console.error(`[profile] ${m}`)
  await ensureWrk(log)
  const cluster = await TestCluster.create({ impl: 'ours', peers: 3, roleLog: false, log })
  log(`work folder ${cluster.workDir}`)
  const profDir = (name: string) => join(cluster.workDir, `prof-${name}`)
  if (profile) {
    for (const p of cluster.peers) await Deno.mkdir(profDir(p.name))
    // The profiler's flags go after `run` of our daemon's command.
    const inside = cluster.inside.bind(cluster)
    cluster.inside = (cmd) => {
      const out = inside(cmd)
      const i = out.indexOf('--config')
      if (out.includes('daemon') && i > 0) {
        const name = out[i + 1].split('/').at(-1)!
        out.splice(out.indexOf('run') + 1, 0, '--cpu-prof', `--cpu-prof-dir=${profDir(name)}`)
      }
      return out
    }
  }
  try {
    cluster.startAll()
    for (const p of cluster.peers) await cluster.waitReady(p, 120_000)
    await cluster.waitFormed(60_000)
    const leader = await cluster.waitLeader(60_000)
    const follower = cluster.peers.find((p) => p !== leader)!
    const target = values.via === 'leader' ? leader : follower
    const first = await cluster.request(follower, 'POST', `/pins/${benchCid(-2)}`)
    if (first.status !== 200) throw new Error(`warm-up pin: HTTP ${first.status} ${first.body}`)
    await new Promise((r) => setTimeout(r, 1000))
    const cids = seconds * 20_000
    const cidFile = join(cluster.workDir, 'cids.txt')
    await writeCidFile(cidFile, 40_000_000, cids)
    const warm = Number(values.warm)
    if (warm > 0) {
      const warmFile = join(cluster.workDir, 'warm-cids.txt')
      await writeCidFile(warmFile, 50_000_000, warm * 20_000)
      const w = await runLoad({
        base: target.restUrl,
        cidFile: warmFile,
        cids: warm * 20_000,
        seconds: warm,
        connections: 64,
        workDir: cluster.workDir,
      })
      log(`warm-up: ${Math.round(w.ok / w.seconds)} pins/s, errors ${w.requests - w.ok}`)
      await new Promise((r) => setTimeout(r, 2000))
    }
    const before = await Promise.all(cluster.peers.map((p) => threadCpu(p.proc!.pid)))
    const machineBefore = await machineCpu()
    if (values.idle) {
      // No load: what the peers burn on their own (ticks, timers, loops) per second.
      await new Promise((r) => setTimeout(r, seconds * 1000))
      const now = await Promise.all(cluster.peers.map((p) => threadCpu(p.proc!.pid)))
      for (const [i, p] of cluster.peers.entries()) {
        let cpu = 0
        for (const [k, v] of now[i]) cpu += v - (before[i].get(k) ?? 0)
        console.log(
          `${p.name}${p === leader ? ' (leader)' : ''} idle: ${
            (100 * cpu / seconds).toFixed(1)
          }% of a core`,
        )
      }
      for (const p of cluster.peers) await cluster.stop(p)
      if (profile) {
        for (const p of cluster.peers) {
          const path = latestProfile(profDir(p.name))
          console.log(`\n== ${p.name}${p === leader ? ' (leader)' : ''}: ${path}`)
          console.log(summarize(JSON.parse(await Deno.readTextFile(path))))
        }
      }
      return 0
    }
    const load = await runLoad({
      base: target.restUrl,
      cidFile,
      cids,
      seconds,
      connections,
      workDir: cluster.workDir,
    })
    const after = await Promise.all(cluster.peers.map((p) => threadCpu(p.proc!.pid)))
    const machineAfter = await machineCpu()
    const pins = load.ok
    console.log(
      `via ${values.via} (${target.name}; leader ${leader.name}), ${connections} connections: ${
        Math.round(pins / load.seconds)
      } pins/s, p50 ${load.p50ms.toFixed(2)} ms, p99 ${load.p99ms.toFixed(2)} ms, errors ${
        load.requests - load.ok
      }; load average ${(await Deno.readTextFile('/proc/loadavg')).split(' ').slice(0, 3)}`,
    )
    const mains: number[] = []
    let total = 0
    for (const [i, p] of cluster.peers.entries()) {
      const d = [...after[i]].map(([k, v]) => [k, v - (before[i].get(k) ?? 0)] as const)
        .filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])
      const all = d.reduce((n, [, v]) => n + v, 0)
      total += all
      mains.push(d.find(([k]) => k === 'main')?.[1] ?? 0)
      const us = (s: number) => `${(s * 1e6 / pins).toFixed(0)}`
      const role = p === leader ? 'leader' : p === target ? 'entry' : 'follower'
      console.log(
        `${p.name} (${role}) CPU µs/pin: ${us(all)} (${
          d.map(([k, v]) => `${k} ${us(v)}`).join(', ')
        })`,
      )
    }
    console.log(`all three peers: ${(total * 1e6 / pins).toFixed(0)} µs/pin`)
    // The whole machine (peers, IPFS doubles, wrk, kernel): on two cores, n pins/s leave
    // 2,000,000 / n µs a pin.
    const perPin = (k: 'user' | 'system') =>
      ((machineAfter[k] - machineBefore[k]) * 1e6 / pins).toFixed(0)
    console.log(`whole machine: user ${perPin('user')} µs/pin, system ${perPin('system')} µs/pin`)
    for (const p of cluster.peers) await cluster.stop(p)
    if (profile) {
      for (const [i, p] of cluster.peers.entries()) {
        const path = latestProfile(profDir(p.name))
        console.log(`\n== ${p.name}${p === leader ? ' (leader)' : ''}: ${path}`)
        console.log(
          summarize(JSON.parse(await Deno.readTextFile(path)), pins, mains[i] * 1e6 / pins),
        )
      }
    }
    return 0
  } finally {
    await cluster.close({ keep: values.keep })
  }
}

/** Seconds of CPU the whole machine spent in user and system mode since boot (`/proc/stat`). */
async function machineCpu(): Promise<{ user: number; system: number }> {
  const line = (await Deno.readTextFile('/proc/stat')).split('\n')[0]
  // cpu  user nice system idle iowait irq softirq …, in clock ticks (100 a second on Linux)
  const [user, nice, system, , , irq, softirq] = line.split(/\s+/).slice(1).map(Number)
  return { user: (user + nice) / 100, system: (system + irq + softirq) / 100 }
}

if (import.meta.main) Deno.exit(await main(Deno.args))
