/**
 * What a peer's Raft data lets it do at start (`planStart`, `checkDataFolder`) on real KV files
 * written by real Raft nodes (`raftConsensus` through KvCluster) or through `KvRaftStorage`, and
 * the rotated backups (`moveAside`, `cleanupDataFolder`) on real folders.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  backupName,
  carryOverPeerData,
  checkDataFolder,
  cleanupDataFolder,
  CLUSTER_RECORD_KEY,
  type ClusterRecord,
  DataFolderError,
  moveAside,
  planStart,
  readStoredData,
  secretFingerprint,
  type StartInputs,
  type StoredData,
} from '../../../src/consensus/raft/data_folder.ts'
import { KvRaftStorage } from '../../../src/consensus/raft/kv_storage.ts'
import type { ConfState, Entry } from '../../../src/consensus/raft/core/mod.ts'
import { encodeConfChangeEntry } from '../../../src/consensus/raft/core/conf_change.ts'
import { kvState } from '../../../src/state/kv_state.ts'
import type { Logger } from '../../../src/util/log.ts'
import { KvCluster, tempKvPath, testPin } from './kv_cluster.ts'

const SECRET = 'aa'.repeat(32)
const OTHER_SECRET = 'bb'.repeat(32)
const FOLDER = '/var/lib/cluster/raft'

function captured(): { log: Logger; info: string[] } {
  const info: string[] = []
  return { log: { debug() {}, info: (m) => void info.push(m), warn() {}, error() {} }, info }
}

function inputs(over: Partial<StartInputs> = {}): StartInputs {
  return {
    folder: FOLDER,
    self: 'a',
    secretFingerprint: 'fp-1',
    initPeerset: [],
    bootstrap: false,
    ...over,
  }
}

function stored(over: Partial<StoredData> = {}): StoredData {
  return {
    raft: true,
    pins: true,
    conf: { voters: ['a', 'b', 'c'], learners: [] },
    everMembers: ['a', 'b', 'c'],
    cluster: { secret: 'fp-1', peer: 'a', joined: false, founders: ['a', 'b', 'c'] },
    ...over,
  }
}

function refusal(s: StoredData, i: StartInputs): string {
  const p = planStart(s, i)
  assert.equal(p.kind, 'refuse', JSON.stringify(p))
  return (p as { reason: string }).reason
}

/** Writes Raft keys as a node would: `conf` at open, then `entries` and a hard state. */
async function writeRaft(
  kv: Deno.Kv,
  conf: ConfState,
  entries: Entry[] = [],
  term = entries.at(-1)?.term ?? 0,
): Promise<void> {
  const s = await KvRaftStorage.open(kv, { initialConf: conf })
  if (entries.length || term) {
    await s.persist(entries, { term, vote: null, commit: 0 })
  }
  await s.drain()
}

function confEntry(
  index: number,
  term: number,
  change: 'addVoter' | 'removeNode',
  id: string,
  conf: ConfState,
): Entry {
  return {
    index,
    term,
    type: 'confChange',
    data: encodeConfChangeEntry({ change: { type: change, id }, conf }),
  }
}

function normalEntry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([1, 2, 3]) }
}

async function withKv(fn: (kv: Deno.Kv, path: string) => Promise<void>): Promise<void> {
  const path = await tempKvPath('data-folder')
  const kv = await Deno.openKv(path)
  try {
    await fn(kv, path)
  } finally {
    kv.close()
  }
}

// ---------------------------------------------------------------------------- planStart (pure)

Deno.test('planStart: no Raft data — a founder starts with init_peerset and itself, a joiner with no voters', () => {
  const none = stored({
    raft: false,
    pins: false,
    conf: { voters: [], learners: [] },
    everMembers: [],
    cluster: null,
  })
  const solo = planStart(none, inputs())
  assert.equal(solo.kind, 'fresh')
  assert.deepEqual(solo.kind === 'fresh' && solo.voters, ['a'])
  const founders = planStart(none, inputs({ initPeerset: ['b', 'a', 'c', 'b'] }))
  assert.deepEqual(founders.kind === 'fresh' && founders.voters, ['b', 'a', 'c'])
  assert.deepEqual(founders.kind === 'fresh' && founders.record, {
    secret: 'fp-1',
    peer: 'a',
    joined: false,
    founders: ['b', 'a', 'c'],
  })
  const joiner = planStart(none, inputs({ bootstrap: true, initPeerset: ['b'] }))
  assert.deepEqual(joiner.kind === 'fresh' && [joiner.voters, joiner.record.joined], [[], true])
  // A pinset without Raft data (a `state import`) is this peer's to found a cluster with, but a
  // join would replace it.
  assert.equal(planStart({ ...none, pins: true }, inputs()).kind, 'fresh')
  assert.match(
    refusal({ ...none, pins: true }, inputs({ bootstrap: true })),
    /^this peer's data folder \(\/var\/lib\/cluster\/raft\) holds a pinset, which joining a cluster with --bootstrap would replace with the cluster's; run "ipfs-cluster-service state cleanup" \(it keeps the data as raft\.old\.0\) or start from a clean folder$/,
  )
})

Deno.test('planStart: a member restarted with its data resumes; nothing to record, nothing said', () => {
  const p = planStart(stored(), inputs())
  assert.deepEqual(p, { kind: 'resume', record: undefined, notes: [] })
  // init_peerset naming the same members (self included or not) is no news.
  assert.deepEqual(
    planStart(stored(), inputs({ initPeerset: ['c', 'b'] })).kind === 'resume' && [],
    [],
  )
  assert.deepEqual(
    (planStart(stored(), inputs({ initPeerset: ['c', 'b'] })) as { notes: string[] }).notes,
    [],
  )
})

Deno.test('planStart: init_peerset is ignored when Raft data exists, and said once if it differs', () => {
  const p = planStart(stored(), inputs({ initPeerset: ['a', 'x', 'y'] }))
  assert.equal(p.kind, 'resume')
  assert.deepEqual((p as { notes: string[] }).notes, [
    'existing Raft state found: consensus.raft.init_peerset is ignored; the stored peerset is a, b, c',
  ])
})

Deno.test('planStart: data of another cluster (another secret) is refused with the fix', () => {
  assert.equal(
    refusal(stored(), inputs({ secretFingerprint: 'fp-2' })),
    `this peer's Raft data (${FOLDER}) belongs to another cluster (it was created with another ` +
      'cluster secret): put that secret back in service.json, or run "ipfs-cluster-service ' +
      'state cleanup" (it keeps the data as ' +
      'raft.old.0) or start from a clean folder',
  )
  // Even with --bootstrap: the cause named is the cluster, not the flag.
  assert.match(
    refusal(stored(), inputs({ secretFingerprint: 'fp-2', bootstrap: true })),
    /another cluster/,
  )
})

Deno.test("planStart: another peer's data (a copied folder) is refused, with or without a record", () => {
  assert.match(
    refusal(stored(), inputs({ self: 'b' })),
    /^this peer's Raft data \(\/var\/lib\/cluster\/raft\) is peer a's, not this peer's \(b\): the folder was copied from another peer or identity\.json changed; run "ipfs-cluster-service state cleanup"/,
  )
  // Data older than records: only the peerset tells.
  assert.match(
    refusal(stored({ cluster: null }), inputs({ self: 'z' })),
    /^this peer's Raft data \(\/var\/lib\/cluster\/raft\) names a peerset without this peer \(z\): the data was copied from another peer; run "ipfs-cluster-service state cleanup"/,
  )
})

Deno.test('planStart: a removed peer is refused with how to join again', () => {
  const removed = stored({ conf: { voters: ['b', 'c'], learners: [] } })
  assert.equal(
    refusal(removed, inputs()),
    `this peer's Raft data (${FOLDER}) says it was removed from its cluster (its stored peerset ` +
      'no longer contains a); run "ipfs-cluster-service state cleanup" and start with ' +
      "--bootstrap <a member's multiaddress> to join again",
  )
})

Deno.test('planStart: --bootstrap on old state is refused with the advice that fits', () => {
  assert.match(
    refusal(stored(), inputs({ bootstrap: true })),
    /^--bootstrap given, but this peer already has Raft data \(\/var\/lib\/cluster\/raft\) as a member of its cluster: start it without --bootstrap to rejoin with that data, or run "ipfs-cluster-service state cleanup" first to join from scratch$/,
  )
  assert.match(
    refusal(stored({ conf: { voters: ['b', 'c'], learners: [] } }), inputs({ bootstrap: true })),
    /^--bootstrap given, but this peer has old Raft data \(\/var\/lib\/cluster\/raft\) of a cluster it is no longer a member of; run "ipfs-cluster-service state cleanup" .* then start with --bootstrap again$/,
  )
})

Deno.test('planStart: a join cut short (its log not yet at its own addition) resumes, --bootstrap or not', () => {
  const joining = stored({
    conf: { voters: ['b', 'c'], learners: [] },
    everMembers: ['b', 'c'],
    cluster: { secret: 'fp-1', peer: 'a', joined: true, founders: [] },
  })
  for (const bootstrap of [false, true]) {
    const p = planStart(joining, inputs({ bootstrap }))
    assert.equal(p.kind, 'resume')
    assert.match((p as { notes: string[] }).notes[0], /had not finished joining/)
  }
  // Without the record of a join, the same data is someone else's.
  assert.equal(planStart({ ...joining, cluster: null }, inputs()).kind, 'refuse')
})

Deno.test('planStart: data older than cluster records resumes and gets one', () => {
  const p = planStart(stored({ cluster: null }), inputs())
  assert.deepEqual(p.kind === 'resume' && p.record, {
    secret: 'fp-1',
    peer: 'a',
    joined: false,
    founders: [],
  })
})

Deno.test('secretFingerprint: stable, case-blind, not the secret, different per secret', async () => {
  const a = await secretFingerprint(SECRET)
  assert.equal(a, await secretFingerprint(SECRET.toUpperCase()))
  assert.notEqual(a, await secretFingerprint(OTHER_SECRET))
  assert.notEqual(await secretFingerprint(''), a)
  assert.match(a, /^[0-9a-f]{32}$/)
  assert.ok(!a.includes('aaaa'))
})

// ------------------------------------------------------- on real data written by real Raft nodes

Deno.test('a single voter: first start records its cluster; a restart resumes with every pin; another secret is refused', async () => {
  const c = new KvCluster(['solo'])
  try {
    // The check runs on the database before consensus opens it, as at a peer's start.
    let n = await c.start('solo')
    const path = n.path
    await c.stop('solo')
    // (KvCluster opened it once already: start again from an empty file at that path.)
    for (const f of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(f).catch(() => {})
    const kv = await Deno.openKv(path)
    const { log, info } = captured()
    const first = await checkDataFolder(kv, {
      folder: FOLDER,
      self: 'solo',
      secret: SECRET,
      initPeerset: [],
      bootstrap: false,
    }, log)
    assert.equal(first.kind, 'fresh')
    assert.deepEqual(info, ['no Raft data: initializing a new Raft cluster with the voters solo'])
    kv.close()

    n = await c.start('solo')
    await n.consensus.ready()
    const pins = await Promise.all([1, 2, 3].map((i) => testPin(i)))
    for (const p of pins) await n.consensus.logPin(p)
    await c.stop('solo')

    const again = await Deno.openKv(path)
    try {
      const s = await readStoredData(again)
      assert.deepEqual([s.raft, s.pins, s.conf.voters, s.cluster?.peer], [
        true,
        true,
        ['solo'],
        'solo',
      ])
      const resumed = await checkDataFolder(again, {
        folder: FOLDER,
        self: 'solo',
        secret: SECRET,
        initPeerset: [],
        bootstrap: false,
      })
      assert.equal(resumed.kind, 'resume')
      await assert.rejects(
        checkDataFolder(again, {
          folder: FOLDER,
          self: 'solo',
          secret: OTHER_SECRET,
          initPeerset: [],
          bootstrap: false,
        }),
        (e: Error) => e instanceof DataFolderError && /belongs to another cluster/.test(e.message),
      )
      await assert.rejects(
        checkDataFolder(again, {
          folder: FOLDER,
          self: 'solo',
          secret: SECRET,
          initPeerset: [],
          bootstrap: true,
        }),
        /start it without --bootstrap/,
      )
      // Nothing was wiped by any of it.
      for (const p of pins) assert.ok(await kvState(again).has(p.cid))
    } finally {
      again.close()
    }
    // The same data resumes on a real node: the pins are there and it leads again.
    n = await c.start('solo')
    await n.consensus.ready()
    for (const p of pins) assert.ok(await n.state.has(p.cid))
  } finally {
    await c.close()
  }
})

Deno.test('three founders: a member stopped while the others write resumes; a peer that left is refused', async () => {
  const c = new KvCluster(['a', 'b', 'c'])
  try {
    await c.startAll()
    const leader = await c.waitLeader()
    const others = ['a', 'b', 'c'].filter((id) => id !== leader.id)
    const [down] = others
    await leader.consensus.logPin(await testPin(1, 'x'))
    await c.converge()
    const downPath = c.get(down).path
    await c.stop(down)
    await leader.consensus.logPin(await testPin(2, 'x'))
    await withOpen(downPath, async (kv) => {
      // Legacy data (no record yet): resumes and gets one.
      const p = await checkDataFolder(kv, {
        folder: FOLDER,
        self: down,
        secret: SECRET,
        initPeerset: ['a', 'b', 'c'],
        bootstrap: false,
      })
      assert.deepEqual([p.kind, p.notes], ['resume', []])
      assert.equal((await kv.get<ClusterRecord>(CLUSTER_RECORD_KEY)).value?.peer, down)
    })
    await c.start(down)

    // The leader leaves (as `--leave` does on it): its own log holds its removal. (A follower
    // removed by the others need not ever receive that entry: the removal commits without it.)
    const gone = leader.id
    const gonePath = leader.path
    await leader.consensus.rmPeer(gone)
    await c.until(
      () => leader.logs.some((l) => l.includes('this peer was removed from the cluster')),
      'the leader applies its own removal',
    )
    await c.stop(gone)
    await withOpen(gonePath, async (kv) => {
      const s = await readStoredData(kv)
      assert.ok(!s.conf.voters.includes(gone) && s.everMembers.includes(gone))
      await assert.rejects(
        checkDataFolder(kv, {
          folder: FOLDER,
          self: gone,
          secret: SECRET,
          initPeerset: [],
          bootstrap: false,
        }),
        (e: Error) =>
          e instanceof DataFolderError && /was removed from its cluster/.test(e.message),
      )
      // Its data copied to a peer that never was a member.
      await assert.rejects(
        checkDataFolder(kv, {
          folder: FOLDER,
          self: 'z',
          secret: SECRET,
          initPeerset: [],
          bootstrap: false,
        }),
        /names a peerset without this peer \(z\)/,
      )
    })
  } finally {
    await c.close()
  }
})

async function withOpen(path: string, fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(path)
  try {
    await fn(kv)
  } finally {
    kv.close()
  }
}

Deno.test('readStoredData: the latest membership of the log wins over the snapshot; a stored membership alone is no state', () =>
  withKv(async (kv) => {
    await writeRaft(kv, { voters: [], learners: [] })
    let s = await readStoredData(kv)
    assert.deepEqual([s.raft, s.pins, s.conf, s.cluster], [false, false, {
      voters: [],
      learners: [],
    }, null])
    await writeRaft(kv, { voters: [], learners: [] }, [
      normalEntry(1, 2),
      confEntry(2, 2, 'addVoter', 'x', { voters: ['a', 'x'], learners: [] }),
      confEntry(3, 2, 'addVoter', 'd', { voters: ['a', 'x', 'd'], learners: [] }),
      confEntry(4, 2, 'removeNode', 'x', { voters: ['a', 'd'], learners: [] }),
    ])
    s = await readStoredData(kv)
    assert.equal(s.raft, true)
    assert.deepEqual(s.conf, { voters: ['a', 'd'], learners: [] })
    assert.deepEqual(s.everMembers.sort(), ['a', 'd', 'x'])
  }))

Deno.test('checkDataFolder: a peer that started to join and then founds a cluster takes its new voters', () =>
  withKv(async (kv) => {
    const base = { folder: FOLDER, self: 'a', secret: SECRET, initPeerset: [] as string[] }
    const join = await checkDataFolder(kv, { ...base, bootstrap: true })
    assert.deepEqual(join.kind === 'fresh' && join.voters, [])
    // Consensus opened it as a joiner (no voters) and nobody ever added it.
    await writeRaft(kv, { voters: [], learners: [] })
    const found = await checkDataFolder(kv, { ...base, initPeerset: ['a', 'b'], bootstrap: false })
    assert.deepEqual(found.kind === 'fresh' && found.voters, ['a', 'b'])
    const s = await KvRaftStorage.open(kv, { initialConf: { voters: ['a', 'b'], learners: [] } })
    assert.deepEqual(
      s.snapshot().confState.voters,
      ['a', 'b'],
      'the joiner membership was forgotten',
    )
    await s.drain()
    assert.equal((await kv.get<ClusterRecord>(CLUSTER_RECORD_KEY)).value?.joined, false)
  }))

Deno.test('checkDataFolder: a join cut short before the log reached its addition resumes', () =>
  withKv(async (kv) => {
    const base = { folder: FOLDER, self: 'd', secret: SECRET, initPeerset: [] as string[] }
    assert.equal((await checkDataFolder(kv, { ...base, bootstrap: true })).kind, 'fresh')
    // It received the start of the leader's log, not yet the entry that adds it.
    await writeRaft(kv, { voters: [], learners: [] }, [
      confEntry(1, 1, 'addVoter', 'a', { voters: ['a'], learners: [] }),
      normalEntry(2, 1),
    ], 3)
    const { log, info } = captured()
    const p = await checkDataFolder(kv, { ...base, bootstrap: false }, log)
    assert.equal(p.kind, 'resume')
    assert.equal(info.length, 1)
    assert.match(info[0], /had not finished joining its cluster/)
  }))

Deno.test('carryOverPeerData (state import): the new database keeps the membership and the cluster record', () =>
  withKv((from) =>
    withKv(async (to) => {
      const inp = {
        folder: FOLDER,
        self: 'a',
        secret: SECRET,
        initPeerset: ['a', 'b'],
        bootstrap: false,
      }
      await checkDataFolder(from, inp)
      await writeRaft(from, { voters: ['a', 'b'], learners: [] }, [normalEntry(1, 1)])
      await carryOverPeerData(from, to)
      const s = await readStoredData(to)
      assert.deepEqual([s.raft, s.conf.voters, s.cluster?.founders], [true, ['a', 'b'], ['a', 'b']])
      await assert.rejects(checkDataFolder(to, { ...inp, secret: OTHER_SECRET }), /another cluster/)
    })
  ))

// ------------------------------------------------------------------------------------ backups

async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) {
      for await (const f of Deno.readDir(join(dir, e.name))) {
        out[`${e.name}/${f.name}`] = await Deno.readTextFile(join(dir, e.name, f.name))
      }
    } else out[e.name] = await Deno.readTextFile(join(dir, e.name))
  }
  return out
}

Deno.test('moveAside: raft → raft.old.0, older backups shift up, at most backups_rotate kept', async () => {
  const root = await Deno.makeTempDir({ prefix: 'backups-' })
  try {
    const folder = join(root, 'raft')
    assert.equal(await moveAside(folder, 3), undefined, 'no folder, nothing to do')
    for (let gen = 1; gen <= 5; gen++) {
      await Deno.mkdir(folder)
      for (const f of ['state.kv', 'state.kv-wal', 'state.kv-shm']) {
        await Deno.writeTextFile(join(folder, f), `gen ${gen}`)
      }
      assert.equal(await moveAside(folder, 3), join(root, 'raft.old.0'))
    }
    const t = await tree(root)
    assert.deepEqual(Object.keys(t).sort(), [
      'raft.old.0/state.kv',
      'raft.old.0/state.kv-shm',
      'raft.old.0/state.kv-wal',
      'raft.old.1/state.kv',
      'raft.old.1/state.kv-shm',
      'raft.old.1/state.kv-wal',
      'raft.old.2/state.kv',
      'raft.old.2/state.kv-shm',
      'raft.old.2/state.kv-wal',
    ])
    assert.deepEqual(
      [0, 1, 2].map((i) => t[`raft.old.${i}/state.kv`]),
      ['gen 5', 'gen 4', 'gen 3'],
      'newest first; the oldest dropped',
    )
    assert.equal(backupName(folder, 2), join(root, 'raft.old.2'))
  } finally {
    await Deno.remove(root, { recursive: true })
  }
})

Deno.test('cleanupDataFolder: data goes to a backup, an empty folder is deleted, a missing one is fine', async () => {
  const root = await Deno.makeTempDir({ prefix: 'cleanup-' })
  try {
    const folder = join(root, 'raft')
    const { log, info } = captured()
    assert.deepEqual(await cleanupDataFolder(folder, 6, log), { kind: 'none' })
    // A start that did nothing: a database without Raft state or pins.
    await Deno.mkdir(folder)
    const empty = await Deno.openKv(join(folder, 'state.kv'))
    await writeRaft(empty, { voters: [], learners: [] })
    empty.close()
    assert.deepEqual(await cleanupDataFolder(folder, 6, log), { kind: 'removed' })
    assert.deepEqual(info, [`cleaning empty Raft data folder (${folder})`])
    await assert.rejects(Deno.stat(folder), Deno.errors.NotFound)

    await Deno.mkdir(folder)
    const kv = await Deno.openKv(join(folder, 'state.kv'))
    await kvState(kv).apply([{ type: 'pin', pin: await testPin(7) }], 1)
    kv.close()
    assert.deepEqual(await cleanupDataFolder(folder, 6, log), {
      kind: 'moved',
      backup: join(root, 'raft.old.0'),
    })
    assert.equal(info[1], `cleaning and backing up Raft data folder (${folder})`)
    const back = await Deno.openKv(join(root, 'raft.old.0', 'state.kv'))
    try {
      assert.ok(await kvState(back).has((await testPin(7)).cid), 'the backup holds the pinset')
    } finally {
      back.close()
    }
    await assert.rejects(Deno.stat(folder), Deno.errors.NotFound)
  } finally {
    await Deno.remove(root, { recursive: true })
  }
})
