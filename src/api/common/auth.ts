/**
 * API authentication as the reference does it: HTTP Basic against `basic_auth_credentials`, or a
 * Bearer JWT signed with the issuer's password. `OPTIONS` requests and `GET /health` pass without
 * credentials. Failures answer 401 with the reference's exact messages and WWW-Authenticate headers.
 *
 * @example
 * ```ts
 * const auth = authenticator({ admin: 'secret' })
 * const res = await auth.check(req) // { ok: true, issuer: 'admin' } or { ok: false, … }
 * ```
 */
import { InvalidTokenError, signJWT, verifyJWT } from './jwt.ts'

/** The realm every WWW-Authenticate header names. */
export const AUTH_REALM = 'Restricted IPFS Cluster API'

/** Result of checking a request's credentials. */
export type AuthResult =
  | { ok: true; issuer: string }
  | {
    ok: false
    /** 401 message, e.g. `unauthorized: access denied`. */
    message: string
    /** WWW-Authenticate values to send. */
    challenges: string[]
    /** Why a token was refused (for debug logs). */
    reason?: string
  }

/** Builds a WWW-Authenticate value the way the reference formats it. */
export function wwwAuthenticate(scheme: string, realm: string, error = ''): string {
  return `${scheme} realm="${realm}"` + (error ? `, error="${error}"` : '')
}

/** Parses `Authorization: Basic …` like Go's Request.BasicAuth. */
export function parseBasicAuth(header: string | null): { user: string; pass: string } | undefined {
  if (!header || header.length < 6 || header.slice(0, 6).toLowerCase() !== 'basic ') return
  let decoded: string
  try {
    const bin = atob(header.slice(6))
    decoded = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)))
  } catch {
    return
  }
  const i = decoded.indexOf(':')
  if (i < 0) return
  return { user: decoded.slice(0, i), pass: decoded.slice(i + 1) }
}

/** Parses `Authorization: Bearer <token>` (prefix case-insensitive). */
export function parseBearerToken(header: string | null): string | undefined {
  if (!header || header.length < 7 || header.slice(0, 7).toLowerCase() !== 'bearer ') return
  return header.slice(7)
}

function sameString(a: string, b: string): boolean {
  // Length-independent timing is not a goal (the reference compares with ==); this just avoids
  // an early exit on the first differing byte.
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/** Checks requests against a credentials map (user → password). */
export interface Authenticator {
  /** Checks the Authorization header of a request. */
  check(authorization: string | null): Promise<AuthResult>
  /** A never-expiring HS256 token for a configured user (`POST /token`), or undefined. */
  issueToken(issuer: string): Promise<string | undefined>
}

/** Builds an authenticator. */
export function authenticator(credentials: Record<string, string>): Authenticator {
  const creds = new Map(Object.entries(credentials))
  const keyFor = (iss: string) => creds.get(iss)
  return {
    async check(authorization) {
      const basic = parseBasicAuth(authorization)
      if (basic) {
        const pass = creds.get(basic.user)
        if (
          basic.user !== '' && basic.pass !== '' && pass !== undefined &&
          sameString(pass, basic.pass)
        ) {
          return { ok: true, issuer: basic.user }
        }
        return {
          ok: false,
          message: 'unauthorized: access denied',
          challenges: [wwwAuthenticate('Basic', AUTH_REALM)],
        }
      }
      const token = parseBearerToken(authorization)
      if (token !== undefined) {
        try {
          const claims = await verifyJWT(token, keyFor)
          return { ok: true, issuer: claims.iss ?? '' }
        } catch (err) {
          return {
            ok: false,
            message: 'unauthorized: invalid token',
            challenges: [wwwAuthenticate('Bearer', AUTH_REALM, 'invalid_token')],
            reason: err instanceof InvalidTokenError ? err.message : String(err),
          }
        }
      }
      return {
        ok: false,
        message: 'unauthorized: no auth provided',
        challenges: [wwwAuthenticate('Bearer', AUTH_REALM), wwwAuthenticate('Basic', AUTH_REALM)],
      }
    },
    issueToken(issuer) {
      const pass = creds.get(issuer)
      if (pass === undefined) return Promise.resolve(undefined)
      return signJWT({ iss: issuer }, pass)
    },
  }
}
