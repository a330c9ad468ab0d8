/**
 * Issue 6's measures of a peer with a big backlog, run the same way against either
 * implementation: `state import` of N pins with the importing process's peak RSS, then the peer
 * started against an IPFS double that holds none of them (the state of a peer that restores a
 * backup or joins a big cluster), stopped, and started again against another empty double. The
 * figures are the seconds from spawning the daemon until both `GET /id` and
 * `GET /allocations/<cid>` answer 200 (polled every 10 ms).
 *
 * @example
 * ```ts
 * const r = await measureImportBacklog(ctx, ctx.impls.ours, { pins, pinsFile })
 * r.restart.ready // seconds
 * ```
 */
import { join } from 'node:path'
import { benchCid } from './cids.ts'
import {
  type BenchContext,
  type RunningPeer,
  spawnDaemon,
  startDouble,
  waitServing,
} from './harness.ts'
import { cleanEnv, configurePeer, type Implementation, type ImplKey } from './peers.ts'
import { sampleRss } from './process.ts'
import { below, type Row } from './report.ts'

/** Seconds until a started daemon served both requests. */
export interface ReadyTimes {
  id: number
  allocation: number
  /** The later of the two: the peer serves. */
  ready: number
}

/** Result of the measure. */
export interface ImportBacklogResult {
  pins: number
  importSeconds: number
  /** Peak RSS of the `state import` process, bytes (sampled every 20 ms). */
  importRss: number
  /** The first start after the import (consensus adopts the imported pinset). */
  firstStart: ReadyTimes
  /** A restart, IPFS still holding none of the pins. */
  restart: ReadyTimes
}

const READY_TIMEOUT_MS = 120_000
const MiB = 1024 * 1024

/** Import, first start and restart, both against an IPFS double holding no pin. */
export async function measureImportBacklog(
  ctx: BenchContext,
  impl: Implementation,
  opts: { pins: number; pinsFile: string },
): Promise<ImportBacklogResult> {
  const dir = join(ctx.workDir, `${impl.key}-backlog`)
  await Deno.remove(dir, { recursive: true }).catch(() => {})
  await impl.init(dir)
  let peer: RunningPeer | undefined
  let ipfs: Awaited<ReturnType<typeof startDouble>> | undefined
  try {
    ctx.log(`${impl.label}: state import of ${opts.pins} pins (RSS sampled)`)
    const t0 = performance.now()
    const imp = ctx.procs.start(`${impl.key}-import`, impl.importCommand(dir, opts.pinsFile), {
      cwd: ctx.repo,
      env: cleanEnv(),
    })
    const rss = sampleRss(imp.pid)
    const code = await imp.exited
    const importRss = await rss.stop()
    const importSeconds = (performance.now() - t0) / 1000
    if (code !== 0) throw new Error(`state import exited with ${code}:\n${await imp.tail()}`)

    const someCid = benchCid(opts.pins - 1)
    const start = async (name: string): Promise<ReadyTimes> => {
      ipfs = await startDouble(ctx, `${impl.key}-${name}-ipfs`)
      const ports = await configurePeer(dir, { ipfsApi: ipfs.api })
      const since = performance.now()
      peer = {
        impl,
        dir,
        rest: ports.rest,
        proc: spawnDaemon(ctx, impl, dir, `${impl.key}-${name}`),
      }
      const t = await waitServing(peer, someCid, { since, timeoutMs: READY_TIMEOUT_MS })
      return { ...t, ready: Math.max(t.id, t.allocation) }
    }
    const stop = async () => {
      const code = await peer?.proc.stop(60_000)
      if (code) ctx.log(`${impl.label}: daemon exited with ${code} on SIGTERM`)
      await ipfs?.proc.stop()
      peer = ipfs = undefined
    }
    ctx.log(`${impl.label}: first start after the import, IPFS holding none of the pins`)
    const firstStart = await start('backlog-first')
    await stop()
    ctx.log(`${impl.label}: restart with ${opts.pins} pins, IPFS holding none of them`)
    const restart = await start('backlog-restart')
    return { pins: opts.pins, importSeconds, importRss, firstStart, restart }
  } finally {
    await peer?.proc.stop()
    await ipfs?.proc.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
}

/** The table rows of this measure. */
export function importBacklogRows(
  pins: number,
  r: Record<ImplKey, { backlog?: ImportBacklogResult }>,
): Row[] {
  const both = (f: (x: ImportBacklogResult) => number) => ({
    ours: r.ours.backlog && f(r.ours.backlog),
    go: r.go.backlog && f(r.go.backlog),
  })
  return [
    {
      measure: `state import, ${pins} pins: peak RSS (MiB)`,
      ...both((x) => x.importRss / MiB),
      digits: 1,
    },
    {
      measure: `first start after state import to ready, ${pins} pins, IPFS holding none (s)`,
      ...both((x) => x.firstStart.ready),
      digits: 3,
    },
    {
      measure: `restart to ready, ${pins} pins, IPFS holding none (s)`,
      ...both((x) => x.restart.ready),
      digits: 3,
      target: below(1, ' s'),
    },
  ]
}
