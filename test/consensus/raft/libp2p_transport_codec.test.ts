/**
 * The bytes of Raft over libp2p: every message variant, snapshot chunks and acknowledgements
 * round-trip exactly; frames survive any split of the byte stream; malformed input is a
 * `RaftCodecError`, never a crash or a half-decoded message.
 */
import assert from 'node:assert/strict'
import * as cborg from 'cborg'
import {
  type Message,
  MESSAGE_TYPES,
  type SnapshotChunk,
} from '../../../src/consensus/raft/core/mod.ts'
import {
  decodeAck,
  decodeChunk,
  decodeFrame,
  decodeMessage,
  encodeAck,
  encodeChunk,
  encodeFrame,
  encodeMessage,
  frameOf,
  FrameReader,
  RaftCodecError,
} from '../../../src/consensus/raft/libp2p_codec.ts'

const A = '12D3KooWA'
const B = '12D3KooWB'
const base = { from: A, to: B, term: 7 }
const bytes = (...b: number[]) => Uint8Array.from(b)
const meta = { index: 90, term: 6, confState: { voters: [A, B, 'c'], learners: ['d'] } }

/** One sample of every message variant, with every optional field both present and absent. */
const samples: Message[] = [
  {
    ...base,
    type: 'append',
    index: 10,
    logTerm: 6,
    commit: 9,
    entries: [
      { term: 7, index: 11, type: 'normal', data: bytes(1, 2, 3) },
      { term: 7, index: 12, type: 'confChange', data: bytes() },
      { term: 7, index: 13, type: 'normal', data: new Uint8Array(70_000).fill(9) },
    ],
  },
  { ...base, type: 'append', index: 0, logTerm: 0, commit: 0, entries: [] },
  { ...base, type: 'appendResp', index: 13, reject: false, rejectHint: 0, logTerm: 0 },
  { ...base, type: 'appendResp', index: 13, reject: true, rejectHint: 4, logTerm: 3 },
  { ...base, type: 'vote', index: 13, logTerm: 7, transfer: false },
  { ...base, type: 'preVote', index: 13, logTerm: 7, transfer: true },
  { ...base, type: 'voteResp', reject: false },
  { ...base, type: 'preVoteResp', reject: true },
  { ...base, type: 'heartbeat', commit: 12 },
  { ...base, type: 'heartbeat', commit: 12, ctx: 'read-1' },
  { ...base, type: 'heartbeat', commit: 12, ctx: '' },
  { ...base, type: 'heartbeatResp' },
  { ...base, type: 'heartbeatResp', ctx: 'read-1' },
  { ...base, type: 'snapshot', snapshot: meta },
  {
    ...base,
    term: 0,
    type: 'propose',
    entries: [{ type: 'normal', data: bytes(4) }, { type: 'confChange', data: bytes(5, 6) }],
  },
  { ...base, type: 'readIndex', ctx: 'r2' },
  { ...base, type: 'readIndexResp', index: 44, ctx: 'r2' },
  { ...base, type: 'transferLeader', transferee: 'c' },
  { ...base, type: 'timeoutNow' },
  { ...base, type: 'snapStatus', ok: true },
  { ...base, type: 'unreachable' },
  { ...base, term: 2 ** 53 - 1, type: 'heartbeat', commit: 2 ** 40 },
]

Deno.test('every message variant round-trips exactly', () => {
  assert.deepEqual(
    new Set(samples.map((m) => m.type)),
    new Set(MESSAGE_TYPES),
    'the samples cover every message type',
  )
  for (const m of samples) {
    assert.deepStrictEqual(decodeMessage(encodeMessage(m), A, B), m, m.type)
  }
})

Deno.test('from and to come from the receiver, not the bytes', () => {
  const m = decodeMessage(encodeMessage(samples[4]), 'sender-by-connection', 'me')
  assert.equal(m.from, 'sender-by-connection')
  assert.equal(m.to, 'me')
})

Deno.test('a frame carries many messages and survives any split of the byte stream', async () => {
  const frames = [
    encodeFrame(samples.map(encodeMessage)),
    encodeFrame([]),
    encodeFrame(Array.from({ length: 300 }, () => encodeMessage(samples[6]))),
  ]
  const all = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0))
  let at = 0
  for (const f of frames) {
    all.set(f, at)
    at += f.byteLength
  }
  for (const piece of [1, 3, 1000, all.byteLength]) {
    const source = async function* () {
      for (let i = 0; i < all.byteLength; i += piece) yield all.slice(i, i + piece)
    }
    const r = new FrameReader(source(), 1 << 20)
    assert.deepStrictEqual(decodeFrame((await r.next())!, A, B), samples, `split ${piece}`)
    assert.deepStrictEqual(decodeFrame((await r.next())!, A, B), [])
    assert.equal(decodeFrame((await r.next())!, A, B).length, 300)
    assert.equal(await r.next(), null, 'a clean end between frames')
  }
})

Deno.test('snapshot chunks and acknowledgements round-trip', () => {
  const c: SnapshotChunk = {
    from: A,
    to: B,
    term: 7,
    snapshot: meta,
    streamId: 3,
    chunkIndex: 2,
    offset: 131072,
    data: bytes(1, 2, 3, 4),
    done: true,
  }
  assert.deepStrictEqual(decodeChunk(encodeChunk(c), A, B), c)
  assert.deepStrictEqual(decodeAck(encodeAck({ ok: true })), { ok: true })
  assert.deepStrictEqual(decodeAck(encodeAck({ ok: false, error: 'torn' })), {
    ok: false,
    error: 'torn',
  })
})

Deno.test('malformed input is a RaftCodecError', async () => {
  const bad: Uint8Array[] = [
    bytes(0xff),
    cborg.encode('not a list'),
    cborg.encode([99, 1]),
    cborg.encode([0, 1, 2, 3, 4, [1, 2, 3]]), // entries not in fours
    cborg.encode([0, -1, 2, 3, 4, []]), // negative term
    cborg.encode([6, 1, 'yes']), // voteResp with a string reject
    cborg.encode([8, 1, 2, 3, 4]), // heartbeat with an extra field
    cborg.encode([0, 1, 2, 3, 4, [1, 1, 5, bytes()]]), // unknown entry type
  ]
  for (const b of bad) assert.throws(() => decodeMessage(b, A, B), RaftCodecError)
  assert.throws(() => decodeChunk(cborg.encode([1, 2]), A, B), RaftCodecError)
  assert.throws(() => decodeAck(cborg.encode([2])), RaftCodecError)
  async function* truncated() {
    yield frameOf(bytes(1, 2, 3, 4)).subarray(0, 3)
  }
  await assert.rejects(new FrameReader(truncated(), 100).next(), RaftCodecError)
  async function* huge() {
    yield frameOf(new Uint8Array(101))
  }
  await assert.rejects(new FrameReader(huge(), 100).next(), /exceeds the limit of 100/)
})
