import assert from 'node:assert/strict'
import { join } from 'node:path'
import {
  identityExists,
  identityFromJSON,
  identityToJSON,
  loadIdentity,
  newIdentity,
  saveIdentity,
} from '../../src/config/identity.ts'
import { ConfigError } from '../../src/errors.ts'

const fixtures = new URL('./fixtures/', import.meta.url).pathname
/** identity.json written by the real ipfs-cluster-service 1.1.6 init. */
const GO = JSON.parse(Deno.readTextFileSync(join(fixtures, 'go_identity.json')))

Deno.test('a Go-generated identity.json loads and gives the same peer ID', async () => {
  const ident = identityFromJSON(GO)
  assert.equal(ident.id, '12D3KooWSUHEcutRbEhHbyzyXktZYCn3HnfREnJrKdE4wJ6oGf2K')
  assert.equal(ident.privateKey.type, 'Ed25519')
  // Written back it is the same key bytes, so the identity moves back to the Go peer unchanged.
  assert.deepEqual(identityToJSON(ident), GO)
  const dir = await Deno.makeTempDir()
  try {
    await Deno.copyFile(join(fixtures, 'go_identity.json'), join(dir, 'identity.json'))
    assert.equal((await loadIdentity(dir)).id, GO.id)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('new identities are Ed25519, saved 0600, and load back', async () => {
  const dir = await Deno.makeTempDir()
  try {
    assert.equal(await identityExists(dir), false)
    const ident = await newIdentity()
    assert.match(ident.id, /^12D3KooW/)
    await saveIdentity(dir, ident)
    assert.equal(await identityExists(dir), true)
    assert.equal((await Deno.stat(join(dir, 'identity.json'))).mode! & 0o777, 0o600)
    const back = await loadIdentity(dir)
    assert.equal(back.id, ident.id)
    assert.deepEqual(identityToJSON(back), identityToJSON(ident))
    assert.notEqual((await newIdentity()).id, ident.id)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('identity errors: id mismatch, missing or undecodable key, missing file', async () => {
  const other = await newIdentity()
  assert.throws(
    () => identityFromJSON({ ...GO, id: other.id }),
    (e: Error) => e instanceof ConfigError && /does not match the private key/.test(e.message),
  )
  assert.throws(() => identityFromJSON({ id: GO.id }), /private_key is missing/)
  assert.throws(() => identityFromJSON({ private_key: 'AAAA' }), /private_key cannot be decoded/)
  assert.throws(() => identityFromJSON('x'), /must be an object/)
  // No id in the file: it is derived from the key.
  assert.equal(identityFromJSON({ private_key: GO.private_key }).id, GO.id)
  const empty = await Deno.makeTempDir()
  try {
    await assert.rejects(
      loadIdentity(empty),
      /identity\.json does not exist: run "ipfs-cluster-service init"/,
    )
    await Deno.writeTextFile(join(empty, 'identity.json'), '{not json')
    await assert.rejects(
      loadIdentity(empty),
      (e: Error) => e instanceof ConfigError && /cannot read/.test(e.message),
    )
  } finally {
    await Deno.remove(empty, { recursive: true })
  }
})

Deno.test('CLUSTER_PRIVATEKEY / CLUSTER_ID override the file (and need no file)', async () => {
  const other = await newIdentity()
  const env = { CLUSTER_PRIVATEKEY: identityToJSON(other).private_key, CLUSTER_ID: other.id }
  assert.equal((await loadIdentity(fixtures, env)).id, other.id)
  const empty = await Deno.makeTempDir()
  try {
    assert.equal((await loadIdentity(empty, env)).id, other.id)
    await assert.rejects(
      loadIdentity(empty, { ...env, CLUSTER_ID: GO.id }),
      /does not match the private key/,
    )
  } finally {
    await Deno.remove(empty, { recursive: true })
  }
})
