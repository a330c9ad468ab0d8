/**
 * The Kubo connector against real Kubo daemons (two, loopback only): every call of the
 * reference's §7 on content added to the daemon, plus the cases only a real daemon shows
 * (bitswap through origins, a real stalled pin, pins batched into one request around a stalled
 * one, a unix-socket API).
 */
import assert from 'node:assert/strict'
import type { IPFSConnector } from '../../../src/components.ts'
import { IPFSError } from '../../../src/errors.ts'
import { ipfsHttpConnector } from '../../../src/ipfsconn/ipfshttp/connector.ts'
import { multihashKey, parseCid } from '../../../src/types/cid.ts'
import { newPin } from '../../../src/types/pin.ts'
import { type KuboDaemon, startKubo } from '../../support/kubo.ts'
import { cidV0, rawBlock, testConfig, waitFor } from './helpers.ts'

const text = (s: string) => new TextEncoder().encode(s)

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const v of it) out.push(v)
  return out
}

Deno.test('ipfshttp connector against real Kubo daemons', async (t) => {
  let a: KuboDaemon | undefined
  let b: KuboDaemon | undefined
  let ipfs: IPFSConnector | undefined
  try {
    ;[a, b] = await Promise.all([startKubo({ unixSocket: true }), startKubo()])
    const A = a
    const B = b
    const conn = ipfsHttpConnector(testConfig(A.apiMultiaddr, { pin_timeout: 1500 }))
    ipfs = conn

    await t.step('ready, id', async () => {
      await conn.ready(AbortSignal.timeout(10_000))
      const id = await conn.id()
      assert.equal(id.id, A.peerId)
      assert.ok(id.addresses.some((x) => x.startsWith('/ip4/127.0.0.1/tcp/')), String(id.addresses))
      assert.equal(id.error, '')
    })

    await t.step('configKey Datastore/StorageMax and errors', async () => {
      assert.equal(await conn.configKey('Datastore/StorageMax'), '10GB')
      assert.equal(await conn.configKey('Routing/Type'), 'none')
      await assert.rejects(conn.configKey('Datastore/Nope'), {
        message: 'key not found in configuration',
      })
    })

    await t.step('repoStat', async () => {
      const st = await conn.repoStat()
      assert.equal(st.storageMax, 10_000_000_000)
      assert.ok(st.repoSize > 0)
    })

    await t.step('pin recursive, with progress; pinLsCid; idempotent', async () => {
      const cid = await A.add(text('recursive pin content'))
      assert.equal(await conn.pinLsCid(newPin(cid)), 'unpinned')
      const seen: number[] = []
      await conn.pin(newPin(cid), { onProgress: (n) => seen.push(n) })
      assert.ok(seen.length > 0 && seen[seen.length - 1] >= 1, `progress ${seen}`)
      assert.equal(await conn.pinLsCid(newPin(cid)), 'recursive')
      await conn.pin(newPin(cid))
      assert.equal(await conn.pinLsCid(newPin(cid, { mode: 'direct' })), 'unpinned')
    })

    await t.step('pin direct; pinLs lists recursive and direct; unpin twice', async () => {
      const rec = await A.add(text('listed recursive'))
      const dir = await A.add(text('listed direct'))
      await conn.pin(newPin(rec))
      await conn.pin(newPin(dir, { mode: 'direct' }))
      assert.equal(await conn.pinLsCid(newPin(dir, { mode: 'direct' })), 'direct')
      const all = await collect(conn.pinLs('all'))
      assert.ok(all.some((p) => p.cid === rec && p.type === 'recursive'))
      assert.ok(all.some((p) => p.cid === dir && p.type === 'direct'))
      const direct = await collect(conn.pinLs('direct'))
      assert.deepEqual(direct, [{ cid: dir, type: 'direct' }])
      assert.ok((await collect(conn.pinLs('recursive'))).every((p) => p.type === 'recursive'))
      await conn.unpin(dir)
      assert.equal(await conn.pinLsCid(newPin(dir, { mode: 'direct' })), 'unpinned')
      await conn.unpin(dir) // Kubo: "not pinned or pinned indirectly" ⇒ success
    })

    await t.step('pin_update keeps the old pin and pins the new one', async () => {
      const from = await A.add(text('version 1'))
      const to = await A.add(text('version 2'))
      await conn.pin(newPin(from))
      await conn.pin(newPin(to, { pin_update: from }))
      assert.equal(await conn.pinLsCid(newPin(to)), 'recursive')
      assert.equal(await conn.pinLsCid(newPin(from)), 'recursive')
    })

    await t.step('resolve with a sub-path, without /ipfs/, and a bare CID', async () => {
      const file = await A.add(text('inside a directory'))
      const dir = await A.add(text('inside a directory'), { wrap: 'hi.txt' })
      assert.notEqual(dir, file)
      assert.equal(await conn.resolve(`/ipfs/${dir}/hi.txt`), file)
      assert.equal(await conn.resolve(`${dir}/hi.txt`), file)
      assert.equal(await conn.resolve(`/ipfs/${dir}`), dir)
      await assert.rejects(
        conn.resolve(`/ipfs/${dir}/nope.txt`),
        (e: Error) => e instanceof IPFSError && /IPFS error \(resolve\?arg=/.test(e.message),
      )
    })

    await t.step('blockGet returns the raw block', async () => {
      const bytes = text('raw leaf bytes')
      const cid = await A.add(bytes, { rawLeaves: true, cidVersion: 1 })
      assert.deepEqual(await conn.blockGet(cid), bytes)
    })

    const streamed = Array.from(
      { length: 300 },
      (_, i) => rawBlock(`streamed block ${i} `.repeat(20)),
    )
    await t.step(
      'blockStream sends 300 blocks in one request; they are readable, not pinned',
      async () => {
        async function* gen() {
          for (const blk of streamed) yield blk
        }
        await conn.blockStream(gen())
        for (const i of [0, 150, 299]) {
          assert.deepEqual(await conn.blockGet(streamed[i].cid), streamed[i].bytes)
        }
        assert.equal(await conn.pinLsCid(newPin(streamed[0].cid)), 'unpinned')
      },
    )

    await t.step('repoGC removes the unpinned blocks', async () => {
      const removed = new Set<string>()
      for await (const item of conn.repoGC()) {
        assert.equal(item.error, undefined)
        if (item.key) {
          removed.add(multihashKey(parseCid(item.key)))
        }
      }
      for (const blk of streamed) assert.ok(removed.has(multihashKey(parseCid(blk.cid))))
    })

    await t.step('connectSwarms and swarmPeers', async () => {
      assert.deepEqual(await conn.swarmPeers(), []) // Kubo sends "Peers": null
      await conn.connectSwarms(['/ip4/127.0.0.1/tcp/1/p2p/' + B.peerId, ...B.swarmAddrs])
      assert.deepEqual(await conn.swarmPeers(), [B.peerId])
    })

    await t.step('pin with origins fetches content only the other daemon has', async () => {
      // Disconnect first, so only the origin dial can bring B back.
      await fetch(
        `${A.apiUrl}/api/v0/swarm/disconnect?arg=${encodeURIComponent(B.swarmAddrs[0])}`,
        {
          method: 'POST',
        },
      ).then((r) => r.body?.cancel())
      assert.deepEqual(await conn.swarmPeers(), [])
      const cid = await B.add(text('only on B'))
      await conn.pin(newPin(cid, { origins: B.swarmAddrs }), {
        signal: AbortSignal.timeout(15_000),
      })
      assert.equal(await conn.pinLsCid(newPin(cid)), 'recursive')
    })

    await t.step(
      'watchdog cancels a pin of content nobody has (Kubo sends {} while stuck)',
      async () => {
        // Real time against a real daemon; the exact timing is covered on a manual clock
        // (connector_double.test.ts). Timers never fire early, so only a lower bound is checked.
        const missing = cidV0('nobody has this ' + crypto.randomUUID())
        const t0 = performance.now()
        await assert.rejects(conn.pin(newPin(missing)), /made no progress for 1\.5s: cancelled/)
        const ms = performance.now() - t0
        assert.ok(ms >= 1400, `${ms} ms`)
      },
    )

    await t.step(
      'pins asked together: one pin/add pins them all; a CID nobody has holds no other',
      async () => {
        const add = (tag: string) => A.add(text(`batched ${tag} ${crypto.randomUUID()}`))
        const present = await Promise.all(['a', 'b', 'c'].map(add))
        await Promise.all(present.map((c) => conn.pin(newPin(c))))
        for (const c of present) assert.equal(await conn.pinLsCid(newPin(c)), 'recursive')
        // Kubo pins its arguments one after the other: the batch waits on the missing one, is
        // given up after PIN_BATCH_PATIENCE_MS, and each pin goes alone.
        const [x, y] = await Promise.all(['x', 'y'].map(add))
        const missing = cidV0('batched but missing ' + crypto.randomUUID())
        const [rx, rm, ry] = await Promise.allSettled(
          [x, missing, y].map((c) => conn.pin(newPin(c))),
        )
        assert.equal(rx.status, 'fulfilled')
        assert.equal(ry.status, 'fulfilled')
        assert.equal(rm.status, 'rejected')
        assert.match(String((rm as PromiseRejectedResult).reason), /made no progress for 1\.5s/)
        for (const c of [x, y]) assert.equal(await conn.pinLsCid(newPin(c)), 'recursive')
      },
    )

    await t.step('abort signal cancels a pin in flight', async () => {
      const missing = cidV0('also missing ' + crypto.randomUUID())
      await assert.rejects(conn.pin(newPin(missing), { signal: AbortSignal.timeout(300) }), {
        name: 'TimeoutError',
      })
    })

    await t.step('unix socket API address', async () => {
      const viaUnix = ipfsHttpConnector(testConfig(A.apiUnixMultiaddr!))
      try {
        assert.equal((await viaUnix.id()).id, A.peerId)
        const cid = await A.add(text('pinned over a unix socket'))
        await viaUnix.pin(newPin(cid))
        assert.equal(await conn.pinLsCid(newPin(cid)), 'recursive')
      } finally {
        await viaUnix.stop()
      }
    })

    await t.step('errors carry the reference texts', async () => {
      await assert.rejects(conn.blockGet('bafkreiabc'), {
        name: 'IPFSRequestError',
        message:
          'IPFS error (block/get?arg=bafkreiabc). Code: 500. Message: invalid path "bafkreiabc": ' +
          'path does not have enough components',
      })
    })

    await t.step('stop() is idempotent and ends calls in flight', async () => {
      const sent: string[] = []
      const own = ipfsHttpConnector(testConfig(A.apiMultiaddr), {
        // The requests written on each connection, as text.
        dial: async (t) => {
          if ('unixPath' in t) throw new Error('a TCP address was configured')
          const conn = await Deno.connect({ hostname: t.hostname, port: t.port })
          const write = conn.write.bind(conn)
          conn.write = (p) => (sent.push(new TextDecoder().decode(p)), write(p))
          return conn
        },
      })
      const pinning = own.pin(newPin(cidV0('stop me ' + crypto.randomUUID())))
      pinning.catch(() => {})
      await waitFor(() => sent.some((u) => u.includes('/pin/add?')), { what: 'pin/add sent' })
      await own.stop()
      await own.stop()
      await assert.rejects(pinning, { name: 'ShutdownError' })
      await conn.stop()
      await conn.stop()
    })
  } finally {
    await ipfs?.stop()
    await Promise.all([a?.stop(), b?.stop()])
  }
})
