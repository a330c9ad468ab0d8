/**
 * The embedded connector's parts on their own: size parsing, the locks, the DAG walker and the
 * pin records under concurrency (with a datastore slow enough to interleave updates).
 */
import assert from 'node:assert/strict'
import { unixfs } from '@helia/unixfs'
import * as cborg from 'cborg'
import { Key } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import { createHeliaLight } from 'helia'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { parseStorageSize } from '../../../src/ipfsconn/embedded/storage_size.ts'
import { KeyedMutex, RWLock } from '../../../src/ipfsconn/embedded/locks.ts'
import { type CodecLoader, walkDag } from '../../../src/ipfsconn/embedded/walker.ts'
import { type PinDatastore, PinStore } from '../../../src/ipfsconn/embedded/pin_store.ts'
import { multihashKey } from '../../../src/types/cid.ts'

const tick = () => new Promise((r) => setTimeout(r, 1))

Deno.test('parseStorageSize reads Kubo-style sizes', () => {
  assert.equal(parseStorageSize('10GB'), 10_000_000_000)
  assert.equal(parseStorageSize('10G'), 10_000_000_000)
  assert.equal(parseStorageSize('1.5 GiB'), 1.5 * 1024 ** 3)
  assert.equal(parseStorageSize('512mib'), 512 * 1024 ** 2)
  assert.equal(parseStorageSize('42'), 42)
  assert.equal(parseStorageSize('0'), 0)
  assert.throws(() => parseStorageSize('10 GBs'), /invalid size "10 GBs".*KiB/)
  assert.throws(() => parseStorageSize('-1GB'), /invalid size/)
})

Deno.test('RWLock: readers share, a writer waits for them, later readers wait for the writer', async () => {
  const lock = new RWLock()
  const order: string[] = []
  const r1 = await lock.read()
  const r2 = await lock.read()
  const w = lock.write().then((rel) => (order.push('w'), rel))
  const r3 = lock.read().then((rel) => (order.push('r3'), rel))
  await tick()
  assert.deepEqual(order, [])
  r1()
  r1() // idempotent
  await tick()
  assert.deepEqual(order, [])
  r2()
  const wRel = await w
  await tick()
  assert.deepEqual(order, ['w'])
  wRel()
  ;(await r3)()
  assert.deepEqual(order, ['w', 'r3'])
  // An abandoned wait leaves the queue.
  const held = await lock.read()
  const ac = new AbortController()
  const gone = lock.write(ac.signal)
  ac.abort(new Error('gave up'))
  await assert.rejects(gone, /gave up/)
  held()
  ;(await lock.write())()
})

Deno.test('KeyedMutex serializes per key and runs other keys concurrently', async () => {
  const m = new KeyedMutex()
  const log: string[] = []
  const job = (k: string, n: string) =>
    m.run(k, async () => {
      log.push(`${n}+`)
      await tick()
      log.push(`${n}-`)
    })
  await Promise.all([job('a', '1'), job('a', '2'), job('b', '3')])
  assert.ok(log.indexOf('1-') < log.indexOf('2+'))
  assert.ok(log.indexOf('3+') < log.indexOf('1-'))
})

class MemBlocks {
  map = new Map<string, Uint8Array>()
  gets = 0
  inflight = 0
  maxInflight = 0
  put(cid: CID, bytes: Uint8Array) {
    this.map.set(multihashKey(cid), bytes)
    return Promise.resolve(cid)
  }
  has(cid: CID) {
    return Promise.resolve(this.map.has(multihashKey(cid)))
  }
  async *get(cid: CID) {
    this.gets++
    this.inflight++
    this.maxInflight = Math.max(this.maxInflight, this.inflight)
    try {
      await tick()
      const b = this.map.get(multihashKey(cid))
      if (!b) throw Object.assign(new Error(`no ${cid}`), { name: 'NotFoundError' })
      yield b
    } finally {
      this.inflight--
    }
  }
}

// Helia's codec table (dag-pb, raw, dag-cbor…); the node is never started.
const codecs: CodecLoader = createHeliaLight().getCodec

Deno.test('walkDag visits a repeated block once, prefetches boundedly and honours depth', async () => {
  const mem = new MemBlocks()
  const fs = unixfs({ blockstore: mem })
  // 8 identical 1 KiB chunks: the root links the same raw leaf 8 times.
  const root = await fs.addBytes(new Uint8Array(8 * 1024).fill(1), {
    chunker: async function* (src) {
      for await (const b of src) {
        for (let i = 0; i < b.length; i += 1024) yield b.subarray(i, i + 1024)
      }
    },
  })
  mem.gets = 0
  const seen: string[] = []
  for await (const n of walkDag(root, mem, codecs, { prefetch: 3 })) seen.push(n.cid.toString())
  assert.equal(seen.length, 2, 'root + the one leaf')
  assert.equal(mem.gets, 2)
  assert.equal((await Array.fromAsync(walkDag(root, mem, codecs, { depth: 0 }))).length, 1)

  // A wide directory: prefetch keeps several gets in flight, never more than asked.
  let dir = await fs.addDirectory()
  for (let i = 0; i < 12; i++) {
    dir = await fs.cp(await fs.addBytes(new Uint8Array([i])), dir, `f${i}`)
  }
  mem.maxInflight = 0
  const all = await Array.fromAsync(walkDag(dir, mem, codecs, { prefetch: 4 }))
  assert.equal(all.length, 13)
  assert.ok(mem.maxInflight > 1 && mem.maxInflight <= 4, `max in flight ${mem.maxInflight}`)

  // A missing block: skipped when onMissing says so, an error otherwise.
  const leaf = all[1].cid
  mem.map.delete(multihashKey(leaf))
  const skipped: string[] = []
  const rest = await Array.fromAsync(
    walkDag(dir, mem, codecs, { onMissing: (c) => (skipped.push(c.toString()), true) }),
  )
  assert.equal(rest.length, 12)
  assert.deepEqual(skipped, [leaf.toString()])
  await assert.rejects(Array.fromAsync(walkDag(dir, mem, codecs)), /no /)
})

/** A datastore whose reads take a while, so that concurrent updates interleave. */
class SlowDatastore implements PinDatastore {
  map = new Map<string, Uint8Array>()
  async get(key: Key) {
    const v = this.map.get(key.toString())
    // Answers what was there when asked: a slow disk read.
    await tick()
    if (!v) throw Object.assign(new Error('not found'), { name: 'NotFoundError' })
    return v
  }
  put(key: Key, value: Uint8Array) {
    this.map.set(key.toString(), value)
    return key
  }
  has(key: Key) {
    return this.map.has(key.toString())
  }
  delete(key: Key) {
    this.map.delete(key.toString())
  }
  *query(q: { prefix?: string }) {
    for (const [k, value] of this.map) {
      if (k.startsWith(q.prefix ?? '')) yield { key: new Key(k), value }
    }
  }
}

Deno.test('PinStore: concurrent pins sharing a block both hold it; unpins release it once each', async () => {
  const ds = new SlowDatastore()
  const store = new PinStore(ds)
  const block = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
  const a = CID.createV1(raw.code, await sha256.digest(new Uint8Array([2])))
  const b = CID.createV1(raw.code, await sha256.digest(new Uint8Array([3])))
  const walk = (root: CID) =>
    (async function* () {
      yield { cid: root, bytes: new Uint8Array(), depth: 0 }
      yield { cid: block, bytes: new Uint8Array(), depth: 1 }
    })()
  await Promise.all([store.add(a, Infinity, walk(a)), store.add(b, Infinity, walk(b))])
  assert.equal(await store.isPinned(block), true)
  // The record counts both pins (a lost update would leave one, and the first unpin would free it).
  const [record] = [...ds.map].filter(([k]) => k.startsWith('/pinned-block/')).filter(([, v]) =>
    (cborg.decode(v) as { pinnedBy: Uint8Array[] }).pinnedBy.length === 2
  )
  assert.ok(record, 'the shared block is held by both pins')
  assert.deepEqual(
    (await Array.fromAsync(store.ls())).map((p) => p.cid.toString()).sort(),
    [a.toString(), b.toString()].sort(),
  )
  // Re-adding (or a walk meeting the block again) does not count a pin twice.
  await store.add(a, Infinity, walk(a))
  assert.equal(await store.rm(a, () => walk(a)), true)
  assert.equal(await store.rm(a, () => walk(a)), false, 'a second unpin is a no-op')
  assert.equal(await store.isPinned(block), true, 'b still holds it')
  assert.equal(await store.isPinned(a), false)
  await store.rm(b, () => walk(b))
  assert.equal(await store.isPinned(block), false)
  assert.equal(ds.map.size, 0, 'no record left behind')
})
