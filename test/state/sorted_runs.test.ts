import assert from 'node:assert/strict'
import { join } from 'node:path'
import { type EncodedRecords, RecordBatch, SortedRuns } from '../../src/state/sorted_runs.ts'
import { seededRandom } from '../../src/consensus/raft/core/mod.ts'

const dec = new TextDecoder()

function encode(pairs: [string, string][]): EncodedRecords {
  const b = new RecordBatch()
  for (const [k, v] of pairs) b.push(k, v)
  return b.take()
}

async function sortedPairs(runs: SortedRuns): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const batch of runs.sorted()) {
    for (const r of batch) out.push([r.key, dec.decode(r.value)])
  }
  return out
}

/** The expected result: keys ascending, the last value given for each key. */
function model(pairs: [string, string][]): [string, string][] {
  const last = new Map<string, string>()
  for (const [k, v] of pairs) last.set(k, v)
  return [...last].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: 'sorted-runs-' })
  try {
    await fn(dir)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

Deno.test('RecordBatch encodes header, key and value as UTF-8, and reports value bytes', () => {
  const b = new RecordBatch()
  assert.equal(b.push('k', 'ü€'), 5)
  assert.equal(b.length, 1)
  const { keys, records } = b.take()
  assert.deepEqual(keys, ['k'])
  assert.deepEqual([...records], [1, 0, 0, 0, 5, 0, 0, 0, 0x6b, 0xc3, 0xbc, 0xe2, 0x82, 0xac])
  assert.equal(b.length, 0)
  assert.equal(b.take().records.length, 0)
})

Deno.test('in memory: keys come out ascending, the last record of a key wins, no file is written', () =>
  withDir(async (dir) => {
    const runDir = join(dir, 'runs')
    const runs = new SortedRuns({ dir: runDir })
    await runs.add(encode([['b', '1'], ['a', '2'], ['c', '3'], ['a', '4']]))
    await runs.add(encode([['b', '5']]))
    assert.equal(runs.count, 5)
    assert.deepEqual(await sortedPairs(runs), [['a', '4'], ['b', '5'], ['c', '3']])
    assert.equal(runs.spilled, 0)
    await assert.rejects(Deno.stat(runDir), Deno.errors.NotFound)
    await runs.close()
    await runs.close()
  }))

Deno.test('spilled runs merge into one order; a later run wins over an earlier one; files go at close', () =>
  withDir(async (dir) => {
    const rand = seededRandom(42)
    const pairs: [string, string][] = []
    for (let i = 0; i < 5000; i++) {
      // Few distinct keys, so that duplicates fall within runs and across them.
      const k = `bafy${Math.floor(rand() * 1500).toString(36)}`
      pairs.push([k, `{"i":${i},"pad":"${'x'.repeat(Math.floor(rand() * 200))}"}`])
    }
    const runDir = join(dir, 'runs')
    const runs = new SortedRuns({ dir: runDir, runBytes: 16 * 1024, batch: 7 })
    for (let i = 0; i < pairs.length; i += 333) await runs.add(encode(pairs.slice(i, i + 333)))
    assert.ok(runs.spilled > 20, `${runs.spilled} runs`)
    let batches = 0
    const got: [string, string][] = []
    for await (const batch of runs.sorted()) {
      assert.ok(batch.length <= 7)
      batches++
      for (const r of batch) got.push([r.key, dec.decode(r.value)])
    }
    assert.deepEqual(got, model(pairs))
    assert.equal(batches, Math.ceil(got.length / 7))
    await runs.close()
    await assert.rejects(Deno.stat(runDir), Deno.errors.NotFound)
  }))

Deno.test('values handed out stay valid while later batches are read (commits keep them)', () =>
  withDir(async (dir) => {
    const pairs: [string, string][] = []
    for (let i = 0; i < 3000; i++) pairs.push([`k${(i * 7919) % 3000}`, `v${i}`.repeat(50)])
    const runs = new SortedRuns({ dir: join(dir, 'runs'), runBytes: 64 * 1024, batch: 100 })
    await runs.add(encode(pairs))
    const kept: { key: string; value: Uint8Array }[] = []
    for await (const batch of runs.sorted()) kept.push(...batch)
    assert.deepEqual(kept.map((r) => [r.key, dec.decode(r.value)]), model(pairs))
    await runs.close()
  }))

Deno.test('a record larger than the run budget, non-ASCII keys, empty values and no input', () =>
  withDir(async (dir) => {
    const big = 'z'.repeat(3 * 1024 * 1024)
    const pairs: [string, string][] = [['m', 'small'], ['é', ''], ['a', big], ['ü', 'u']]
    const runs = new SortedRuns({ dir: join(dir, 'runs'), runBytes: 1024 })
    for (const p of pairs) await runs.add(encode([p]))
    assert.deepEqual(await sortedPairs(runs), model(pairs))
    await runs.close()

    const none = new SortedRuns({ dir: join(dir, 'none') })
    assert.deepEqual(await sortedPairs(none), [])
    await none.close()
  }))

Deno.test('add after sorted() and a second sorted() are refused', () =>
  withDir(async (dir) => {
    const runs = new SortedRuns({ dir: join(dir, 'runs') })
    await runs.add(encode([['a', '1']]))
    await sortedPairs(runs)
    await assert.rejects(runs.add(encode([['b', '2']])), /add after sorted/)
    await assert.rejects(sortedPairs(runs), /called twice/)
    await runs.close()
  }))
