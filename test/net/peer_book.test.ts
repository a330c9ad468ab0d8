/**
 * The pure parts of the host: the address book's priorities and order, the peerstore lines,
 * the no_announce filter, and the host options `cluster` config gives.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import {
  FAILED_PRIORITY,
  peerBook,
  peerstoreLines,
  splitPeerAddr,
} from '../../src/net/peer_book.ts'
import { noAnnounceFilter } from '../../src/net/announce.ts'
import { hostOptionsFrom } from '../../src/net/host.ts'
import { clusterSection } from '../../src/cluster/config.ts'

// Real peer IDs (addresses are parsed), in sorted order A < B < C.
const A = '12D3KooWKcXQ5mhUWmwc2NyLhEbxJQTcYCQjHinF32VHRbkDhoNH'
const B = '12D3KooWKokJoJMhCSfUk3BHcomS8q3zXz41pc4SMCEkBnCiF2v7'
const C = '12D3KooWNZTPy9LzVALmzA5otw559mgpSSuTfEDGZMAAAC49NHBs'
const SELF = '12D3KooWR9ypCst1fs1Zsn87u81Fh4hNnzh7Xa4iARqYHLRrnWTd'

Deno.test('peerBook: priorities as the reference sets them, the lower kept, self skipped', () => {
  const book = peerBook(SELF)
  book.add(`/ip4/10.0.0.2/tcp/9096/p2p/${B}`, 2)
  book.add(`/ip4/10.0.0.1/tcp/9096/p2p/${A}`, 1)
  book.add(`/ip4/10.0.0.9/tcp/9096/p2p/${A}`, 3) // a later line keeps the first rank
  book.add(`/ip4/10.0.0.3/tcp/9096/p2p/${C}`, 3)
  book.add(`/dns4/c.example/tcp/9096/p2p/${C}`, 0) // peer_addresses / connect: priority 0
  book.add(`/ip4/10.0.0.4/tcp/9096/p2p/${SELF}`, 0)
  assert.deepEqual(book.peers(), [B, A, C])
  assert.deepEqual(book.addrs(A), ['/ip4/10.0.0.1/tcp/9096', '/ip4/10.0.0.9/tcp/9096'])
  assert.deepEqual(book.ordered(book.peers(), true, Math.random), [C, A, B])
  book.setPriority(C, FAILED_PRIORITY)
  assert.deepEqual(book.ordered(book.peers(), true, Math.random), [A, B, C])
  assert.equal(book.priority('12D3KooWUnknown'), 0, 'no priority counts as 0, as the reference')
  // Not by priority: the injected random decides alone.
  const r = [0.9, 0.1, 0.5]
  assert.deepEqual(book.ordered([A, B, C], false, () => r.shift()!), [B, C, A])
})

Deno.test('peerBook: forget drops a peer until an address of it is added again', () => {
  const book = peerBook(SELF)
  book.add(`/ip4/10.0.0.1/tcp/9096/p2p/${A}`, 1)
  book.forget(A)
  assert.deepEqual(book.peers(), [])
  assert.ok(book.isForgotten(A))
  book.add(`/ip4/10.0.0.1/tcp/9096/p2p/${A}`, 0)
  assert.ok(!book.isForgotten(A))
  assert.deepEqual(book.peers(), [A])
})

Deno.test('splitPeerAddr: needs the /p2p/ part (or the legacy /ipfs/)', () => {
  assert.deepEqual(splitPeerAddr(`/ip4/1.2.3.4/tcp/1/p2p/${A}`), {
    peerId: A,
    addr: '/ip4/1.2.3.4/tcp/1',
  })
  assert.equal(splitPeerAddr(`/ip4/1.2.3.4/tcp/1/ipfs/${A}`).peerId, A)
  assert.throws(() => splitPeerAddr('/ip4/1.2.3.4/tcp/1'), /does not end with \/p2p\/<peer ID>/)
  assert.throws(() => splitPeerAddr('/ip4/1.2.3.4/tcp/1/p2p/12D3KooWAaaa'), /is not a peer ID/)
})

Deno.test('peerstoreLines: by priority then ID, addresses sorted, DNS ones alone when known', () => {
  assert.deepEqual(
    peerstoreLines([
      { peerId: C, priority: FAILED_PRIORITY, addrs: ['/ip4/10.0.0.3/tcp/1'] },
      { peerId: B, priority: 1, addrs: ['/ip4/10.0.0.2/tcp/1', '/dns4/b.example/tcp/1'] },
      { peerId: A, priority: 1, addrs: ['/ip4/10.0.0.9/tcp/1', '/ip4/10.0.0.1/tcp/1'] },
    ]),
    [
      `/ip4/10.0.0.1/tcp/1/p2p/${A}`,
      `/ip4/10.0.0.9/tcp/1/p2p/${A}`,
      `/dns4/b.example/tcp/1/p2p/${B}`,
      `/ip4/10.0.0.3/tcp/1/p2p/${C}`,
    ],
  )
})

Deno.test('noAnnounceFilter: exact addresses (with or without /p2p/) and /ipcidr/ ranges', () => {
  const keep = noAnnounceFilter([
    '/ip4/10.0.0.0/ipcidr/8',
    '/ip6/fd00::/ipcidr/8',
    `/ip4/192.168.1.5/tcp/9096/p2p/${SELF}`,
  ])
  const addrs = [
    '/ip4/10.1.2.3/tcp/9096',
    '/ip4/11.1.2.3/tcp/9096',
    '/ip6/fd12::1/tcp/9096',
    '/ip6/2001:db8::1/tcp/9096',
    '/ip4/192.168.1.5/tcp/9096',
    '/ip4/192.168.1.5/tcp/9097',
    '/dns4/example.org/tcp/9096',
  ].map((a) => multiaddr(`${a}/p2p/${SELF}`))
  assert.deepEqual(keep(addrs).map((m) => m.toString().replace(`/p2p/${SELF}`, '')), [
    '/ip4/11.1.2.3/tcp/9096',
    '/ip6/2001:db8::1/tcp/9096',
    '/ip4/192.168.1.5/tcp/9097',
    '/dns4/example.org/tcp/9096',
  ])
})

Deno.test('hostOptionsFrom: the cluster section, the peerstore beside the config unless absolute', () => {
  const cfg = clusterSection.defaults()
  const o = hostOptionsFrom(cfg, '/etc/cluster')
  assert.equal(o.peerstoreFile, '/etc/cluster/peerstore')
  assert.deepEqual(o.connectionManager, { highWater: 400, lowWater: 100 })
  assert.equal(o.dialTimeout, 3000)
  assert.deepEqual(o.listen, ['/ip4/0.0.0.0/tcp/9096'])
  assert.equal(hostOptionsFrom({ ...cfg, peerstore_file: 'ps' }, '/c').peerstoreFile, '/c/ps')
  assert.equal(hostOptionsFrom({ ...cfg, peerstore_file: '/x/ps' }, '/c').peerstoreFile, '/x/ps')
})
