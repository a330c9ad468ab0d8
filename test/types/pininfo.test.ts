import assert from 'node:assert/strict'
import {
  globalMatches,
  globalOf,
  mergeInto,
  type PinInfo,
  shortOf,
  toGlobal,
} from '../../src/types/pininfo.ts'
import { parseStatusFilter } from '../../src/types/status.ts'

const CID = 'Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL'
const P1 = '12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const P2 = '12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7'
const IPFS = '12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7'

function info(peer: string, over: Partial<PinInfo> = {}): PinInfo {
  return {
    cid: CID,
    name: 'x',
    peer,
    allocations: [],
    origins: [],
    created: '2026-11-25T12:36:18Z',
    metadata: { a: 'b' },
    peername: 'vm',
    ipfs_peer_id: IPFS,
    status: 'pinned',
    timestamp: '2026-11-25T12:36:18Z',
    error: '',
    attempt_count: 0,
    priority_pin: false,
    ...over,
  }
}

Deno.test('toGlobal gives the GET /pins/{cid} JSON of the reference', () => {
  // From go_shapes: GET /pins/{cid} on a single-peer cluster.
  const want =
    '{"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL","name":"x","allocations":[],' +
    '"origins":[],"created":"2026-11-25T12:36:18Z","metadata":{"a":"b"},"peer_map":{' +
    '"12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ":{"peername":"vm",' +
    '"ipfs_peer_id":"12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7","status":"pinned",' +
    '"timestamp":"2026-11-25T12:36:18Z","error":"","attempt_count":0,"priority_pin":false}}}'
  assert.equal(JSON.stringify(toGlobal(info(P1))), want)
})

Deno.test('shortOf omits empty ipfs_peer_id and ipfs_peer_addresses (omitempty)', () => {
  const s = shortOf(info(P1, { ipfs_peer_id: '', ipfs_peer_addresses: [] }))
  assert.ok(!('ipfs_peer_id' in s))
  assert.ok(!('ipfs_peer_addresses' in s))
  const t = shortOf(info(P1, { ipfs_peer_addresses: ['/ip4/1.2.3.4/tcp/4001'] }))
  assert.deepEqual(t.ipfs_peer_addresses, ['/ip4/1.2.3.4/tcp/4001'])
})

Deno.test('mergeInto adds peers; a cluster_error report does not overwrite the CID-wide fields', () => {
  const g = toGlobal(info(P1, { name: 'good', allocations: [P1] }))
  mergeInto(g, info(P2, { status: 'cluster_error', name: '', allocations: null, metadata: null }))
  assert.equal(g.name, 'good')
  assert.deepEqual(g.allocations, [P1])
  assert.deepEqual(g.metadata, { a: 'b' })
  assert.deepEqual(Object.keys(g.peer_map), [P1, P2])
  assert.equal(g.peer_map[P2].status, 'cluster_error')
  // A non-error report does overwrite them (the last good one wins).
  mergeInto(g, info(P2, { name: 'newer' }))
  assert.equal(g.name, 'newer')
  // Merging into an empty global takes the fields even from an error report.
  const empty = {
    cid: '',
    name: '',
    allocations: null,
    origins: null,
    created: '',
    metadata: null,
    peer_map: {},
  }
  mergeInto(empty, info(P1, { status: 'cluster_error', name: 'e' }))
  assert.equal(empty.cid, CID)
  assert.equal(empty.name, 'e')
})

Deno.test('globalMatches: any peer matching the filter', () => {
  const g = toGlobal(info(P1))
  mergeInto(g, info(P2, { status: 'pin_error' }))
  assert.ok(globalMatches(g, parseStatusFilter('error')))
  assert.ok(globalMatches(g, parseStatusFilter('pinned')))
  assert.ok(!globalMatches(g, parseStatusFilter('queued')))
  assert.ok(globalMatches(g, 0))
})

Deno.test('globalOf merges one CID in peer order (sorted map keys, as Go writes them)', () => {
  const g = globalOf(CID, [
    info(P2, { status: 'cluster_error', name: '', error: 'down' }),
    info(P1, { name: 'from P1' }),
  ])
  assert.deepEqual(Object.keys(g.peer_map), [P1, P2])
  assert.equal(g.name, 'from P1', 'CID-wide fields from a peer that knows the pin')
  assert.equal(g.peer_map[P2].error, 'down')
  // No reports (every member refused): the CID alone.
  const none = globalOf(CID, [])
  assert.equal(none.cid, CID)
  assert.deepEqual(none.peer_map, {})
  assert.equal(none.created, '0001-01-01T00:00:00Z')
})
