/**
 * `openKvFile` (src/state/kv_file.ts): Deno KV's expiry index becomes partial, once, and the
 * database behaves as before — reads, writes, keys that expire, writes in flight during the swap.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { openKvFile, slimExpiryIndex } from '../../src/state/kv_file.ts'

/** The first row `sql` gives on a read-only connection to the database at `path`. */
function queryOne<T>(path: string, sql: string): T | undefined {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    return db.prepare(sql).get() as T | undefined
  } finally {
    db.close()
  }
}

function indexSql(path: string): string | undefined {
  return queryOne<{ sql?: string }>(
    path,
    `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'kv_expiration_ms_idx'`,
  )?.sql
}

/** Rows of the expiry index (a partial index holds only the keys that expire). */
function indexRows(path: string): number {
  return queryOne<{ n: number }>(
    path,
    `SELECT count(*) AS n FROM kv INDEXED BY kv_expiration_ms_idx WHERE expiration_ms >= 0`,
  )!.n
}

Deno.test('openKvFile: the expiry index covers only keys that expire, and KV works as before', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'state.kv')
  try {
    // Deno KV as it comes: every row in its expiry index.
    const plain = await Deno.openKv(path)
    await plain.set(['pin', 'a'], 1)
    plain.close()
    assert.match(indexSql(path)!, /^create index kv_expiration_ms_idx on kv \(expiration_ms\)$/i)

    const kv = await openKvFile(path)
    try {
      assert.match(indexSql(path)!, /WHERE expiration_ms >= 0$/)
      await kv.set(['pin', 'b'], 2)
      await kv.set(['tmp'], 3, { expireIn: 3_600_000 })
      await kv.atomic().set(['pin', 'c'], 4).delete(['pin', 'a']).commit()
      assert.equal((await kv.get(['pin', 'b'])).value, 2)
      assert.equal((await kv.get(['pin', 'a'])).value, null)
      const listed = []
      for await (const e of kv.list({ prefix: ['pin'] })) listed.push(e.key.at(-1))
      assert.deepEqual(listed, ['b', 'c'])
      assert.equal(indexRows(path), 1, 'only the key that expires is indexed')
      assert.equal(slimExpiryIndex(path), 'partial', 'done once')
    } finally {
      kv.close()
    }
    // Deno KV opens it again as its own.
    const again = await Deno.openKv(path)
    try {
      assert.equal((await again.get(['pin', 'c'])).value, 4)
      assert.equal((await again.get(['tmp'])).value, 3)
    } finally {
      again.close()
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('openKvFile: commits in flight while the index is swapped all land', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'state.kv')
  try {
    const kv = await Deno.openKv(path)
    try {
      const writes = Array.from({ length: 200 }, (_, i) => kv.set(['pin', i], i))
      assert.equal(slimExpiryIndex(path), 'replaced')
      const more = Array.from({ length: 200 }, (_, i) => kv.set(['pin', 200 + i], i))
      await Promise.all([...writes, ...more])
      let n = 0
      for await (const _ of kv.list({ prefix: ['pin'] })) n++
      assert.equal(n, 400)
    } finally {
      kv.close()
    }
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('openKvFile: an expiry index of another shape is left alone', async () => {
  const dir = await Deno.makeTempDir()
  const path = join(dir, 'state.kv')
  try {
    ;(await Deno.openKv(path)).close()
    const db = new DatabaseSync(path)
    db.exec(
      'DROP INDEX kv_expiration_ms_idx; CREATE INDEX kv_expiration_ms_idx ON kv (expiration_ms, k)',
    )
    db.close()
    assert.equal(slimExpiryIndex(path), 'other')
    const kv = await openKvFile(path)
    kv.close()
    assert.match(indexSql(path)!, /\(expiration_ms, k\)$/)
    assert.equal(slimExpiryIndex(':memory:'), 'missing')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
