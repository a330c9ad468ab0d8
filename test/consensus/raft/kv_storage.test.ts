/**
 * KvRaftStorage: the Storage contract on real Deno KV files, what a restart recovers, KV limits
 * (commits split in order, a crash between them leaving a usable log), compaction, and snapshot
 * bytes that are torn or damaged being discarded, never used.
 */
import assert from 'node:assert/strict'
import {
  CompactedError,
  type Entry,
  type HardState,
  RaftInvariantError,
  UnavailableError,
} from '../../../src/consensus/raft/core/mod.ts'
import {
  carryOverRaftState,
  KvRaftStorage,
  type SnapshotData,
} from '../../../src/consensus/raft/kv_storage.ts'
import { planCommits, setMutation } from '../../../src/state/kv_batch.ts'
import { crc32, SnapshotEncoder } from '../../../src/consensus/raft/snapshot_format.ts'
import { tempKvPath } from './kv_cluster.ts'
import { proxyKv } from '../../support/kv_proxy.ts'

const conf = { voters: ['a'], learners: [] }

function ents(from: number, to: number, term: number, size = 8): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, k) => ({
    term,
    index: from + k,
    type: 'normal' as const,
    data: new Uint8Array(size).fill((from + k) % 251),
  }))
}

async function tempKv(): Promise<{ path: string; kv: Deno.Kv }> {
  const path = await tempKvPath()
  return { path, kv: await Deno.openKv(path) }
}

/** Everything the core can read, for comparing two storages. */
function image(s: KvRaftStorage) {
  return {
    hs: s.initialState(),
    snapshot: s.snapshot(),
    first: s.firstIndex(),
    last: s.lastIndex(),
    dummyTerm: s.term(s.firstIndex() - 1),
    entries: s.lastIndex() >= s.firstIndex()
      ? s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity)
      : [],
  }
}

async function reopen(path: string, kv: Deno.Kv): Promise<{ kv: Deno.Kv; s: KvRaftStorage }> {
  kv.close()
  const kv2 = await Deno.openKv(path)
  return {
    kv: kv2,
    s: await KvRaftStorage.open(kv2, { initialConf: { voters: [], learners: [] } }),
  }
}

/** A KV handle whose commits fail ("the process died") once `budget` commits went through. */
function crashingKv(kv: Deno.Kv, budget: number, onCommit = () => {}): Deno.Kv {
  let left = budget
  return proxyKv(kv, {
    commit(run) {
      if (left <= 0) return Promise.reject(new Error('crash'))
      left--
      onCommit()
      return run()
    },
  })
}

Deno.test('a fresh storage: empty log, the initial membership, and the same after a restart', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  assert.equal(s.fresh, true)
  assert.equal(s.firstIndex(), 1)
  assert.equal(s.lastIndex(), 0)
  assert.equal(s.term(0), 0)
  assert.deepEqual(s.initialState(), { term: 0, vote: null, commit: 0 })
  assert.deepEqual(s.snapshot(), { index: 0, term: 0, confState: conf })
  const r = await reopen(path, kv)
  assert.equal(r.s.fresh, false)
  assert.deepEqual(r.s.snapshot().confState, conf, 'the bootstrap membership was persisted')
  r.kv.close()
})

Deno.test('append, overwrite of a suffix, hard state: a restart recovers exactly that', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 10, 1), { term: 1, vote: 'a', commit: 3 })
  await s.persist(ents(6, 7, 2), { term: 2, vote: 'b', commit: 5 })
  assert.equal(s.lastIndex(), 7, 'entries 8..10 of the old suffix are gone')
  assert.deepEqual([5, 6, 7].map((i) => s.term(i)), [1, 2, 2])
  assert.throws(() => s.persist(ents(9, 9, 2), undefined), RaftInvariantError, 'no gaps')
  const before = image(s)
  const r = await reopen(path, kv)
  assert.deepEqual(image(r.s), before)
  assert.equal(r.s.fresh, false)
  // The stale suffix is really gone from KV, not just hidden.
  assert.equal((await r.kv.get(['raft', 'e', 8])).value, null)
  r.kv.close()
})

Deno.test('entries larger than a KV value are split in parts and read back byte for byte', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  const big = ents(1, 3, 1, 200_000) // 200 KB each: 4 parts per entry
  big[1].data = crypto.getRandomValues(new Uint8Array(65536)).slice() // exercise random bytes
  const huge = ents(4, 4, 1, 1_500_000) // beyond one commit (800 KiB): parts span commits
  await s.persist([...big, ...huge], { term: 1, vote: 'a', commit: 4 })
  const before = image(s)
  const r = await reopen(path, kv)
  assert.deepEqual(image(r.s), before)
  // Overwriting a large entry deletes its parts too.
  await r.s.persist(ents(2, 2, 2), { term: 2, vote: 'a', commit: 1 })
  let parts = 0
  for await (const _ of r.kv.list({ prefix: ['raft', 'ep'] })) parts++
  assert.equal(parts, 4, 'only the parts of entry 1 remain')
  r.kv.close()
})

Deno.test('a Ready beyond the KV limits is split into ordered commits', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  // 2,500 entries: beyond 1000 mutations per commit.
  await s.persist(ents(1, 2500, 1, 100), { term: 1, vote: 'a', commit: 2500 })
  const r = await reopen(path, kv)
  assert.equal(r.s.lastIndex(), 2500)
  assert.equal(r.s.initialState().commit, 2500)
  r.kv.close()
})

Deno.test('a crash between split commits leaves a valid log: a prefix, terms never going down', async () => {
  // Old log: 1..1500 at term 1. The new Ready replaces 1001.. with 2500 entries of term 2 and a
  // new term/vote: several commits. Cut the process after each of them and restart.
  const plan = async (kv: Deno.Kv) => {
    const s = await KvRaftStorage.open(kv, { initialConf: conf })
    await s.persist(ents(1, 1500, 1, 50), { term: 1, vote: 'a', commit: 1000 })
    return s
  }
  // Count the commits of that Ready (a budget that never runs out).
  let commits = 0
  {
    const { kv } = await tempKv()
    await plan(kv)
    const s = await KvRaftStorage.open(crashingKv(kv, 1e9, () => commits++), {
      initialConf: conf,
    })
    commits = 0
    await s.persist(ents(1001, 3500, 2, 50), { term: 2, vote: 'b', commit: 1000 })
    kv.close()
  }
  assert.ok(commits >= 3, `the Ready took ${commits} commits`)
  for (let k = 0; k <= commits; k++) {
    const { path, kv } = await tempKv()
    await plan(kv)
    const s = await KvRaftStorage.open(crashingKv(kv, k), { initialConf: conf })
    await s.persist(ents(1001, 3500, 2, 50), { term: 2, vote: 'b', commit: 1000 }).then(
      () => assert.equal(k, commits, 'only the full budget completes'),
      (err) => assert.equal(err.message, 'crash'),
    )
    const r = await reopen(path, kv)
    const img = image(r.s)
    let prevTerm = 0
    for (const [i, e] of img.entries.entries()) {
      assert.equal(e.index, i + 1, `after ${k} commits: contiguous`)
      assert.ok(e.term >= prevTerm, `after ${k} commits: terms never go down`)
      prevTerm = e.term
    }
    assert.ok(img.hs.commit <= img.last, `after ${k} commits: commit within the log`)
    assert.ok(img.last >= 1000, `after ${k} commits: committed entries kept`)
    if (k >= 1) {
      assert.equal(img.hs.term, 2, `after ${k} commits: the new term is durable first`)
      assert.ok(prevTerm <= img.hs.term)
    }
    if (k === commits) assert.equal(img.last, 3500)
    r.kv.close()
  }
})

Deno.test('the commit planner keeps groups whole, splits only oversized ones, marks at group ends', () => {
  const m = (i: number, size = 100) => setMutation(['k', i], i, size)
  const groups = [
    { mutations: Array.from({ length: 600 }, (_, i) => m(i)), mark: { key: ['mark'], value: 1 } },
    {
      mutations: Array.from({ length: 600 }, (_, i) => m(1000 + i)),
      mark: { key: ['mark'], value: 2 },
    },
    {
      mutations: Array.from({ length: 2500 }, (_, i) => m(5000 + i)),
      mark: { key: ['mark'], value: 3 },
    },
  ]
  const plan = planCommits(groups)
  const marks = plan.map((c) => c.mutations.filter((x) => x.key[0] === 'mark').map((x) => x.value))
  assert.equal(plan.length, 5, 'group 2 does not fit after group 1; group 3 needs three commits')
  assert.deepEqual(marks, [[1], [2], [], [], [3]])
  for (const c of plan) assert.ok(c.mutations.length <= 1000)
  const order = plan.flatMap((c) => c.mutations.filter((x) => x.key[0] === 'k').map((x) => x.value))
  assert.deepEqual(order, groups.flatMap((g) => g.mutations.map((x) => x.value)), 'in order')
})

Deno.test('compaction keeps the dummy term, survives a restart, and an interrupted one is finished', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist([...ents(1, 5, 1), ...ents(6, 20, 2)], { term: 2, vote: 'a', commit: 20 })
  await s.setSnapshot({ index: 15, term: 2, confState: conf }, null)
  await assert.rejects(async () => await s.compact(16), RaftInvariantError)
  await s.compact(8)
  assert.equal(s.firstIndex(), 9)
  assert.equal(s.term(8), 2)
  assert.throws(() => s.term(7), CompactedError)
  assert.throws(() => s.entries(8, 10, Infinity), CompactedError)
  assert.throws(() => s.entries(9, 22, Infinity), UnavailableError)
  const before = image(s)
  let r = await reopen(path, kv)
  assert.deepEqual(image(r.s), before)
  // A compaction cut short after moving the dummy position: entries at or below it remain.
  await r.kv.set(['raft', 'first'], { index: 12, term: 2 })
  r = await reopen(path, r.kv)
  assert.equal(r.s.firstIndex(), 13)
  assert.equal((await r.kv.get(['raft', 'e', 10])).value, null, 'leftovers deleted at open')
  r.kv.close()
})

async function writeSnapshotData(
  s: KvRaftStorage,
  pins: number,
): Promise<{ data: SnapshotData; chunks: Uint8Array[] }> {
  const chunks: Uint8Array[] = []
  const enc = new SnapshotEncoder((c) => chunks.push(c), 1000)
  // Names that do not compress, so that the stream spans several chunks.
  let x = pins
  const noise = () => {
    let t = ''
    for (let k = 0; k < 8; k++) t += ((x = (x * 1103515245 + 12345) >>> 0) >>> 8).toString(36)
    return t
  }
  for (let i = 0; i < pins; i++) {
    enc.pin(`cid${i}`, new TextEncoder().encode(`{"cid":"cid${i}","name":"${noise()}"}`))
  }
  enc.finish()
  const id = s.newDataId()
  await s.writeChunks(id, 0, chunks)
  const bytes = chunks.reduce((n, c) => n + c.byteLength, 0)
  const crc = chunks.reduce((c, b) => crc32(c, b), 0)
  return { data: { id, chunks: chunks.length, bytes, crc }, chunks }
}

async function chunkCount(kv: Deno.Kv): Promise<number> {
  let n = 0
  for await (const _ of kv.list({ prefix: ['chunk'] })) n++
  return n
}

Deno.test('torn snapshot writes: chunks no manifest names are deleted at open', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 10, 1), { term: 1, vote: 'a', commit: 10 })
  const good = await writeSnapshotData(s, 100)
  await s.setSnapshot({ index: 10, term: 1, confState: conf }, good.data)
  // A crash while writing the next snapshot: its chunks are there, its manifest is not.
  await writeSnapshotData(s, 300)
  const before = await chunkCount(kv)
  assert.ok(before > good.data.chunks)
  const r = await reopen(path, kv)
  assert.deepEqual(r.s.snapshotData(), good.data, 'the complete snapshot stays')
  assert.equal(await chunkCount(r.kv), good.data.chunks, 'the torn one is gone')
  await r.s.verifyData(good.data)
  r.kv.close()
})

Deno.test('snapshot chunks sort before the pinset; those of the older place are deleted at open', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 10, 1), { term: 1, vote: 'a', commit: 10 })
  const good = await writeSnapshotData(s, 100)
  await s.setSnapshot({ index: 10, term: 1, confState: conf }, good.data)
  // A restore writes pins in key order: they must land after every chunk, never before one.
  await kv.set(['pin', 'bafyfirst'], new Uint8Array(1))
  const order: string[] = []
  for await (const e of kv.list({ prefix: [] })) {
    const chunk = e.value instanceof Uint8Array && e.value.byteLength > 100
    order.push(chunk ? 'chunk' : String(e.key[0]))
  }
  assert.ok(order.lastIndexOf('chunk') >= 0)
  assert.ok(order.lastIndexOf('chunk') < order.indexOf('pin'), order.join(' '))
  await kv.delete(['pin', 'bafyfirst'])
  await kv.set(['raft', 'chunk', 'old-id', 0], new Uint8Array(10))
  const r = await reopen(path, kv)
  assert.equal(
    (await r.kv.get(['raft', 'chunk', 'old-id', 0])).value,
    null,
    'the old place is cleared',
  )
  assert.equal(await chunkCount(r.kv), good.data.chunks, 'the current snapshot stays')
  await r.s.verifyData(good.data)
  r.kv.close()
})

Deno.test('a manifest whose bytes do not match its CRC loses its data at open, never used', async () => {
  const { path, kv } = await tempKv()
  const logs: string[] = []
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 10, 1), { term: 1, vote: 'a', commit: 10 })
  const { data, chunks } = await writeSnapshotData(s, 100)
  await s.setSnapshot({ index: 10, term: 1, confState: conf }, data)
  // Damage one byte of one chunk.
  const bad = chunks[1].slice()
  bad[10] ^= 0xff
  await kv.set(['chunk', data.id, 1], bad)
  kv.close()
  const kv2 = await Deno.openKv(path)
  const s2 = await KvRaftStorage.open(kv2, {
    initialConf: conf,
    log: { debug() {}, info() {}, warn: (m) => logs.push(m), error() {} },
  })
  assert.equal(s2.snapshotData(), null, 'the damaged bytes are forgotten')
  assert.equal(s2.snapshot().index, 10, 'the metadata stays: the state on disk holds it')
  assert.equal(await chunkCount(kv2), 0)
  assert.match(logs.join('\n'), /discarding damaged snapshot data/)
  // And the same manifest is durable: a second restart agrees.
  const r = await reopen(path, kv2)
  assert.equal(r.s.snapshotData(), null)
  r.kv.close()
})

Deno.test('an install cut short: the old log is wiped at open and the restore is reported', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 30, 1), { term: 1, vote: 'a', commit: 20 })
  const { data } = await writeSnapshotData(s, 50)
  await s.beginInstall({ index: 100, term: 3, confState: conf }, data)
  // The state restore (fsm.ts) never ran: `restore` stays set.
  const r = await reopen(path, kv)
  assert.equal(r.s.restorePending, true)
  assert.equal(r.s.firstIndex(), 101)
  assert.equal(r.s.lastIndex(), 100)
  assert.equal(r.s.term(100), 3)
  assert.deepEqual(r.s.snapshotData(), data)
  let left = 0
  for await (const _ of r.kv.list({ prefix: ['raft', 'e'] })) left++
  assert.equal(left, 0)
  r.kv.close()
})

Deno.test('adopting a state written outside Raft: a snapshot at the index, an empty log', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 12, 4), { term: 5, vote: 'a', commit: 12 } satisfies HardState)
  await s.adopt(12)
  const r = await reopen(path, kv)
  assert.deepEqual(r.s.snapshot(), { index: 12, term: 4, confState: conf })
  assert.equal(r.s.lastIndex(), 12)
  assert.equal(r.s.firstIndex(), 13)
  assert.deepEqual(r.s.initialState(), { term: 5, vote: 'a', commit: 12 })
  r.kv.close()
})

Deno.test('carrying the Raft state into a new database (state import): the same log and hard state, no snapshot bytes, no pending restore', async () => {
  const { path, kv } = await tempKv()
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  await s.persist(ents(1, 10, 2), { term: 2, vote: 'a', commit: 10 })
  await s.persist(ents(11, 11, 3, 150_000), { term: 3, vote: 'a', commit: 11 }) // stored in parts
  const { data } = await writeSnapshotData(s, 200)
  await s.setSnapshot({ index: 8, term: 2, confState: conf }, data)
  await kv.set(['pin', 'bafy-not-raft'], new Uint8Array(1))

  const to = await tempKv()
  await carryOverRaftState(kv, to.kv)
  const orig = await reopen(path, kv)
  const r = await reopen(to.path, to.kv)
  assert.deepEqual(image(r.s), image(orig.s))
  assert.equal(r.s.lastIndex(), 11)
  assert.ok(orig.s.snapshotData(), 'the original keeps its bytes')
  assert.equal(r.s.snapshotData(), null, 'the bytes describe the pinset being replaced')
  assert.equal(await chunkCount(r.kv), 0)
  assert.equal(r.s.restorePending, false)
  assert.equal((await r.kv.get(['pin', 'bafy-not-raft'])).value, null, 'only Raft keys')
  r.kv.close()

  // A snapshot install cut short: the import replaces the state it was restoring.
  await orig.s.beginInstall({ index: 100, term: 4, confState: conf }, data)
  const again = await tempKv()
  await carryOverRaftState(orig.kv, again.kv)
  const r2 = await reopen(again.path, again.kv)
  assert.equal(r2.s.restorePending, false)
  assert.deepEqual(r2.s.snapshot(), { index: 100, term: 4, confState: conf })
  assert.equal(r2.s.lastIndex(), 100, 'the install wiped the old log, as it would have')
  r2.kv.close()
  orig.kv.close()
})
