/**
 * POST /add with `hash=<function>`: every hash function Kubo's `ipfs add --hash` accepts gives the
 * CIDs the real Kubo 0.43 gives for the same bytes and options (`ipfs add --only-hash`, run here on
 * a throw-away repo), and names Kubo refuses are a 400 that lists the allowed ones. The embedded
 * IPFS node stores and pins such DAGs too.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Rehasher } from '../../../src/adder/rehash.ts'
import { embeddedSection } from '../../../src/ipfsconn/embedded/config.ts'
import { embeddedConnector } from '../../../src/ipfsconn/embedded/connector.ts'
import { newPin } from '../../../src/types/pin.ts'
import { ADD_HASH_NAMES, loadHasher } from '../../../src/types/multihash.ts'
import { findKuboBinary } from '../../support/kubo.ts'
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
  cid: string
  size?: number
}

/** `ipfs add --only-hash` on a throw-away repo (no daemon). */
async function kubo() {
  const bin = await findKuboBinary()
  const repo = await Deno.makeTempDir({ prefix: 'kubo-hash-' })
  const files = await Deno.makeTempDir({ prefix: 'kubo-hash-files-' })
  const env = { IPFS_PATH: repo, HOME: repo, IPFS_TELEMETRY: 'off', DO_NOT_TRACK: '1' }
  const run = async (args: string[]) => {
    const out = await new Deno.Command(bin, { args, env, stdout: 'piped', stderr: 'piped' })
      .output()
    const text = new TextDecoder()
    if (!out.success) throw new Error(`ipfs ${args.join(' ')}: ${text.decode(out.stderr)}`)
    return text.decode(out.stdout)
  }
  await run(['init', '--profile', 'test', '-e'])
  let n = 0
  return {
    /** `added <cid> <name>` lines of `ipfs add -r --only-hash <flags>` on the parts, as pairs. */
    async add(parts: AddPart[], flags: string[]): Promise<[string, string][]> {
      const dir = join(files, String(n++))
      await Deno.mkdir(dir)
      for (const p of parts) {
        const path = join(dir, p.path)
        if ('dir' in p) await Deno.mkdir(path, { recursive: true })
        else if ('content' in p) await Deno.writeFile(path, toBytes(p.content))
      }
      const tops = [...new Set(parts.map((p) => p.path.split('/')[0]))]
      const out = await run([
        'add',
        '-r',
        '--only-hash',
        ...flags,
        ...tops.map((t) => join(dir, t)),
      ])
      return out.trim().split('\n').map((l) => {
        if (!l.startsWith('added ')) return [l, ''] as [string, string] // -Q: the CID alone
        const [, cid, ...name] = l.split(' ')
        return [cid, name.join(' ')] as [string, string]
      })
    },
    async stop() {
      await Deno.remove(repo, { recursive: true })
      await Deno.remove(files, { recursive: true })
    },
  }
}

const toBytes = (c: string | Uint8Array) => typeof c === 'string' ? new TextEncoder().encode(c) : c

const ours = postAdd

async function oursOk(parts: AddPart[], query: string): Promise<Out[]> {
  const { res, cluster, ipfs } = await ours(parts, query)
  assert.equal(res.status, 200, `${query}: ${res.status} ${await res.clone().text()}`)
  const out = (await ndjson(res) as Out[]).filter((o) => o.cid !== null)
  // The root is pinned under its new CID, and every block stored is what its CID says.
  assert.ok(cluster.pinset.has(out.at(-1)!.cid), query)
  for (const o of out) {
    const cid = CID.parse(o.cid)
    if (cid.multihash.code === 0x00) continue // identity: the bytes are the CID
    const bytes = await ipfs.blockGet(o.cid)
    const hasher = (await loadHasher(cid.multihash.code))!
    assert.deepEqual((await hasher.digest(bytes)).bytes, cid.multihash.bytes, `${o.name} ${query}`)
  }
  return out
}

/** The helpers' tree with a file of several chunks deeper down. */
const TREE: AddPart[] = [...DIR, { path: 'mydir/sub/big.bin', content: smallFile() }]

Deno.test('add --hash: the allowed set is what Kubo 0.43 accepts', () => {
  const blake2b: string[] = []
  for (let bits = 160; bits <= 512; bits += 8) blake2b.push(`blake2b-${bits}`)
  assert.deepEqual(
    [...ADD_HASH_NAMES].sort(),
    [
      ...blake2b,
      'blake2s-256',
      'blake3',
      'dbl-sha2-256',
      'identity',
      'keccak-256',
      'keccak-512',
      'sha1',
      'sha2-256',
      'sha2-512',
      'sha3-224',
      'sha3-256',
      'sha3-384',
      'sha3-512',
      'shake-256',
    ].sort(),
  )
})

Deno.test("add --hash: each hash function gives Kubo's CID for a five-chunk file", async () => {
  const k = await kubo()
  try {
    const file: AddPart[] = [{ path: 'big.bin', content: bigFile() }]
    for (const name of ADD_HASH_NAMES) {
      if (name === 'identity') continue // Kubo refuses identity CIDs over 128 bytes; see below
      const [[want]] = await k.add(file, ['-Q', '--hash', name])
      const out = await oursOk(file, `?hash=${name}`)
      assert.equal(out.at(-1)!.cid, want, name)
    }
  } finally {
    await k.stop()
  }
})

Deno.test("add --hash: layouts, leaves, chunkers, directories and names in any case give Kubo's CIDs", async () => {
  const k = await kubo()
  try {
    const cases: [AddPart[], string, string[]][] = [
      [[{ path: 'big.bin', content: bigFile() }], '&raw-leaves=false', ['--raw-leaves=false']],
      [[{ path: 'big.bin', content: bigFile() }], '&layout=trickle', ['--trickle']],
      [[{ path: 's.bin', content: smallFile() }], '&chunker=size-1000', ['--chunker=size-1000']],
      [
        [{ path: 's.bin', content: smallFile() }],
        '&chunker=size-1000&layout=trickle&raw-leaves=false',
        ['--chunker=size-1000', '--trickle', '--raw-leaves=false'],
      ],
      [[{ path: 'hello.txt', content: 'hello world\n' }], '', []],
      [[{ path: 'empty.txt', content: '' }], '', []],
      [TREE, '', []],
      [TREE, '&wrap-with-directory=true', ['-w']],
    ]
    for (const name of ['sha3-512', 'blake2b-256', 'blake3', 'sha1', 'shake-256', 'sha2-512']) {
      for (const [parts, query, flags] of cases) {
        const want = await k.add(parts, ['--hash', name, ...flags])
        const out = await oursOk(parts, `?hash=${name}${query}`)
        assert.deepEqual(
          out.map((o) => [o.cid, o.name]),
          want.map(([cid, path]) => [cid, path.replace(/^.*?\/\d+\//, '')]),
          `${name}${query}`,
        )
      }
    }
    // Any case, as Kubo and the reference read the name; an explicit cid-version=1 is the same.
    const [[want]] = await k.add([{ path: 'h', content: 'hi\n' }], ['-Q', '--hash', 'sha3-256'])
    for (const q of ['?hash=SHA3-256', '?hash=Sha3-256&cid-version=1']) {
      assert.equal((await oursOk([{ path: 'h', content: 'hi\n' }], q)).at(-1)!.cid, want, q)
    }
    // identity: small content is the CID itself, as in Kubo.
    const [[id]] = await k.add([{ path: 'h', content: 'hello world\n' }], [
      '-Q',
      '--hash',
      'identity',
    ])
    const out = await oursOk([{ path: 'h', content: 'hello world\n' }], '?hash=identity')
    assert.equal(out.at(-1)!.cid, id)
  } finally {
    await k.stop()
  }
})

Deno.test('add --hash: unknown and refused names, CIDv0 and big identity blocks are a 400', async () => {
  const allowed =
    /\(allowed: blake2b-160 … blake2b-512 \(every 8 bits\), blake2s-256, blake3, dbl-sha2-256, identity, keccak-256, keccak-512, sha1, sha2-256, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512, shake-256\)$/
  const cases: [string, RegExp][] = [
    ['?hash=nope', /^hash function name not known: "nope" /],
    ['?hash=sha2-384', /^hash function name not known: "sha2-384" /],
    ['?hash=md5', /^hash function "md5" cannot be used to add content: /],
    ['?hash=blake2b-152', /^hash function "blake2b-152" cannot be used to add content: /],
    ['?hash=keccak-224', /^hash function "keccak-224" cannot be used to add content: /],
  ]
  const file: AddPart[] = [{ path: 'hello.txt', content: 'hello world\n' }]
  for (const [q, re] of cases) {
    const { res, cluster } = await ours(file, q)
    assert.equal(res.status, 400, q)
    const msg = (await json(res) as { message: string }).message
    assert.match(msg, re, q)
    assert.match(msg, allowed, q)
    assert.equal(cluster.calls.length, 0)
  }
  let r = await ours(file, '?hash=sha3-512&cid-version=0')
  assert.equal(r.res.status, 400)
  assert.deepEqual(await json(r.res), { code: 400, message: 'CIDv0 only supports sha2-256' })
  // Kubo: "digest too large: identity digest got 286 bytes, maximum 128".
  r = await ours([{ path: 'big.bin', content: smallFile() }], '?hash=identity')
  assert.equal(r.res.status, 400)
  assert.match(
    (await json(r.res) as { message: string }).message,
    /^digest too large: identity digest got \d+ bytes, maximum 128$/,
  )
  assert.equal(r.cluster.calls.length, 0)
})

Deno.test('Rehasher with sha2-256 gives back the importer blocks unchanged (links, sizes, bytes)', async () => {
  const rehasher = new Rehasher(sha256)
  const seen: string[] = []
  const store = {
    async put(cid: CID, bytes: Uint8Array) {
      const r = await rehasher.block(cid, bytes)
      assert.equal(r.cid.toString(), cid.toString())
      assert.deepEqual(r.bytes, bytes)
      seen.push(cid.toString())
      return cid
    },
  }
  const entries = []
  for await (
    const e of importer([{ path: 'big.bin', content: bigFile() }], store, {
      profile: 'unixfs-v0-2015',
      chunker: fixedSize({ chunkSize: 100_000 }),
      layout: balanced({ maxChildrenPerNode: 4 }), // three levels of links
      leafType: 'file',
      rawLeaves: false,
    })
  ) entries.push(e)
  assert.ok(seen.length > 12)
  assert.equal(rehasher.get(entries[0].cid)!.size, Number(entries[0].size))
})

/** A CAR v1 file: header {roots: [root], version: 1}, then the blocks. */
function car(root: CID, blocks: { cid: CID; bytes: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder()
  const varint = (n: number) => {
    const out = []
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80)
      n >>>= 7
    }
    out.push(n)
    return out
  }
  const cidTag = [0xd8, 0x2a, 0x58, root.bytes.length + 1, 0x00, ...root.bytes]
  const header = [0xa2, 0x65, ...enc.encode('roots'), 0x81, ...cidTag]
  header.push(0x67, ...enc.encode('version'), 0x01)
  const out = [...varint(header.length), ...header]
  for (const b of blocks) {
    out.push(...varint(b.cid.bytes.length + b.bytes.length), ...b.cid.bytes, ...b.bytes)
  }
  return new Uint8Array(out)
}

Deno.test('add format=car: blocks of every allowed hash function are checked against their CID', async () => {
  const bytes = new TextEncoder().encode('hello world\n')
  for (const code of [0x12, 0x14, 0xb220, 0x1e, 0x11]) {
    const hasher = (await loadHasher(code))!
    const cid = CID.createV1(0x55, await hasher.digest(bytes))
    const good = await oursOk(
      [{ path: 'x.car', content: car(cid, [{ cid, bytes }]) }],
      '?format=car',
    )
    assert.equal(good.at(-1)!.cid, cid.toString())
    const bad = await ours(
      [{ path: 'x.car', content: car(cid, [{ cid, bytes: bytes.with(0, 0x48) }]) }],
      '?format=car',
    )
    assert.equal(bad.res.status, 400, hasher.name)
    assert.equal(
      (await json(bad.res) as { message: string }).message,
      `block ${cid} does not match its hash`,
    )
    assert.equal(bad.cluster.calls.length, 0)
  }
})

Deno.test('add --hash into the embedded IPFS node: blocks are checked, stored and pinnable', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'add-hash-embedded-' })
  const ipfs = embeddedConnector(embeddedSection.defaults(), { configDir: dir })
  try {
    await ipfs.ready()
    const { api } = testApi({}, { ipfs })
    for (const hash of ['sha3-512', 'blake2b-256', 'blake3']) {
      const mp = multipart(TREE)
      const res = await call(api, 'POST', `/add?hash=${hash}`, {
        body: mp.body,
        headers: { 'content-type': mp.contentType },
      })
      assert.equal(res.status, 200, hash)
      const root = (await ndjson(res) as Out[]).at(-1)!.cid
      await ipfs.pin(newPin(root))
      assert.equal(await ipfs.pinLsCid(newPin(root)), 'recursive', hash)
    }
  } finally {
    await ipfs.stop()
    await Deno.remove(dir, { recursive: true })
  }
})
