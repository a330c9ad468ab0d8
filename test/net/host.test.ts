/**
 * The cluster host with real hosts on 127.0.0.1: the peerstore file, peer_addresses, the
 * start-up bootstrap by priority, the re-bootstrap loop on a manual clock, announce and
 * no_announce as identify tells them, a secret mismatch on both sides, connect's errors, forget.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { type ClusterHost, ConnectError, type HostOptions, startHost } from '../../src/net/host.ts'
import { SECRET_MISMATCH } from '../../src/net/secret_check.ts'
import { PRIORITY_RECONNECT_INTERVAL_MS, REBOOTSTRAP_INTERVAL_MS } from '../../src/net/bootstrap.ts'
import { logging } from '../../src/util/log.ts'
import { type ManualClock, manualClock } from '../support/manual_clock.ts'

const SECRET = 'ab'.repeat(32)
const OTHER = 'cd'.repeat(32)

interface TestHost extends ClusterHost {
  lines: string[]
  clock: ManualClock
}

/** A host on 127.0.0.1 with a manual clock and its log lines captured (messages only). */
async function host(opts: Partial<HostOptions> = {}): Promise<TestHost> {
  const lines: string[] = []
  const clock = manualClock()
  const h = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: SECRET,
    clock,
    log: logging('info', (l) => lines.push(l.split('\t').slice(1).join(' '))).get('p2p'),
    ...opts,
  })
  return Object.assign(h, { lines, clock })
}

/** Starts `n` hosts, runs `fn`, stops them all. */
async function withHosts(
  n: number,
  fn: (hs: TestHost[]) => Promise<void>,
  opts?: Partial<HostOptions>,
) {
  const hs: TestHost[] = []
  try {
    for (let i = 0; i < n; i++) hs.push(await host(opts))
    await fn(hs)
  } finally {
    for (const h of hs) await h.stop({ save: false })
  }
}

/** An address on 127.0.0.1 where nothing listens (connection refused). */
function deadAddr(): string {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = l.addr as Deno.NetAddr
  l.close()
  return `/ip4/127.0.0.1/tcp/${port}`
}

async function deadPeer(): Promise<string> {
  const key = await generateKeyPair('Ed25519')
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  return `${deadAddr()}/p2p/${peerIdFromPrivateKey(key)}`
}

function connected(a: ClusterHost, b: ClusterHost): boolean {
  return a.libp2p.getConnections(peerIdFromString(b.peerId)).length > 0
}

/** Waits for a libp2p event on a host (event-driven; the bound only turns a hang into a failure). */
function event(h: ClusterHost, name: 'peer:disconnect' | 'peer:identify', peer: string) {
  return new Promise<CustomEvent>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${name} in 10 s`)), 10_000)
    const on = (e: Event) => {
      const d = (e as CustomEvent).detail
      const id = String(d?.peerId ?? d)
      if (id !== peer) return
      clearTimeout(t)
      h.libp2p.removeEventListener(name, on)
      resolve(e as CustomEvent)
    }
    h.libp2p.addEventListener(name, on)
  })
}

async function tempFile(text: string): Promise<string> {
  const dir = await Deno.makeTempDir()
  const file = join(dir, 'peerstore')
  await Deno.writeTextFile(file, text)
  return file
}

Deno.test('host: the peerstore is loaded at start, dialled by priority and saved at stop in the reference format', async () => {
  await withHosts(2, async ([b, c]) => {
    const dead = await deadPeer()
    const bAddr = b.addresses()[0]
    const cAddr = c.addresses()[0]
    // The dead peer comes first: it fails at start and drops to the last priority.
    const file = await tempFile(`# comment\n${dead}\n${bAddr}\n\n${cAddr}\n`)
    const a = await host({ peerstoreFile: file })
    try {
      assert.deepEqual(a.bootstrapped, [b.peerId, c.peerId])
      assert.ok(connected(a, b) && connected(a, c))
    } finally {
      await a.stop()
    }
    assert.equal(await Deno.readTextFile(file), `${bAddr}\n${cAddr}\n${dead}\n`)
    // Self is never saved, and a second round trip gives the same file.
    const again = await host({ peerstoreFile: file })
    await Deno.writeTextFile(file, `${again.addresses()[0]}\n${bAddr}\n${cAddr}\n${dead}\n`)
    await again.stop()
    assert.equal(await Deno.readTextFile(file), `${bAddr}\n${cAddr}\n${dead}\n`)
  })
})

Deno.test('host: peer_addresses are dialled at start before the peerstore and saved first', async () => {
  await withHosts(4, async ([b, c, d, e]) => {
    const file = await tempFile([c, d, e].map((h) => h.addresses()[0]).join('\n'))
    const a = await host({ peerstoreFile: file, peerAddresses: [b.addresses()[0]] })
    try {
      // At most 3 at start: peer_addresses (priority 0), then the first two peerstore lines.
      assert.deepEqual(a.bootstrapped, [b.peerId, c.peerId, d.peerId])
      assert.ok(connected(a, b) && connected(a, c) && connected(a, d))
      assert.ok(!connected(a, e), 'the fourth peer is not dialled at start')
    } finally {
      await a.stop()
    }
    assert.deepEqual(
      (await Deno.readTextFile(file)).trim().split('\n'),
      [b, c, d, e].map((h) => h.addresses()[0]),
    )
  })
})

Deno.test('host: a failed peer at start is passed over and the next by priority is dialled', async () => {
  await withHosts(4, async (ps) => {
    const dead = await deadPeer()
    const order = [ps[3], ps[2], ps[1], ps[0]]
    const file = await tempFile(
      [order[0].addresses()[0], dead, ...order.slice(1).map((h) => h.addresses()[0])].join('\n'),
    )
    const a = await host({ peerstoreFile: file })
    try {
      assert.deepEqual(a.bootstrapped, order.slice(0, 3).map((h) => h.peerId))
      assert.ok(!connected(a, order[3]))
    } finally {
      await a.stop({ save: false })
    }
  })
})

Deno.test('host: the re-bootstrap loop redials a disconnected peer every 30 s of the clock, and stops', async () => {
  await withHosts(1, async ([b]) => {
    const a = await host({ peerstoreFile: await tempFile(b.addresses()[0]) })
    try {
      assert.ok(connected(a, b))
      const gone = event(a, 'peer:disconnect', b.peerId)
      await a.libp2p.hangUp(peerIdFromString(b.peerId))
      await gone
      await a.clock.advance(REBOOTSTRAP_INTERVAL_MS - 1)
      await a.idle()
      assert.ok(!connected(a, b), 'nothing before 30 s')
      await a.clock.advance(1)
      await a.idle()
      assert.ok(connected(a, b), 'redialled at 30 s')
      assert.ok(a.lines.includes(`INFO p2p reconnected to ${b.peerId}`), a.lines.join('\n'))
    } finally {
      await a.stop({ save: false })
    }
    assert.equal(a.clock.pending(), 0, 'the loop left no timer behind')
  })
})

Deno.test('host: forget(id) keeps a removed peer from being redialled and saved', async () => {
  await withHosts(2, async ([b, c]) => {
    const file = await tempFile([b, c].map((h) => h.addresses()[0]).join('\n'))
    const a = await host({ peerstoreFile: file })
    try {
      assert.deepEqual(a.bootstrapped, [b.peerId, c.peerId])
      await a.forget(c.peerId)
      const gone = event(a, 'peer:disconnect', c.peerId)
      await a.libp2p.hangUp(peerIdFromString(c.peerId))
      await gone
      await a.clock.advance(REBOOTSTRAP_INTERVAL_MS)
      await a.idle()
      assert.ok(!connected(a, c), 'a forgotten peer is not redialled')
    } finally {
      await a.stop()
    }
    assert.equal(await Deno.readTextFile(file), `${b.addresses()[0]}\n`)
  })
})

Deno.test('host: announce replaces and no_announce filters addresses() and what identify tells', async () => {
  const port = Number(deadAddr().split('/').pop())
  const a = await host({
    listen: [`/ip4/127.0.0.1/tcp/${port}`],
    announce: ['/ip4/1.2.3.4/tcp/9096', '/dns4/cluster.example.org/tcp/9096'],
    noAnnounce: ['/ip4/1.2.3.4/tcp/9096'],
  })
  try {
    assert.deepEqual(a.addresses(), [`/dns4/cluster.example.org/tcp/9096/p2p/${a.peerId}`])
    await withHosts(1, async ([b]) => {
      const identified = event(b, 'peer:identify', a.peerId)
      await b.connect(`/ip4/127.0.0.1/tcp/${port}/p2p/${a.peerId}`)
      const told = (await identified).detail.listenAddrs.map(String)
      assert.deepEqual(told, ['/dns4/cluster.example.org/tcp/9096'])
    })
  } finally {
    await a.stop({ save: false })
  }
  // Without announce, no_announce filters the listen addresses (an /ipcidr/ range here).
  const c = await host({ noAnnounce: ['/ip4/127.0.0.0/ipcidr/8'] })
  try {
    assert.deepEqual(c.addresses(), [])
  } finally {
    await c.stop({ save: false })
  }
})

for (const [dialer, listener] of [[SECRET, OTHER], [SECRET, ''], ['', SECRET]]) {
  Deno.test(`host: secret ${dialer ? 'A' : 'none'} → ${listener ? 'B' : 'none'}: no connection, one clear line on each side`, async () => {
    const a = await host({ secret: dialer })
    const b = await host({ secret: listener })
    try {
      const addr = b.addresses()[0]
      for (let i = 0; i < 2; i++) {
        await assert.rejects(a.connect(addr), (err: Error) => {
          assert.ok(err instanceof ConnectError)
          assert.equal(err.message, `cannot connect to ${addr}: ${SECRET_MISMATCH}`)
          return true
        })
      }
      assert.ok(!connected(a, b) && !connected(b, a))
      // One line on each side for the two attempts (rate-limited per address, by the clock).
      assert.deepEqual(a.lines, [`WARN p2p cannot connect to ${addr}: ${SECRET_MISMATCH}`])
      assert.equal(b.lines.length, 1, b.lines.join('\n'))
      assert.match(
        b.lines[0],
        /^WARN p2p refused a connection from \/ip4\/127\.0\.0\.1\/tcp\/\d+: the peer uses another cluster secret \(or none\)$/,
      )
      await b.clock.advance(60_000)
      await assert.rejects(a.connect(addr), ConnectError)
      assert.equal(b.lines.length, 2, 'a new line once the minute passed')
    } finally {
      await a.stop({ save: false })
      await b.stop({ save: false })
    }
  })
}

Deno.test('host: connect(addr) returns the peer ID, or fails with one line saying why', async () => {
  await withHosts(2, async ([a, b]) => {
    assert.equal(await a.connect(b.addresses()[0]), b.peerId)
    assert.ok(connected(a, b))
    assert.equal(await a.connect(a.addresses()[0]), a.peerId, 'self: nothing to dial')
    const fail = async (addr: string, why: string | RegExp) => {
      const err = await a.connect(addr).then(() => undefined, (e) => e)
      assert.ok(err instanceof ConnectError, String(err))
      if (typeof why === 'string') assert.equal(err.message, `cannot connect to ${addr}: ${why}`)
      else assert.match(err.message, why)
      assert.ok(!err.message.includes('\n'))
    }
    await fail('nonsense', /^cannot connect to nonsense: not a peer multiaddress \(/)
    await fail(
      '/ip4/127.0.0.1/tcp/9096',
      'not a peer multiaddress (it does not end with /p2p/<peer ID>)',
    )
    const dead = await deadPeer()
    await fail(dead, 'connection refused (is a cluster peer running and listening there?)')
    // b's address with another peer's ID.
    const other = (await deadPeer()).split('/p2p/')[1]
    await fail(
      `${b.addresses()[0].split('/p2p/')[0]}/p2p/${other}`,
      `another peer answers at that address (${b.peerId}); check the /p2p/ peer ID`,
    )
  })
  // A listener that accepts and never answers: the dial timeout (cluster.dial_peer_timeout).
  const mute = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const held: Deno.Conn[] = []
  const accepting = (async () => {
    for await (const c of mute) held.push(c)
  })()
  const a = await host({ dialTimeout: 300 })
  try {
    const addr = `/ip4/127.0.0.1/tcp/${(mute.addr as Deno.NetAddr).port}/p2p/${
      (await deadPeer()).split('/p2p/')[1]
    }`
    await assert.rejects(a.connect(addr), {
      message: `cannot connect to ${addr}: no answer within 0.3 s (cluster.dial_peer_timeout)`,
    })
  } finally {
    await a.stop({ save: false })
    mute.close()
    held.forEach((c) => c.close())
    await accepting.catch(() => {})
  }
})

Deno.test('host: a peer known from the peerstore can be dialled by its ID once it is up (RPC and Raft dial by ID)', async () => {
  const key = await generateKeyPair('Ed25519')
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  const bId = peerIdFromPrivateKey(key).toString()
  const addr = deadAddr()
  const a = await host({ peerstoreFile: await tempFile(`${addr}/p2p/${bId}\n`) })
  try {
    assert.deepEqual(a.bootstrapped, [], 'down at start')
    const b = await host({ privateKey: key, listen: [addr] })
    try {
      await a.libp2p.dial(peerIdFromString(bId))
      assert.ok(connected(a, b))
    } finally {
      await b.stop({ save: false })
    }
  } finally {
    await a.stop({ save: false })
  }
})

Deno.test('host: high_water is the connection limit libp2p prunes to', async () => {
  await withHosts(3, async (ps) => {
    const a = await host({ connectionManager: { highWater: 2, lowWater: 1 } })
    try {
      const pruned = new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no connection:prune in 10 s')), 10_000)
        a.libp2p.addEventListener('connection:prune', (e) => {
          clearTimeout(t)
          resolve(e.detail.length)
        }, { once: true })
      })
      for (const p of ps) await a.connect(p.addresses()[0])
      // One connection past the limit is chosen. libp2p closes it only when no stream of a
      // long-lived protocol runs on it, and every peer's gossipsub keeps one open (docs/compat.md).
      assert.equal(await pruned, 1)
    } finally {
      await a.stop({ save: false })
    }
  })
})

Deno.test('host: low_water is what the re-bootstrap loop tops connections up to', async () => {
  await withHosts(2, async ([b, c]) => {
    const file = await tempFile([b, c].map((h) => h.addresses()[0]).join('\n'))
    const a = await host({ peerstoreFile: file, connectionManager: { highWater: 10, lowWater: 1 } })
    try {
      assert.deepEqual(a.bootstrapped, [b.peerId, c.peerId])
      const gone = event(a, 'peer:disconnect', c.peerId)
      await a.libp2p.hangUp(peerIdFromString(c.peerId))
      await gone
      await a.clock.advance(REBOOTSTRAP_INTERVAL_MS)
      await a.idle()
      assert.ok(!connected(a, c), 'one connection is low_water already: nothing dialled')
      const gone2 = event(a, 'peer:disconnect', b.peerId)
      await a.libp2p.hangUp(peerIdFromString(b.peerId))
      await gone2
      await a.clock.advance(REBOOTSTRAP_INTERVAL_MS)
      await a.idle()
      assert.equal(a.libp2p.getConnections().length, 1, 'back to low_water: one peer dialled')
    } finally {
      await a.stop({ save: false })
    }
  })
})

Deno.test('host: every 5 minutes the loop reconnects to a peer_addresses peer even at low_water', async () => {
  await withHosts(2, async ([b, c]) => {
    const a = await host({
      peerAddresses: [b.addresses()[0]],
      peerstoreFile: await tempFile(c.addresses()[0]),
      connectionManager: { highWater: 10, lowWater: 1 },
    })
    try {
      assert.deepEqual(a.bootstrapped, [b.peerId, c.peerId])
      const gone = event(a, 'peer:disconnect', b.peerId)
      await a.libp2p.hangUp(peerIdFromString(b.peerId))
      await gone
      await a.clock.advance(PRIORITY_RECONNECT_INTERVAL_MS - 1)
      await a.idle()
      assert.ok(!connected(a, b), 'the 30 s rounds leave it: low_water is met')
      await a.clock.advance(1)
      await a.idle()
      assert.ok(connected(a, b))
      assert.ok(a.lines.includes(`INFO p2p reconnected to priority peer ${b.peerId}`))
    } finally {
      await a.stop({ save: false })
    }
  })
})
