/**
 * CORS as the reference configures rs/cors: a preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) is answered here with 204; any other request gets the
 * `Vary: Origin` and, when the origin and method are allowed, the Allow-Origin/Expose/Credentials
 * headers. Empty allowed headers mean rs/cors' defaults (Accept, Content-Type, X-Requested-With).
 *
 * @example
 * ```ts
 * const cors = corsPolicy({ allowedOrigins: ['*'], allowedMethods: ['GET'], … })
 * const pre = cors.preflight(req) // [string, string][] | undefined
 * cors.actual(req, response.headers)
 * ```
 */

/** CORS settings (the `cors_*` config keys). */
export interface CorsOptions {
  allowedOrigins: string[]
  allowedMethods: string[]
  allowedHeaders: string[]
  exposedHeaders: string[]
  allowCredentials: boolean
  /** Seconds; 0 = header not sent. */
  maxAgeSeconds: number
}

/** A compiled CORS policy. */
export interface CorsPolicy {
  /** For a preflight request: the headers of the 204 answer. Undefined for other requests. */
  preflight(req: Request): [string, string][] | undefined
  /** Adds the headers of an actual (non-preflight) request to a response. */
  actual(req: Request, headers: Headers): void
}

/** Canonical MIME header key, as Go's http.CanonicalHeaderKey writes it. */
function canonicalHeaderKey(h: string): string {
  return h.toLowerCase().replace(/(^|-)([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase())
}

/** Compiles a policy. */
export function corsPolicy(o: CorsOptions): CorsPolicy {
  let allOrigins = o.allowedOrigins.length === 0
  const exact = new Set<string>()
  const wild: [string, string][] = []
  for (const raw of o.allowedOrigins) {
    const origin = raw.toLowerCase()
    if (origin === '*') {
      allOrigins = true
      break
    }
    const i = origin.indexOf('*')
    if (i >= 0) wild.push([origin.slice(0, i), origin.slice(i + 1)])
    else exact.add(origin)
  }
  const allHeaders = o.allowedHeaders.includes('*')
  const headers = new Set(
    o.allowedHeaders.length === 0
      ? ['accept', 'content-type', 'x-requested-with']
      : o.allowedHeaders.map((h) => h.toLowerCase()),
  )
  const methods = o.allowedMethods.length === 0 ? ['GET', 'POST', 'HEAD'] : o.allowedMethods
  const exposed = o.exposedHeaders.length > 0
    ? o.exposedHeaders.map(canonicalHeaderKey).join(', ')
    : undefined

  const originAllowed = (origin: string) => {
    if (allOrigins) return true
    const lo = origin.toLowerCase()
    if (exact.has(lo)) return true
    return wild.some(([pre, suf]) =>
      lo.length >= pre.length + suf.length && lo.startsWith(pre) && lo.endsWith(suf)
    )
  }
  const methodAllowed = (m: string) => m === 'OPTIONS' || methods.includes(m)
  const headersAllowed = (list: string) =>
    allHeaders ||
    list.split(',').every((h) => {
      const name = h.trim().toLowerCase()
      return name === '' || headers.has(name)
    })

  return {
    preflight(req) {
      if (req.method !== 'OPTIONS') return
      const reqMethod = req.headers.get('access-control-request-method')
      if (!reqMethod) return
      const out: [string, string][] = [
        ['Vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers'],
      ]
      const origin = req.headers.get('origin')
      if (!origin || !originAllowed(origin) || !methodAllowed(reqMethod)) return out
      const reqHeaders = req.headers.get('access-control-request-headers')
      if (reqHeaders !== null && !headersAllowed(reqHeaders)) return out
      out.push(['Access-Control-Allow-Origin', allOrigins ? '*' : origin])
      out.push(['Access-Control-Allow-Methods', reqMethod])
      if (reqHeaders) out.push(['Access-Control-Allow-Headers', reqHeaders])
      if (o.allowCredentials) out.push(['Access-Control-Allow-Credentials', 'true'])
      if (o.maxAgeSeconds > 0) out.push(['Access-Control-Max-Age', String(o.maxAgeSeconds)])
      return out
    },
    actual(req, h) {
      h.append('Vary', 'Origin')
      const origin = req.headers.get('origin')
      if (!origin || !originAllowed(origin) || !methodAllowed(req.method)) return
      h.set('Access-Control-Allow-Origin', allOrigins ? '*' : origin)
      if (exposed) h.set('Access-Control-Expose-Headers', exposed)
      if (o.allowCredentials) h.set('Access-Control-Allow-Credentials', 'true')
    },
  }
}
