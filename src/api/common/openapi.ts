/**
 * OpenAPI 3.1 documents built from an API's route table: the same `ApiRoute[]` the router
 * matches, each route carrying its `doc`, so the document cannot drift from what is served (a
 * route without a doc is refused here, and the REST table's type requires one). Also the schema
 * vocabulary (JSON Schema 2020-12, the dialect of OpenAPI 3.1) that route docs and the wire
 * types' schemas are written in.
 *
 * Streams (NDJSON) are answered with `Content-Type: application/json`, as the reference does; the
 * document says so and marks the media type with `x-ndjson: true`, its schema being that of one
 * line.
 *
 * @example
 * ```ts
 * const route: DocumentedRoute = {
 *   method: 'GET',
 *   pattern: '/version',
 *   handler: (c) => c.r.json(200, { version: '1.1.6' }),
 *   doc: { operationId: 'version', summary: 'The peer version', tags: ['peer'],
 *     responses: { 200: { description: 'the version', json: ref('Version') } } },
 * }
 * const doc = openApiDocument([route], { title: 'API', version: '1.1.6', schemas: { Version: … } })
 * doc.paths['/version'].get.operationId // 'version'
 * ```
 */
import type { ApiRoute } from './http_api.ts'

/** A JSON Schema (2020-12) object. */
export type Schema = { [keyword: string]: unknown }

/** A path or query parameter. */
export interface ParamDoc {
  description: string
  /** Defaults to a string (path parameters with alternatives: an enum of them). */
  schema?: Schema
  /** Query parameters only (path parameters are always required). */
  required?: boolean
  /** `false`: an array travels as one comma-separated value (`a,b,c`), not repeated keys. */
  explode?: boolean
}

/** One response of a route. Give at most one of `json`, `ndjson`, `content`. */
export interface ResponseDoc {
  description: string
  /** A JSON body (`application/json`). */
  json?: Schema
  /**
   * An NDJSON stream: one JSON value of this schema per line, sent with the header
   * `Content-Type: application/json` (the reference's) and `Trailer: X-Stream-Error`.
   */
  ndjson?: Schema
  /** Any other body (e.g. `text/html`). */
  content?: { type: string; schema: Schema }
  headers?: Record<string, { description: string; schema?: Schema }>
}

/** A request body. */
export interface BodyDoc {
  description: string
  /** Media type, e.g. `application/json`, `multipart/form-data`. */
  type: string
  schema: Schema
}

/** What a route documents of itself. */
export interface RouteDoc {
  /** Unique in the document: the name code generators give the call. */
  operationId: string
  summary: string
  description?: string
  /** Groups in the document (the first one names the route's section). */
  tags: string[]
  /** Every `{param}` of the pattern, by name: a missing or extra one is refused. */
  params?: Record<string, ParamDoc>
  query?: Record<string, ParamDoc>
  body?: BodyDoc
  /** By HTTP status: the answers and the route's own errors (401 and 500 are added). */
  responses: Record<number, ResponseDoc>
}

/** A route whose doc is required: what a documented API's table is typed with. */
export type DocumentedRoute = ApiRoute & { doc: RouteDoc }

/** What a document says besides its routes. */
export interface OpenApiOptions {
  title: string
  version: string
  description?: string
  /** Descriptions of the tags, in the order the document lists them. */
  tags?: Record<string, string>
  /** `#/components/schemas`; must hold `Error`, the API's error body. */
  schemas: Record<string, Schema>
}

// ---- the schema vocabulary ----------------------------------------------------------------

/** A reference to a schema of `#/components/schemas`. */
export function ref(name: string): Schema {
  return { $ref: `#/components/schemas/${name}` }
}

/** A string, with more keywords (`description`, `enum`, `pattern`, `examples`…). */
export function string(extra: Schema = {}): Schema {
  return { type: 'string', ...extra }
}

/** An integer. */
export function integer(extra: Schema = {}): Schema {
  return { type: 'integer', ...extra }
}

/** A number. */
export function number(extra: Schema = {}): Schema {
  return { type: 'number', ...extra }
}

/** A boolean. */
export function boolean(extra: Schema = {}): Schema {
  return { type: 'boolean', ...extra }
}

/** One of the listed strings. */
export function oneOfStrings(values: readonly string[], extra: Schema = {}): Schema {
  return { type: 'string', enum: [...values], ...extra }
}

/** An array of `items`. */
export function array(items: Schema, extra: Schema = {}): Schema {
  return { type: 'array', items, ...extra }
}

/** An object used as a map: any key, values of `values`. */
export function map(values: Schema, extra: Schema = {}): Schema {
  return { type: 'object', additionalProperties: values, ...extra }
}

/**
 * `s` or JSON `null` (Go's nil slices, maps and undefined CIDs).
 *
 * @example
 * ```ts
 * nullable(array(string())) // { type: ['array', 'null'], items: { type: 'string' } }
 * nullable(ref('Pin')) // { anyOf: [{ $ref: '#/components/schemas/Pin' }, { type: 'null' }] }
 * ```
 */
export function nullable(s: Schema): Schema {
  if (typeof s.type === 'string' && !('enum' in s)) return { ...s, type: [s.type, 'null'] }
  return { anyOf: [s, { type: 'null' }] }
}

/**
 * An object schema whose properties are exactly the keys of `T`: a field added to the wire type
 * without its schema is a type error. Every key is required but the `optional` ones (the
 * reference's `omitempty` fields). Other keys are not forbidden, so that clients built from the
 * document accept fields a later version adds.
 *
 * @example
 * ```ts
 * object<IPFSID>({ id: string(), addresses: array(string()), error: string() }, { optional: ['id'] })
 * // { type: 'object', properties: {…}, required: ['addresses', 'error'] }
 * ```
 */
export function object<T>(
  props: { [K in keyof T]-?: Schema },
  extra: { optional?: readonly (keyof T & string)[]; description?: string } = {},
): Schema {
  const optional = new Set<string>(extra.optional ?? [])
  const all = props as Record<string, Schema>
  const out: Schema = {
    type: 'object',
    properties: all,
    required: Object.keys(all).filter((k) => !optional.has(k)),
  }
  if (extra.description) out.description = extra.description
  return out
}

// ---- the generator ------------------------------------------------------------------------

/** Raised when a route table cannot be described (a missing doc, a parameter not named). */
export class OpenApiError extends Error {
  override name = 'OpenApiError'
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)(?::(.*))?\}$/

/** The pattern's path parameters (name and alternatives) and its OpenAPI path. */
function pathOf(pattern: string): { path: string; params: { name: string; alts?: string[] }[] } {
  const params: { name: string; alts?: string[] }[] = []
  const segs = pattern.split('/').map((seg) => {
    const m = PARAM.exec(seg)
    if (!m) return seg
    const [, name, re] = m
    params.push({ name, alts: re && re !== '.*' ? re.split('|') : undefined })
    return `{${name}}`
  })
  return { path: segs.join('/'), params }
}

const ERROR_CONTENT = { 'application/json': { schema: ref('Error') } }

function responseObject(r: ResponseDoc, status: number): Schema {
  const given = [r.json, r.ndjson, r.content].filter((x) => x !== undefined).length
  if (given > 1) throw new OpenApiError(`response ${status}: give one of json, ndjson, content`)
  const out: Schema = { description: r.description }
  const headers: Record<string, Schema> = {}
  if (r.json) out.content = { 'application/json': { schema: r.json } }
  if (r.content) out.content = { [r.content.type]: { schema: r.content.schema } }
  if (r.ndjson) {
    out.description = `${r.description}. A stream: one JSON value per line (NDJSON), sent as ` +
      '`application/json`; an error after the first line cuts the body short (no last chunk)'
    out.content = { 'application/json': { schema: r.ndjson, 'x-ndjson': true } }
    headers.Trailer = {
      description: 'Always `X-Stream-Error` (announced as the reference does; never sent)',
      schema: string({ const: 'X-Stream-Error' }),
    }
  }
  for (const [name, h] of Object.entries(r.headers ?? {})) {
    headers[name] = { description: h.description, schema: h.schema ?? string() }
  }
  if (Object.keys(headers).length > 0) out.headers = headers
  return out
}

function operation(route: ApiRoute, doc: RouteDoc, params: ReturnType<typeof pathOf>['params']) {
  const where = `${route.method} ${route.pattern}`
  const named = new Set(Object.keys(doc.params ?? {}))
  const parameters: Schema[] = []
  for (const p of params) {
    const d = doc.params?.[p.name]
    if (!d) throw new OpenApiError(`${where}: path parameter {${p.name}} has no doc`)
    named.delete(p.name)
    parameters.push({
      name: p.name,
      in: 'path',
      required: true,
      description: d.description,
      schema: d.schema ?? (p.alts ? oneOfStrings(p.alts) : string()),
    })
  }
  if (named.size > 0) {
    throw new OpenApiError(`${where}: documents path parameters not in the pattern: ${[...named]}`)
  }
  for (const [name, q] of Object.entries(doc.query ?? {})) {
    const p: Schema = {
      name,
      in: 'query',
      description: q.description,
      schema: q.schema ?? string(),
    }
    if (q.required) p.required = true
    if (q.explode === false) Object.assign(p, { style: 'form', explode: false })
    parameters.push(p)
  }
  const responses: Record<string, Schema> = {}
  for (const [status, r] of Object.entries(doc.responses)) {
    responses[status] = responseObject(r, Number(status))
  }
  if (!route.public) {
    responses['401'] ??= {
      description: 'No or wrong credentials (only when `basic_auth_credentials` is set)',
      headers: {
        'WWW-Authenticate': {
          description: 'The schemes to retry with (`Basic`, `Bearer`)',
          schema: string(),
        },
      },
      content: ERROR_CONTENT,
    }
  }
  responses['500'] ??= { description: 'An internal fault', content: ERROR_CONTENT }
  const op: Schema = { operationId: doc.operationId, summary: doc.summary }
  if (doc.description) op.description = doc.description
  op.tags = doc.tags
  if (parameters.length > 0) op.parameters = parameters
  if (doc.body) {
    op.requestBody = {
      description: doc.body.description,
      required: true,
      content: { [doc.body.type]: { schema: doc.body.schema } },
    }
  }
  op.responses = responses
  if (route.public) op.security = [] // answered without credentials even when auth is on
  return op
}

/**
 * The OpenAPI 3.1 document of a route table. Throws OpenApiError for a route without a doc, a
 * path parameter not documented (or documented but absent), a repeated operationId or the same
 * method and path twice. Every operation gets the 401 (unless the route is public) and 500
 * answers with the API's `Error` body.
 *
 * @example
 * ```ts
 * const doc = openApiDocument(routes, { title: 'IPFS Cluster REST API', version: '1.1.6', schemas })
 * doc.paths['/pins/{hash}'].post.responses['400'] // the route's own error answer
 * ```
 */
export function openApiDocument(routes: readonly ApiRoute[], opts: OpenApiOptions) {
  if (!opts.schemas.Error) throw new OpenApiError('schemas must hold Error, the error body')
  const paths: Record<string, Record<string, Schema>> = {}
  const ids = new Set<string>()
  const tags: string[] = Object.keys(opts.tags ?? {})
  for (const route of routes) {
    const where = `${route.method} ${route.pattern}`
    const doc = route.doc
    if (!doc) throw new OpenApiError(`${where} has no doc: every route must be documented`)
    if (ids.has(doc.operationId)) {
      throw new OpenApiError(`${where}: operationId ${doc.operationId} is used twice`)
    }
    ids.add(doc.operationId)
    for (const t of doc.tags) if (!tags.includes(t)) tags.push(t)
    const { path, params } = pathOf(route.pattern)
    const item = paths[path] ??= {}
    const method = route.method.toLowerCase()
    if (item[method]) throw new OpenApiError(`${where}: ${route.method} ${path} is routed twice`)
    item[method] = operation(route, doc, params)
  }
  return {
    openapi: '3.1.0',
    info: {
      title: opts.title,
      version: opts.version,
      ...(opts.description ? { description: opts.description } : {}),
    },
    tags: tags.map((name) => ({
      name,
      ...(opts.tags?.[name] ? { description: opts.tags[name] } : {}),
    })),
    security: [{ basicAuth: [] }, { bearerAuth: [] }, {}],
    paths,
    components: {
      schemas: opts.schemas,
      securitySchemes: {
        basicAuth: {
          type: 'http',
          scheme: 'basic',
          description: 'A user and password of `basic_auth_credentials` (when it is set)',
        },
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A token from `POST /token`: HS256, `iss` a configured user, signed ' +
            "with that user's password",
        },
      },
    },
  }
}

/** An OpenAPI document as `openApiDocument` builds it. */
export type OpenApiDocument = ReturnType<typeof openApiDocument>
