/**
 * `replacePinset` (state import): the new pinset is built in a fresh file and renamed over the
 * old one; whatever fails before that leaves the old database as it was and nothing behind.
 * `storedPinBatches` / `storedPinBatchesInWorker`: the parsing side, on this thread or a worker.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { replacePinset } from '../../src/state/import.ts'
import {
  type ImportOverrides,
  storedPinBatches,
  storedPinBatchesInWorker,
} from '../../src/state/import_parse.ts'
import { kvState } from '../../src/state/kv_state.ts'
import { MAX_PIN_BYTES, PinsetWriter, writeSortedPins } from '../../src/state/pinset_writer.ts'
import { type EncodedRecords, RecordBatch } from '../../src/state/sorted_runs.ts'
import { encodePin, newPin, type Pin, storedPin } from '../../src/types/pin.ts'
import { ValidationError } from '../../src/errors.ts'
import { testPin } from '../consensus/raft/kv_cluster.ts'

const enc = new TextEncoder()

async function pins(n: number, tag = ''): Promise<Pin[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => testPin(i, tag)))
}

const ndjson = (ps: Pin[]) => ps.map((p) => encodePin(p) + '\n').join('')
const streamOf = (text: string) => new Blob([text]).stream()

async function* records(ps: Pin[], per = 100): AsyncIterable<EncodedRecords> {
  for (let i = 0; i < ps.length; i += per) {
    const b = new RecordBatch()
    for (const p of ps.slice(i, i + per)) b.push(p.cid, encodePin(storedPin(p)))
    yield b.take()
  }
}

/** The records of a batch as keys and value views. */
function decoded(b: EncodedRecords): { key: string; value: Uint8Array }[] {
  const view = new DataView(b.records.buffer, b.records.byteOffset, b.records.byteLength)
  const out = []
  let at = 0
  for (const key of b.keys) {
    const kl = view.getUint32(at, true)
    const vl = view.getUint32(at + 4, true)
    out.push({ key, value: b.records.subarray(at + 8 + kl, at + 8 + kl + vl) })
    at += 8 + kl + vl
  }
  return out
}

/** Every key and value of a database, for before/after comparisons. */
async function dump(path: string): Promise<string[]> {
  const kv = await Deno.openKv(path)
  try {
    const out: string[] = []
    for await (const e of kv.list({ prefix: [] })) {
      const v = e.value instanceof Uint8Array ? new TextDecoder().decode(e.value) : e.value
      out.push(JSON.stringify([e.key, v]))
    }
    return out
  } finally {
    kv.close()
  }
}

async function listing(dir: string): Promise<string[]> {
  const names: string[] = []
  for await (const e of Deno.readDir(dir)) names.push(e.name)
  return names.sort()
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: 'import-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

/** A state database holding `old` pins, an applied index and a key of another component. */
async function oldState(path: string, old: Pin[]): Promise<void> {
  const kv = await Deno.openKv(path)
  await kvState(kv).apply(old.map((pin) => ({ type: 'pin', pin })), 41)
  await kv.set(['raft', 'hs'], { term: 3, vote: 'me', commit: 41 })
  kv.close()
}

Deno.test('the pinset is replaced; other keys are carried over; the applied index goes; nothing is left beside', () =>
  withDir(async (dir) => {
    const path = join(dir, 'state.kv')
    await oldState(path, await pins(50, 'old'))
    const fresh = await pins(700, 'new')
    let carried = 0
    const n = await replacePinset(path, records(fresh), {
      runBytes: 32 * 1024, // many runs spilled to disk
      carryOver: async (from, to) => {
        for await (const e of from.list({ prefix: ['raft'] })) {
          await to.set(e.key, e.value)
          carried++
        }
      },
    })
    assert.equal(n, 700)
    assert.equal(carried, 1)
    assert.deepEqual(await listing(dir), ['state.kv'])
    const kv = await Deno.openKv(path)
    try {
      const st = kvState(kv)
      const got: string[] = []
      for await (const p of st.list()) got.push(encodePin(p))
      assert.deepEqual(got, fresh.map((p) => encodePin(storedPin(p))).sort(byCid))
      assert.equal(
        await new PinsetWriter(kv).storedApplied(),
        null,
        'consensus adopts it at start',
      )
      assert.deepEqual((await kv.get(['raft', 'hs'])).value, { term: 3, vote: 'me', commit: 41 })
    } finally {
      kv.close()
    }
  }))

const byCid = (a: string, b: string) => {
  const ca = JSON.parse(a).cid
  const cb = JSON.parse(b).cid
  return ca < cb ? -1 : ca > cb ? 1 : 0
}

Deno.test('a failure anywhere before the swap leaves the old database as it was, and no leftovers', () =>
  withDir(async (dir) => {
    const path = join(dir, 'state.kv')
    await oldState(path, await pins(30, 'old'))
    const before = await dump(path)
    const fresh = await pins(500, 'new')

    // The input fails after many pins were read and spilled.
    const failing = async function* (): AsyncIterable<EncodedRecords> {
      yield* records(fresh)
      throw new ValidationError('line 501: invalid JSON')
    }
    await assert.rejects(
      replacePinset(path, failing(), { runBytes: 16 * 1024 }),
      /line 501: invalid JSON/,
    )
    assert.deepEqual(await dump(path), before)
    assert.deepEqual(await listing(dir), ['state.kv'])

    // The copy of the other keys fails.
    await assert.rejects(
      replacePinset(path, records(fresh), {
        carryOver: () => Promise.reject(new Error('disk full')),
      }),
      /disk full/,
    )
    assert.deepEqual(await dump(path), before)
    assert.deepEqual(await listing(dir), ['state.kv'])

    // Aborted.
    await assert.rejects(
      replacePinset(path, records(fresh), { signal: AbortSignal.abort(new Error('stop')) }),
      /stop/,
    )
    assert.deepEqual(await dump(path), before)
    assert.deepEqual(await listing(dir), ['state.kv'])
  }))

Deno.test('an import is refused while someone holds the old database open with writes pending', () =>
  withDir(async (dir) => {
    const path = join(dir, 'state.kv')
    await oldState(path, await pins(5, 'old'))
    // A second connection (a running peer) keeps a write-ahead log beside the file.
    const other = await Deno.openKv(path)
    try {
      await other.set(['pin', 'written-by-the-peer'], enc.encode('{}'))
      await assert.rejects(replacePinset(path, records(await pins(10))), /in use/)
      assert.ok((await other.get(['pin', 'written-by-the-peer'])).value)
      assert.equal(await kvState(other).count(), 6)
    } finally {
      other.close()
    }
    assert.deepEqual((await listing(dir)).filter((n) => n.includes('import')), [])
  }))

Deno.test('leftovers of an import that crashed are removed by the next one; a new database is created', () =>
  withDir(async (dir) => {
    const path = join(dir, 'state.kv')
    await Deno.writeTextFile(`${path}.import`, 'half a database')
    await Deno.writeTextFile(`${path}.import-wal`, 'x')
    await Deno.mkdir(`${path}.import-runs`)
    await Deno.writeTextFile(`${path}.import-runs/run-0`, 'x')
    const ps = await pins(20)
    assert.equal(await replacePinset(path, records(ps)), 20)
    assert.deepEqual(await listing(dir), ['state.kv'])
    const kv = await Deno.openKv(path)
    assert.equal(await kvState(kv).count(), 20)
    kv.close()
  }))

Deno.test('writeSortedPins: a failed commit fails the write, after the commits in flight settle', async () => {
  const kv = await Deno.openKv(':memory:')
  let commits = 0
  const flaky = new Proxy(kv, {
    get(target, prop) {
      if (prop === 'atomic') {
        return () => {
          const a = target.atomic()
          const commit = a.commit.bind(a)
          a.commit = () => ++commits === 3 ? Promise.reject(new Error('disk I/O error')) : commit()
          return a
        }
      }
      const v = Reflect.get(target, prop)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  try {
    const ps = (await pins(5000)).sort((a, b) => (a.cid < b.cid ? -1 : 1))
    const sorted = async function* () {
      for await (const b of records(ps, 500)) yield decoded(b)
    }
    await assert.rejects(writeSortedPins(flaky, sorted()), /disk I\/O error/)
    assert.ok(commits >= 3)
  } finally {
    kv.close()
  }
})

Deno.test('storedPinBatches: stored form, overrides (only positive factors), a pin too large fails', async () => {
  const ps = await pins(3)
  ps[0].user_allocations = ['12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ']
  const read = async (text: string, o: ImportOverrides = {}) => {
    const out: { cid: string; json: string }[] = []
    for await (const b of storedPinBatches(streamOf(text), o)) {
      for (const r of decoded(b)) out.push({ cid: r.key, json: new TextDecoder().decode(r.value) })
    }
    return out
  }
  const plain = await read(ndjson(ps))
  assert.deepEqual(plain, ps.map((p) => ({ cid: p.cid, json: encodePin(storedPin(p)) })))
  const over = await read(ndjson(ps), {
    replicationMin: 2,
    replicationMax: -1,
    allocations: ['12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'],
  })
  for (const { json } of over) {
    const p = JSON.parse(json)
    assert.equal(p.replication_factor_min, 2)
    assert.equal(p.replication_factor_max, 0, 'a non-positive factor keeps the pin’s own')
    assert.deepEqual(p.allocations, ['12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'])
  }
  const huge = newPin(ps[1].cid, { metadata: { blob: 'x'.repeat(MAX_PIN_BYTES) } })
  await assert.rejects(read(ndjson([ps[0], huge])), (err: Error) => {
    assert.ok(err instanceof ValidationError)
    assert.match(err.message, /too large to store/)
    return true
  })
})

Deno.test('storedPinBatchesInWorker gives what storedPinBatches gives, from a file or a stream; errors keep their type and line', () =>
  withDir(async (dir) => {
    const ps = await pins(2500)
    const file = join(dir, 'pins.ndjson')
    await Deno.writeTextFile(file, ndjson(ps))
    const collect = async (it: AsyncIterable<EncodedRecords>) => {
      const keys: string[] = []
      const bytes: number[] = []
      for await (const b of it) {
        keys.push(...b.keys)
        bytes.push(b.records.length)
      }
      return { keys, bytes }
    }
    const here = await collect(storedPinBatches(file))
    assert.equal(here.keys.length, 2500)
    assert.deepEqual(await collect(storedPinBatchesInWorker(file)), here)
    assert.deepEqual(await collect(storedPinBatchesInWorker(streamOf(ndjson(ps)))), here)

    const bad = ndjson(ps.slice(0, 2)) + '{"cid": broken\n'
    await assert.rejects(collect(storedPinBatchesInWorker(streamOf(bad))), (err: Error) => {
      assert.ok(err instanceof ValidationError, `${err.name}: ${err.message}`)
      assert.match(err.message, /^line 3/)
      return true
    })
    await assert.rejects(collect(storedPinBatchesInWorker(join(dir, 'nope'))), /No such file/)

    // Leaving early stops the worker (the test's sanitizers would see it otherwise).
    for await (const _ of storedPinBatchesInWorker(file)) break
  }))
