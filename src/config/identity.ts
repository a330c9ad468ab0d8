/**
 * identity.json: the peer's libp2p identity, `{"id","private_key"}` with an Ed25519 key (RSA and
 * secp256k1 keys of older peers load too) in base64 libp2p-protobuf form, exactly as IPFS Cluster
 * writes it (so identities move between the implementations). Env `CLUSTER_ID` /
 * `CLUSTER_PRIVATEKEY` override it.
 *
 * @example
 * ```ts
 * const ident = await newIdentity()
 * await saveIdentity(dir, ident)
 * ```
 */
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { ConfigError } from '../errors.ts'

/** A loaded identity. */
export interface Identity {
  id: string
  privateKey: PrivateKey
}

function b64(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s)
}

function unb64(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Generates a fresh Ed25519 identity. */
export async function newIdentity(): Promise<Identity> {
  const privateKey = await generateKeyPair('Ed25519')
  return { id: peerIdFromPrivateKey(privateKey).toString(), privateKey }
}

/** Where the two values came from, for messages (a file's key or an environment variable). */
export interface IdentitySource {
  id: string
  privateKey: string
}

const FILE: IdentitySource = { id: 'identity.json id', privateKey: 'identity.json private_key' }
const ENV: IdentitySource = { id: 'CLUSTER_ID', privateKey: 'CLUSTER_PRIVATEKEY' }

const VALID_KEY = 'must be a base64 libp2p private key (protobuf-encoded Ed25519, RSA or ' +
  'secp256k1, as "ipfs-cluster-service init" writes: an Ed25519 key is 92 characters starting ' +
  'with "CAESQ")'

/** Decodes a base64 private key; the message says what is wrong and what a valid one looks like. */
function decodePrivateKey(text: string, name: string): PrivateKey {
  let bytes: Uint8Array
  try {
    bytes = unb64(text)
  } catch {
    throw new ConfigError(`${name} ${VALID_KEY}; got ${text.length} characters that are not base64`)
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    // The decoder's own words ("index out of range: 3 + 1 > 3") mean nothing to a user.
    const what = (err as Error).name === 'UnsupportedKeyTypeError'
      ? 'a key of a type this implementation does not support'
      : 'not a libp2p private key'
    throw new ConfigError(
      `${name} ${VALID_KEY}; got ${text.length} characters (${bytes.length} bytes) that are ${what}`,
    )
  }
}

/**
 * Decodes `{id, private_key}` JSON; the id, when given, must match the key. `source` names the
 * two values in messages (identity.json's keys by default).
 */
export function identityFromJSON(v: unknown, source: IdentitySource = FILE): Identity {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ConfigError('identity.json must hold a JSON object with "id" and "private_key"')
  }
  const o = v as Record<string, unknown>
  if (o.private_key === undefined || o.private_key === null || o.private_key === '') {
    throw new ConfigError(`${source.privateKey} is missing: it ${VALID_KEY}`)
  }
  if (typeof o.private_key !== 'string') {
    throw new ConfigError(`${source.privateKey} ${VALID_KEY}; got ${JSON.stringify(o.private_key)}`)
  }
  const privateKey = decodePrivateKey(o.private_key, source.privateKey)
  let id: string
  try {
    id = peerIdFromPrivateKey(privateKey).toString()
  } catch {
    throw new ConfigError(
      `${source.privateKey} ${VALID_KEY}; got a key of type ${privateKey.type}, which has no ` +
        'peer ID here',
    )
  }
  if (o.id !== undefined && o.id !== null && o.id !== '' && o.id !== id) {
    throw new ConfigError(
      `${source.id} ${JSON.stringify(o.id)} does not match the private key, whose peer ID is ${id}`,
    )
  }
  return { id, privateKey }
}

/** Encodes an identity as identity.json's object. */
export function identityToJSON(ident: Identity): { id: string; private_key: string } {
  return { id: ident.id, private_key: b64(privateKeyToProtobuf(ident.privateKey)) }
}

/**
 * Reads `<dir>/identity.json`, with env overrides (CLUSTER_PRIVATEKEY, CLUSTER_ID).
 *
 * When identity.json is missing and service.json still carries the identity in its `cluster`
 * section (`id`, `private_key`: IPFS Cluster 0.10 and older), the identity is taken from there and
 * saved as identity.json, as the reference does; `warn` is told so.
 */
export async function loadIdentity(
  dir: string,
  env: Record<string, string> = {},
  warn: (msg: string) => void = () => {},
): Promise<Identity> {
  const file = join(dir, 'identity.json')
  let ident: Identity | undefined
  let text: string | undefined
  try {
    text = await Deno.readTextFile(file)
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`)
    }
  }
  if (text !== undefined) {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`)
    }
    ident = identityFromJSON(json)
  } else {
    ident = await legacyIdentity(dir)
    if (ident) {
      await saveIdentity(dir, ident)
      warn(
        `identity taken from the legacy cluster.id/cluster.private_key of ` +
          `${join(dir, 'service.json')} and saved as ${file}`,
      )
    }
  }
  if (env.CLUSTER_PRIVATEKEY) {
    return identityFromJSON({ private_key: env.CLUSTER_PRIVATEKEY, id: env.CLUSTER_ID }, ENV)
  }
  if (!ident) {
    throw new ConfigError(`${file} does not exist: run "ipfs-cluster-service init" first`)
  }
  if (env.CLUSTER_ID) {
    identityFromJSON({ ...identityToJSON(ident), id: env.CLUSTER_ID }, {
      ...FILE,
      id: 'CLUSTER_ID',
    })
  }
  return ident
}

/** The identity in service.json's `cluster` section, if it has one (IPFS Cluster ≤ 0.10). */
async function legacyIdentity(dir: string): Promise<Identity | undefined> {
  let json: unknown
  try {
    json = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
  } catch {
    // No readable service.json: nothing to take; loading service.json reports its own errors.
    return undefined
  }
  const get = (o: unknown, key: string): unknown => {
    if (typeof o !== 'object' || o === null) return undefined
    // Matched as Go matches struct fields: exactly, else case-insensitively.
    const k = Object.keys(o).find((x) => x === key) ??
      Object.keys(o).find((x) => x.toLowerCase() === key)
    return k === undefined ? undefined : (o as Record<string, unknown>)[k]
  }
  const cluster = get(json, 'cluster')
  const privateKey = get(cluster, 'private_key')
  if (privateKey === undefined || privateKey === null || privateKey === '') return undefined
  return identityFromJSON({ id: get(cluster, 'id'), private_key: privateKey }, {
    id: 'service.json cluster.id',
    privateKey: 'service.json cluster.private_key',
  })
}

/** True when identity.json exists in the folder. */
export async function identityExists(dir: string): Promise<boolean> {
  try {
    await Deno.stat(join(dir, 'identity.json'))
    return true
  } catch {
    return false
  }
}

/** Writes `<dir>/identity.json` with mode 0600. */
export async function saveIdentity(dir: string, ident: Identity): Promise<void> {
  await Deno.mkdir(dir, { recursive: true })
  const text = JSON.stringify(identityToJSON(ident), null, 2) + '\n'
  await Deno.writeTextFile(join(dir, 'identity.json'), text, { mode: 0o600 })
}
