/**
 * A connection flood against a real daemon started with the service task's permissions under
 * `ulimit -n 256`: 224 idle connections opened and closed leave the REST API listening (before,
 * `Deno.serve`'s accept loop died on `Too many open files` and the port never answered again),
 * whether the connection cap stops the flood (default `max_connections`, a quarter of the limit)
 * or the descriptors run out first (`max_connections` above the limit: EMFILE itself). A
 * slow-header client is cut at the configured `read_header_timeout`.
 *
 * The "within a second" of the issue is asserted with room for a loaded machine (the request is
 * timed, and one must succeed within RECOVERY_MS); the exact timeout logic is in
 * conn_guard.test.ts.
 */
import assert from 'node:assert/strict'
import { startKuboDouble } from '../support/kubo_double.ts'
import { type PeerProcess, startPeerProcess } from '../support/peer.ts'

const FLOOD = 224
const RECOVERY_MS = 1000

async function flood(port: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = []
  for (let i = 0; i < FLOOD; i++) {
    conns.push(await Deno.connect({ hostname: '127.0.0.1', port }))
  }
  // Let the daemon accept (or refuse) them all while they sit idle.
  await new Promise((r) => setTimeout(r, 1500))
  return conns
}

/**
 * Closes the flood, then sends normal requests until one succeeds; returns how long after the
 * flood ended that was. (Right after the flood the daemon may not have seen every close yet: a
 * request can still get the 503, as any client over the limit does.)
 */
async function afterFlood(peer: PeerProcess, conns: Deno.Conn[]): Promise<number> {
  for (const c of conns) {
    try {
      c.close()
    } catch {
      // refused and closed by the daemon already: that is fine
    }
  }
  const t0 = performance.now()
  for (;;) {
    try {
      const res = await fetch(`${peer.restUrl}/version`, { signal: AbortSignal.timeout(5000) })
      const text = await res.text()
      if (res.status === 200) {
        assert.equal(text, '{"version":"1.1.6"}\n')
        return performance.now() - t0
      }
      assert.equal(res.status, 503, text)
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err
    }
    if (performance.now() - t0 > 30_000) throw new Error('no request succeeded in 30 s')
    await new Promise((r) => setTimeout(r, 20))
  }
}

function port(peer: PeerProcess): number {
  return Number(peer.restMaddr.split('/')[4])
}

Deno.test('flood: 224 idle connections under ulimit -n 256 leave the REST API serving (default cap)', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  const peer = await startPeerProcess({ ipfs: ipfs.multiaddr, ulimitNofile: 256 })
  try {
    const conns = await flood(port(peer))
    const ms = await afterFlood(peer, conns)
    assert.ok(ms < RECOVERY_MS, `the first request succeeded ${ms} ms after the flood`)
    const logs = peer.logs()
    assert.doesNotMatch(logs, /unhandled|Too many open files/i)
    // The cap (256 / 4 = 64) refused the rest, with one rate-limited line for the whole flood.
    assert.equal(logs.match(/connections open \(max_connections\)/g)?.length, 1, logs)
  } finally {
    await peer.stop()
    await ipfs.stop()
  }
})

Deno.test('flood: with max_connections above the descriptor limit, EMFILE refuses connections and the listener survives', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  const peer = await startPeerProcess({
    ipfs: ipfs.multiaddr,
    ulimitNofile: 256,
    edit: (cfg) => {
      cfg.api.restapi.max_connections = 1000
    },
  })
  try {
    const conns = await flood(port(peer))
    const ms = await afterFlood(peer, conns)
    assert.ok(ms < RECOVERY_MS, `the first request succeeded ${ms} ms after the flood`)
    const logs = peer.logs()
    assert.doesNotMatch(logs, /unhandled/i)
    const lines = logs.match(/cannot accept a connection: Too many open files.*/g) ?? []
    assert.ok(lines.length >= 1 && lines.length <= 2, `rate-limited EMFILE lines:\n${logs}`)
    // Several requests in a row: the spare descriptor is back and nothing leaked.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${peer.restUrl}/id`)
      assert.equal(res.status, 200)
      await res.body?.cancel()
    }
  } finally {
    await peer.stop()
    await ipfs.stop()
  }
})

Deno.test('flood: a slow-header client is disconnected at read_header_timeout by the daemon', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  const peer = await startPeerProcess({
    ipfs: ipfs.multiaddr,
    edit: (cfg) => {
      cfg.api.restapi.read_header_timeout = '2s'
    },
  })
  try {
    const conn = await Deno.connect({ hostname: '127.0.0.1', port: port(peer) })
    await conn.write(new TextEncoder().encode('GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sl'))
    const t0 = performance.now()
    const giveUp = setTimeout(() => conn.close(), 15_000)
    const n = await conn.read(new Uint8Array(1024)).catch(() => 'still open after 15 s')
    const ms = performance.now() - t0
    clearTimeout(giveUp)
    try {
      conn.close()
    } catch {
      // closed by giveUp
    }
    assert.equal(n, null)
    assert.ok(ms >= 1800 && ms < 15_000, `closed after ${ms} ms`)
  } finally {
    await peer.stop()
    await ipfs.stop()
  }
})
