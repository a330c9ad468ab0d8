/**
 * `ipfs-cluster-service state export|import|cleanup`: the pinset of a stopped peer, offline, under
 * the folder lock, with the reference's prompts and messages.
 *
 * @example
 * ```ts
 * const code = await state('export', parseFlags(STATE_EXPORT.flags!, []), ctx)
 * ```
 */
import { dataFolder, openStateDb, openStateFor, stateDbPath } from '../../src/state/open.ts'
import { kvState } from '../../src/state/kv_state.ts'
import { replacePinset } from '../../src/state/import.ts'
import { storedPinBatchesInWorker } from '../../src/state/import_parse.ts'
import { carryOverPeerData, cleanupDataFolder } from '../../src/consensus/raft/data_folder.ts'
import { raftSection } from '../../src/consensus/raft/config.ts'
import { encodePin } from '../../src/types/pin.ts'
import type { ParsedFlags } from '../flags.ts'
import { loadServiceConfig } from '../../src/service_config.ts'
import { logging } from '../../src/util/log.ts'
import { type Ctx, doing, lockOrFail, serviceLog } from './context.ts'

const IMPORT_PROMPT = 'The pinset (state) of this peer will be replaced. Continue? [y/n]:'
const CLEANUP_PROMPT =
  'The peer state will be removed.  Existing pins may be lost. Continue? [y/n]:'

/** `state export|import|cleanup` with its parsed flags. */
export async function state(sub: string, f: ParsedFlags, ctx: Ctx): Promise<number> {
  const { io, configDir } = ctx
  switch (sub) {
    case 'export': {
      const lock = await lockOrFail(configDir)
      try {
        const cfg = await loadConfig(ctx)
        const st = await openStateFor(configDir, cfg)
        try {
          const out = f.string('file')
            ? await Deno.open(f.string('file'), { write: true, create: true, truncate: true })
            : undefined
          const enc = new TextEncoder()
          let buf = ''
          const flush = async () => {
            if (!buf) return
            if (out) await writeAll(out, enc.encode(buf))
            else await io.stdout(buf)
            buf = ''
          }
          for await (const pin of st.list()) {
            buf += encodePin(pin) + '\n'
            if (buf.length > 64 * 1024) await flush()
          }
          await flush()
          out?.close()
        } finally {
          st.close()
        }
      } catch (err) {
        throw doing('exporting state', err)
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'import': {
      const rmin = f.int('replication-min')
      const rmax = f.int('replication-max')
      const allocs = f.string('allocations').split(',').map((s) => s.trim()).filter(Boolean)
      const lock = await lockOrFail(configDir)
      try {
        if (!f.bool('force') && !ctx.force && !(await io.confirm(IMPORT_PROMPT))) return 0
        const file = f.args[0]
        if (file) {
          try {
            // Checked here for the message; the parsing thread opens it again to read it.
            ;(await Deno.open(file)).close()
          } catch (err) {
            throw doing('reading import file', err)
          }
        } else {
          await io.stdout('reading from stdin, Ctrl-D to finish\n')
        }
        try {
          const cfg = await loadConfig(ctx)
          const overrides = { replicationMin: rmin, replicationMax: rmax, allocations: allocs }
          if (cfg.crdt) {
            // As the reference: the CRDT store is cleaned, then the pins go in as a batch of an
            // offline replica (src/consensus/crdt/offline.ts).
            const { importCrdt } = await import('../../src/consensus/crdt/offline.ts')
            const kv = await openStateDb(configDir, cfg)
            const st = kvState(kv, true) // closes kv
            try {
              const pins = storedPinBatchesInWorker(file ?? io.stdin(), overrides)
              await importCrdt(kv, st, cfg.crdt, pins)
            } finally {
              st.close()
            }
            serviceLog(ctx).info(
              'state successfully imported.  Make sure all peers have consistent states',
            )
            return 0
          }
          await Deno.mkdir(dataFolder(configDir, cfg), { recursive: true })
          // One pass: the new pinset is built beside the old one, which a bad pin anywhere in the
          // input leaves untouched (src/state/import.ts).
          await replacePinset(
            stateDbPath(configDir, cfg),
            storedPinBatchesInWorker(file ?? io.stdin(), overrides),
            { carryOver: carryOverPeerData },
          )
        } catch (err) {
          throw doing('importing state', err)
        }
        serviceLog(ctx).info(
          'state successfully imported.  Make sure all peers have consistent states',
        )
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'cleanup': {
      const lock = await lockOrFail(configDir)
      try {
        if (!f.bool('force') && !ctx.force && !(await io.confirm(CLEANUP_PROMPT))) return 0
        const cfg = await loadConfig(ctx)
        if (cfg.crdt) {
          // As the reference: every CRDT key goes (and the pinset view); the next start is a new
          // replica that syncs from the others.
          const { cleanCrdt } = await import('../../src/consensus/crdt/offline.ts')
          const kv = await openStateDb(configDir, cfg)
          const st = kvState(kv, true)
          try {
            await cleanCrdt(kv, st)
          } catch (err) {
            throw doing('cleaning state', err)
          } finally {
            st.close()
          }
          serviceLog(ctx).info('data correctly cleaned up')
          return 0
        }
        // As the reference: the data folder goes to a rotated backup (raft.old.0 newest), or is
        // deleted when it holds nothing; the next start is a first start.
        const raftLog = logging(ctx.logLevel, (line) => void ctx.io.stderr(`${line}\n`)).get('raft')
        try {
          await cleanupDataFolder(
            dataFolder(configDir, cfg),
            (cfg.raft ?? raftSection.defaults()).backups_rotate,
            raftLog,
          )
        } catch (err) {
          throw doing('cleaning state', err)
        }
        serviceLog(ctx).info('data correctly cleaned up')
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'crdt info':
    case 'crdt dot':
    case 'crdt mark-dirty':
    case 'crdt mark-clean':
      return await crdtTool(sub.slice(5), ctx)
    default:
      throw new Error(`unknown state command ${sub}`)
  }
}

/** `state crdt info|dot|mark-dirty|mark-clean` on a stopped CRDT peer, as the reference. */
async function crdtTool(tool: string, ctx: Ctx): Promise<number> {
  const lock = await lockOrFail(ctx.configDir)
  try {
    const cfg = await loadConfig(ctx)
    if (!cfg.crdt) {
      throw doing(
        '',
        new Error('crdt subcommands can only be run on peers initialized with crdt consensus'),
      )
    }
    if (tool === 'dot') {
      throw doing(
        'generating graph',
        new Error('writing the CRDT-DAG as a DOT file is not implemented here'),
      )
    }
    const { crdtInfo, setDirty } = await import('../../src/consensus/crdt/offline.ts')
    const kv = await openStateDb(ctx.configDir, cfg)
    try {
      if (tool === 'info') {
        const info = await crdtInfo(kv)
        await ctx.io.stdout(
          `Number of heads: ${info.heads.length}. Current max-height: ${info.maxHeight}. ` +
            `Dirty: ${info.dirty}\nHeads: [${info.heads.map((h) => h.cid.toString()).join(' ')}]\n`,
        )
      } else {
        await setDirty(kv, tool === 'mark-dirty')
        await ctx.io.stdout(`Datastore marked '${tool === 'mark-dirty' ? 'dirty' : 'clean'}'\n`)
      }
    } finally {
      kv.close()
    }
    return 0
  } finally {
    await lock.release()
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array) {
  let off = 0
  while (off < bytes.length) off += await f.write(bytes.subarray(off))
}

/** Reads service.json; what it holds that this peer ignores is logged once (facility config). */
function loadConfig(ctx: Ctx) {
  const log = logging(ctx.logLevel, (line) => void ctx.io.stderr(`${line}\n`)).get('config')
  return loadServiceConfig(ctx.configDir, ctx.env, (m) => log.warn(m))
}
