/**
 * identity.json: the peer's libp2p identity, `{"id","private_key"}` with an Ed25519 key in
 * base64 libp2p-protobuf form, exactly as IPFS Cluster writes it (so identities move between the
 * implementations). Env `CLUSTER_ID` / `CLUSTER_PRIVATEKEY` override it.
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

/** Decodes `{id, private_key}` JSON; the id must match the key. */
export function identityFromJSON(v: unknown): Identity {
  if (typeof v !== 'object' || v === null) throw new ConfigError('identity.json must be an object')
  const o = v as Record<string, unknown>
  if (typeof o.private_key !== 'string' || o.private_key === '') {
    throw new ConfigError('identity.json: private_key is missing')
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(unb64(o.private_key))
  } catch (err) {
    throw new ConfigError(`identity.json: private_key cannot be decoded: ${(err as Error).message}`)
  }
  const id = peerIdFromPrivateKey(privateKey).toString()
  if (o.id !== undefined && o.id !== id) {
    throw new ConfigError(`identity.json: id ${o.id} does not match the private key (${id})`)
  }
  return { id, privateKey }
}

/** Encodes an identity as identity.json's object. */
export function identityToJSON(ident: Identity): { id: string; private_key: string } {
  return { id: ident.id, private_key: b64(privateKeyToProtobuf(ident.privateKey)) }
}

/** Reads `<dir>/identity.json`, with env overrides. */
export async function loadIdentity(
  dir: string,
  env: Record<string, string> = {},
): Promise<Identity> {
  const file = join(dir, 'identity.json')
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(await Deno.readTextFile(file))
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`)
    }
    if (!env.CLUSTER_PRIVATEKEY) {
      throw new ConfigError(`${file} does not exist: run "ipfs-cluster-service init" first`)
    }
  }
  if (env.CLUSTER_PRIVATEKEY) json = { private_key: env.CLUSTER_PRIVATEKEY, id: env.CLUSTER_ID }
  return identityFromJSON(json)
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
