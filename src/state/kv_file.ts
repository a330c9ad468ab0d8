/**
 * Opening a peer's database: Deno KV on a SQLite file, with Deno KV's expiry index made partial.
 *
 * Deno KV (denokv's SQLite backend, migration 3) indexes every row by `expiration_ms`:
 * `CREATE INDEX kv_expiration_ms_idx ON kv (expiration_ms)`. No key of ours ever expires, so every
 * row is `-1` there and the index is a second B-tree ordered by (-1, key): a pin's random key
 * dirties one page of the table and one page of the index, and writing the pinset costs twice the
 * pages it needs (measured: 56 → 33 µs of SQLite's thread a pin into a 200,000-pin state, 4 KiB of
 * WAL and again at the checkpoint for each page). Deno KV only reads that index with
 * `expiration_ms >= 0` (the expiry sweep and the earliest expiry), which an index of just those
 * rows serves as well. So after Deno KV has opened the file (its migrations done) this replaces
 * the index, once, by the same index `WHERE expiration_ms >= 0`, under the same name, through
 * `node:sqlite` (the same SQLite library in the same process: Cargo links one `sqlite3`, so the
 * two connections share SQLite's locks). Anything unexpected — an index of another shape, a
 * read-only file, a busy database — leaves the file as it is: the database works either way,
 * only slower to write.
 *
 * @example
 * ```ts
 * const kv = await openKvFile('/data/raft/state.kv')
 * ```
 *
 * @module
 */
import { DatabaseSync } from 'node:sqlite'

const INDEX = 'kv_expiration_ms_idx'
/** The index as denokv's migration 3 creates it (SQLite keeps the statement's text). */
const FULL_INDEX = /^create index kv_expiration_ms_idx on kv \(expiration_ms\)$/i
const PARTIAL_INDEX = `CREATE INDEX ${INDEX} ON kv (expiration_ms) WHERE expiration_ms >= 0`

/** What `slimExpiryIndex` found and did. */
export type ExpiryIndex = 'replaced' | 'partial' | 'other' | 'missing'

/** Opens Deno KV at `path` (a file, or ':memory:'), its expiry index made partial. */
export async function openKvFile(path: string): Promise<Deno.Kv> {
  const kv = await Deno.openKv(path)
  if (path !== ':memory:') {
    try {
      slimExpiryIndex(path)
    } catch {
      // A file we may not write, or one busy for seconds: it works as Deno KV made it.
    }
  }
  return kv
}

/**
 * Replaces Deno KV's full expiry index of the database at `path` by a partial one, if it is
 * there in the shape denokv creates. Idempotent. Throws what SQLite throws (busy, read-only).
 */
export function slimExpiryIndex(path: string): ExpiryIndex {
  const db = new DatabaseSync(path)
  try {
    // Deno KV's own connection may be in a write; wait for it rather than fail.
    db.exec('PRAGMA busy_timeout = 5000')
    const row = db.prepare(
      `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`,
    ).get(INDEX) as { sql?: string } | undefined
    if (!row?.sql) return 'missing'
    if (!FULL_INDEX.test(row.sql.trim())) {
      return /where\s+expiration_ms\s*>=\s*0\s*$/i.test(row.sql) ? 'partial' : 'other'
    }
    db.exec(`BEGIN IMMEDIATE; DROP INDEX ${INDEX}; ${PARTIAL_INDEX}; COMMIT`)
    return 'replaced'
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK')
    throw err
  } finally {
    db.close()
  }
}
