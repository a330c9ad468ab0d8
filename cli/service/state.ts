/**
 * `ipfs-cluster-service state export|import|cleanup`: the pinset of a stopped peer, offline, under
 * the folder lock, with the reference's prompts and messages.
 *
 * @example
 * ```ts
 * const code = await state('export', parseFlags(STATE_EXPORT.flags!, []), ctx)
 * ```
 */
import { loadServiceConfig } from '../../src/config/service.ts'
import { openStateFor } from '../../src/state/open.ts'
import { readPinsNDJSON } from '../../src/state/ndjson.ts'
import { encodePin, type Pin } from '../../src/types/pin.ts'
import type { LogOp } from '../../src/components.ts'
import type { ParsedFlags } from '../flags.ts'
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
        const cfg = await loadServiceConfig(configDir, ctx.env)
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
        let file = f.args[0]
        let tmp: string | undefined
        if (!file) {
          // stdin can be read once; keep it in a temporary file so it can be validated fully
          // before the current state is wiped.
          await io.stdout('reading from stdin, Ctrl-D to finish\n')
          tmp = await Deno.makeTempFile({ prefix: 'cluster-import-' })
          const f = await Deno.open(tmp, { write: true })
          await io.stdin().pipeTo(f.writable)
          file = tmp
        }
        const open = async () => {
          try {
            return (await Deno.open(file!)).readable
          } catch (err) {
            throw doing('reading import file', err)
          }
        }
        try {
          const adjust = (pin: Pin) => {
            // Only positive factors override, as in the reference (so --rmin=-1 is a no-op).
            if (rmin > 0) pin.replication_factor_min = rmin
            if (rmax > 0) pin.replication_factor_max = rmax
            if (allocs.length) pin.allocations = allocs
            return pin
          }
          // First pass: validate every line without keeping them (the pinset may be huge).
          try {
            for await (const _ of readPinsNDJSON(await open()));
          } catch (err) {
            throw doing('importing state', err)
          }
          const cfg = await loadServiceConfig(configDir, ctx.env)
          const st = await openStateFor(configDir, cfg)
          try {
            await st.clear()
            let batch: LogOp[] = []
            for await (const pin of readPinsNDJSON(await open())) {
              batch.push({ type: 'pin', pin: adjust(pin) })
              if (batch.length >= 500) {
                await st.apply(batch)
                batch = []
              }
            }
            await st.apply(batch)
          } finally {
            st.close()
          }
        } finally {
          if (tmp) await Deno.remove(tmp).catch(() => {})
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
        const cfg = await loadServiceConfig(configDir, ctx.env)
        const st = await openStateFor(configDir, cfg)
        try {
          await st.clear()
        } catch (err) {
          throw doing('cleaning state', err)
        } finally {
          st.close()
        }
        serviceLog(ctx).info('data correctly cleaned up')
      } finally {
        await lock.release()
      }
      return 0
    }
    default:
      throw new Error(`unknown state command ${sub}`)
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array) {
  let off = 0
  while (off < bytes.length) off += await f.write(bytes.subarray(off))
}
