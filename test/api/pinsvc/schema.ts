/**
 * The response schemas of the IPFS Pinning Service API spec v1.0.0 (ipfs-pinning-service.yaml:
 * PinResults, PinStatus, Pin, Status, Failure), written out as a small validator: every answer a
 * test gets is checked against them, so a field misnamed, missing, extra or out of bounds fails.
 *
 * @example
 * ```ts
 * assertPinResults(await res.json())
 * assertFailure(await res.json(), 'NOT_FOUND')
 * ```
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { tryParseCid } from '../../../src/types/cid.ts'

const STATUSES = ['queued', 'pinning', 'pinned', 'failed']
/** RFC 3339 date-time, as OpenAPI's `format: date-time` means it. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

type Obj = Record<string, unknown>

function object(v: unknown, where: string, required: string[], allowed: string[]): Obj {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${where}: an object`)
  const o = v as Obj
  for (const k of required) assert.ok(k in o, `${where}: required ${k} is missing`)
  for (const k of Object.keys(o)) assert.ok(allowed.includes(k), `${where}: unknown property ${k}`)
  return o
}

function stringMap(v: unknown, where: string, maxProperties: number) {
  const o = object(v, where, [], Object.keys(v as Obj ?? {}))
  const entries = Object.entries(o)
  assert.ok(entries.length <= maxProperties, `${where}: at most ${maxProperties} properties`)
  for (const [k, x] of entries) assert.equal(typeof x, 'string', `${where}.${k}: a string`)
}

function stringArray(v: unknown, where: string, min: number, max: number, multiaddrs: boolean) {
  assert.ok(Array.isArray(v), `${where}: an array`)
  const a = v as unknown[]
  assert.ok(a.length >= min && a.length <= max, `${where}: ${min} to ${max} items, got ${a.length}`)
  assert.equal(new Set(a).size, a.length, `${where}: unique items`)
  for (const x of a) {
    assert.equal(typeof x, 'string', `${where}: strings`)
    if (multiaddrs) multiaddr(x as string) // throws on a bad one
  }
}

/** Checks a Pin object. */
export function assertPin(v: unknown, where = 'pin'): void {
  const o = object(v, where, ['cid'], ['cid', 'name', 'origins', 'meta'])
  assert.equal(typeof o.cid, 'string', `${where}.cid: a string`)
  assert.ok(tryParseCid(o.cid as string), `${where}.cid: a CID`)
  if ('name' in o) {
    assert.equal(typeof o.name, 'string', `${where}.name: a string`)
    assert.ok([...(o.name as string)].length <= 255, `${where}.name: at most 255 characters`)
  }
  if ('origins' in o) stringArray(o.origins, `${where}.origins`, 0, 20, true)
  if ('meta' in o) stringMap(o.meta, `${where}.meta`, 1000)
}

/** Checks a PinStatus object. */
export function assertPinStatus(v: unknown, where = 'PinStatus'): void {
  const o = object(v, where, ['requestid', 'status', 'created', 'pin', 'delegates'], [
    'requestid',
    'status',
    'created',
    'pin',
    'delegates',
    'info',
  ])
  assert.equal(typeof o.requestid, 'string', `${where}.requestid: a string`)
  assert.ok((o.requestid as string).length > 0, `${where}.requestid: not empty`)
  assert.ok(STATUSES.includes(o.status as string), `${where}.status: one of ${STATUSES}`)
  assert.match(o.created as string, DATE_TIME, `${where}.created: RFC 3339`)
  assert.ok(!Number.isNaN(Date.parse(o.created as string)), `${where}.created: a valid time`)
  assertPin(o.pin, `${where}.pin`)
  stringArray(o.delegates, `${where}.delegates`, 1, 20, true)
  if ('info' in o) stringMap(o.info, `${where}.info`, 1000)
}

/** Checks a PinResults object. */
export function assertPinResults(v: unknown): { count: number; results: Obj[] } {
  const o = object(v, 'PinResults', ['count', 'results'], ['count', 'results'])
  assert.ok(Number.isInteger(o.count) && (o.count as number) >= 0, 'PinResults.count: int ≥ 0')
  assert.ok((o.count as number) <= 2 ** 31 - 1, 'PinResults.count: an int32')
  assert.ok(Array.isArray(o.results), 'PinResults.results: an array')
  const results = o.results as Obj[]
  assert.ok(results.length <= 1000, 'PinResults.results: at most 1000 items')
  results.forEach((r, i) => assertPinStatus(r, `PinResults.results[${i}]`))
  const ids = results.map((r) => r.requestid)
  assert.equal(new Set(ids).size, ids.length, 'PinResults.results: unique items')
  return o as { count: number; results: Obj[] }
}

/** Checks a Failure object, and its reason when given. */
export function assertFailure(v: unknown, reason?: string): { reason: string; details?: string } {
  const o = object(v, 'Failure', ['error'], ['error'])
  const e = object(o.error, 'Failure.error', ['reason'], ['reason', 'details'])
  assert.equal(typeof e.reason, 'string', 'Failure.error.reason: a string')
  if ('details' in e) assert.equal(typeof e.details, 'string', 'Failure.error.details: a string')
  if (reason !== undefined) assert.equal(e.reason, reason)
  return e as { reason: string; details?: string }
}
