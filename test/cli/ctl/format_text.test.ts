/**
 * Text formatters of ipfs-cluster-ctl, one by one. Expected strings were produced by the real
 * ipfs-cluster-ctl 1.1.6 from the same fixtures (see fake_cluster.ts) or follow formatters.go.
 */
import { equal } from 'node:assert/strict'
import {
  decodeAlert,
  decodeBandwidthByProtocol,
  decodeGlobalPinInfo,
  decodeGlobalRepoGC,
  decodeID,
  decodeList,
  decodeMetric,
  decodePin,
} from '../../../src/api/rest/client_decode.ts'
import { parseJson } from '../../../src/api/rest/client_json.ts'
import {
  formatAddedOutput,
  formatAlert,
  formatBandwidth,
  formatError,
  formatGlobalPinInfo,
  formatID,
  formatMetric,
  formatPin,
  formatRepoGC,
  formatVersion,
  padLeft,
  padRight,
} from '../../../cli/ctl/format_text.ts'
import {
  CIDS,
  goEncode,
  gpiFixture,
  idFixture,
  IPFS_PEERS,
  PEERS,
  pinFixture,
} from './fake_cluster.ts'

const viaJson = (v: unknown) => parseJson(goEncode(v))

Deno.test('format: id block sorts addresses and counts the other peers', () => {
  equal(
    formatID(decodeID(viaJson(idFixture(0)))),
    `${PEERS[0]} | peer0 | Sees 2 other peers
  > Addresses:
    - /ip4/127.0.0.1/tcp/9096/p2p/${PEERS[0]}
    - /ip4/192.168.1.10/tcp/9096/p2p/${PEERS[0]}
  > IPFS: ${IPFS_PEERS[0]}
    - /ip4/10.0.0.1/tcp/4001
    - /ip4/127.0.0.1/tcp/4001/p2p/${IPFS_PEERS[0]}
`,
  )
})

Deno.test('format: id with an error, and with an IPFS error', () => {
  equal(
    formatID(decodeID({ id: PEERS[2], error: 'dial backoff' })),
    `${PEERS[2]} | ERROR: dial backoff\n`,
  )
  const id = decodeID({ id: PEERS[1], peername: 'p', cluster_peers: null, ipfs: { error: 'down' } })
  equal(
    formatID(id),
    `${PEERS[1]} | p | Sees -1 other peers\n  > Addresses:\n  > IPFS ERROR: down\n`,
  )
})

Deno.test('format: global pin info pads peer names to 20 and keeps the time as sent', () => {
  equal(
    formatGlobalPinInfo(decodeGlobalPinInfo(viaJson(gpiFixture(0)))),
    `${CIDS[0]} | my pin:
    > a-very-long-peer-name-over-20 : PIN_ERROR: context deadline exceeded | 2024-03-04T05:06:09.5+01:00 | Attempts: 3 | Priority: true
    > peer1                : PINNED | 2024-03-04T05:06:08Z | Attempts: 0 | Priority: false
    > ${PEERS[2]} : REMOTE | 2024-03-04T05:06:10Z | Attempts: 0 | Priority: false
`,
  )
  // No name: the CID alone; unknown statuses read as undefined.
  const g = decodeGlobalPinInfo({
    cid: CIDS[1],
    peer_map: { x: { status: 'bogus', timestamp: '2024-01-01T00:00:00.000+00:00' } },
  })
  equal(
    formatGlobalPinInfo(g),
    `${
      CIDS[1]
    }:\n    > x                    : UNDEFINED | 2024-01-01T00:00:00Z | Attempts: 0 | Priority: false\n`,
  )
})

Deno.test('format: pin lines (replication, everywhere, direct, expiry, metadata)', () => {
  equal(
    formatPin(decodePin(viaJson(pinFixture(0)))),
    `${CIDS[0]} | my pin | PIN | Repl. Factor: 2--3 | Allocations: [${PEERS[0]} ${
      PEERS[1]
    }] | Recursive | Metadata: yes | Exp: ∞ | Added: 2024-03-04 05:06:07\n`,
  )
  equal(
    formatPin(decodePin(viaJson(pinFixture(1)))),
    `${
      CIDS[1]
    } |  | PIN | Repl. Factor: -1 | Allocations: [everywhere] | Recursive | Metadata: no | Exp: ∞ | Added: 2024-03-04 05:06:07\n`,
  )
  equal(
    formatPin(decodePin(viaJson(pinFixture(2)))),
    `${CIDS[2]} |  | PIN-DIRECT | Repl. Factor: 2--3 | Allocations: [${PEERS[0]} ${
      PEERS[1]
    }] | Direct | Metadata: no | Exp: 2031-05-06 07:08:09 | Added: 2024-03-04 05:06:07\n`,
  )
  const shard = decodePin({ cid: CIDS[0], type: 'shard-pin', max_depth: 1, allocations: [] })
  equal(
    formatPin(shard),
    `${
      CIDS[0]
    } |  | SHARD-PIN | Repl. Factor: 0--0 | Allocations: [] | Recursive-1 | Metadata: no | Exp: ∞ | Added: unknown\n`,
  )
})

Deno.test('format: version, error, added output', () => {
  equal(formatVersion({ version: '1.1.6' }), '1.1.6\n')
  equal(formatError(404, 'not found'), 'An error occurred:\n  Code: 404\n  Message: not found\n')
  equal(formatAddedOutput({ name: 'a.txt', cid: CIDS[0] }), `added ${CIDS[0]} a.txt\n`)
  equal(formatAddedOutput({ name: 'a.txt', cid: CIDS[0] }, true), `${CIDS[0]}\n`)
})

Deno.test('format: metrics humanize freespace weight and the expiry', () => {
  const now = Date.UTC(2030, 0, 1)
  const ns = (ms: number) => `${ms}000000`
  const list = decodeList(
    parseJson(
      `[{"name":"freespace","peer":"${PEERS[0]}","value":"1","expire":${ns(now + 29_500)},` +
        `"valid":true,"weight":12345678901,"partitionable":false,"received_at":${ns(now)}},` +
        `{"name":"ping","peer":"${PEERS[1]}","value":"","expire":${
          ns(now - 3 * 3600_000 - 5)
        },"weight":5}]`,
    ),
    decodeMetric,
  )!
  equal(
    formatMetric(list[0], now),
    `${PEERS[0]} | freespace: 12 GB | Expires in: 29 seconds from now\n`,
  )
  equal(formatMetric(list[1], now), `${PEERS[1]} | ping:  | Expires in: 3 hours ago\n`)
})

Deno.test('format: alerts use relative times for expiry and trigger', () => {
  const now = Date.UTC(2030, 0, 1)
  const a = decodeAlert({
    name: 'ping',
    peer: PEERS[0],
    expire: (now - 90_000) * 1e6,
    triggered_at: new Date(now - 150_000).toISOString(),
  })
  equal(
    formatAlert(a, now),
    `${PEERS[0]}: ping. Expired at: 1 minute ago. Triggered at: 2 minutes ago\n`,
  )
  const zero = decodeAlert({ name: 'ping', peer: PEERS[0], expire: now * 1e6 })
  equal(
    formatAlert(zero, now),
    `${PEERS[0]}: ping. Expired at: now. Triggered at: a long while ago\n`,
  )
})

Deno.test('format: bandwidth rows are right-aligned, rates rounded like Go', () => {
  const bw = decodeBandwidthByProtocol({
    '/ipfscluster/1.0/rpc': { total_in: 98765432, total_out: 0, rate_in: 0, rate_out: 12.3456 },
    '/ipfs/id/1.0.0': { total_in: 1234, total_out: 5, rate_in: 1.5, rate_out: 0.125 },
  })
  equal(
    formatBandwidth(bw),
    '           /ipfs/id/1.0.0: In:  1.2 kB. Out:     5 B. RateIn: 1.50B/s. RateOut: 0.12B/s\n' +
      '     /ipfscluster/1.0/rpc: In:   99 MB. Out:     0 B. RateIn: 0.00B/s. RateOut: 12.35B/s\n',
  )
  equal(formatBandwidth(null), '')
})

Deno.test('format: repo gc per peer, errors and collected keys', () => {
  const gc = decodeGlobalRepoGC({
    peer_map: {
      [PEERS[1]]: {
        peer: PEERS[1],
        peername: 'peer1',
        keys: [{ key: CIDS[0] }, { key: null, error: 'gc fail' }],
      },
      [PEERS[0]]: { peer: PEERS[0], peername: '', keys: [], error: 'ipfs is down' },
    },
  })
  equal(
    formatRepoGC(gc),
    `${PEERS[0]} | ERROR: ipfs is down\n  > CIDs:\npeer1          \n  > CIDs:\n    - ${
      CIDS[0]
    }\n    - ERROR: gc fail\n`,
  )
})

Deno.test('format: padding counts runes, not UTF-16 units', () => {
  equal(padRight('é😀', 4), 'é😀  ')
  equal(padLeft('ab', 4), '  ab')
  equal(padRight('abcdef', 3), 'abcdef')
})

Deno.test('format: control characters from the server are escaped; no value can forge a line', () => {
  const evil = 'x\r\nX-Injected: 1\u0000\u001b[31m\u0085\t'
  const shown = 'x\\r\\nX-Injected: 1\\x00\\x1b[31m\\u0085\\t'
  const now = Date.UTC(2030, 0, 1)
  const outputs: [string, string, number][] = [] // formatter, text, lines expected
  outputs.push([
    'id',
    formatID(decodeID({
      ...idFixture(0),
      id: evil,
      peername: evil,
      addresses: [evil],
      ipfs: { id: evil, addresses: [evil], error: '' },
    })),
    5,
  ])
  outputs.push(['id error', formatID(decodeID({ ...idFixture(0), id: evil, error: evil })), 1])
  outputs.push([
    'ipfs error',
    formatID(decodeID({ ...idFixture(0), ipfs: { id: '', addresses: [], error: evil } })),
    5,
  ])
  const gpi = gpiFixture(0) as { peer_map: Record<string, Record<string, unknown>> }
  gpi.peer_map[PEERS[1]].peername = evil
  gpi.peer_map[PEERS[0]].error = evil
  gpi.peer_map[evil] = { ...gpi.peer_map[PEERS[2]] }
  outputs.push([
    'status',
    formatGlobalPinInfo(decodeGlobalPinInfo({ ...gpi, cid: evil, name: evil })),
    5,
  ])
  outputs.push([
    'pin',
    formatPin(decodePin(pinFixture(0, { cid: evil, name: evil, type: evil, allocations: [evil] }))),
    1,
  ])
  outputs.push(['added', formatAddedOutput({ name: evil, cid: evil }), 1])
  outputs.push(['added -q', formatAddedOutput({ name: evil, cid: evil }, true), 1])
  outputs.push(['version', formatVersion({ version: evil }), 1])
  outputs.push(['error', formatError(500, evil), 3])
  outputs.push([
    'metric',
    formatMetric(decodeMetric({ name: evil, peer: evil, value: evil, expire: now * 1e6 }), now),
    1,
  ])
  outputs.push([
    'alert',
    formatAlert(decodeAlert({ name: evil, peer: evil, expire: now * 1e6 }), now),
    1,
  ])
  outputs.push([
    'bandwidth',
    formatBandwidth(
      decodeBandwidthByProtocol({ [evil]: { total_in: 1, total_out: 1, rate_in: 0, rate_out: 0 } }),
    ),
    1,
  ])
  outputs.push([
    'repo gc',
    formatRepoGC(decodeGlobalRepoGC({
      peer_map: {
        [PEERS[0]]: {
          peer: PEERS[0],
          peername: evil,
          keys: [{ key: evil }, { key: null, error: evil }],
          error: evil,
        },
      },
    })),
    4,
  ])
  for (const [what, text, lines] of outputs) {
    // deno-lint-ignore no-control-regex
    equal(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), false, `${what}: ${text}`)
    equal(text.split('\n').length - 1, lines, `${what}: ${text}`)
    equal(text.includes('X-Injected') ? text.includes(shown) : true, true, `${what}: ${text}`)
  }
})
