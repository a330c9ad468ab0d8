import assert from 'node:assert/strict'
import { join, JoinError, leaveCluster, watchRemoval } from '../../src/cluster/membership.ts'
import type { RpcClient } from '../../src/rpc/methods.ts'
import type { ID } from '../../src/types/mod.ts'
import { manualClock } from '../support/manual_clock.ts'
import { nullLogger } from '../../src/util/log.ts'

/** An RpcClient whose `Cluster.ID` / `Cluster.PeerAdd` answers come from a table. */
function fakeRpc(
  self: string,
  answer: (peer: string, method: string, args: unknown[]) => Promise<unknown>,
): RpcClient {
  return {
    self,
    call: (peer, method, args) => answer(peer, method, args) as never,
    stream: () => {
      throw new Error('not used')
    },
    upload: () => {
      throw new Error('not used')
    },
  }
}

function idOf(peers: string[]): ID {
  return { cluster_peers: peers, error: '' } as unknown as ID
}

Deno.test('join asks the first member that answers to add this peer', async () => {
  const asked: string[] = []
  const rpc = fakeRpc('me', (peer, method, args) => {
    asked.push(`${peer} ${method} ${args.join(',')}`)
    return Promise.resolve(idOf([]))
  })
  const remote = await join(['/dns4/down/tcp/1/p2p/A', '/ip4/127.0.0.1/tcp/2/p2p/B'], {
    connect: (addr) =>
      addr.includes('down')
        ? Promise.reject(new Error('connection refused'))
        : Promise.resolve(addr.slice(addr.lastIndexOf('/') + 1)),
    rpc,
    log: nullLogger,
  })
  assert.equal(remote, 'B')
  assert.deepEqual(asked, ['B Cluster.ID ', 'B Cluster.PeerAdd me'])
})

Deno.test('join dials the members the remote knows before asking it to add this peer', async () => {
  // The leader (C) adds this peer; it can reach it only over a connection this peer opened.
  const events: string[] = []
  const rpc = fakeRpc('me', (peer, method) => {
    events.push(`${peer} ${method}`)
    return Promise.resolve(
      method === 'Cluster.ID'
        ? { ...idOf(['B', 'C']), cluster_peers_addresses: ['/ip4/127.0.0.1/tcp/3/p2p/C'] }
        : idOf([]),
    )
  })
  await join(['/ip4/127.0.0.1/tcp/2/p2p/B'], {
    connect: (addr) => {
      events.push(`connect ${addr}`)
      return Promise.resolve(addr.slice(addr.lastIndexOf('/') + 1))
    },
    rpc,
    log: nullLogger,
  })
  assert.deepEqual(events, [
    'connect /ip4/127.0.0.1/tcp/2/p2p/B',
    'B Cluster.ID',
    'connect /ip4/127.0.0.1/tcp/3/p2p/C',
    'B Cluster.PeerAdd',
  ])
})

Deno.test('join fails with one line naming every address and why', async () => {
  const rpc = fakeRpc('me', () => Promise.reject(new Error('not allowed')))
  const err = await join(['/ip4/127.0.0.1/tcp/2/p2p/B'], {
    connect: () => Promise.resolve('B'),
    rpc,
    log: nullLogger,
  }).catch((e) => e)
  assert.ok(err instanceof JoinError)
  assert.match(
    err.message,
    /through its bootstrap address \(\/ip4\/127.0.0.1\/tcp\/2\/p2p\/B: not allowed\)/,
  )
  assert.ok(!err.message.includes('\n'))
})

Deno.test('peers known before the watch and outside its first peerset are departed', async () => {
  // Removed while this peer was down (or before its first round): still in its peerstore.
  const clock = manualClock()
  const seen: string[][] = []
  const ac = new AbortController()
  const p = watchRemoval({
    self: 'me',
    consensus: { peers: () => Promise.resolve(['a', 'me']), leader: () => Promise.resolve('a') },
    rpc: fakeRpc('me', () => Promise.reject(new Error('unused'))),
    clock,
    intervalMs: 1000,
    signal: ac.signal,
    known: ['a', 'gone'],
    onPeers: (ps, departed) => seen.push([...ps, '|', ...departed]),
  }).catch(() => {})
  await clock.advance(1000)
  await clock.advance(1000)
  assert.deepEqual(seen, [['a', 'me', '|', 'gone']])
  ac.abort()
  await p
})

Deno.test('the watch reports a removal once the peerset no longer holds this peer', async () => {
  const clock = manualClock()
  let peers = ['a', 'me']
  const seen: string[][] = []
  const ac = new AbortController()
  let result: string | undefined
  const p = watchRemoval({
    self: 'me',
    consensus: { peers: () => Promise.resolve(peers), leader: () => Promise.resolve('a') },
    rpc: fakeRpc('me', () => Promise.reject(new Error('unused'))),
    clock,
    intervalMs: 1000,
    signal: ac.signal,
    onPeers: (ps, departed) => seen.push([...ps, '|', ...departed]),
  }).then((r) => result = r)
  await clock.advance(1000)
  peers = ['a', 'b', 'me']
  await clock.advance(1000)
  peers = ['b', 'me']
  await clock.advance(1000)
  assert.equal(result, undefined)
  assert.deepEqual(seen, [['a', 'me', '|'], ['a', 'b', 'me', '|'], ['b', 'me', '|', 'a']])
  peers = ['b']
  await clock.advance(1000)
  await p
  assert.equal(result, 'this peer was removed from the cluster')
})

Deno.test('a peer removed within its first interval (right after it became ready) is seen removed', async () => {
  const clock = manualClock()
  let peers = ['a', 'me']
  let result: string | undefined
  const p = watchRemoval({
    self: 'me',
    consensus: { peers: () => Promise.resolve(peers), leader: () => Promise.resolve('a') },
    rpc: fakeRpc('me', () => Promise.reject(new Error('unused'))),
    clock,
    intervalMs: 1000,
    signal: new AbortController().signal,
  }).then((r) => result = r)
  await clock.advance(0) // the first look, at once: a member
  peers = ['a']
  await clock.advance(1000)
  await p
  assert.equal(result, 'this peer was removed from the cluster')
})

Deno.test('a joining peer is not removed before it was ever a member', async () => {
  const clock = manualClock()
  const ac = new AbortController()
  let done = false
  const p = watchRemoval({
    self: 'me',
    consensus: {
      peers: () => Promise.resolve(['a', 'b']),
      leader: () => Promise.reject(new Error('no leader')),
    },
    rpc: fakeRpc('me', () => Promise.resolve(idOf(['a', 'b']))),
    clock,
    intervalMs: 1000,
    signal: ac.signal,
  }).then(() => done = true, () => {})
  await clock.advance(10_000)
  assert.equal(done, false)
  ac.abort()
  await p
})

Deno.test('a peer without a leader asks the members it knew, and leaves when none counts it', async () => {
  const clock = manualClock()
  const ac = new AbortController()
  let othersCount = true
  const asked: string[] = []
  let result: string | undefined
  const p = watchRemoval({
    self: 'me',
    consensus: {
      peers: () => Promise.resolve(['a', 'b', 'me']),
      leader: () => Promise.reject(new Error('no leader')),
    },
    rpc: fakeRpc('me', (peer) => {
      asked.push(peer)
      if (peer === 'b') return Promise.reject(new Error('unreachable'))
      return Promise.resolve(idOf(othersCount ? ['a', 'b', 'me'] : ['a', 'b']))
    }),
    clock,
    intervalMs: 1000,
    signal: ac.signal,
    askAfterRounds: 2,
  }).then((r) => result = r)
  await clock.advance(2000)
  assert.deepEqual(asked.sort(), ['a', 'b']) // asked after two quiet rounds: still counted
  assert.equal(result, undefined)
  othersCount = false
  await clock.advance(2000)
  await p
  assert.match(result!, /no longer count this peer/)
})

Deno.test('leaving: done once the others no longer count this peer, even if it never applies it', async () => {
  // The leader stops replicating to a removed follower: its own rmPeer would wait in vain.
  const clock = manualClock()
  let counted = true
  let aborted = false
  const left = leaveCluster({
    self: 'me',
    consensus: {
      peers: () => Promise.resolve(['a', 'me']),
      rmPeer: (_id, signal) =>
        new Promise((_, reject) =>
          signal!.addEventListener('abort', () => {
            aborted = true
            reject(signal!.reason)
          })
        ),
    },
    rpc: fakeRpc('me', () => Promise.resolve(idOf(counted ? ['a', 'me'] : ['a']))),
    clock,
    intervalMs: 1000,
    signal: new AbortController().signal,
  })
  let done = false
  left.then(() => done = true)
  await clock.advance(1000)
  assert.equal(done, false, 'still counted: not left yet')
  counted = false
  await clock.advance(1000)
  await left
  assert.ok(aborted, 'the waiting rmPeer is given up')
})

Deno.test("leaving fails with rmPeer's error while the others still count this peer", async () => {
  const clock = manualClock()
  const err = await leaveCluster({
    self: 'me',
    consensus: {
      peers: () => Promise.resolve(['a', 'me']),
      rmPeer: () => Promise.reject(new Error('timed out applying the membership change')),
    },
    rpc: fakeRpc('me', () => Promise.resolve(idOf(['a', 'me']))),
    clock,
    intervalMs: 1000,
    signal: new AbortController().signal,
  }).catch((e) => e)
  assert.match(err.message, /timed out applying/)
})
