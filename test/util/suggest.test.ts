import assert from 'node:assert/strict'
import { closest, editDistance } from '../../src/util/suggest.ts'

Deno.test('editDistance counts inserts, deletes and substitutions, ignoring case', () => {
  assert.equal(editDistance('', ''), 0)
  assert.equal(editDistance('abc', ''), 3)
  assert.equal(editDistance('peer_name', 'peername'), 1)
  assert.equal(editDistance('kitten', 'sitting'), 3)
  assert.equal(editDistance('Secret', 'secret'), 0)
  assert.equal(editDistance('prot', 'port'), 1, 'a swap of neighbours is one edit')
})

Deno.test('closest suggests a likely typo and nothing for an unrelated word', () => {
  const keys = ['peername', 'secret', 'listen_multiaddress', 'replication_factor_min']
  assert.equal(closest('peer_name', keys), 'peername')
  assert.equal(closest('secrte', keys), 'secret')
  assert.equal(closest('replication_factor_mni', keys), 'replication_factor_min')
  assert.equal(closest('banana', keys), undefined)
  assert.equal(closest('id', keys), undefined, 'short words allow one edit only')
  assert.equal(closest('x', []), undefined)
})
