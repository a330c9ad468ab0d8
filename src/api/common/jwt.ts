/**
 * JSON Web Tokens as the reference's API uses them (golang-jwt v4): HMAC-signed (HS256/384/512),
 * the key chosen by the `iss` claim, `exp`, `nbf` and `iat` checked when present. HMAC runs on
 * WebCrypto; imported keys are cached per secret.
 *
 * @example
 * ```ts
 * const token = await signJWT({ iss: 'admin' }, 'secret')
 * const claims = await verifyJWT(token, (iss) => (iss === 'admin' ? 'secret' : undefined))
 * ```
 */

/** The registered claims the API looks at. */
export interface JWTClaims {
  iss?: string
  sub?: string
  aud?: string | string[]
  exp?: number
  nbf?: number
  iat?: number
  jti?: string
}

/** A token that failed to parse or verify; the message says why (logged, never sent). */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError'
}

const HASHES: Record<string, string> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' }
const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })
const keyCache = new Map<string, Promise<CryptoKey>>()

function hmacKey(secret: string, hash: string): Promise<CryptoKey> {
  const id = `${hash}\u0000${secret}`
  let k = keyCache.get(id)
  if (!k) {
    // A few configured users at most: the cache stays tiny.
    if (keyCache.size > 64) keyCache.clear()
    k = crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash }, false, [
      'sign',
      'verify',
    ])
    keyCache.set(id, k)
  }
  return k
}

function b64url(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function unb64url(s: string): Uint8Array<ArrayBuffer> {
  // Raw (unpadded) base64url only, as golang-jwt v4 decodes by default.
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
    throw new InvalidTokenError('illegal base64 data')
  }
  const bin = atob(s.replaceAll('-', '+').replaceAll('_', '/'))
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

function decodeJSON(part: string, what: string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(dec.decode(unb64url(part)))
  } catch (err) {
    throw new InvalidTokenError(`malformed ${what}: ${(err as Error).message}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidTokenError(`malformed ${what}: not an object`)
  }
  return v as Record<string, unknown>
}

/**
 * Signs claims with HS256. Header and claim keys come out in the order golang-jwt writes them
 * (`{"alg":"HS256","typ":"JWT"}`), so tokens are byte-identical to the reference's.
 */
export async function signJWT(claims: JWTClaims, secret: string): Promise<string> {
  const head = b64url(enc.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' })))
  const body = b64url(enc.encode(JSON.stringify(claims)))
  const key = await hmacKey(secret, 'SHA-256')
  const sig = await crypto.subtle.sign('HMAC', key, enc.encode(`${head}.${body}`))
  return `${head}.${body}.${b64url(new Uint8Array(sig))}`
}

function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidTokenError(`claim ${name} is not a number`)
  }
  return v
}

/**
 * Verifies a token. `keyFor` returns the HMAC secret for an issuer, or undefined when the issuer
 * is unknown. `now` is in seconds since the epoch. Resolves to the claims or throws
 * InvalidTokenError.
 */
export async function verifyJWT(
  token: string,
  keyFor: (issuer: string) => string | undefined,
  now = Date.now() / 1000,
): Promise<JWTClaims> {
  const parts = token.split('.')
  if (parts.length !== 3) {
    throw new InvalidTokenError('token contains an invalid number of segments')
  }
  const header = decodeJSON(parts[0], 'header')
  const claims = decodeJSON(parts[1], 'claims')
  const alg = header.alg
  const hash = typeof alg === 'string' ? HASHES[alg] : undefined
  if (!hash) throw new InvalidTokenError('unexpected token signing method (not HMAC)')
  const iss = claims.iss ?? ''
  if (typeof iss !== 'string') throw new InvalidTokenError('claim iss is not a string')
  const secret = keyFor(iss)
  if (secret === undefined) throw new InvalidTokenError('issuer not found')
  const exp = numericDate(claims, 'exp')
  const nbf = numericDate(claims, 'nbf')
  const iat = numericDate(claims, 'iat')
  if (exp !== undefined && now >= exp) throw new InvalidTokenError('token is expired')
  if (nbf !== undefined && now < nbf) throw new InvalidTokenError('token is not valid yet')
  if (iat !== undefined && now < iat) throw new InvalidTokenError('token used before issued')
  const sig = unb64url(parts[2])
  const key = await hmacKey(secret, hash)
  const ok = await crypto.subtle.verify('HMAC', key, sig, enc.encode(`${parts[0]}.${parts[1]}`))
  if (!ok) throw new InvalidTokenError('signature is invalid')
  return claims as JWTClaims
}
