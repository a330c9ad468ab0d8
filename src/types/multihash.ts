/**
 * Multihash functions by the names go-multihash gives them (the names `add --hash`, the `hash`
 * parameter of `POST /add` and Kubo's `block/put?mhtype=` take), and the hashers that compute
 * them.
 *
 * The functions content can be added with are Kubo 0.43's: the names of go-multihash that
 * `ipfs add --hash` accepts (it refuses md5, murmur3, shake-128 and blake2b under 160 bits as
 * "potentially insecure", and keccak-224/384, x11 and most blake2s sizes as not registered). The
 * reference's adder takes any go-multihash name, but its blocks then go to Kubo, which refuses the
 * same ones. Hashers are loaded on first use, so a peer that never adds with them never loads
 * their packages.
 *
 * @example
 * ```ts
 * const fn = addHashFunction('SHA3-512') // { name: 'sha3-512', code: 0x14 }
 * const hasher = await loadHasher(fn.code)
 * multihashName(0xb220) // 'blake2b-256'
 * ```
 */
import type { MultihashHasher } from 'multiformats/hashes/interface'
import { ValidationError } from '../errors.ts'

/** go-multihash v0.2.3's `Names`: name → code (`sha3` is another name of sha3-512). */
const NAMES = new Map<string, number>([
  ['identity', 0x00],
  ['sha1', 0x11],
  ['sha2-256', 0x12],
  ['sha2-512', 0x13],
  ['sha3', 0x14],
  ['sha3-224', 0x17],
  ['sha3-256', 0x16],
  ['sha3-384', 0x15],
  ['sha3-512', 0x14],
  ['dbl-sha2-256', 0x56],
  ['murmur3-x64-64', 0x22],
  ['keccak-224', 0x1a],
  ['keccak-256', 0x1b],
  ['keccak-384', 0x1c],
  ['keccak-512', 0x1d],
  ['blake3', 0x1e],
  ['shake-128', 0x18],
  ['shake-256', 0x19],
  ['sha2-256-trunc254-padded', 0x1012],
  ['x11', 0x1100],
  ['md5', 0xd5],
  ['poseidon-bls12_381-a2-fc1', 0xb401],
])
// blake2b-8 … blake2b-512 and blake2s-8 … blake2s-256, one code per output byte.
for (let n = 1; n <= 64; n++) NAMES.set(`blake2b-${n * 8}`, 0xb200 + n)
for (let n = 1; n <= 32; n++) NAMES.set(`blake2s-${n * 8}`, 0xb240 + n)

/** go-multihash's `Codes`: code → name (sha3-512 for 0x14). */
const CODES = new Map<number, string>()
for (const [name, code] of NAMES) if (name !== 'sha3') CODES.set(code, name)

type Loader = () => Promise<MultihashHasher>

const sha3 = () => import('@multiformats/sha3')
const blake2b = (bits: number): Loader => async () => {
  const hashers: Record<string, MultihashHasher> = await import('@multiformats/blake2/blake2b')
  return hashers[`blake2b${bits}`]
}

/** The functions content can be added with (Kubo 0.43's `add --hash` set), by code. */
const ADD_LOADERS = new Map<number, Loader>([
  [0x00, async () => (await import('multiformats/hashes/identity')).identity],
  [0x11, async () => nobleHasher('sha1', 0x11, (await import('@noble/hashes/legacy.js')).sha1)],
  [0x12, async () => (await import('multiformats/hashes/sha2')).sha256],
  [0x13, async () => (await import('multiformats/hashes/sha2')).sha512],
  [0x14, async () => (await sha3()).sha3512],
  [0x15, async () => (await sha3()).sha3384],
  [0x16, async () => (await sha3()).sha3256],
  [0x17, async () => (await sha3()).sha3224],
  [0x19, async () => (await sha3()).shake256], // 512 bits, go-multihash's default length
  [0x1b, async () => (await sha3()).keccak256],
  [0x1d, async () => (await sha3()).keccak512],
  [0x1e, async () => nobleHasher('blake3', 0x1e, (await import('@noble/hashes/blake3.js')).blake3)],
  [0x56, async () => {
    const { from } = await import('multiformats/hashes/hasher')
    const { createHash } = await import('node:crypto')
    const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest())
    return from({ name: 'dbl-sha2-256', code: 0x56, encode: (b) => sha256(sha256(b)) })
  }],
  [0xb260, async () => (await import('@multiformats/blake2/blake2s')).blake2s256],
])
for (let bits = 160; bits <= 512; bits += 8) ADD_LOADERS.set(0xb200 + bits / 8, blake2b(bits))

/** A hasher from a @noble/hashes function (its default output length). */
async function nobleHasher(
  name: string,
  code: number,
  fn: (b: Uint8Array) => Uint8Array,
): Promise<MultihashHasher> {
  const { from } = await import('multiformats/hashes/hasher')
  return from({ name, code, encode: (b) => new Uint8Array(fn(b)) })
}

/** The names `add --hash` takes, sorted (blake2b sizes in order). */
export const ADD_HASH_NAMES: readonly string[] = [...NAMES]
  .filter(([name, code]) => ADD_LOADERS.has(code) && name !== 'sha3')
  .map(([name]) => name)
  .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))

/** How the allowed names read in a message: blake2b's 44 sizes as one range. */
function allowedText(): string {
  const blake2b = ADD_HASH_NAMES.filter((n) => n.startsWith('blake2b-'))
  const rest = ADD_HASH_NAMES.filter((n) => !n.startsWith('blake2b-'))
  return [`${blake2b[0]} … ${blake2b.at(-1)} (every 8 bits)`, ...rest].join(', ')
}

/**
 * The hash function `add` uses for a name (any case, as Kubo and the reference read it). An
 * unknown name, or one IPFS refuses to store, is a ValidationError listing the allowed names.
 */
export function addHashFunction(name: string): { name: string; code: number } {
  const lower = name.toLowerCase()
  const code = NAMES.get(lower)
  if (code === undefined) {
    throw new ValidationError(
      `hash function name not known: ${JSON.stringify(name)} (allowed: ${allowedText()})`,
    )
  }
  if (!ADD_LOADERS.has(code)) {
    throw new ValidationError(
      `hash function ${JSON.stringify(name)} cannot be used to add content: IPFS refuses ` +
        `it as potentially insecure or does not implement it (allowed: ${allowedText()})`,
    )
  }
  return { name: CODES.get(code)!, code }
}

/** go-multihash's name of a multihash code, or undefined. */
export function multihashName(code: number): string | undefined {
  return CODES.get(code)
}

const loaded = new Map<number, Promise<MultihashHasher>>()

/** The hasher of a code content can be added with, loaded on first use; undefined for others. */
export function loadHasher(code: number): Promise<MultihashHasher> | undefined {
  const load = ADD_LOADERS.get(code)
  if (!load) return undefined
  let p = loaded.get(code)
  if (!p) loaded.set(code, p = load())
  return p
}
