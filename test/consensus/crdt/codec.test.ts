/**
 * go-ds-crdt's wire formats against the reference vectors of crdt-interop.md (computed with the Go
 * v1.1.6 dependency set): topic, broadcast payload, the two delta nodes of §2.2 and the keys of §3.4.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { base16 } from 'multiformats/bases/base16'
import {
  blockId,
  cidFromDsKey,
  CrdtFormatError,
  decodeBroadcast,
  decodeDelta,
  decodeNode,
  type Delta,
  dsKey,
  elementSize,
  encodeBroadcast,
  encodeDelta,
  encodeNode,
  prioritySize,
  topicName,
} from '../../../src/consensus/crdt/codec.ts'

const hex = (s: string) => base16.baseDecode(s.replace(/[\s|]/g, ''))
const toHex = (b: Uint8Array) => base16.baseEncode(b)

/** §3.4: the pin {Data, recursive, rf −1/−1, name n, metadata a=1,b=2, timestamp 1700000000}. */
const PIN = hex(
  '0a22 1220 9d6c2be50f706953479ab9df2ce3edca90b68053c00b3004b7f0accbe1e8eedf | 1001 | 2001 |' +
    ' 3217 0801 1001 1a016e 5206 0a0161 120131 5206 0a0162 120132 | 38 80e2cfaa06',
)
const PIN_CID = CID.parse('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')
const PIN_KEY = '/CIQJ23BL4UHXA2KTI6NLTXZM4PW4VEFWQBJ4ACZQAS37BLGL4HUO5XY'
const ADD_CID = 'bafybeiffiywmfor65mftu7niy6zmqd3knpas7jhwpk7zjwijpgsftpnhrq'
const TOMB_CID = 'bafybeid4ecswq7aeycm2fj3ndoqqjcjbdmm2atoklk6e2yubrxlk3xo3py'

Deno.test('topicName: the MD5 multihash of the cluster name in base58btc', () => {
  assert.equal(topicName('ipfs-cluster'), 'fzhnp2UwTBkgNabrJi1VanzwgN')
  assert.notEqual(topicName('other'), topicName('ipfs-cluster'))
})

Deno.test('dsKey / cidFromDsKey: base32 upper, no padding, of the CID bytes', () => {
  assert.equal(dsKey(PIN_CID), PIN_KEY)
  assert.equal(dsKey(PIN_CID.toV1()), '/AFYBEIE5NQV6KD3QNFJUPGVZ34WOH3OKSC3IAU6ABMYAJN7QVTF6D2HO34')
  assert.ok(cidFromDsKey(PIN_KEY).equals(PIN_CID))
  assert.ok(cidFromDsKey(dsKey(PIN_CID.toV1())).equals(PIN_CID.toV1()))
  assert.throws(() => cidFromDsKey('/not-base32!'), CrdtFormatError)
  assert.throws(() => cidFromDsKey('/AAAA'), CrdtFormatError)
})

Deno.test('encodeNode: the add delta of §2.2 hashes to the Go CID', async () => {
  const delta: Delta = {
    elements: [{ key: PIN_KEY, id: '', value: PIN }],
    tombstones: [],
    priority: 1,
  }
  const { cid, bytes } = await encodeNode(delta, [])
  assert.equal(cid.toString(), ADD_CID)
  assert.equal(toHex(bytes.subarray(0, 3)), '0a8801')
  assert.deepEqual(bytes.subarray(3), encodeDelta(delta))
  // elementSize/prioritySize add up to the encoded length (batches size deltas with them).
  assert.equal(elementSize(delta.elements[0]) + prioritySize(1), encodeDelta(delta).length)

  const back = await decodeNode(cid, bytes)
  assert.deepEqual(back.links, [])
  assert.deepEqual(back.delta, delta)
  assert.ok(blockId(cid).startsWith('/CIQ')) // sha2-256 multihashes: 12 20 → CIQ
  assert.equal(blockId(cid).length, 1 + 55)
})

Deno.test('encodeNode: the tombstone delta of §2.2 (one link, Name "" and Tsize 0) hashes to the Go CID', async () => {
  const add = CID.parse(ADD_CID)
  const delta: Delta = {
    elements: [],
    tombstones: [{ key: PIN_KEY, id: blockId(add), value: new Uint8Array() }],
    priority: 2,
  }
  const { cid, bytes } = await encodeNode(delta, [add])
  assert.equal(cid.toString(), TOMB_CID)
  assert.equal(toHex(bytes.subarray(0, 4)), '122a0a24')
  assert.deepEqual(bytes.subarray(4, 40), add.bytes)
  assert.equal(toHex(bytes.subarray(40, 46)), '120018000a78')
  const back = await decodeNode(cid, bytes)
  assert.equal(back.links.length, 1)
  assert.ok(back.links[0].equals(add))
  assert.deepEqual(back.delta, delta)
  // The link is no view of the block: a walk's queue of links would otherwise keep every block it
  // passed alive (a new peer syncing 1,000,000 pins held ~1 MiB per 9,000 pins until the end).
  assert.notEqual(back.links[0].bytes.buffer, bytes.buffer)
  assert.notEqual(back.links[0].multihash.bytes.buffer, bytes.buffer)
})

Deno.test('encodeNode: links are sorted by CID bytes whatever order the heads come in', async () => {
  const a = (await encodeNode({ elements: [], tombstones: [], priority: 1 }, [])).cid
  const b = (await encodeNode({ elements: [], tombstones: [], priority: 2 }, [])).cid
  const d = { elements: [], tombstones: [], priority: 3 }
  const x = await encodeNode(d, [a, b])
  const y = await encodeNode(d, [b, a])
  assert.ok(x.cid.equals(y.cid))
  const { links } = await decodeNode(x.cid, x.bytes)
  assert.ok(toHex(links[0].bytes) < toHex(links[1].bytes))
})

Deno.test('decodeNode refuses bytes that do not hash to the CID, and non-dag-pb nodes', async () => {
  const { cid, bytes } = await encodeNode({ elements: [], tombstones: [], priority: 1 }, [])
  const bad = bytes.slice()
  bad[bad.length - 1] ^= 1
  await assert.rejects(decodeNode(cid, bad), CrdtFormatError)
  const raw = CID.createV1(0x55, cid.multihash)
  await assert.rejects(decodeNode(raw, bytes), CrdtFormatError)
})

Deno.test('broadcast payload: the vector of §1.2, round trip, legacy raw CID', () => {
  const head = CID.parse(TOMB_CID)
  const data = encodeBroadcast([head])
  assert.equal(
    toHex(data),
    '0a260a24017012207c20a5687c04c099a2a76d1ba10489211b19a04dca5abc4d62818dd6addddb7e',
  )
  const back = decodeBroadcast(data)
  assert.equal(back.length, 1)
  assert.ok(back[0].equals(head))
  const two = decodeBroadcast(encodeBroadcast([head, CID.parse(ADD_CID)]))
  assert.deepEqual(two.map(String), [TOMB_CID, ADD_CID])
  // A raw CID (the pre-CRDTBroadcast format) is read as one head.
  assert.deepEqual(decodeBroadcast(head.bytes).map(String), [TOMB_CID])
  assert.deepEqual(decodeBroadcast(new Uint8Array()), [])
  assert.throws(() => decodeBroadcast(hex('ffffff')), CrdtFormatError)
})

Deno.test('decodeDelta skips unknown fields and refuses garbage', () => {
  const d: Delta = {
    elements: [{ key: '/k', id: '/id', value: hex('01') }],
    tombstones: [],
    priority: 7,
  }
  const extra = new Uint8Array([...encodeDelta(d), 0x22, 0x01, 0x00]) // field 4, 1 byte
  assert.deepEqual(decodeDelta(extra), d)
  assert.throws(() => decodeDelta(hex('0a05')), CrdtFormatError)
})
