/**
 * Checks HTTP answers against the REST API's OpenAPI document with a JSON Schema validator (ajv,
 * 2020-12 as OpenAPI 3.1 uses): the answer's status must be documented for the operation, its
 * Content-Type must be the documented media type, and its body (each line of an NDJSON stream)
 * must validate. Object schemas are made strict here (`additionalProperties: false` where the
 * document leaves objects open for clients), so that a field the document forgot fails too.
 *
 * @example
 * ```ts
 * const check = answerChecker(doc)
 * const body = await check('GET', '/pins/{hash}', await fetch(`${url}/pins/${cid}`))
 * ```
 */
import assert from 'node:assert/strict'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import type { OpenApiDocument, Schema } from '../../../src/api/common/openapi.ts'

const DOC_ID = 'urn:ipfs-cluster:rest'

/** Rewrites `#/components/schemas/X` refs to the registered document; closes object schemas. */
function strict(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strict)
  if (typeof s !== 'object' || s === null) return s
  const out: Schema = {}
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref' && typeof v === 'string') {
      out.$ref = v.replace('#/components/schemas/', `${DOC_ID}#/$defs/`)
    } else if (k === 'properties' || k === '$defs') {
      // A map of names to schemas, not a schema: recurse into the values only.
      out[k] = Object.fromEntries(Object.entries(v as Schema).map(([n, x]) => [n, strict(x)]))
    } else {
      out[k] = strict(v)
    }
  }
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) {
    out.additionalProperties = false
  }
  return out
}

/** A validator over the document's schemas (ajv strict mode: an unknown keyword is an error). */
export function schemaValidator(doc: OpenApiDocument): (schema: Schema) => ValidateFunction {
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  ajv.addFormat('date-time', true) // the schemas carry a pattern for it
  ajv.addSchema({ $id: DOC_ID, $defs: strict(doc.components.schemas) as Schema })
  const cache = new Map<string, ValidateFunction>()
  return (schema) => {
    const key = JSON.stringify(schema)
    let v = cache.get(key)
    if (!v) cache.set(key, v = ajv.compile(strict(schema) as Schema))
    return v
  }
}

/** The documented operation of a method and OpenAPI path. */
// deno-lint-ignore no-explicit-any
export function operationOf(doc: OpenApiDocument, method: string, path: string): any {
  const op = doc.paths[path]?.[method.toLowerCase()]
  assert.ok(op, `${method} ${path} is not in the document`)
  return op
}

/**
 * Returns a function that checks an answer of `METHOD path` (the OpenAPI path, e.g.
 * `/pins/{hash}`) against the document and returns its decoded body (an array of lines for a
 * stream, undefined when empty).
 */
export function answerChecker(doc: OpenApiDocument) {
  const validator = schemaValidator(doc)
  return async (method: string, path: string, res: Response): Promise<unknown> => {
    const where = `${method} ${path} → ${res.status}`
    const op = operationOf(doc, method, path)
    const documented = op.responses[String(res.status)]
    const text = await res.text()
    assert.ok(documented, `${where} is not documented (body: ${text.slice(0, 300)})`)
    const content = documented.content as Record<string, Schema> | undefined
    if (!content) {
      assert.equal(text, '', `${where}: documented without a body, got one`)
      return undefined
    }
    const [type, media] = Object.entries(content)[0]
    assert.equal(res.headers.get('content-type'), type, `${where}: Content-Type`)
    const validate = validator(media.schema as Schema)
    const check = (value: unknown, what: string) => {
      if (!validate(value)) {
        assert.fail(
          `${where}: ${what} does not match the document: ` +
            `${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(value).slice(0, 600)}`,
        )
      }
    }
    if (media['x-ndjson']) {
      const lines = text.split('\n').filter((l) => l !== '')
      assert.ok(lines.length > 0, `${where}: an empty stream must be a 204`)
      const values = lines.map((l) => JSON.parse(l))
      values.forEach((v, i) => check(v, `line ${i + 1}`))
      return values
    }
    const value = type.startsWith('application/json') ? JSON.parse(text) : text
    check(value, 'the body')
    return value
  }
}
