/**
 * Depth-limited pins (shard pins, `max_depth` 1) through the Kubo connector, against real Kubo
 * 0.43 daemons. Kubo has no depth-limited pin: the reference's `pin/add?max-depth=1` is ignored
 * and pins the whole DAG below (measured here: it fails offline on a missing grandchild). The
 * connector pins the node and the blocks it links direct, the node last; a peer pinning a shard
 * fetches the shard's blocks and nothing below them; unpinning drops those direct pins and
 * leaves a block pinned recursively by someone else alone.
 */
import assert from 'node:assert/strict'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { linkMapBlock } from '../../../src/adder/sharding.ts'
import { ipfsHttpConnector } from '../../../src/ipfsconn/ipfshttp/connector.ts'
import { blockLinks } from '../../../src/ipfsconn/ipfshttp/links.ts'
import { newPin, type Pin } from '../../../src/types/pin.ts'
import { type KuboDaemon, startKubo } from '../../support/kubo.ts'
import { rawBlock, testConfig } from './helpers.ts'

type Block = { cid: string; bytes: Uint8Array }

async function* blocks(...bs: Block[]): AsyncGenerator<Block> {
  yield* bs
}

/** A dag-pb node linking to `to`. */
async function pbNode(to: string): Promise<Block> {
  const bytes = dagPb.encode(
    dagPb.prepare({ Links: [{ Hash: CID.parse(to), Name: 'x', Tsize: 7 }] }),
  )
  return { cid: CID.createV1(0x70, await sha256.digest(bytes)).toString(), bytes }
}

/** The shard of three blocks: two raw leaves and a dag-pb node whose child is `deep`. */
async function shard(tag: string) {
  const deep = rawBlock(`${tag} below the shard`)
  const [l1, l2] = [rawBlock(`${tag} leaf 1`), rawBlock(`${tag} leaf 2`)]
  const node = await pbNode(deep.cid)
  const s = await linkMapBlock([l1.cid, l2.cid, node.cid])
  const pin: Pin = { ...newPin(s.cid), type: 'shard-pin', max_depth: 1 }
  return { deep, l1, l2, node, s, pin }
}

async function api(k: KuboDaemon, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${k.apiUrl}/api/v0/${path}`, { method: 'POST' })
  return { status: r.status, body: await r.text() }
}

/** How the daemon pins a CID: recursive, direct, indirect or unpinned. */
async function pinType(k: KuboDaemon, cid: string): Promise<string> {
  const { status, body } = await api(k, `pin/ls?arg=${cid}&type=all`)
  if (status !== 200) return 'unpinned'
  return (Object.values(JSON.parse(body).Keys)[0] as { Type: string }).Type.split(' ')[0]
}

async function hasBlock(k: KuboDaemon, cid: string): Promise<boolean> {
  return (await api(k, `block/stat?arg=${cid}&offline=true`)).status === 200
}

Deno.test('depth-limited pins through the Kubo connector', async (t) => {
  let a: KuboDaemon | undefined
  let b: KuboDaemon | undefined
  try {
    ;[a, b] = await Promise.all([startKubo({ offline: true }), startKubo()])
    const A = a
    const conn = ipfsHttpConnector(testConfig(A.apiMultiaddr))

    await t.step('blockLinks reads the shard node (dag-cbor) and dag-pb links', async () => {
      const x = await shard('links')
      assert.deepEqual(blockLinks(x.s.cid, x.s.bytes), [x.l1.cid, x.l2.cid, x.node.cid])
      assert.deepEqual(blockLinks(x.node.cid, x.node.bytes), [x.deep.cid])
      assert.deepEqual(blockLinks(x.l1.cid, x.l1.bytes), [])
    })

    await t.step('Kubo ignores max-depth: the reference pin/add needs the whole DAG', async () => {
      const x = await shard('kubo')
      await conn.blockStream(blocks(x.l1, x.l2))
      await conn.blockStream(blocks(x.node))
      await conn.blockStream(blocks(x.s))
      const r = await api(A, `pin/add?arg=${x.s.cid}&max-depth=1&recursive=true`)
      assert.equal(r.status, 500)
      assert.match(r.body, /block was not found locally \(offline\)/)
      assert.match(r.body, new RegExp(x.deep.cid))
    })

    await t.step(
      'pin: the node and its children direct, nothing below; status pinned',
      async () => {
        const x = await shard('pin')
        await conn.blockStream(blocks(x.l1, x.l2))
        await conn.blockStream(blocks(x.node))
        await conn.blockStream(blocks(x.s))
        assert.equal(await conn.pinLsCid(x.pin), 'unpinned')
        await conn.pin(x.pin) // offline, without the block below the shard: depth 1 only
        for (const c of [x.s, x.l1, x.l2, x.node]) assert.equal(await pinType(A, c.cid), 'direct')
        assert.equal(await pinType(A, x.deep.cid), 'unpinned')
        assert.equal(await conn.pinLsCid(x.pin), 'direct')
        await conn.pin(x.pin) // again: nothing changes
        assert.equal(await conn.pinLsCid(x.pin), 'direct')
        // A shard whose node is recursively pinned (as the reference pins it) counts as pinned.
        const y = await shard('recursive')
        await conn.blockStream(blocks(y.l1, y.l2))
        await conn.blockStream(blocks(y.deep))
        await conn.blockStream(blocks(y.node))
        await conn.blockStream(blocks(y.s))
        assert.equal((await api(A, `pin/add?arg=${y.s.cid}&recursive=true`)).status, 200)
        assert.equal(await conn.pinLsCid(y.pin), 'recursive')
        await conn.pin(y.pin) // children already pinned (indirectly) and the node recursively: fine
      },
    )

    await t.step(
      'unpin: drops the direct pins below, keeps a block pinned recursively by someone else',
      async () => {
        const x = await shard('unpin')
        await conn.blockStream(blocks(x.l1, x.l2))
        await conn.blockStream(blocks(x.node))
        await conn.blockStream(blocks(x.s))
        await conn.pin(x.pin)
        // Someone pins leaf 2 recursively (a direct pin becomes a recursive one).
        assert.equal((await api(A, `pin/add?arg=${x.l2.cid}&recursive=true`)).status, 200)
        await conn.unpin(x.s.cid, undefined, 1)
        assert.equal(await pinType(A, x.s.cid), 'unpinned')
        assert.equal(await pinType(A, x.l1.cid), 'unpinned')
        assert.equal(await pinType(A, x.node.cid), 'unpinned')
        assert.equal(await pinType(A, x.l2.cid), 'recursive')
        assert.equal(await conn.pinLsCid(x.pin), 'unpinned')
        await conn.unpin(x.s.cid, undefined, 1) // again: done already
        // Without the depth (a data pin's unpin), only the CID itself is unpinned.
        const z = await shard('plain')
        await conn.blockStream(blocks(z.l1, z.l2))
        await conn.blockStream(blocks(z.node))
        await conn.blockStream(blocks(z.s))
        await conn.pin(z.pin)
        await conn.unpin(z.s.cid)
        assert.equal(await pinType(A, z.s.cid), 'unpinned')
        assert.equal(await pinType(A, z.l1.cid), 'direct')
      },
    )

    await t.step(
      'another peer pinning the shard fetches its blocks and nothing below',
      async () => {
        const B = b!
        const x = await shard('remote')
        // Another online daemon holds the whole DAG, the block below the shard included.
        const c = await startKubo()
        try {
          const conC = ipfsHttpConnector(testConfig(c.apiMultiaddr))
          await conC.blockStream(blocks(x.l1, x.l2, x.deep))
          await conC.blockStream(blocks(x.node))
          await conC.blockStream(blocks(x.s))
          await conC.stop()
          const conB = ipfsHttpConnector(testConfig(B.apiMultiaddr))
          assert.equal(
            (await api(B, `swarm/connect?arg=${encodeURIComponent(c.swarmAddrs[0])}`)).status,
            200,
          )
          await conB.pin(x.pin, { signal: AbortSignal.timeout(60_000) })
          for (const blk of [x.s, x.l1, x.l2, x.node]) {
            assert.ok(await hasBlock(B, blk.cid), blk.cid)
          }
          assert.equal(
            await hasBlock(B, x.deep.cid),
            false,
            'the block below the shard stayed away',
          )
          assert.equal(await conB.pinLsCid(x.pin), 'direct')
          await conB.unpin(x.s.cid, undefined, 1)
          assert.equal(await pinType(B, x.l1.cid), 'unpinned')
          await conB.stop()
        } finally {
          await c.stop()
        }
      },
    )
    await conn.stop()
  } finally {
    await Promise.all([a?.stop(), b?.stop()])
  }
})
