/**
 * The adder's destinations, in-process: blocks stream to every allocated peer (one streaming call
 * each), a destination that fails is dropped while the others go on and the pin keeps the
 * allocation, every destination failing fails the add with each reason, and `local` sends to this
 * peer only, which takes the last allocation's place unless the user chose the allocations.
 */
import { deepEqual, equal, match, rejects } from 'node:assert/strict'
import { contentAdder } from '../../src/adder/content.ts'
import type { Block } from '../../src/adder/content.ts'
import { addParamsFromQuery } from '../../src/adder/add_params.ts'
import { MultipartReader } from '../../src/api/common/multipart.ts'
import type { Pin } from '../../src/types/pin.ts'
import { FAKE_PEER_ID, fakeCluster } from '../support/fake_cluster.ts'

const OTHER_A = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
const OTHER_B = '12D3KooWKgTqKJsfvvoEDmWYtGbKYAHNfXu9dZ6ZxsTaRPk3nXmz'

/** A multipart body of one file of `size` bytes (4 chunks of the default chunker and more). */
function upload(size: number): MultipartReader {
  const boundary = 'b0undary'
  // Each 256 KiB chunk differs from the others (identical ones travel once).
  const content = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 18)) & 0xff)
  const head = new TextEncoder().encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  )
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`)
  return new MultipartReader(ReadableStream.from([head, content, tail]), boundary)
}

/** An adder whose destinations record blocks; `failing` peers fail on their first block. */
function setup(allocations: string[], failing: string[] = []) {
  const cluster = fakeCluster()
  cluster.blockAllocate = () => Promise.resolve(allocations)
  const received = new Map<string, string[]>()
  const add = contentAdder({
    self: FAKE_PEER_ID,
    cluster,
    async blockStream(peer, blocks: AsyncIterable<Block>) {
      const got: string[] = []
      received.set(peer, got)
      for await (const b of blocks) {
        if (failing.includes(peer)) throw new Error(`${peer.slice(-4)} is full`)
        got.push(b.cid)
      }
    },
  })
  const run = async (query: string, size = 1_100_000) => {
    const outs = []
    for await (
      const o of add(
        upload(size),
        addParamsFromQuery(new URLSearchParams(query)),
        AbortSignal.timeout(10_000),
      )
    ) outs.push(o)
    return outs
  }
  const committed = () =>
    cluster.calls.filter((c) => c.method === 'commitPin').map((c) => c.args[0] as Pin)
  return { run, received, committed }
}

Deno.test('adder: every block to every destination; the root pinned on them', async () => {
  const s = setup([OTHER_A, OTHER_B])
  const outs = await s.run('')
  const root = outs[outs.length - 1]
  deepEqual(root.allocations, [OTHER_A, OTHER_B])
  deepEqual([...s.received.keys()], [OTHER_A, OTHER_B])
  equal(s.received.get(OTHER_A)!.length, 6, '5 leaves and the root')
  deepEqual(s.received.get(OTHER_A), s.received.get(OTHER_B))
  equal(s.received.get(OTHER_A)!.at(-1), root.cid)
  const [pin] = s.committed()
  equal(pin.cid, root.cid)
  deepEqual(pin.allocations, [OTHER_A, OTHER_B])
  equal(pin.mode, 'recursive')
})

Deno.test('adder: a failing destination is dropped; the others get everything; all failing fails the add', async () => {
  const one = setup([OTHER_A, OTHER_B], [OTHER_B])
  const outs = await one.run('')
  equal(one.received.get(OTHER_A)!.length, 6)
  // Still allocated: the peer fetches the content when it pins (as the reference).
  deepEqual(one.committed()[0].allocations, [OTHER_A, OTHER_B])
  equal(outs.at(-1)!.cid, one.committed()[0].cid)

  const all = setup([OTHER_A, OTHER_B], [OTHER_A, OTHER_B])
  await rejects(all.run(''), (err: Error) => {
    match(err.message, /^failed to put block on all destinations: /)
    match(err.message, /mQ5 is full/)
    match(err.message, /Xmz is full/)
    return true
  })
  equal(all.committed().length, 0, 'nothing pinned')
})

Deno.test('adder: local sends to this peer only, which replaces the last allocation', async () => {
  const s = setup([OTHER_A, OTHER_B])
  const outs = await s.run('local=true')
  deepEqual([...s.received.keys()], [FAKE_PEER_ID])
  deepEqual(outs.at(-1)!.allocations, [OTHER_A, FAKE_PEER_ID])
  deepEqual(s.committed()[0].allocations, [OTHER_A, FAKE_PEER_ID])

  const chosen = setup([OTHER_A, OTHER_B])
  await chosen.run(`local=true&user-allocations=${OTHER_A},${OTHER_B}`)
  deepEqual([...chosen.received.keys()], [FAKE_PEER_ID])
  deepEqual(chosen.committed()[0].allocations, [OTHER_A, OTHER_B], 'the user’s choice stays')
})

Deno.test('adder: replication -1 pins with no allocations; no-pin commits nothing', async () => {
  const s = setup([FAKE_PEER_ID, OTHER_A, OTHER_B])
  await s.run('replication-min=-1&replication-max=-1', 1000)
  equal(s.received.size, 3)
  deepEqual(s.committed()[0].allocations, [])
  const n = setup([OTHER_A])
  await n.run('no-pin=true', 1000)
  equal(n.received.get(OTHER_A)!.length, 1)
  equal(n.committed().length, 0)
})
