/**
 * The embedded connector against real Helia nodes in temp folders: pins, unpins, GC, restarts,
 * v0/v1 CIDs, path resolution, the pin watchdog, and two nodes swapping blocks over bitswap on
 * 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { unixfs } from '@helia/unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { embeddedConnector } from '../../../src/ipfsconn/embedded/connector.ts'
import { type EmbeddedConfig, embeddedSection } from '../../../src/ipfsconn/embedded/config.ts'
import type { IPFSConnector } from '../../../src/components.ts'
import { newPin } from '../../../src/types/pin.ts'
import { multihashKey } from '../../../src/types/cid.ts'
import { ShutdownError, ValidationError } from '../../../src/errors.ts'
import { bytesOf } from './blocks.ts'
import type { Clock } from '../../../src/util/clock.ts'
import { manualClock } from '../../support/manual_clock.ts'
import { waitFor } from '../../support/wait.ts'

/** An in-memory block collection that @helia/unixfs can write DAGs into. */
class MemBlocks {
  map = new Map<string, { cid: CID; bytes: Uint8Array }>()
  put(cid: CID, bytes: Uint8Array) {
    this.map.set(multihashKey(cid), { cid, bytes })
    return Promise.resolve(cid)
  }
  async *get(cid: CID) {
    const b = this.map.get(multihashKey(cid))
    if (!b) throw new Error(`no block ${cid}`)
    yield b.bytes
  }
  has(cid: CID) {
    return Promise.resolve(this.map.has(multihashKey(cid)))
  }
  async *stream() {
    for (const { cid, bytes } of this.map.values()) yield { cid: cid.toString(), bytes }
  }
  get size() {
    return [...this.map.values()].reduce((n, b) => n + b.bytes.byteLength, 0)
  }
}

/** Cuts the input in 1 KiB chunks: small files that still span several blocks. */
async function* kibChunks(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.byteLength
  }
  for (let i = 0; i < all.byteLength; i += 1024) yield all.subarray(i, i + 1024)
}

/** A file of `chunks` 1 KiB leaves plus its root: chunks + 1 blocks. */
async function makeFile(blocks: MemBlocks, chunks: number, seed: number, v0 = false) {
  const fs = unixfs({ blockstore: blocks })
  return await fs.addBytes(bytesOf(chunks * 1024, seed), {
    chunker: kibChunks,
    cidVersion: v0 ? 0 : 1,
    rawLeaves: !v0,
  })
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: 'embedded-test-' })
}

/** The defaults (libp2p on), listening on a free loopback port instead of all interfaces. */
function cfg(over: Partial<EmbeddedConfig> = {}): EmbeddedConfig {
  return { ...embeddedSection.defaults(), listen_multiaddress: ['/ip4/127.0.0.1/tcp/0'], ...over }
}

/**
 * Runs `fn` against a fresh node. These are tests of the local store, so libp2p is off unless
 * asked for: with it on, reading a block that is not there waits for the network (as Kubo's
 * `block/get` does), and `has()` below would wait instead of answering false.
 */
async function withNode(
  fn: (ipfs: IPFSConnector, dir: string) => Promise<void>,
  over: Partial<EmbeddedConfig> = {},
  clock?: Clock,
): Promise<void> {
  const dir = await tempDir()
  const ipfs = embeddedConnector(cfg({ libp2p: false, ...over }), { configDir: dir, clock })
  try {
    await ipfs.ready()
    await fn(ipfs, dir)
  } finally {
    await ipfs.stop()
    await Deno.remove(dir, { recursive: true })
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

async function has(ipfs: IPFSConnector, cid: CID | string): Promise<boolean> {
  try {
    await ipfs.blockGet(cid.toString())
    return true
  } catch {
    return false
  }
}

const recursive = (cid: CID | string) => newPin(cid.toString())
const direct = (cid: CID | string) => newPin(cid.toString(), { mode: 'direct' })

Deno.test('embedded: blockStream, pin, pinLsCid, pinLs, unpin and GC of unpinned blocks', async () => {
  await withNode(async (ipfs) => {
    const mem = new MemBlocks()
    const a = await makeFile(mem, 3, 1)
    const b = await makeFile(mem, 2, 2)
    assert.equal(mem.map.size, 7)
    await ipfs.blockStream(mem.stream())
    assert.equal((await ipfs.repoStat()).repoSize, mem.size)

    const progress: number[] = []
    await ipfs.pin(recursive(a), { onProgress: (n) => progress.push(n) })
    assert.deepEqual(progress, [1, 2, 3, 4])
    assert.equal(await ipfs.pinLsCid(recursive(a)), 'recursive')
    assert.equal(await ipfs.pinLsCid(recursive(b)), 'unpinned')
    const leaf = (await collect(ipfs.pinLs('all'))).find((p) => p.type === 'indirect')
    assert.ok(leaf, 'type=all lists the leaves as indirect')
    assert.equal(await ipfs.pinLsCid(recursive(leaf.cid)), 'indirect')
    assert.deepEqual(await collect(ipfs.pinLs('recursive')), [
      { cid: a.toString(), type: 'recursive' },
    ])
    assert.deepEqual(await collect(ipfs.pinLs('direct')), [])
    await ipfs.pin(recursive(a)) // idempotent

    const removed = await collect(ipfs.repoGC())
    assert.equal(removed.length, 3, 'b and its 2 leaves go')
    assert.ok(removed.every((r) => r.key && CID.parse(r.key).code === raw.code && !r.error))
    assert.ok(
      removed.some((r) => CID.parse(r.key!).multihash.bytes.join() === b.multihash.bytes.join()),
    )
    assert.equal(await has(ipfs, b), false)
    assert.equal(await has(ipfs, a), true)
    assert.equal(
      (await ipfs.repoStat()).repoSize,
      mem.size - [...mem.map.values()]
        .filter((x) =>
          removed.some((r) =>
            CID.parse(r.key!).multihash.bytes.join() === x.cid.multihash.bytes.join()
          )
        )
        .reduce((n, x) => n + x.bytes.byteLength, 0),
    )

    await ipfs.unpin(a.toString())
    await ipfs.unpin(a.toString()) // not pinned: still fine
    assert.equal(await ipfs.pinLsCid(recursive(a)), 'unpinned')
    assert.equal(await ipfs.pinLsCid(recursive(leaf.cid)), 'unpinned')
    assert.equal((await collect(ipfs.repoGC())).length, 4)
    assert.equal((await ipfs.repoStat()).repoSize, 0)
  })
})

Deno.test('embedded: pins, blocks, repo size and the node id survive a restart', async () => {
  const dir = await tempDir()
  const mem = new MemBlocks()
  const a = await makeFile(mem, 2, 3)
  try {
    const one = embeddedConnector(cfg(), { configDir: dir })
    const id1 = await one.id()
    await one.blockStream(mem.stream())
    await one.pin(recursive(a))
    await one.stop()
    await one.stop() // idempotent
    await assert.rejects(one.id(), ShutdownError)

    const two = embeddedConnector(cfg(), { configDir: dir })
    try {
      const id2 = await two.id()
      assert.ok(id1.id?.startsWith('12D3Koo'))
      assert.equal(id2.id, id1.id)
      assert.equal(await two.pinLsCid(recursive(a)), 'recursive')
      assert.equal((await two.repoStat()).repoSize, mem.size)
      assert.deepEqual(await collect(two.repoGC()), [])
      assert.equal(await has(two, a), true)
    } finally {
      await two.stop()
    }
    assert.ok((await Deno.stat(`${dir}/ipfs/blocks`)).isDirectory, 'folder is under configDir')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('embedded: direct pins hold the root only; upgrading to recursive', async () => {
  await withNode(async (ipfs) => {
    const mem = new MemBlocks()
    const a = await makeFile(mem, 3, 4)
    await ipfs.blockStream(mem.stream())
    await ipfs.pin(direct(a))
    assert.equal(await ipfs.pinLsCid(direct(a)), 'direct')
    assert.deepEqual(await collect(ipfs.pinLs('direct')), [{ cid: a.toString(), type: 'direct' }])
    assert.deepEqual(await collect(ipfs.pinLs('recursive')), [])
    assert.equal((await collect(ipfs.repoGC())).length, 3, 'the leaves are not held')
    assert.equal(await has(ipfs, a), true)

    // Re-adding the leaves and pinning recursively upgrades the pin in place.
    await ipfs.blockStream(mem.stream())
    await ipfs.pin(recursive(a))
    assert.equal(await ipfs.pinLsCid(recursive(a)), 'recursive')
    assert.deepEqual(await collect(ipfs.repoGC()), [])
    // As Kubo: a direct pin of a recursively pinned CID is an error, not a silent downgrade.
    await assert.rejects(ipfs.pin(direct(a)), /already pinned recursively/)
    await ipfs.unpin(a.toString())
    assert.equal((await collect(ipfs.repoGC())).length, 4, 'the upgrade did not double-count')
  })
})

Deno.test('embedded: v0 and v1 CIDs of the same content are one pin', async () => {
  await withNode(async (ipfs) => {
    const mem = new MemBlocks()
    const v0 = await makeFile(mem, 2, 5, true)
    assert.equal(v0.version, 0)
    const v1 = v0.toV1()
    await ipfs.blockStream(mem.stream())
    await ipfs.pin(recursive(v0))
    assert.equal(await ipfs.pinLsCid(recursive(v1)), 'recursive')
    assert.equal(await ipfs.pinLsCid(recursive(v0)), 'recursive')
    const listed = await collect(ipfs.pinLs('recursive'))
    assert.equal(listed.length, 1)
    // Helia keys pins by v1: compare by multihash, as the cluster does.
    assert.equal(multihashKey(CID.parse(listed[0].cid)), multihashKey(v0))
    await ipfs.pin(recursive(v1)) // the same pin: nothing to do
    assert.equal((await collect(ipfs.pinLs('all'))).filter((p) => p.type === 'recursive').length, 1)
    await ipfs.unpin(v1.toString())
    assert.equal(await ipfs.pinLsCid(recursive(v0)), 'unpinned')
    assert.equal(await ipfs.resolve(`/ipfs/${v0}`), v0.toString())
  })
})

Deno.test('embedded: pins sharing blocks keep them through unpin/re-pin (Helia pins.rm bug)', async () => {
  await withNode(async (ipfs) => {
    const mem = new MemBlocks()
    const fs = unixfs({ blockstore: mem })
    const shared = await makeFile(mem, 2, 6)
    const a = await fs.cp(shared, await fs.addDirectory(), 'a.bin')
    const b = await fs.cp(shared, await fs.addDirectory(), 'b.bin')
    await ipfs.blockStream(mem.stream())
    // Concurrent pins sharing blocks must not lose each other's counts.
    await Promise.all([ipfs.pin(recursive(a)), ipfs.pin(recursive(b))])
    await ipfs.unpin(a.toString())
    await ipfs.pin(recursive(a))
    await ipfs.unpin(b.toString())
    await collect(ipfs.repoGC())
    assert.equal(await has(ipfs, shared), true, 'a still needs the shared file')
    await ipfs.unpin(a.toString())
    await collect(ipfs.repoGC())
    assert.equal(await has(ipfs, shared), false)
  })
})

Deno.test('embedded: resolve walks UnixFS paths; IPNS and bad paths get clear errors', async () => {
  await withNode(async (ipfs) => {
    const mem = new MemBlocks()
    const fs = unixfs({ blockstore: mem })
    const file = await makeFile(mem, 1, 7)
    const sub = await fs.cp(file, await fs.addDirectory(), 'file.txt')
    const root = await fs.cp(sub, await fs.addDirectory(), 'docs')
    await ipfs.blockStream(mem.stream())
    assert.equal(await ipfs.resolve(`/ipfs/${root}/docs/file.txt`), file.toString())
    assert.equal(await ipfs.resolve(`${root}/docs`), sub.toString())
    assert.equal(await ipfs.resolve(`/ipfs/${root}/docs/`), sub.toString())
    assert.equal(await ipfs.resolve(`/ipfs/${root}`), root.toString())
    await assert.rejects(ipfs.resolve(`/ipfs/${root}/nope`), /cannot resolve/)
    await assert.rejects(ipfs.resolve(`/ipns/k51qzi5uqu5d`), /does not support IPNS/)
    await assert.rejects(ipfs.resolve('/ipfs/notacid/x'), ValidationError)
  })
})

Deno.test('embedded: blockStream rejects bytes that do not match the CID', async () => {
  await withNode(async (ipfs) => {
    const good = new TextEncoder().encode('hello')
    const cid = CID.createV1(raw.code, await sha256.digest(good))
    async function* one() {
      yield { cid: cid.toString(), bytes: new TextEncoder().encode('hellO') }
    }
    await assert.rejects(ipfs.blockStream(one()), ValidationError)
    assert.equal(await has(ipfs, cid), false)
    assert.equal((await ipfs.repoStat()).repoSize, 0)
  })
})

Deno.test('embedded: configKey, repoStat storage max, id and swarm with libp2p off', async () => {
  await withNode(async (ipfs) => {
    assert.equal(await ipfs.configKey('Datastore/StorageMax'), '1.5GiB')
    await assert.rejects(ipfs.configKey('Datastore/GCPeriod'), /key not found/)
    assert.deepEqual(await ipfs.repoStat(), { repoSize: 0, storageMax: 1.5 * 1024 ** 3 })
    assert.deepEqual((await ipfs.id()).addresses, [])
    assert.deepEqual(await ipfs.swarmPeers(), [])
    await ipfs.connectSwarms([
      '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLcq6hKWsUPgJbWvJtDyDJLAMn6ZFSHXmQvDGvLGSfEVQ',
    ])
  }, { storage_max: '1.5GiB' })
  assert.throws(
    () => embeddedConnector(cfg({ storage_max: 'lots' }), { configDir: '/tmp' }),
    /storage_max/,
  )
})

Deno.test('embedded: a pin of a missing block fails cleanly (libp2p off, and on with no peers)', async () => {
  const leaks: unknown[] = []
  const onLeak = (e: PromiseRejectionEvent) => {
    leaks.push(e.reason)
    e.preventDefault()
  }
  globalThis.addEventListener('unhandledrejection', onLeak)
  try {
    const missing = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('absent')))
    await withNode(async (ipfs) => {
      // The tracker names the operation and the CID: the error must not ("pin <cid>: pin <cid>:").
      await assert.rejects(ipfs.pin(recursive(missing)), /^IPFSError: (?!pin )[^\n]*libp2p is off/)
      assert.equal(await ipfs.pinLsCid(recursive(missing)), 'unpinned')

      // A DAG missing its last leaf: the blocks held before the failure are released again.
      const mem = new MemBlocks()
      const file = await makeFile(mem, 3, 9)
      const leaves = [...mem.map.values()].filter((b) => b.cid.code === raw.code)
      mem.map.delete(multihashKey(leaves[leaves.length - 1].cid))
      await ipfs.blockStream(mem.stream())
      await assert.rejects(ipfs.pin(recursive(file)), /libp2p is off/)
      assert.equal(await ipfs.pinLsCid(recursive(file)), 'unpinned', 'no hold left on the root')
      assert.equal((await collect(ipfs.repoGC())).length, 3)
    })
    const clock = manualClock()
    await withNode(
      async (ipfs) => {
        const pin = ipfs.pin(recursive(missing))
        let failure: unknown
        pin.catch((err) => failure = err)
        await waitFor(() => clock.pending() === 1, { what: 'the watchdog to be armed' })
        await clock.advance(299)
        assert.equal(failure, undefined, 'still waiting at 299 ms')
        await clock.advance(1)
        await assert.rejects(pin, /no block arrived for 300ms/)
        // A caller's abort wins over the watchdog and is reported as such.
        const ac = new AbortController()
        const aborted = ipfs.pin(recursive(missing), { signal: ac.signal })
        await waitFor(() => clock.pending() === 1, { what: 'the second watchdog' })
        ac.abort(new DOMException('caller gave up', 'TimeoutError'))
        await assert.rejects(aborted, (err: Error) => err.name === 'TimeoutError')
        assert.equal(await ipfs.pinLsCid(recursive(missing)), 'unpinned')
      },
      { libp2p: true, pin_timeout: 300 },
      clock,
    )
    assert.deepEqual(leaks, [])
  } finally {
    globalThis.removeEventListener('unhandledrejection', onLeak)
  }
})

Deno.test('embedded: on loopback, B pins a DAG only A has', async () => {
  const dirA = await tempDir()
  const dirB = await tempDir()
  const a = embeddedConnector(cfg(), { configDir: dirA })
  const b = embeddedConnector(cfg({ pin_timeout: 5000 }), { configDir: dirB })
  try {
    const mem = new MemBlocks()
    const fs = unixfs({ blockstore: mem })
    const file = await makeFile(mem, 20, 8)
    const empty = await fs.addDirectory()
    const dir = await fs.cp(file, empty, 'data.bin')
    await a.blockStream(mem.stream())
    const idA = await a.id()
    const idB = await b.id()
    assert.notEqual(idA.id, idB.id)
    assert.ok(
      idA.addresses.length > 0 && idA.addresses.every((x) => x.startsWith('/ip4/127.0.0.1/tcp/')),
    )
    assert.ok(idA.addresses[0].endsWith(`/p2p/${idA.id}`))

    await b.connectSwarms(idA.addresses)
    assert.deepEqual(await b.swarmPeers(), [idA.id])
    let last = 0
    await b.pin(recursive(dir), { onProgress: (n) => last = n })
    assert.equal(last, 22)
    assert.equal(await b.pinLsCid(recursive(dir)), 'recursive')
    assert.equal(await b.resolve(`/ipfs/${dir}/data.bin`), file.toString())
    assert.deepEqual(await collect(b.repoGC()), [])
    // Everything A has but the empty directory the DAG was built from.
    const emptySize = mem.map.get(multihashKey(empty))!.bytes.byteLength
    assert.equal((await b.repoStat()).repoSize, mem.size - emptySize)
    assert.equal(await has(b, file), true)

    // A third node reaches A through the pin's origins alone, as the Kubo connector does.
    const dirC = await tempDir()
    const c = embeddedConnector(cfg({ pin_timeout: 5000 }), { configDir: dirC })
    try {
      assert.deepEqual(await c.swarmPeers(), [])
      await c.pin(newPin(file.toString(), { origins: idA.addresses }))
      assert.deepEqual(await c.swarmPeers(), [idA.id])
      assert.equal(await c.pinLsCid(recursive(file)), 'recursive')
    } finally {
      await c.stop()
      await Deno.remove(dirC, { recursive: true })
    }
  } finally {
    await b.stop()
    await a.stop()
    await Deno.remove(dirA, { recursive: true })
    await Deno.remove(dirB, { recursive: true })
  }
})
