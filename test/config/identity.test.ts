import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
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

/** What every private-key message says a valid key looks like. */
const VALID = 'must be a base64 libp2p private key (protobuf-encoded Ed25519, RSA or secp256k1, ' +
  'as "ipfs-cluster-service init" writes: an Ed25519 key is 92 characters starting with "CAESQ")'

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes))

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
  assert.throws(() => identityFromJSON({ id: GO.id }), {
    message: `identity.json private_key is missing: it ${VALID}`,
  })
  assert.throws(() => identityFromJSON('x'), /must hold a JSON object/)
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
      (e: Error) => e instanceof ConfigError && /identity\.json is not valid JSON/.test(e.message),
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

Deno.test('a bad private_key says what is wrong and what a valid key looks like', async () => {
  // "AAAA" is base64 of three zero bytes: the decoder alone said "index out of range: 3 + 1 > 3".
  assert.throws(() => identityFromJSON({ private_key: 'AAAA' }), {
    name: 'ConfigError',
    message: `identity.json private_key ${VALID}; got 4 characters (3 bytes) that are not a ` +
      'libp2p private key',
  })
  assert.throws(() => identityFromJSON({ private_key: 'not base64!' }), {
    message: `identity.json private_key ${VALID}; got 11 characters that are not base64`,
  })
  assert.throws(() => identityFromJSON({ private_key: 42 }), {
    message: `identity.json private_key ${VALID}; got 42`,
  })
  // A public key where the private one belongs.
  const pub = b64(privateKeyToProtobuf(await generateKeyPair('Ed25519')).slice(0, 36))
  assert.throws(() => identityFromJSON({ private_key: pub }), /that are not a libp2p private key$/)
  // A key type libp2p peer IDs are not made of here.
  const ecdsa = b64(privateKeyToProtobuf(await generateKeyPair('ECDSA')))
  assert.throws(
    () => identityFromJSON({ private_key: ecdsa }),
    /; got a key of type ECDSA, which has no peer ID here$/,
  )
  // The key is never echoed.
  assert.throws(
    () => identityFromJSON({ private_key: 'AAAA' }),
    (e: Error) => !/AAAA/.test(e.message),
  )
  // Through the environment, the variable is named.
  const dir = await Deno.makeTempDir()
  try {
    await assert.rejects(loadIdentity(dir, { CLUSTER_PRIVATEKEY: 'AAAA' }), {
      message: `CLUSTER_PRIVATEKEY ${VALID}; got 4 characters (3 bytes) that are not a libp2p ` +
        'private key',
    })
    await Deno.copyFile(join(fixtures, 'go_identity.json'), join(dir, 'identity.json'))
    const other = await newIdentity()
    await assert.rejects(loadIdentity(dir, { CLUSTER_ID: other.id }), {
      message: `CLUSTER_ID "${other.id}" does not match the private key, whose peer ID is ${GO.id}`,
    })
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('RSA and secp256k1 identities of older peers load with their peer IDs', async () => {
  for (const type of ['RSA', 'secp256k1'] as const) {
    const key = type === 'RSA' ? await generateKeyPair('RSA', 2048) : await generateKeyPair(type)
    const ident = identityFromJSON({ private_key: b64(privateKeyToProtobuf(key)) })
    assert.match(ident.id, type === 'RSA' ? /^Qm/ : /^16Uiu2/)
    assert.deepEqual(identityToJSON(ident).private_key, b64(privateKeyToProtobuf(key)))
  }
})

Deno.test('no identity.json: the legacy cluster.id/private_key of service.json become it', async () => {
  const dir = await Deno.makeTempDir()
  try {
    // IPFS Cluster 0.10 and older kept the identity in service.json (an RSA key, a Qm… ID).
    const key = await generateKeyPair('RSA', 2048)
    const legacy = { private_key: b64(privateKeyToProtobuf(key)) }
    const id = identityFromJSON(legacy).id
    await Deno.writeTextFile(
      join(dir, 'service.json'),
      JSON.stringify({ cluster: { id, peername: 'old', ...legacy, secret: '' } }),
    )
    const warnings: string[] = []
    const ident = await loadIdentity(dir, {}, (m) => warnings.push(m))
    assert.equal(ident.id, id)
    // Saved as identity.json (0600), as the reference does, and said once.
    const saved = JSON.parse(await Deno.readTextFile(join(dir, 'identity.json')))
    assert.deepEqual(saved, { id, private_key: legacy.private_key })
    assert.equal((await Deno.stat(join(dir, 'identity.json'))).mode! & 0o777, 0o600)
    assert.deepEqual(warnings, [
      `identity taken from the legacy cluster.id/cluster.private_key of ${
        join(dir, 'service.json')
      } and saved as ${join(dir, 'identity.json')}`,
    ])
    assert.equal((await loadIdentity(dir, {}, (m) => warnings.push(m))).id, id)
    assert.equal(warnings.length, 1, 'the next load reads identity.json quietly')

    // A broken legacy key is named where it is.
    await Deno.remove(join(dir, 'identity.json'))
    await Deno.writeTextFile(
      join(dir, 'service.json'),
      JSON.stringify({ cluster: { id, private_key: 'AAAA' } }),
    )
    await assert.rejects(loadIdentity(dir), {
      message: `service.json cluster.private_key ${VALID}; got 4 characters (3 bytes) that are ` +
        'not a libp2p private key',
    })
    // No identity anywhere: run init.
    await Deno.writeTextFile(join(dir, 'service.json'), JSON.stringify({ cluster: {} }))
    await assert.rejects(loadIdentity(dir), /identity\.json does not exist: run "ipfs-cluster-/)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
