import assert from 'node:assert/strict'
import { join } from 'node:path'
import { loadPeerstore, parsePeerstore, savePeerstore } from '../../src/config/peerstore.ts'

const A = '/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ'
const B = '/dns4/peer.example/tcp/9096/p2p/12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7'

Deno.test('parsePeerstore keeps lines starting with / in order and skips the rest', () => {
  assert.deepEqual(parsePeerstore(`${A}\n# comment\n\n  ${B}  \r\ngarbage\n`), [A, B])
  assert.deepEqual(parsePeerstore(''), [])
})

Deno.test('peerstore save/load round trip; a missing file is empty; empty saves an empty file', async () => {
  const dir = await Deno.makeTempDir()
  try {
    const file = join(dir, 'peerstore')
    assert.deepEqual(await loadPeerstore(file), [])
    await savePeerstore(file, [A, B])
    assert.equal(await Deno.readTextFile(file), `${A}\n${B}\n`)
    assert.deepEqual(await loadPeerstore(file), [A, B])
    await savePeerstore(file, [])
    assert.equal(await Deno.readTextFile(file), '')
    assert.deepEqual(await loadPeerstore(file), [])
    await assert.rejects(loadPeerstore(dir), 'a folder is not a peerstore')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
