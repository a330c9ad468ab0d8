/**
 * `state import`: replaces a peer's pinset with the pins of a stream in one pass, building the
 * new pinset in a fresh database file next to the old one and renaming it over the old one only
 * once it is complete. Until that rename the old database is not written: a bad pin anywhere in
 * the input, a full disk or a crash leaves the old state as it was.
 *
 * Pins are sorted by CID before they are written (`SortedRuns`, bounded memory, runs spilled next
 * to the database): Deno KV takes ordered keys about ten times faster than the random order of
 * an import file, because each commit of random CIDs rewrites a B-tree page per pin.
 *
 * The database also holds consensus's keys; `carryOver` copies them into the new file, which has
 * no applied index, so consensus adopts the imported pinset at the next start (docs/raft.md).
 *
 * @example
 * ```ts
 * const pins = storedPinBatchesInWorker(file.readable)
 * const n = await replacePinset('/data/raft/state.kv', pins, { carryOver: carryOverRaftState })
 * ```
 */
import { dirname } from 'node:path'
import { exists } from '../util/fs.ts'
import { openKvFile } from './kv_file.ts'
import { writeSortedPins } from './pinset_writer.ts'
import { type EncodedRecords, SortedRuns } from './sorted_runs.ts'

/** Options of `replacePinset`. */
export interface ReplacePinsetOptions {
  /** Copies what the old database holds besides pins (consensus's keys) into the new one. */
  carryOver?: (from: Deno.Kv, to: Deno.Kv) => Promise<void>
  /** Memory used to sort, in bytes of stored pins (default: SortedRuns' 32 MiB). */
  runBytes?: number
  signal?: AbortSignal
}

/**
 * Replaces the pinset of the Deno KV database at `path` (created if absent) with `pins` (records
 * of stored pins, see import_parse.ts); a CID given twice keeps its last pin. Resolves with the
 * number of pins in the new state. On any error the database at `path` is left untouched and
 * nothing else remains.
 */
export async function replacePinset(
  path: string,
  pins: AsyncIterable<EncodedRecords>,
  opts: ReplacePinsetOptions = {},
): Promise<number> {
  const building = `${path}.import`
  // Leftovers of an import that crashed (the caller holds the folder lock: none is running).
  const runsDir = `${path}.import-runs`
  await removeDatabase(building)
  await Deno.remove(runsDir, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err
  })
  const runs = new SortedRuns({ dir: runsDir, runBytes: opts.runBytes })
  let count = 0
  let done = false
  try {
    for await (const batch of pins) {
      opts.signal?.throwIfAborted()
      await runs.add(batch)
    }
    const kv = await openKvFile(building)
    try {
      if (await exists(path)) {
        // Opened even without carryOver: closing it folds its write-ahead log into the file (a
        // log left beside the old file would be replayed into the new one after the rename).
        // Plainly: it is about to be replaced, so its index is not worth rewriting.
        const old = await Deno.openKv(path)
        try {
          await opts.carryOver?.(old, kv)
        } finally {
          old.close()
        }
      }
      count = await writeSortedPins(kv, runs.sorted(), opts.signal)
    } finally {
      kv.close()
    }
    await swapIn(building, path)
    done = true
    return count
  } finally {
    await runs.close()
    if (!done) await removeDatabase(building)
  }
}

/**
 * Renames the closed database `building` over `path`. SQLite (under Deno KV) keeps a write-ahead
 * log `-wal` and its index `-shm` beside the file while it is open and removes both at a clean
 * close; a non-empty log of the old file at this point means someone still has it open.
 */
async function swapIn(building: string, path: string): Promise<void> {
  if (await nonEmpty(`${building}-wal`)) {
    throw new Error(`${building}: its write-ahead log was not folded in at close`)
  }
  if (await nonEmpty(`${path}-wal`)) {
    throw new Error(`${path} is in use (a non-empty write-ahead log beside it); is a peer running?`)
  }
  await syncPath(building)
  for (const f of [`${path}-wal`, `${path}-shm`]) await removeIfPresent(f)
  await Deno.rename(building, path)
  // Makes the rename durable. Best effort: not every platform can sync a folder, and either file
  // is a whole pinset until then.
  await syncPath(dirname(path)).catch(() => {})
  await removeIfPresent(`${building}-shm`)
}

async function syncPath(path: string): Promise<void> {
  const f = await Deno.open(path, { read: true })
  try {
    await f.sync()
  } finally {
    f.close()
  }
}

async function nonEmpty(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size > 0
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false
    throw err
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path)
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err
  }
}

async function removeDatabase(path: string): Promise<void> {
  for (const f of [path, `${path}-wal`, `${path}-shm`]) await removeIfPresent(f)
}
