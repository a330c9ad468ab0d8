/**
 * Pure parts of the Kubo connector: node addresses, error texts, lenient field readers, paths.
 */
import assert from 'node:assert/strict'
import { base58btc } from 'multiformats/bases/base58'
import { parseNodeAddress } from '../../../src/ipfsconn/ipfshttp/address.ts'
import { responseError } from '../../../src/ipfsconn/ipfshttp/client.ts'
import { blockPutQuery } from '../../../src/ipfsconn/ipfshttp/codecs.ts'
import {
  cidFromJson,
  cidOfResolvedPath,
  isPeerId,
  isPinnedAtDepth,
  pinAddArgs,
  pinStatusFromType,
  pinTypeForDepth,
  resolveTarget,
  toCount,
} from '../../../src/ipfsconn/ipfshttp/parse.ts'
import { parseCid } from '../../../src/types/cid.ts'
import { cidV0, rawBlock } from './helpers.ts'

Deno.test('parseNodeAddress: tcp, ip6, dns and unix forms', () => {
  const tcp = (baseUrl: string, hostname: string, port: number) => ({
    baseUrl,
    path: '/api/v0',
    hostname,
    port,
  })
  assert.deepEqual(
    parseNodeAddress('/ip4/127.0.0.1/tcp/5001'),
    tcp('http://127.0.0.1:5001/api/v0', '127.0.0.1', 5001),
  )
  assert.deepEqual(
    parseNodeAddress('/ip6/::1/tcp/5001'),
    tcp('http://[::1]:5001/api/v0', '::1', 5001),
  )
  assert.deepEqual(
    parseNodeAddress('/dns4/ipfs.local/tcp/80/http'),
    tcp('http://ipfs.local:80/api/v0', 'ipfs.local', 80),
  )
  assert.deepEqual(
    parseNodeAddress('/dns/localhost/tcp/5001'),
    tcp('http://localhost:5001/api/v0', 'localhost', 5001),
  )
  assert.equal(parseNodeAddress('/dns6/h/tcp/1').baseUrl, 'http://h:1/api/v0')
  for (const m of ['/unix/run/ipfs.sock', '/unix//run/ipfs.sock', '/unix/%2Frun%2Fipfs.sock']) {
    assert.deepEqual(parseNodeAddress(m), {
      baseUrl: 'http://ipfs/api/v0',
      path: '/api/v0',
      unixPath: '/run/ipfs.sock',
    })
  }
})

Deno.test('parseNodeAddress: bad addresses name the key and the accepted forms', () => {
  for (
    const bad of [
      '',
      '127.0.0.1:5001',
      '/ip4/127.0.0.1/udp/5001',
      '/ip4/127.0.0.1/tcp/99999',
      '/ip4/localhost/tcp/5001',
      '/ip4/127.0.0.1',
      '/p2p/Qm/tcp/1',
      '/unix/',
      '/ip4/127.0.0.1/tcp/5001/tls',
    ]
  ) {
    assert.throws(() => parseNodeAddress(bad), (e: Error) => {
      assert.equal(e.name, 'ConfigError')
      assert.match(e.message, /^ipfs_connector\.ipfshttp\.node_multiaddress: .*\/unix\/<path>\)$/)
      return true
    }, bad)
  }
})

Deno.test('responseError: the reference texts for JSON and non-JSON bodies', () => {
  const j = responseError('pin/rm?arg=Qm', 500, '{"Message":"not pinned","Code":0,"Type":"error"}')
  assert.equal(j.message, 'IPFS error (pin/rm?arg=Qm). Code: 500. Message: not pinned')
  assert.equal(j.ipfsMessage, 'not pinned')
  assert.equal(j.code, 500)
  // Go decodes any object into its error struct: no Message ⇒ empty message.
  assert.equal(responseError('id', 400, '{}').message, 'IPFS error (id). Code: 400. Message: ')
  assert.equal(
    responseError('id', 404, '404 page not found').message,
    'IPFS request failed (is it running?) (id). Code 404: 404 page not found',
  )
  assert.equal(responseError('id', 500, '[1]').ipfsMessage, undefined)
  assert.equal(responseError('id', 500, '{"Message":3}').ipfsMessage, undefined)
})

Deno.test('pin types and depths', () => {
  assert.equal(pinStatusFromType('recursive'), 'recursive')
  assert.equal(pinStatusFromType('direct'), 'direct')
  assert.equal(pinStatusFromType('indirect through QmX'), 'indirect')
  assert.equal(pinStatusFromType('bogus'), undefined)
  assert.equal(pinStatusFromType(3), undefined)
  assert.equal(pinTypeForDepth(-1), 'recursive')
  assert.equal(pinTypeForDepth(0), 'direct')
  // A depth-limited pin's node is direct here, recursive when the reference pinned it.
  assert.equal(pinTypeForDepth(3), 'all')
  assert.equal(isPinnedAtDepth('recursive', -1), true)
  assert.equal(isPinnedAtDepth('direct', -1), false)
  assert.equal(isPinnedAtDepth('direct', 0), true)
  assert.equal(isPinnedAtDepth('recursive', 0), false)
  assert.equal(isPinnedAtDepth('recursive', 2), true)
  assert.equal(isPinnedAtDepth('direct', 1), true)
  assert.equal(isPinnedAtDepth('indirect', 1), false)
  assert.equal(isPinnedAtDepth('indirect', -1), false)
  assert.equal(pinAddArgs(-1), 'recursive=true')
  assert.equal(pinAddArgs(0), 'recursive=false')
  // Kubo has no max-depth: a depth-limited pin is never sent as one pin/add.
  assert.equal(pinAddArgs(5), 'recursive=true')
})

Deno.test('toCount accepts numbers and numeric strings only', () => {
  assert.equal(toCount(12, 'x'), 12)
  assert.equal(toCount('615063', 'x'), 615063)
  assert.equal(toCount(undefined, 'x'), 0)
  assert.equal(toCount(null, 'x'), 0)
  assert.throws(() => toCount('12GB', 'StorageMax'), /invalid StorageMax: "12GB"/)
  assert.throws(() => toCount(-1, 'x'))
  assert.throws(() => toCount({}, 'x'))
})

Deno.test('cidFromJson: strings and IPLD links, canonical output', () => {
  const v1 = rawBlock('x').cid
  const b58 = parseCid(v1).toString(base58btc) // how js-ipfs prints v1 CIDs
  assert.equal(cidFromJson(v1), v1)
  assert.equal(cidFromJson({ '/': v1 }), v1)
  assert.equal(cidFromJson(b58), v1)
  assert.equal(cidFromJson('nope'), undefined)
  assert.equal(cidFromJson(null), undefined)
  assert.equal(cidFromJson(''), undefined)
})

Deno.test('isPeerId: base58 multihashes and libp2p-key CIDs', () => {
  assert.ok(isPeerId('12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'))
  assert.ok(isPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'))
  assert.ok(isPeerId('k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8'))
  assert.ok(!isPeerId(rawBlock('x').cid))
  assert.ok(!isPeerId('12D3KooW'))
  assert.ok(!isPeerId(''))
  assert.ok(!isPeerId(undefined))
})

Deno.test('resolveTarget: bare /ipfs/<cid> skips the daemon, anything else is a path', () => {
  const c = cidV0('r')
  assert.deepEqual(resolveTarget(`/ipfs/${c}`), { cid: c })
  assert.deepEqual(resolveTarget(`/ipfs/${c}/`), { cid: c })
  assert.deepEqual(resolveTarget(c), { cid: c })
  assert.deepEqual(resolveTarget(`/ipld/${c}`), { cid: c })
  assert.deepEqual(resolveTarget(`/ipfs/${c}/a/b.txt`), { path: `/ipfs/${c}/a/b.txt` })
  assert.deepEqual(resolveTarget(`${c}/a`), { path: `/ipfs/${c}/a` })
  assert.deepEqual(resolveTarget('/ipns/example.com'), { path: '/ipns/example.com' })
  assert.throws(() => resolveTarget(''), { name: 'ValidationError' })
  assert.throws(() => resolveTarget('/ipfs/'), { name: 'ValidationError' })
  assert.throws(() => resolveTarget('/ipfs/zzz/a'), { name: 'ValidationError' })
})

Deno.test('cidOfResolvedPath: immutable paths only', () => {
  const v1 = rawBlock('y').cid
  assert.equal(cidOfResolvedPath(`/ipfs/${v1}`), v1)
  assert.equal(cidOfResolvedPath(`/ipfs/${v1}/rest`), v1)
  assert.equal(cidOfResolvedPath(`/ipld/${v1}`), v1)
  assert.throws(() => cidOfResolvedPath('/ipns/k51'), /resolved path is mutable/)
  assert.throws(() => cidOfResolvedPath(undefined), /invalid path in resolve response/)
  assert.throws(() => cidOfResolvedPath('/ipfs/zz'), /invalid path in resolve response/)
})

Deno.test('blockPutQuery: the reference parameters from the first block prefix', () => {
  assert.equal(
    blockPutQuery(parseCid(rawBlock('q').cid)),
    'allow-big-block=true&cid-codec=raw&mhlen=32&mhtype=sha2-256&pin=false',
  )
  assert.equal(
    blockPutQuery(parseCid(cidV0('q'))),
    'allow-big-block=true&cid-codec=dag-pb&mhlen=32&mhtype=sha2-256&pin=false',
  )
  const odd = parseCid(rawBlock('q').cid)
  assert.throws(
    () => blockPutQuery({ ...odd, code: 0x9999 } as typeof odd),
    { message: "cannot find name for the blocks' CID codec: 9999" },
  )
})
