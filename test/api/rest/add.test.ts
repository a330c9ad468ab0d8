/**
 * POST /add in-process: multipart bodies shaped like the Go client's, chunked into UnixFS DAGs
 * whose CIDs must equal Kubo 0.43's (`ipfs add -n` on the same bytes, recorded below), blocks
 * streamed to the IPFS connector, the root pinned in the cluster, and the reference's output items.
 */
import assert from 'node:assert/strict'
import { IPFSError } from '../../../src/errors.ts'
import type { Pin } from '../../../src/types/pin.ts'
import { FAKE_PEER_ID } from '../../support/fake_cluster.ts'
import { fakeIpfs } from '../../support/fake_ipfs.ts'
import {
  bigFile,
  call,
  DIR,
  json,
  multipart,
  ndjson,
  postAdd,
  smallFile,
  testApi,
} from './helpers.ts'
import type { AddPart } from './helpers.ts'

interface Out {
  name: string
  cid: string | null
  size?: number
  bytes?: number
  allocations?: string[]
}

const add = postAdd

async function addOk(parts: AddPart[], query = '') {
  const r = await add(parts, query)
  assert.equal(r.res.status, 200)
  return { ...r, out: await ndjson(r.res) as Out[] }
}

Deno.test("add: one small file gives Kubo's CID, streams its blocks, pins the root", async () => {
  const { res, out, cluster, ipfs } = await addOk([{ path: 'hello.txt', content: 'hello world\n' }])
  assert.equal(res.headers.get('x-chunked-output'), '1')
  assert.equal(res.headers.get('trailer'), 'X-Stream-Error')
  assert.deepEqual(out, [{
    name: 'hello.txt',
    cid: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
    size: 20,
    allocations: [FAKE_PEER_ID],
  }])
  const bytes = await ipfs.blockGet('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')
  assert.ok(bytes.length > 0)
  const pinCall = cluster.calls.find((c) => c.method === 'commitPin')
  assert.equal((pinCall?.args[0] as Pin).cid, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')
  assert.deepEqual((pinCall?.args[0] as Pin).allocations, [FAKE_PEER_ID])
  assert.ok(cluster.pinset.has('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'))
})

Deno.test("add: CIDs equal Kubo's for cid-version, raw-leaves, trickle and chunker options", async () => {
  const cases: [string, AddPart, string][] = [
    [
      '?cid-version=1',
      { path: 'hello.txt', content: 'hello world\n' },
      'bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4',
    ],
    ['', { path: 'big.bin', content: bigFile() }, 'QmayBMXgLJfUjXbqigitYjSXegeQeSfKAL3QDi2aNn8rq9'],
    [
      '?raw-leaves=true',
      { path: 'big.bin', content: bigFile() },
      'QmeChaXgMN1xMtBMXHgPbDSdzFdw8JsDdu85PLh7HyJjBJ',
    ],
    [
      '?layout=trickle',
      { path: 'big.bin', content: bigFile() },
      'Qmcx5TUDkcYnNtEVNxYr6E8tTKrXf65Fqh6GuUp1KxvGp9',
    ],
    [
      '?cid-version=1',
      { path: 'big.bin', content: bigFile() },
      'bafybeihlwgllqrtzphub6clcwutci3orj44ieb4ln5ks23mqdyoac2244u',
    ],
    [
      '?chunker=size-1000',
      { path: 'small.bin', content: smallFile() },
      'QmRZrK4Afg5Sa7MEv2xhmWGGiwayLUjeMUFtAXkep8Bnub',
    ],
    [
      '?chunker=size-1000&layout=trickle',
      { path: 'small.bin', content: smallFile() },
      'QmWEbAYGUbvbj2sHaBmzTRKGDNvQPJKJnR1u6vGAspVX7M',
    ],
    ['', { path: 'empty.txt', content: '' }, 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'],
  ]
  for (const [q, part, cid] of cases) {
    const { out } = await addOk([part], q)
    assert.equal(out.at(-1)?.cid, cid, `${part.path} ${q}`)
    assert.equal(out.at(-1)?.name, part.path)
  }
})

Deno.test('add: a directory lists files, then directories children-first, root last (as ipfs add)', async () => {
  const { out, cluster } = await addOk(DIR)
  assert.deepEqual(out.map((o) => [o.cid, o.name]), [
    ['Qmbvkmk9LFsGneteXk3G7YLqtLVME566ho6ibaQZZVHaC9', 'mydir/a.txt'],
    ['QmR9pC5uCF3UExca8RSrCVL8eKv7nHMpATzbEQkAHpXmVM', 'mydir/sub/b.txt'],
    ['QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn', 'mydir/empty'],
    ['QmdE4kAU2TxLFfde4Ti2QW5VxGWD5ku9JxGSf3Lzb7dVpr', 'mydir/sub'],
    ['QmfZVL5VB5w63iUrxWSs1HbHfDPsLSaqg9JmCZJpPhWLx5', 'mydir'],
  ])
  assert.ok(cluster.pinset.has('QmfZVL5VB5w63iUrxWSs1HbHfDPsLSaqg9JmCZJpPhWLx5'))
  assert.equal(cluster.pinset.size, 1)
})

Deno.test('add: a directory with cid-version=1 (empty directory as CIDv1)', async () => {
  const { out } = await addOk(DIR, '?cid-version=1')
  assert.deepEqual(out.map((o) => o.cid), [
    'bafkreiehikh4kiuahuyqmxt3zy6pap7eouewmmpf4b5326qp3zqmjtzfy4',
    'bafkreiacmobjtcnw7wku64v2v4x4ms6c4lyb22jnjxtstbxkqchw5gmbh4',
    'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354',
    'bafybeibw4m5epa4wvkpn2ols2mz4lacec6y5z3skfjzq5itfiet25lbfhq',
    'bafybeig3lga4n4d2byalojc2cu6arpaja7qwtfn53f7xgg74aymdpk3gcq',
  ])
})

Deno.test('add: wrap-with-directory wraps everything, the wrapper has an empty name', async () => {
  let { out } = await addOk(
    [{ path: 'hello.txt', content: 'hello world\n' }],
    '?wrap-with-directory=true',
  )
  assert.deepEqual(out.map((o) => [o.cid, o.name]), [
    ['QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', 'hello.txt'],
    ['QmfLiVjH2vujCVP2e75zyzBYmpcjktmDeU1YBz6Ct8BBsc', ''],
  ])
  ;({ out } = await addOk(
    [...DIR, { path: 'hello.txt', content: 'hello world\n' }],
    '?wrap-with-directory=true',
  ))
  assert.equal(out.at(-1)?.cid, 'QmdXpmWcYfRYVX6gjfmsXreatXkHpgTy15z67JirPh8nCi')
  assert.equal(out.at(-1)?.name, '')
})

Deno.test('add: several top-level entries without wrap are added one by one; the last root is pinned', async () => {
  const { out, cluster } = await addOk([
    { path: 'hello.txt', content: 'hello world\n' },
    { path: 'empty.txt', content: '' },
  ])
  assert.deepEqual(out.map((o) => o.name), ['hello.txt', 'empty.txt'])
  assert.deepEqual([...cluster.pinset.keys()], ['QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'])
})

Deno.test('add: pin options reach the root pin (mode forced recursive); no-pin skips pinning', async () => {
  let { cluster } = await addOk(
    [{ path: 'hello.txt', content: 'hello world\n' }],
    '?name=greeting&replication-min=1&replication-max=2&meta-k=v&mode=direct',
  )
  const opts = cluster.calls.find((c) => c.method === 'commitPin')?.args[0] as Pin
  assert.equal(opts.name, 'greeting')
  assert.equal(opts.replication_factor_min, 1)
  assert.equal(opts.replication_factor_max, 2)
  assert.deepEqual(opts.metadata, { k: 'v' })
  assert.equal(opts.mode, 'recursive')
  ;({ cluster } = await addOk([{ path: 'hello.txt', content: 'hello world\n' }], '?no-pin=true'))
  assert.equal(cluster.calls.filter((c) => c.method === 'commitPin').length, 0)
})

Deno.test('add: stream-channels=false answers one JSON array', async () => {
  const r = await add([{ path: 'hello.txt', content: 'hello world\n' }], '?stream-channels=false')
  assert.equal(r.res.status, 200)
  const arr = await json(r.res) as Out[]
  assert.equal(arr.length, 1)
  assert.equal(arr[0].cid, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')
})

Deno.test('add: progress=true adds {name, bytes} lines every 256 KiB and at the end', async () => {
  const { out } = await addOk([{ path: 'big.bin', content: bigFile() }], '?progress=true')
  const progress = out.filter((o) => o.cid === null)
  assert.deepEqual(progress.map((p) => p.bytes), [262144, 524288, 786432, 1048576, 1060921])
  assert.ok(progress.every((p) => p.name === '')) // relative to the top-level entry, as the reference
  assert.equal(out.at(-1)?.cid, 'QmayBMXgLJfUjXbqigitYjSXegeQeSfKAL3QDi2aNn8rq9')
})

Deno.test('add: symlinks are stored as UnixFS symlinks', async () => {
  const { out } = await addOk([
    { path: 'd', dir: true },
    { path: 'd/link', symlink: 'target.txt' },
  ])
  assert.deepEqual(out.map((o) => o.name), ['d/link', 'd'])
})

Deno.test('add: bad parameters are a 400 before anything is added', async () => {
  const cases: [string, RegExp][] = [
    ['?layout=zigzag', /^layout parameter is invalid$/],
    ['?format=tar', /^format parameter is invalid$/],
    ['?raw-leaves=maybe', /^parameter raw-leaves invalid$/],
    ['?cid-version=x', /^parameter cid-version invalid$/],
    ['?cid-version=2', /^bad CID Version/],
    ['?chunker=rabin', /not supported/],
    ['?chunker=size-0', /chunker size must be greater than 0/],
    ['?chunker=size-9999999', /maximum chunk size/],
    ['?hash=nope', /^hash function name not known: "nope"/],
    ['?shard=true&format=car', /a CAR file cannot be sharded/],
    ['?format=car&wrap-with-directory=true', /^cannot wrap a CAR file upload$/],
    ['?replication-min=x', /replication-min invalid/],
  ]
  for (const [q, re] of cases) {
    const r = await add([{ path: 'hello.txt', content: 'hello world\n' }], q)
    assert.equal(r.res.status, 400, q)
    assert.match((await json(r.res) as { message: string }).message, re, q)
    assert.equal(r.cluster.calls.length, 0)
  }
})

Deno.test('add: a body that is not multipart is a 400', async () => {
  const { api, cluster } = testApi({}, { ipfs: fakeIpfs() })
  let res = await call(api, 'POST', '/add', {
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
  })
  assert.equal(res.status, 400)
  assert.deepEqual(await json(res), {
    code: 400,
    message: "request Content-Type isn't multipart/form-data",
  })
  res = await call(api, 'POST', '/add', {
    body: 'x',
    headers: { 'content-type': 'multipart/form-data' },
  })
  assert.equal(res.status, 400)
  assert.deepEqual(await json(res), {
    code: 400,
    message: 'no multipart boundary param in Content-Type',
  })
  assert.equal(cluster.calls.length, 0)
})

Deno.test('add: a broken or empty multipart body is a 400 with the reason; nothing is pinned', async () => {
  const enc = new TextEncoder()
  const ok = multipart([{ path: 'a.txt', content: 'complete\n' }], 'b').body
  const okPrefix = ok.subarray(0, ok.length - '--b--\r\n'.length) // the first part, whole
  const cases: [string, BodyInit, RegExp][] = [
    ['no body at all', '', /^multipart: no boundary found in the body$/],
    ['garbage', 'garbage without boundary', /^multipart: no boundary found in the body$/],
    [
      'only the closing boundary',
      '--b--\r\n',
      /^no files were added: the request has no file parts$/,
    ],
    [
      'a part cut in its body',
      '--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nunterminated',
      /^multipart: unexpected end of input in part body$/,
    ],
    [
      'a part cut in its headers',
      '--b\r\nContent-Disposition: form-data; name="fi',
      /^multipart: unexpected end of input in part headers$/,
    ],
    [
      // The first file is complete; the second is cut: neither root may be pinned.
      'a whole part, then a cut one',
      new Blob([
        okPrefix,
        enc.encode(
          '--b\r\nContent-Disposition: form-data; name="file"; filename="y"\r\n\r\nhalf',
        ),
      ]),
      /^multipart: unexpected end of input in part body$/,
    ],
  ]
  for (const stream of ['', '?stream-channels=false']) {
    for (const [what, body, re] of cases) {
      const { api, cluster } = testApi({}, { ipfs: fakeIpfs() })
      const res = await call(api, 'POST', `/add${stream}`, {
        body,
        headers: { 'content-type': 'multipart/form-data; boundary=b' },
      })
      assert.equal(res.status, 400, `${what} ${stream}`)
      const err = await json(res) as { code: number; message: string }
      assert.equal(err.code, 400, what)
      assert.match(err.message, re, `${what} ${stream}`)
      assert.equal(cluster.calls.filter((c) => c.method === 'commitPin').length, 0, what)
      assert.equal(cluster.pinset.size, 0, what)
    }
  }
})

Deno.test('add: an IPFS failure before the first output is a 500 with its message; nothing is pinned', async () => {
  const ipfs = fakeIpfs()
  ipfs.blockStream = async (blocks) => {
    for await (const _ of blocks) throw new IPFSError('failed to put block on all destinations')
  }
  const r = await add([{ path: 'hello.txt', content: 'hello world\n' }], '', ipfs)
  assert.equal(r.res.status, 500)
  assert.deepEqual(await json(r.res), {
    code: 500,
    message: 'failed to put block on all destinations',
  })
  assert.equal(r.cluster.calls.filter((c) => c.method === 'commitPin').length, 0)
})

Deno.test('add: without an IPFS connector the peer answers 500', async () => {
  const { api } = testApi()
  const mp = multipart([{ path: 'a', content: 'a' }])
  const res = await call(api, 'POST', '/add', {
    body: mp.body,
    headers: { 'content-type': mp.contentType },
  })
  assert.equal(res.status, 500)
  assert.match((await json(res) as { message: string }).message, /no IPFS connector/)
})

Deno.test('add: the body is not limited by max_body_bytes', async () => {
  const { api } = testApi({ max_body_bytes: 1024 }, { ipfs: fakeIpfs() })
  const mp = multipart([{ path: 'big.bin', content: bigFile() }])
  const res = await call(api, 'POST', '/add', {
    body: mp.body,
    headers: { 'content-type': mp.contentType },
  })
  assert.equal(res.status, 200)
  assert.equal(
    (await ndjson(res) as Out[]).at(-1)?.cid,
    'QmayBMXgLJfUjXbqigitYjSXegeQeSfKAL3QDi2aNn8rq9',
  )
})

/** `ipfs dag export` of hello.txt added with --cid-version=1 (Kubo 0.43). */
const HELLO_CAR =
  'OqJlcm9vdHOB2CpYJQABVRIgqUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEdndmVyc2lvbgEwAVUSIKlIkE8vD0ebj4GXaUswGEsNLtHBzSoewPuF0pmhkqRHaGVsbG8gd29ybGQK'
/** `ipfs dag export` of the mydir tree (5 dag-pb blocks). */
const DIR_CAR =
  'OKJlcm9vdHOB2CpYIwASIP/gn1uMcQRdIF9dCpVGByq43IoldRsFMSJ48oPysfEuZ3ZlcnNpb24BsQESIP/gn1uMcQRdIF9dCpVGByq43IoldRsFMSJ48oPysfEuEi0KIhIgyeSIXsB2HdEgTykbiTSIo8FhXNDslOKeu0gKgov6suoSBWEudHh0GAoSLQoiEiBZlIQ5Bl8pYZ70EoDLuTK+UsVtmcWWa2XgERI58Ji77xIFZW1wdHkYBBIrCiISIN0vakxMQCDa2+qPQac04JKmR/1wvnCaiHBxPudi0cvHEgNzdWIYPQoCCAEsEiDJ5IhewHYd0SBPKRuJNIijwWFc0OyU4p67SAqCi/qy6goICAISAmEKGAImEiBZlIQ5Bl8pYZ70EoDLuTK+UsVtmcWWa2XgERI58Ji77woCCAFVEiDdL2pMTEAg2tvqj0GnNOCSpkf9cL5wmohwcT7nYtHLxxItCiISICnMZMZpJ7woG4l/PPe/QOluN6jfpMf3eBDtdJKD3Q38EgViLnR4dBgKCgIIASwSICnMZMZpJ7woG4l/PPe/QOluN6jfpMf3eBDtdJKD3Q38CggIAhICYgoYAg=='
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))

Deno.test('add: format=car stores the blocks of a CAR and pins its root (one output item)', async () => {
  let { out, cluster, ipfs } = await addOk(
    [{ path: 'hello.car', content: unb64(HELLO_CAR) }],
    '?format=car',
  )
  assert.deepEqual(out, [{
    name: 'hello.car',
    cid: 'bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4',
    bytes: 12,
    allocations: [FAKE_PEER_ID],
  }])
  assert.ok(cluster.pinset.has('bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4'))
  assert.equal(
    new TextDecoder().decode(
      await ipfs.blockGet('bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4'),
    ),
    'hello world\n',
  )
  ;({ out, cluster } = await addOk([{ path: 'dir.car', content: unb64(DIR_CAR) }], '?format=car'))
  assert.equal(out.length, 1)
  assert.equal(out[0].cid, 'QmfZVL5VB5w63iUrxWSs1HbHfDPsLSaqg9JmCZJpPhWLx5')
  assert.equal(out[0].size, undefined) // a directory has no UnixFS file size
  assert.ok(cluster.pinset.has('QmfZVL5VB5w63iUrxWSs1HbHfDPsLSaqg9JmCZJpPhWLx5'))
})

Deno.test('add: format=car refuses corrupt blocks, several roots and non-CAR input', async () => {
  const bad = unb64(HELLO_CAR)
  bad[bad.length - 1] ^= 1 // last byte of the block: hash mismatch
  let r = await add([{ path: 'x.car', content: bad }], '?format=car')
  assert.equal(r.res.status, 400)
  assert.match((await json(r.res) as { message: string }).message, /does not match its hash/)
  // Header with two roots: {"roots":[cid,cid],"version":1} in CBOR.
  const car = unb64(HELLO_CAR)
  const cidBytes = car.subarray(13, 13 + 37) // tag 42 payload: 0x00 + CIDv1 raw (36 bytes)
  const header = [0xa2, 0x65, ...new TextEncoder().encode('roots'), 0x82]
  for (let i = 0; i < 2; i++) header.push(0xd8, 0x2a, 0x58, 37, ...cidBytes)
  header.push(0x67, ...new TextEncoder().encode('version'), 0x01)
  const two = new Uint8Array([header.length, ...header])
  r = await add([{ path: 'x.car', content: two }], '?format=car')
  assert.equal(r.res.status, 400)
  assert.match(
    (await json(r.res) as { message: string }).message,
    /only CAR files with a single root/,
  )
  r = await add([{ path: 'hello.txt', content: 'hello world\n' }], '?format=car')
  assert.equal(r.res.status, 400)
  assert.match((await json(r.res) as { message: string }).message, /invalid CAR/)
  assert.equal(r.cluster.calls.length, 0)
})

Deno.test('add: a garbage, cut or empty CAR is a 400 with the reason; nothing is stored or pinned', async () => {
  const car = unb64(HELLO_CAR)
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'random bytes',
      Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256),
      /invalid CAR/,
    ],
    ['empty file', new Uint8Array(0), /^invalid CAR header length$/],
    ['header only, cut', car.subarray(0, 20), /^invalid CAR: unexpected end of data$/],
    ['a block cut short', car.subarray(0, car.length - 3), /^invalid CAR: unexpected end of data$/],
    [
      'a header that is not CBOR',
      new Uint8Array([4, 0xff, 0xff, 0xff, 0xff]),
      /^invalid CAR header/,
    ],
    ['a varint that never ends', new Uint8Array(12).fill(0xff), /^invalid CAR: varint too long$/],
  ]
  for (const stream of ['', '&stream-channels=false']) {
    for (const [what, bytes, re] of cases) {
      const r = await add([{ path: 'x.car', content: bytes }], `?format=car${stream}`)
      assert.equal(r.res.status, 400, what)
      const err = await json(r.res) as { code: number; message: string }
      assert.match(err.message, re, what)
      assert.equal(r.cluster.calls.length, 0, what)
    }
  }
  // A CAR with no part at all.
  const { api, cluster } = testApi({}, { ipfs: fakeIpfs() })
  const res = await call(api, 'POST', '/add?format=car', {
    body: '--b--\r\n',
    headers: { 'content-type': 'multipart/form-data; boundary=b' },
  })
  assert.equal(res.status, 400)
  assert.match((await json(res) as { message: string }).message, /^no files were added/)
  assert.equal(cluster.calls.length, 0)
})
