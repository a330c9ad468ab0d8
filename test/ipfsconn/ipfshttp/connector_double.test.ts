/**
 * The Kubo connector against the Kubo-shaped double: request shapes, pins batched into one
 * request and taken apart again when the batch fails, the progress watchdog,
 * error texts, lenient parsing, the transport-failure rate limit, unix sockets and aborts.
 */
import assert from 'node:assert/strict'
import { IPFSError, ShutdownError } from '../../../src/errors.ts'
import {
  ipfsHttpConnector,
  PIN_BATCH_PATIENCE_MS,
} from '../../../src/ipfsconn/ipfshttp/connector.ts'
import type { Http1Target } from '../../../src/ipfsconn/ipfshttp/http1.ts'
import { newPin } from '../../../src/types/pin.ts'
import { kuboError, startKuboDouble } from '../../support/kubo_double.ts'
import { cidV0, rawBlock, testConfig, waitFor } from './helpers.ts'
import { type ManualClock, manualClock, recordingClock } from '../../support/manual_clock.ts'

const A = cidV0('a')
const dialReal = (t: Http1Target) =>
  'unixPath' in t
    ? Deno.connect({ transport: 'unix', path: t.unixPath })
    : Deno.connect({ hostname: t.hostname, port: t.port })
const B = cidV0('b')

async function withDouble(
  fn: (d: Awaited<ReturnType<typeof startKuboDouble>>) => Promise<void>,
  opts: Parameters<typeof startKuboDouble>[0] = {},
) {
  const d = await startKuboDouble(opts)
  try {
    await fn(d)
  } finally {
    await d.stop()
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const v of it) out.push(v)
  return out
}

Deno.test('pin: recursive and direct pins send the reference query shapes', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    await ipfs.pin(newPin(B, { mode: 'direct' }))
    // One request a pin: no pin/ls first (docs/compat.md). (Depth-limited pins, which Kubo
    // lacks, are pinned block by block: depth_pin.test.ts.)
    assert.deepEqual(d.state.requests, [
      `pin/add?arg=${A}&recursive=true&progress=true`,
      `pin/add?arg=${B}&recursive=false&progress=true`,
    ])
    assert.equal(await ipfs.pinLsCid(newPin(A)), 'recursive')
    assert.equal(await ipfs.pinLsCid(newPin(B, { mode: 'direct' })), 'direct')
    // A direct pin is not a recursive one.
    assert.equal(await ipfs.pinLsCid(newPin(B)), 'unpinned')
    await ipfs.stop()
  })
})

Deno.test('pin: already pinned at the right depth ⇒ the one pin/add succeeds, nothing else is asked', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    await ipfs.pin(newPin(A))
    assert.equal(d.state.calls.get('pin/add'), 2)
    assert.equal(d.state.calls.get('pin/ls'), undefined)
    assert.equal(await ipfs.pinLsCid(newPin(A)), 'recursive')
    // Recursive ⇒ direct is a different depth: Kubo refuses it, and the error reaches the caller.
    await assert.rejects(
      ipfs.pin(newPin(A, { mode: 'direct' })),
      (e: Error) => e instanceof IPFSError && /already pinned recursively/.test(e.message),
    )
    await ipfs.stop()
  })
})

Deno.test('pin: pins asked for together share one pin/add, one per depth', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const [C, D] = [cidV0('c'), cidV0('d')]
    await Promise.all([
      ipfs.pin(newPin(A)),
      ipfs.pin(newPin(B)),
      ipfs.pin(newPin(C, { mode: 'direct' })),
      ipfs.pin(newPin(D)),
    ])
    assert.deepEqual(
      d.state.requests.sort(),
      [
        `pin/add?arg=${A}&arg=${B}&arg=${D}&recursive=true&progress=true`,
        `pin/add?arg=${C}&recursive=false&progress=true`,
      ].sort(),
    )
    for (const c of [A, B, D]) assert.equal(await ipfs.pinLsCid(newPin(c)), 'recursive')
    assert.equal(await ipfs.pinLsCid(newPin(C, { mode: 'direct' })), 'direct')
    // Asked one after the other, each is its own request, as before.
    d.state.requests.length = 0
    await ipfs.pin(newPin(cidV0('e')))
    await ipfs.pin(newPin(cidV0('f')))
    assert.equal(d.state.requests.length, 2)
    await ipfs.stop()
  })
})

Deno.test('pin: a batch refused as a whole goes again pin by pin, each caller with its own outcome', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    d.state.requests.length = 0
    // Kubo refuses a direct pin of a recursively pinned CID, and with it the whole request.
    const [a, b] = await Promise.allSettled([
      ipfs.pin(newPin(A, { mode: 'direct' })),
      ipfs.pin(newPin(B, { mode: 'direct' })),
    ])
    assert.equal(a.status, 'rejected')
    assert.match(String((a as PromiseRejectedResult).reason), /already pinned recursively/)
    assert.equal(b.status, 'fulfilled')
    assert.equal(await ipfs.pinLsCid(newPin(B, { mode: 'direct' })), 'direct')
    assert.deepEqual(pinAdds(d), [
      `pin/add?arg=${A}&arg=${B}&recursive=false&progress=true`,
      ...[
        `pin/add?arg=${A}&recursive=false&progress=true`,
        `pin/add?arg=${B}&recursive=false&progress=true`,
      ].sort(),
    ])
    await ipfs.stop()
  })
})

/** The pin/add requests the double saw, the batch (most args, sorted first) first. */
const pinAdds = (d: Awaited<ReturnType<typeof startKuboDouble>>) =>
  d.state.requests.filter((r) => r.startsWith('pin/add')).sort((x, y) =>
    y.split('arg=').length - x.split('arg=').length || (x < y ? -1 : 1)
  )

/** A double whose pin/add of several CIDs never answers (blocks being fetched, say). */
const hangingBatches = (d: Awaited<ReturnType<typeof startKuboDouble>>) => {
  d.state.override = (r) =>
    r.endpoint === 'pin/add' && r.params.getAll('arg').length > 1
      ? new Response(new ReadableStream({ start() {} }), {
        headers: { 'content-type': 'application/json', 'x-chunked-output': '1' },
      })
      : undefined
}

Deno.test('pin: a batch not done after PIN_BATCH_PATIENCE_MS is cancelled; each pin goes alone', async () => {
  const clock = manualClock()
  await withDouble(async (d) => {
    hangingBatches(d)
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr), { clock })
    let done = 0
    const pins = [A, B].map((c) => ipfs.pin(newPin(c)).then(() => done++))
    await waitFor(() => d.state.requests.length === 1)
    await clock.advance(PIN_BATCH_PATIENCE_MS - 1)
    assert.equal(d.state.requests.length, 1, 'the batch is still given its time')
    await clock.advance(1)
    await Promise.all(pins)
    assert.equal(done, 2)
    assert.deepEqual(
      d.state.requests.slice(1).sort(),
      [
        `pin/add?arg=${A}&recursive=true&progress=true`,
        `pin/add?arg=${B}&recursive=true&progress=true`,
      ].sort(),
    )
    await ipfs.stop()
  }, { clock })
})

Deno.test("pin: a caller's abort cancels its batch; the others are pinned alone", async () => {
  await withDouble(async (d) => {
    hangingBatches(d)
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const ac = new AbortController()
    const [C] = [cidV0('c')]
    const a = ipfs.pin(newPin(A))
    const b = ipfs.pin(newPin(B), { signal: ac.signal })
    const c = ipfs.pin(newPin(C))
    await waitFor(() => d.state.requests.length === 1)
    ac.abort(new Error('replaced'))
    await assert.rejects(b, /replaced/)
    await Promise.all([a, c])
    assert.equal(await ipfs.pinLsCid(newPin(B)), 'unpinned')
    assert.deepEqual(
      pinAdds(d).slice(1),
      [
        `pin/add?arg=${A}&recursive=true&progress=true`,
        `pin/add?arg=${C}&recursive=true&progress=true`,
      ].sort(),
    )
    await ipfs.stop()
  })
})

/**
 * A pin whose progress lines come from a double ticking on `clock`, with the connector's
 * watchdog on the same clock: `step(ms)` moves time and then waits (for real I/O, not for
 * time) until the connector has read the lines that became due.
 */
async function progressingPin(
  d: Awaited<ReturnType<typeof startKuboDouble>>,
  clock: ManualClock,
  pinTimeout: number,
) {
  const ipfs = ipfsHttpConnector(testConfig(d.multiaddr, { pin_timeout: pinTimeout }), { clock })
  const seen: number[] = []
  let outcome: { at: number; err?: Error } | undefined
  const t0 = clock.now()
  const pinning = ipfs.pin(newPin(A), { onProgress: (n) => seen.push(n) }).then(
    () => void (outcome = { at: clock.now() - t0 }),
    (err) => void (outcome = { at: clock.now() - t0, err }),
  )
  await waitFor(() => (d.state.calls.get('pin/add') ?? 0) === 1)
  return {
    ipfs,
    seen,
    pinning,
    outcome: () => outcome,
    async step(ms: number, lines: number) {
      await clock.advance(ms)
      await waitFor(() => seen.length >= lines || outcome !== undefined)
    },
  }
}

Deno.test('pin: progress is reported and a slow but progressing pin is not cancelled', async () => {
  const clock = manualClock()
  await withDouble(async (d) => {
    d.state.pinProgress = { steps: 6, intervalMs: 100 } // growth every 100 ms, 600 ms in all
    const p = await progressingPin(d, clock, 250)
    for (let i = 1; i <= 6; i++) await p.step(100, i)
    await p.pinning
    assert.equal(p.outcome()?.err, undefined)
    assert.equal(p.outcome()?.at, 600, 'pinned when the last line came, never cancelled')
    assert.deepEqual(p.seen, [1, 2, 3, 4, 5, 6])
    assert.equal(await p.ipfs.pinLsCid(newPin(A)), 'recursive')
    await p.ipfs.stop()
  }, { clock })
})

Deno.test('pin: the watchdog cancels a pin whose progress stalls for pin_timeout', async () => {
  const clock = manualClock()
  await withDouble(async (d) => {
    // Progress reaches 2 at 100 ms, then the same line repeats every 50 ms forever.
    d.state.pinProgress = { steps: 10, intervalMs: 50, stallAt: 2 }
    const p = await progressingPin(d, clock, 300)
    await p.step(50, 1)
    await p.step(50, 2)
    await p.step(100, 4) // two repeats of 2: no growth
    await p.step(199, 7) // 399 ms: 299 ms after the last growth
    assert.equal(p.outcome(), undefined, 'alive 1 ms before the timeout')
    assert.deepEqual(p.seen, [1, 2, 2, 2, 2, 2, 2])
    await clock.advance(1)
    await p.pinning
    const { at, err } = p.outcome()!
    assert.ok(err instanceof IPFSError, String(err))
    assert.match(err.message, new RegExp(`IPFS pin of ${A} made no progress for 300ms: cancelled`))
    assert.equal(at, 400, 'cancelled 300 ms after the last growth (100 ms)')
    assert.equal(await p.ipfs.pinLsCid(newPin(A)), 'unpinned')
    await p.ipfs.stop()
  }, { clock })
})

Deno.test('pin: a stream that ends without its Pins line is verified with pin/ls', async () => {
  await withDouble(async (d) => {
    // Kubo reports mid-stream failures only in a trailer, which the connector does not act on.
    d.state.override = (r) =>
      r.endpoint === 'pin/add' ? new Response('{"Progress":1}\n{"Progress":2}\n') : undefined
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await assert.rejects(ipfs.pin(newPin(A)), /ended without pinning it/)
    await ipfs.stop()
  })
})

Deno.test('pin: origins are swarm-connected (at most 10) before pinning', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const origins = Array.from(
      { length: 12 },
      (_, i) =>
        `/ip4/127.0.0.1/tcp/${4000 + i}/p2p/12D3KooWHf94SXiWMQDT5A4VmowpPJhzHnMai6i93ACvdhmS9U6k`,
    )
    d.state.pinProgress = { steps: 3, intervalMs: 50 }
    await ipfs.pin(newPin(A, { origins }))
    assert.deepEqual(new Set(d.state.connected), new Set(origins.slice(0, 10)))
    const connectReq = d.state.requests.find((r) => r.startsWith('swarm/connect'))!
    assert.equal(connectReq, `swarm/connect?arg=${encodeURIComponent(origins[0])}`)
    await ipfs.stop()
  })
})

Deno.test('pin: pin_update uses pin/update only when the old CID is pinned recursively', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    await ipfs.pin(newPin(B, { pin_update: A }))
    assert.ok(d.state.requests.includes(`pin/update?arg=${A}&arg=${B}&unpin=false`))
    assert.equal(await ipfs.pinLsCid(newPin(A)), 'recursive', 'from stays pinned')
    assert.equal(await ipfs.pinLsCid(newPin(B)), 'recursive')
    // from not pinned ⇒ a normal pin/add
    const C = cidV0('c')
    await ipfs.pin(newPin(C, { pin_update: cidV0('nope') }))
    assert.ok(d.state.requests.includes(`pin/add?arg=${C}&recursive=true&progress=true`))
    assert.equal(d.state.calls.get('pin/update'), 1)
    await ipfs.stop()
  })
})

Deno.test('unpin: not pinned is success; unpin_disable refuses', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    await ipfs.unpin(A)
    assert.equal(await ipfs.pinLsCid(newPin(A)), 'unpinned')
    await ipfs.unpin(A) // Kubo: "not pinned or pinned indirectly"
    d.state.override = (r) =>
      r.endpoint === 'pin/rm' ? kuboError(`Failed to remove pin: ${A} is not pinned`) : undefined
    await ipfs.unpin(A) // js-ipfs wording
    d.state.override = (r) => r.endpoint === 'pin/rm' ? kuboError('disk on fire') : undefined
    await assert.rejects(
      ipfs.unpin(A),
      { message: `IPFS error (pin/rm?arg=${A}). Code: 500. Message: disk on fire` },
    )
    await ipfs.stop()
    const off = ipfsHttpConnector(testConfig(d.multiaddr, { unpin_disable: true }))
    await assert.rejects(off.unpin(A), {
      name: 'IPFSError',
      message: 'ipfs unpinning is disallowed by configuration on this peer',
    })
    await off.stop()
  })
})

Deno.test('pinLs: all lists recursive and direct pins; a non-stream answer is read too', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    await ipfs.pin(newPin(A))
    await ipfs.pin(newPin(B, { mode: 'direct' }))
    const all = await collect(ipfs.pinLs('all'))
    assert.deepEqual(all, [{ cid: A, type: 'recursive' }, { cid: B, type: 'direct' }])
    assert.deepEqual(await collect(ipfs.pinLs('direct')), [{ cid: B, type: 'direct' }])
    assert.ok(d.state.requests.includes('pin/ls?stream=true&type=recursive'))
    assert.ok(d.state.requests.includes('pin/ls?stream=true&type=direct'))
    // A daemon that ignores stream=true; CIDv1 keys come back canonical.
    const v1 = rawBlock('x').cid
    d.state.override = (r) =>
      r.endpoint === 'pin/ls' && r.params.get('type') === 'recursive'
        ? Response.json({ Keys: { [v1]: { Type: 'recursive' } } })
        : undefined
    assert.deepEqual(await collect(ipfs.pinLs('recursive')), [{ cid: v1, type: 'recursive' }])
    // pinLsCid finds the CID in a Keys answer by multihash.
    d.state.override = (r) =>
      r.endpoint === 'pin/ls' ? Response.json({ Keys: { [A]: { Type: 'recursive' } } }) : undefined
    assert.equal(await ipfs.pinLsCid(newPin(A)), 'recursive')
    await ipfs.stop()
  })
})

Deno.test('errors: JSON bodies and other bodies give the reference texts', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    d.state.override = () => kuboError('boom')
    await assert.rejects(ipfs.repoStat(), {
      name: 'IPFSRequestError',
      message: 'IPFS error (repo/stat?size-only=true). Code: 500. Message: boom',
    })
    d.state.override = () => new Response('gateway down', { status: 502 })
    await assert.rejects(ipfs.id(), {
      message: 'IPFS request failed (is it running?) (id). Code 502: gateway down',
    })
    d.state.override = () => new Response('404 page not found', { status: 404 })
    await assert.rejects(ipfs.swarmPeers(), {
      message: 'IPFS request failed (is it running?) (swarm/peers). Code 404: 404 page not found',
    })
    await ipfs.stop()
  })
})

Deno.test('errors: malformed answers are IPFSErrors, not crashes', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    d.state.override = (r) => r.endpoint === 'id' ? new Response('{"ID": "12D3') : undefined
    await assert.rejects(
      ipfs.id(),
      (e: Error) => e instanceof IPFSError && /error decoding IPFS response \(id\)/.test(e.message),
    )
    d.state.override = (r) => r.endpoint === 'id' ? Response.json({ ID: 'not-a-peer' }) : undefined
    await assert.rejects(ipfs.id(), /invalid peer ID/)
    d.state.override = (r) => r.endpoint === 'id' ? Response.json([1, 2]) : undefined
    await assert.rejects(ipfs.id(), /unexpected IPFS response \(id\)/)
    d.state.override = (r) =>
      r.endpoint === 'pin/ls'
        ? new Response(`{"Cid":"${A}","Type":"recursive"}\nnot json\n`)
        : undefined
    await assert.rejects(
      collect(ipfs.pinLs('recursive')),
      /error decoding IPFS response \(pin\/ls\?stream=true&type=recursive\)/,
    )
    d.state.override = (r) =>
      r.endpoint === 'pin/ls' ? new Response(`{"Cid":"${A}","Type":"weird"}\n`) : undefined
    await assert.rejects(ipfs.pinLsCid(newPin(A)), /unexpected pin in IPFS response/)
    d.state.override = (r) =>
      r.endpoint === 'repo/stat' ? Response.json({ RepoSize: 'lots', StorageMax: 1 }) : undefined
    await assert.rejects(ipfs.repoStat(), /invalid RepoSize: "lots"/)
    // A Kubo error object sent as a stream value ends the stream with it.
    d.state.override = (r) =>
      r.endpoint === 'pin/ls'
        ? new Response(
          `{"Cid":"${A}","Type":"recursive"}\n{"Message":"ctx done","Code":0,"Type":"error"}\n`,
        )
        : undefined
    await assert.rejects(collect(ipfs.pinLs('recursive')), /Message: ctx done/)
    await ipfs.stop()
  })
})

Deno.test('lenient: numbers as strings, Peers null or [], ID addresses with junk', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    d.state.numbersAsStrings = true
    d.state.repoSize = 615063
    assert.deepEqual(await ipfs.repoStat(), { repoSize: 615063, storageMax: 10_000_000_000 })
    d.state.pinProgress = { steps: 2, intervalMs: 20 }
    const seen: number[] = []
    await ipfs.pin(newPin(A), { onProgress: (n) => seen.push(n) }) // {"Progress":"1"}
    assert.deepEqual(seen, [1, 2])
    assert.deepEqual(await ipfs.swarmPeers(), []) // "Peers": null
    d.state.peersNullWhenEmpty = false
    assert.deepEqual(await ipfs.swarmPeers(), []) // "Peers": []
    const p = '12D3KooWHf94SXiWMQDT5A4VmowpPJhzHnMai6i93ACvdhmS9U6k'
    d.state.swarmPeers = [p, 'garbage']
    assert.deepEqual(await ipfs.swarmPeers(), [p])
    d.state.override = (r) =>
      r.endpoint === 'id'
        ? Response.json({ ID: p, Addresses: ['/ip4/127.0.0.1/tcp/1', 7, 'nope'] })
        : undefined
    assert.deepEqual(await ipfs.id(), { id: p, addresses: ['/ip4/127.0.0.1/tcp/1'], error: '' })
    d.state.override = (r) =>
      r.endpoint === 'id' ? Response.json({ ID: p, Addresses: null }) : undefined
    assert.deepEqual((await ipfs.id()).addresses, [])
    await ipfs.stop()
  })
})

Deno.test('configKey walks every level of an A/B/C path', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    d.state.config.A = { B: { C: 42 } }
    assert.equal(await ipfs.configKey('Datastore/StorageMax'), '10GB')
    assert.equal(await ipfs.configKey('A/B/C'), 42)
    assert.deepEqual(await ipfs.configKey('A/B'), { C: 42 })
    await assert.rejects(ipfs.configKey('A/X'), { message: 'key not found in configuration' })
    await assert.rejects(ipfs.configKey('A/B/C/D'), { message: 'invalid path' })
    await ipfs.stop()
  })
})

Deno.test('resolve: bare /ipfs/<cid> needs no request; answers must be immutable', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const v1 = rawBlock('leaf').cid
    assert.equal(await ipfs.resolve(`/ipfs/${A}`), A)
    assert.equal(await ipfs.resolve(A), A)
    assert.equal(d.state.calls.get('resolve') ?? 0, 0)
    d.state.resolveMap.set(`/ipfs/${A}/dir/file.txt`, v1)
    assert.equal(await ipfs.resolve(`/ipfs/${A}/dir/file.txt`), v1)
    assert.equal(await ipfs.resolve(`${A}/dir/file.txt`), v1)
    assert.ok(
      d.state.requests.includes(`resolve?arg=${encodeURIComponent(`/ipfs/${A}/dir/file.txt`)}`),
    )
    d.state.override = (r) =>
      r.endpoint === 'resolve' ? Response.json({ Path: '/ipns/k51xyz' }) : undefined
    await assert.rejects(ipfs.resolve('/ipns/example.com'), /resolved path is mutable/)
    d.state.override = undefined
    await assert.rejects(
      ipfs.resolve(`/ipfs/${A}/missing`),
      /IPFS error \(resolve\?arg=.*\)\. Code: 500\. Message: no link named/,
    )
    await assert.rejects(ipfs.resolve('/ipfs/notacid/x'), { name: 'ValidationError' })
    await ipfs.stop()
  })
})

Deno.test('blockStream: one multipart block/put, every block confirmed; blockGet reads back', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const blocks = Array.from({ length: 50 }, (_, i) => rawBlock(`block ${i}`))
    let produced = 0
    async function* gen() {
      for (const b of blocks) {
        produced++
        yield b
      }
    }
    await ipfs.blockStream(gen())
    assert.equal(produced, 50)
    assert.equal(d.state.calls.get('block/put'), 1)
    assert.deepEqual(d.state.requests.filter((r) => r.startsWith('block/put')), [
      'block/put?allow-big-block=true&cid-codec=raw&mhlen=32&mhtype=sha2-256&pin=false',
    ])
    assert.equal(d.state.blocks.size, 50)
    assert.deepEqual(await ipfs.blockGet(blocks[7].cid), blocks[7].bytes)
    await assert.rejects(ipfs.blockGet(rawBlock('absent').cid), /block was not found locally/)
    await ipfs.stop()
  })
})

Deno.test('blockStream: missing confirmations, empty streams and producer errors', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const blocks = [rawBlock('one'), rawBlock('two'), rawBlock('three')]
    // A daemon that stores only one block per request (js-ipfs does this).
    d.state.override = async (r) => {
      if (r.endpoint !== 'block/put') return undefined
      await r.request.arrayBuffer()
      return new Response(JSON.stringify({ Key: blocks[2].cid, Size: 5 }) + '\n')
    }
    await assert.rejects(
      ipfs.blockStream((async function* () {
        yield* blocks
      })()),
      /IPFS did not confirm 2 of the blocks sent \(first: bafk/,
    )
    d.state.override = undefined
    await assert.rejects(
      ipfs.blockStream((async function* () {})()),
      { message: 'BlockStream: no blocks to peek in blocks channel' },
    )
    const boom = new Error('chunker failed')
    await assert.rejects(
      ipfs.blockStream((async function* () {
        yield blocks[0]
        await new Promise((r) => setTimeout(r, 20))
        throw boom
      })()),
      (e) => e === boom,
    )
    // Not counted as a transport failure: the next call goes through at once.
    assert.ok((await ipfs.id()).id)
    await ipfs.stop()
  })
})

Deno.test('repoGC streams removed keys and errors', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const blocks = [rawBlock('g1'), rawBlock('g2')]
    await ipfs.blockStream((async function* () {
      yield* blocks
    })())
    d.state.gcErrors = ['could not remove x']
    const items = await collect(ipfs.repoGC())
    assert.deepEqual(items, [{ key: blocks[0].cid }, { key: blocks[1].cid }, {
      error: 'could not remove x',
    }])
    assert.ok(d.state.requests.includes('repo/gc?stream-errors=true'))
    await ipfs.stop()
  })
})

Deno.test('transport failures: after 10 in a row, 1 request per second until one succeeds', async () => {
  await withDouble(async (d) => {
    let failNext = 13
    const clock = recordingClock()
    const sleeps = clock.sleeps
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr), {
      dial: (t) => {
        if (failNext > 0) {
          failNext--
          return Promise.reject(
            new Deno.errors.ConnectionRefused('Connection refused (os error 111)'),
          )
        }
        return dialReal(t)
      },
      clock,
    })
    for (let i = 0; i < 10; i++) {
      await assert.rejects(
        ipfs.id(),
        (e: Error) =>
          e instanceof IPFSError &&
          /^Post "http:\/\/127\.0\.0\.1:\d+\/api\/v0\/id": .*Connection refused/.test(e.message),
      )
    }
    assert.deepEqual(sleeps, [], 'no limit up to 10 failures')
    // Go's limiter has a tick ready when the limit starts, so the first limited request passes.
    await assert.rejects(ipfs.id()) // 11th failure: 10 so far, not limited
    await assert.rejects(ipfs.id()) // 12th: limited, takes the free slot
    assert.deepEqual(sleeps, [])
    await assert.rejects(ipfs.id()) // 13th: waits for the next slot, 1 s later
    await ipfs.id() // 14th succeeds, one more second later
    assert.deepEqual(sleeps, [1000, 1000])
    await ipfs.id()
    await ipfs.id()
    assert.deepEqual(sleeps, [1000, 1000], 'lifted after a success')
    await ipfs.stop()
  })
})

Deno.test('ready: retries id every second until it answers; honours its signal', async () => {
  await withDouble(async (d) => {
    let failures = 2
    const clock = recordingClock()
    const sleeps = clock.sleeps
    let asked = 0
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr, { connect_swarms_delay: 30 }), {
      dial: (t) => {
        if (failures-- > 0) {
          return Promise.reject(new Deno.errors.ConnectionRefused('Connection refused'))
        }
        return dialReal(t)
      },
      clock,
      swarmAddrs: () => {
        asked++
        return Promise.resolve([
          '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWHf94SXiWMQDT5A4VmowpPJhzHnMai6i93ACvdhmS9U6k',
        ])
      },
    })
    await ipfs.ready()
    assert.deepEqual(sleeps, [1000, 1000])
    await ipfs.ready() // already ready: at once
    // connect_swarms_delay after ready ⇒ ConnectSwarms with the cluster peers' addresses.
    await clock.advance(29)
    assert.equal(asked, 0, 'not before connect_swarms_delay')
    await clock.advance(1)
    assert.equal(asked, 1)
    await waitFor(() => d.state.connected.length === 1)
    await ipfs.stop()

    let attempts = 0
    const never = ipfsHttpConnector(testConfig(d.multiaddr), {
      dial:
        () => (attempts++, Promise.reject(new Deno.errors.ConnectionRefused('Connection refused'))),
      clock: manualClock(),
    })
    const ctl = new AbortController()
    const readying = never.ready(ctl.signal)
    await waitFor(() => attempts === 1) // now sleeping before the next try, on a clock at rest
    ctl.abort(new Error('gave up'))
    await assert.rejects(readying, { message: 'gave up' })
    assert.equal(attempts, 1)
    await never.stop()
  })
})

Deno.test('abort signals and timeouts end calls with the right error', async () => {
  const clock = manualClock()
  await withDouble(async (d) => {
    d.state.pinProgress = { steps: 10, intervalMs: 30, stallAt: 1 }
    const ipfs = ipfsHttpConnector(
      testConfig(d.multiaddr, { pin_timeout: 60_000, ipfs_request_timeout: 200 }),
      { clock },
    )
    const ctl = new AbortController()
    const pinning = ipfs.pin(newPin(A), { signal: ctl.signal })
    await waitFor(() => (d.state.calls.get('pin/add') ?? 0) === 1)
    ctl.abort()
    await assert.rejects(pinning, { name: 'AbortError' })
    await assert.rejects(ipfs.id(AbortSignal.abort(new Error('early'))), { message: 'early' })
    // ipfs_request_timeout covers the whole call: a daemon that never answers is cut at 200 ms.
    const answer = Promise.withResolvers<void>()
    d.state.override = async (r) => {
      if (r.endpoint !== 'swarm/peers') return undefined
      await answer.promise
      return Response.json({ Peers: [] })
    }
    let settled = false
    const peers = ipfs.swarmPeers()
    peers.then(() => (settled = true), () => (settled = true))
    try {
      await waitFor(() => (d.state.calls.get('swarm/peers') ?? 0) === 1)
      await clock.advance(199)
      assert.equal(settled, false, 'still waiting 1 ms before the timeout')
      await clock.advance(1)
      await assert.rejects(peers, { message: 'IPFS request timed out after 200ms (swarm/peers)' })
    } finally {
      answer.resolve() // the double's handler ends, so that its server can shut down
    }
    // Abort in the middle of a listing.
    d.state.override = undefined
    d.state.pinProgress = undefined
    await ipfs.pin(newPin(B, { mode: 'direct' }))
    const lctl = new AbortController()
    const it = ipfs.pinLs('all', lctl.signal)[Symbol.asyncIterator]()
    await it.next()
    lctl.abort(new Error('enough'))
    await assert.rejects(it.next(), { message: 'enough' })
    await ipfs.stop()
  })
})

Deno.test('a long-lived caller signal keeps no listener per finished call', async () => {
  await withDouble(async (d) => {
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const ctl = new AbortController()
    let listeners = 0
    const add = ctl.signal.addEventListener.bind(ctl.signal)
    const remove = ctl.signal.removeEventListener.bind(ctl.signal)
    ctl.signal.addEventListener = (...args: Parameters<typeof add>) => {
      listeners++
      add(...args)
    }
    ctl.signal.removeEventListener = (...args: Parameters<typeof remove>) => {
      listeners--
      remove(...args)
    }
    for (let i = 0; i < 20; i++) {
      await ipfs.pin(newPin(cidV0(`signal-${i}`)), { signal: ctl.signal })
      await ipfs.id(ctl.signal)
    }
    assert.equal(listeners, 0, 'every call removed the listener it added')
    // And the signal still reaches a call in flight.
    d.state.pinProgress = { steps: 10, intervalMs: 30, stallAt: 1 }
    const pinning = ipfs.pin(newPin(A), { signal: ctl.signal })
    await waitFor(() => (d.state.calls.get('pin/add') ?? 0) >= 21)
    ctl.abort(new Error('caller gave up'))
    await assert.rejects(pinning, { message: 'caller gave up' })
    await ipfs.stop()
  })
})

Deno.test('stop() aborts requests in flight, refuses new ones, and is idempotent', async () => {
  await withDouble(async (d) => {
    d.state.pinProgress = { steps: 10, intervalMs: 30, stallAt: 1 }
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr))
    const pinning = ipfs.pin(newPin(A))
    await waitFor(() => (d.state.calls.get('pin/add') ?? 0) === 1)
    await ipfs.stop()
    await assert.rejects(pinning, (e) => e instanceof ShutdownError)
    await ipfs.stop()
    await assert.rejects(ipfs.id(), (e) => e instanceof ShutdownError)
    await assert.rejects(ipfs.ready(), (e) => e instanceof ShutdownError)
  })
})

Deno.test('unix socket: the connector reaches a daemon at /unix/<path>', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'ipfshttp-unix-' })
  try {
    await withDouble(async (d) => {
      const ipfs = ipfsHttpConnector(testConfig(d.unixMultiaddr!))
      assert.equal((await ipfs.id()).id, '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U')
      await ipfs.pin(newPin(A))
      assert.equal(d.state.pins.size, 1)
      await ipfs.stop()
    }, { unixPath: `${dir}/api.sock` })
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('informer_trigger_interval: informers are pushed every N pin/stream events', async () => {
  await withDouble(async (d) => {
    let triggered = 0
    const ipfs = ipfsHttpConnector(testConfig(d.multiaddr, { informer_trigger_interval: 2 }), {
      triggerInformers: () => triggered++,
    })
    await ipfs.pin(newPin(A)) // start + end of a pin = 2 events
    assert.equal(triggered, 1)
    await ipfs.pin(newPin(A)) // already pinned: a pin request all the same
    assert.equal(triggered, 2)
    await ipfs.blockStream((async function* () {
      yield rawBlock('z')
    })())
    await ipfs.blockStream((async function* () {
      yield rawBlock('y')
    })())
    assert.equal(triggered, 3)
    await ipfs.stop()
  })
})

Deno.test('pinCount counts recursive and direct pins without decoding them', async () => {
  const dbl = await startKuboDouble()
  const ipfs = ipfsHttpConnector(testConfig(dbl.multiaddr))
  try {
    assert.equal(await ipfs.pinCount!(), 0)
    for (let i = 0; i < 5; i++) {
      const b = rawBlock(`count ${i}`)
      dbl.state.pins.set(`k${i}`, { cid: b.cid, type: i < 3 ? 'recursive' : 'direct' })
    }
    assert.equal(await ipfs.pinCount!(), 5)
    let listed = 0
    for await (const _ of ipfs.pinLs('all')) listed++
    assert.equal(listed, 5, 'the same number as a full listing')
  } finally {
    await ipfs.stop()
    await dbl.stop()
  }
})
