/**
 * A small ordered router with the reference's (gorilla/mux) matching rules: routes are tried in
 * order and the first whose path and method match wins; a path that matches only with other
 * methods is a 405; otherwise 404. Patterns use `{name}` (one non-empty segment),
 * `{name:a|b|c}` (one of the listed segments) and a final `{name:.*}` (the rest, may be empty).
 *
 * @example
 * ```ts
 * const match = router([{ method: 'GET', pattern: '/pins/{hash}', handler }])
 * match('GET', '/pins/Qm…') // { kind: 'route', route, params: { hash: 'Qm…' } }
 * ```
 */

/** What the router needs of a route; APIs add their handler and flags. */
export interface RouteSpec {
  method: string
  pattern: string
}

/** What a path resolves to. */
export type RouteMatch<R extends RouteSpec> =
  | { kind: 'route'; route: R; params: Record<string, string> }
  | { kind: 'method'; allow: string[] }
  | { kind: 'none' }

type Segment =
  | { type: 'lit'; value: string }
  | { type: 'param'; name: string; alts?: Set<string> }
  | { type: 'rest'; name: string }

interface Compiled<R> {
  route: R
  segs: Segment[]
  hasRest: boolean
}

function compile(pattern: string): Segment[] {
  const parts = pattern.split('/').slice(1)
  return parts.map((p, i): Segment => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)(?::(.*))?\}$/.exec(p)
    if (!m) return { type: 'lit', value: p }
    const [, name, re] = m
    if (re === undefined) return { type: 'param', name }
    if (re === '.*') {
      if (i !== parts.length - 1) throw new Error(`route ${pattern}: {${name}:.*} must be last`)
      return { type: 'rest', name }
    }
    if (!/^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*$/.test(re)) {
      throw new Error(`route ${pattern}: unsupported pattern ${re}`)
    }
    return { type: 'param', name, alts: new Set(re.split('|')) }
  })
}

function matchSegs(
  segs: Segment[],
  hasRest: boolean,
  parts: string[],
): Record<string, string> | undefined {
  if (hasRest ? parts.length < segs.length : parts.length !== segs.length) return
  let params: Record<string, string> | undefined
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]
    const p = parts[i]
    if (s.type === 'lit') {
      if (p !== s.value) return
    } else if (s.type === 'param') {
      if (p === '' || (s.alts && !s.alts.has(p))) return
      ;(params ??= {})[s.name] = p
    } else {
      ;(params ??= {})[s.name] = parts.slice(i).join('/')
    }
  }
  return params ?? {}
}

/** Compiles routes into a matcher. The path must be decoded and start with `/`. */
export function router<R extends RouteSpec>(
  routes: R[],
): (method: string, path: string) => RouteMatch<R> {
  const compiled: Compiled<R>[] = routes.map((route) => {
    const segs = compile(route.pattern)
    return { route, segs, hasRest: segs.some((s) => s.type === 'rest') }
  })
  return (method, path) => {
    const parts = path.split('/').slice(1)
    let allow: string[] | undefined
    for (const c of compiled) {
      const params = matchSegs(c.segs, c.hasRest, parts)
      if (!params) continue
      if (c.route.method === method) return { kind: 'route', route: c.route, params }
      ;(allow ??= []).includes(c.route.method) || allow.push(c.route.method)
    }
    return allow ? { kind: 'method', allow } : { kind: 'none' }
  }
}
