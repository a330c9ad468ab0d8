/**
 * The per-CID merge of every member's status stream (src/cluster/merge.ts): key order, one
 * GlobalPinInfo per CID with the members that reported it, failed members as cluster_error from
 * the point they failed, refused members left out, and at most one item per member held.
 */
import assert from 'node:assert/strict'
import { mergeStatuses, type PeerStream } from '../../src/cluster/merge.ts'
import type { PinInfo, TrackerStatus } from '../../src/types/mod.ts'
import { ZERO_TIME } from '../../src/types/time.ts'

function info(peer: string, cid: string, status: TrackerStatus = 'pinned', error = ''): PinInfo {
  return {
    cid,
    name: `name of ${cid}`,
    peer,
    allocations: [],
    origins: [],
    created: '2026-01-01T00:00:00Z',
    metadata: null,
    peername: `name-${peer}`,
    status,
    timestamp: '2026-01-01T00:00:00Z',
    error,
    attempt_count: 0,
    priority_pin: false,
  }
}

const cid = (i: number) => `c${String(i).padStart(6, '0')}`

/** A stream of `cids` for `peer`, failing with `err` after `failAfter` items. */
async function* peerItems(
  peer: string,
  cids: string[],
  o: { failAfter?: number; err?: Error; status?: TrackerStatus } = {},
): AsyncGenerator<PinInfo> {
  let n = 0
  for (const c of cids) {
    if (o.failAfter !== undefined && n++ >= o.failAfter) throw o.err
    await Promise.resolve()
    yield info(peer, c, o.status)
  }
  if (o.failAfter !== undefined && n >= o.failAfter && o.err) throw o.err
}

const failedInfo = (peer: string, c: string, error: string) => ({
  ...info(peer, c, 'cluster_error', error),
  name: '',
  created: ZERO_TIME,
})

class ForbiddenError extends Error {
  override name = 'RpcForbiddenError'
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

Deno.test('merge: one GlobalPinInfo per CID in key order, with the members that reported it', async () => {
  const streams: PeerStream[] = [
    { peer: 'b', items: peerItems('b', [cid(1), cid(2), cid(4)]) },
    { peer: 'a', items: peerItems('a', [cid(2), cid(3), cid(4)]) },
    { peer: 'c', items: peerItems('c', []) },
  ]
  const out = await collect(mergeStatuses(streams, { failed: failedInfo }))
  assert.deepEqual(out.map((g) => [g.cid, Object.keys(g.peer_map)]), [
    [cid(1), ['b']],
    [cid(2), ['a', 'b']],
    [cid(3), ['a']],
    [cid(4), ['a', 'b']],
  ])
  assert.equal(out[1].name, `name of ${cid(2)}`)
  assert.equal(out[1].peer_map.a.peername, 'name-a')
})

Deno.test('merge: a member that fails part way is cluster_error for every CID after that point', async () => {
  const all = [1, 2, 3, 4, 5].map(cid)
  const errors: string[] = []
  const out = await collect(mergeStatuses([
    { peer: 'a', items: peerItems('a', all) },
    { peer: 'b', items: peerItems('b', all, { failAfter: 2, err: new Error('stream reset') }) },
    { peer: 'c', items: peerItems('c', all, { failAfter: 0, err: new Error('unreachable') }) },
    { peer: 'd', items: peerItems('d', all, { failAfter: 0, err: new ForbiddenError('no') }) },
  ], {
    failed: failedInfo,
    skip: (err) => err instanceof Error && err.name === 'RpcForbiddenError',
    onError: (peer, err) => errors.push(`${peer}: ${(err as Error).message}`),
  }))
  assert.deepEqual(out.map((g) => g.cid), all)
  const st = (i: number) =>
    Object.entries(out[i].peer_map).map(([p, s]) => `${p}:${s.status}${s.error && ' ' + s.error}`)
  assert.deepEqual(st(0), ['a:pinned', 'b:pinned', 'c:cluster_error unreachable'])
  assert.deepEqual(st(1), ['a:pinned', 'b:pinned', 'c:cluster_error unreachable'])
  assert.deepEqual(st(2), [
    'a:pinned',
    'b:cluster_error stream reset',
    'c:cluster_error unreachable',
  ])
  assert.deepEqual(st(4), st(2))
  // The CID-wide fields come from a member that knows the pin, not from an error entry.
  assert.equal(out[4].name, `name of ${cid(5)}`)
  assert.deepEqual(errors.sort(), ['b: stream reset', 'c: unreachable', 'd: no'])
})

Deno.test('merge: holds at most one item per member, whatever the number of pins', async () => {
  const n = 20_000
  const peers = ['a', 'b', 'c']
  let pulled = 0
  let merged = 0
  let most = 0
  async function* counted(peer: string): AsyncGenerator<PinInfo> {
    for (let i = 0; i < n; i++) {
      // Members skip CIDs a filter did not match: not every member has every CID.
      if ((i + peer.charCodeAt(0)) % 7 === 0) continue
      pulled++
      most = Math.max(most, pulled - merged)
      yield info(peer, cid(i))
    }
  }
  let cids = 0
  let last = ''
  for await (
    const g of mergeStatuses(peers.map((peer) => ({ peer, items: counted(peer) })), {
      failed: failedInfo,
    })
  ) {
    assert.ok(g.cid > last, 'key order')
    last = g.cid
    merged += Object.keys(g.peer_map).length
    cids++
  }
  assert.equal(cids, n)
  assert.equal(merged, pulled)
  assert.ok(most <= peers.length, `held ${most} items at once`)
})

Deno.test('merge: a consumer that leaves early ends every member stream', async () => {
  const ended: string[] = []
  async function* endless(peer: string): AsyncGenerator<PinInfo> {
    try {
      for (let i = 0;; i++) yield info(peer, cid(i))
    } finally {
      ended.push(peer)
    }
  }
  for await (
    const g of mergeStatuses(['a', 'b'].map((peer) => ({ peer, items: endless(peer) })), {
      failed: failedInfo,
    })
  ) {
    if (g.cid === cid(3)) break
  }
  assert.deepEqual(ended.sort(), ['a', 'b'])
})
