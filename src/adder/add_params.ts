/**
 * Parameters of an add request (`POST /add?…`), parsed with the reference's names, defaults and
 * 400 messages (`AddParamsFromQuery`): every pin option but `pin-update`, plus the importer's
 * options (layout, chunker, raw-leaves, cid-version, hash…) and the adder's flags.
 *
 * @example
 * ```ts
 * const p = addParamsFromQuery(new URLSearchParams('cid-version=1&wrap-with-directory=true'))
 * p.raw_leaves // true (cid-version > 0 turns raw leaves on unless raw-leaves says otherwise)
 * ```
 */
import { ValidationError } from '../errors.ts'
import { type PinOptions, pinOptionsFromQuery } from '../types/pin.ts'

/** Everything an add request can ask for. */
export interface AddParams {
  /** Options of the pin made for the root (mode is always recursive). */
  pin: PinOptions
  local: boolean
  recursive: boolean
  hidden: boolean
  wrap: boolean
  shard: boolean
  stream_channels: boolean
  format: 'unixfs' | 'car'
  no_pin: boolean
  layout: '' | 'balanced' | 'trickle'
  chunker: string
  raw_leaves: boolean
  progress: boolean
  cid_version: number
  hash: string
  nocopy: boolean
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** Parses a boolean as Go's strconv.ParseBool does; absent/empty keeps the default. */
function boolParam(q: URLSearchParams, name: string, def: boolean): boolean {
  const v = q.get(name)
  if (v === null || v === '') return def
  if (TRUE.has(v)) return true
  if (FALSE.has(v)) return false
  throw new ValidationError(`parameter ${name} invalid`)
}

function intParam(q: URLSearchParams, name: string, def: number): number {
  const v = q.get(name)
  if (v === null || v === '') return def
  if (!/^[+-]?\d{1,15}$/.test(v)) throw new ValidationError(`parameter ${name} invalid`)
  return parseInt(v, 10)
}

/** Parses add parameters; throws ValidationError (400) with the reference's messages. */
export function addParamsFromQuery(q: URLSearchParams, now = Date.now()): AddParams {
  // pin-update is meaningless when adding; the root is always pinned recursively.
  const pin: PinOptions = { ...pinOptionsFromQuery(q, now), pin_update: null, mode: 'recursive' }
  const layout = q.get('layout') ?? ''
  if (layout !== '' && layout !== 'balanced' && layout !== 'trickle') {
    throw new ValidationError('layout parameter is invalid')
  }
  const format = q.get('format') ?? ''
  if (format !== '' && format !== 'unixfs' && format !== 'car') {
    throw new ValidationError('format parameter is invalid')
  }
  const hash = q.get('hash') || 'sha2-256'
  // As Kubo: another hash function than sha2-256 implies CIDv1 unless cid-version says otherwise
  // (a CIDv0 can only hold sha2-256; the reference's adder fails with "invalid v0 prefix").
  const cidVersion = intParam(q, 'cid-version', hash.toLowerCase() === 'sha2-256' ? 0 : 1)
  return {
    pin,
    layout,
    chunker: q.get('chunker') || 'size-262144',
    hash,
    format: format === 'car' ? 'car' : 'unixfs',
    local: boolParam(q, 'local', false),
    recursive: boolParam(q, 'recursive', false),
    hidden: boolParam(q, 'hidden', false),
    wrap: boolParam(q, 'wrap-with-directory', false),
    shard: boolParam(q, 'shard', false),
    progress: boolParam(q, 'progress', false),
    cid_version: cidVersion,
    // CIDv1 implies raw leaves unless the request says otherwise, as in Kubo.
    raw_leaves: boolParam(q, 'raw-leaves', cidVersion > 0),
    stream_channels: boolParam(q, 'stream-channels', true),
    nocopy: boolParam(q, 'nocopy', false),
    no_pin: boolParam(q, 'no-pin', false),
  }
}
