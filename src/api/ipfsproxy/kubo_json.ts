/**
 * The IPFS proxy's answers in Kubo's shapes (field names capitalised, as Kubo's Go structs
 * encode), built from the cluster's values: pure functions, and the streams that turn the
 * cluster's async iterables into Kubo's NDJSON or JSON bodies without gathering them.
 *
 * Kubo reports a failure in the middle of a stream as one more value, its error object
 * `{"Message","Code":0,"Type":"error"}`: go-ipfs-cmds clients (the `ipfs` CLI) and
 * kubo-rpc-client read it as the command's error. The proxy does the same (the reference used
 * the `X-Stream-Error` trailer, which Deno's server cannot send).
 *
 * @example
 * ```ts
 * kuboAdded({ name: 'a.txt', cid: 'Qm…', size: 12 }) // { Name: 'a.txt', Hash: 'Qm…', Size: '12' }
 * kuboErrorBody(500, 'boom') // { Message: 'boom', Code: 0, Type: 'error' }
 * ```
 */
import type { GlobalRepoGC } from '../../components.ts'
import { errorMessage, ValidationError } from '../../errors.ts'
import type { AddedOutput } from '../../adder/content.ts'
import type { Pin } from '../../types/pin.ts'
import type { Logger } from '../../util/log.ts'

/** Kubo's error object; `Code` 0 is go-ipfs-cmds' ErrNormal, as the reference sends it. */
export function kuboErrorBody(_status: number, message: string) {
  return { Message: message, Code: 0, Type: 'error' }
}

/** One line of `ipfs add` output (Go's omitempty: no Hash, Bytes or Size when zero). */
export interface KuboAdded {
  Name: string
  Hash?: string
  Bytes?: number
  Size?: string
}

/** An add output item as `ipfs add` prints it: Size is a decimal string there. */
export function kuboAdded(o: AddedOutput): KuboAdded {
  const out: KuboAdded = { Name: o.name }
  if (o.cid) out.Hash = o.cid
  if (o.bytes) out.Bytes = o.bytes
  if (o.size) out.Size = String(o.size)
  return out
}

/** Kubo's pin type names, as `pin/ls?type=` takes them. */
export const PIN_LS_TYPES = ['all', 'recursive', 'direct', 'indirect'] as const
/** A `pin/ls` type filter. */
export type PinLsType = typeof PIN_LS_TYPES[number]

/** The `type` of `pin/ls` (default `all`); Kubo's message for another value. */
export function pinLsType(v: string | null): PinLsType {
  if (v === null || v === '') return 'all'
  if ((PIN_LS_TYPES as readonly string[]).includes(v)) return v as PinLsType
  throw new ValidationError(
    `invalid type '${v}', must be one of {direct, indirect, recursive, all}`,
  )
}

/** How IPFS holds a cluster pin: `direct` for depth 0, else `recursive`. */
export function kuboPinType(pin: Pin): 'recursive' | 'direct' {
  return pin.mode === 'direct' || pin.max_depth === 0 ? 'direct' : 'recursive'
}

/** True when a pin is listed under the filter (cluster pins are never `indirect`). */
export function pinTypeMatches(pin: Pin, type: PinLsType): boolean {
  return type === 'all' || type === kuboPinType(pin)
}

/**
 * The values of `repo/gc`: a `{"Key":{"/":cid}}` per removed block of every peer, with its
 * `"Error"` when `stream-errors`; otherwise the errors (a key's, or a whole peer's that could
 * not collect) are joined with "; " into one failure, reported after the keys.
 */
export function repoGCValues(
  gc: GlobalRepoGC,
  streamErrors: boolean,
): { values: Record<string, unknown>[]; error?: string } {
  const values: Record<string, unknown>[] = []
  const errors: string[] = []
  for (const peer of Object.values(gc.peer_map)) {
    for (const k of peer.keys) {
      const v: Record<string, unknown> = {}
      if (k.key) v.Key = { '/': k.key }
      if (k.error && streamErrors) v.Error = k.error
      else if (k.error) errors.push(k.error)
      if (Object.keys(v).length) values.push(v)
    }
    if (peer.error) {
      if (streamErrors) values.push({ Error: `${peer.peername || peer.peer}: ${peer.error}` })
      else errors.push(`${peer.peername || peer.peer}: ${peer.error}`)
    }
  }
  return { values, error: errors.length ? errors.join('; ') : undefined }
}

const encoder = new TextEncoder()
const line = (v: unknown) => encoder.encode(JSON.stringify(v) + '\n')

/**
 * NDJSON bytes of a stream of values, one line each. A failure before the first value is thrown
 * (the answer is then an error status); after it, it becomes Kubo's error object as the last
 * line. An empty stream yields one empty chunk: a 200 with no body, as Kubo answers.
 */
export async function* kuboLines(
  source: AsyncIterable<unknown>,
  log?: Logger,
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]()
  const first = await it.next()
  if (first.done) {
    yield new Uint8Array(0)
    return
  }
  yield line(first.value)
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) yield line(r.value)
  } catch (err) {
    log?.error(`stream failed after its first value: ${errorMessage(err)}`)
    yield line(kuboErrorBody(500, errorMessage(err)))
  }
}

/**
 * `{"Keys":{"<cid>":{"Type":"recursive"},…}}` written as the pins come, never held whole. The
 * first pin is awaited before anything is written, so that a failure to list is an error status;
 * one later cuts the answer short (an incomplete JSON object).
 */
export async function* pinLsKeys(pins: AsyncIterable<Pin>): AsyncGenerator<Uint8Array> {
  const it = pins[Symbol.asyncIterator]()
  let r = await it.next()
  let out = '{"Keys":{'
  let n = 0
  for (; !r.done; r = await it.next()) {
    out += `${n++ ? ',' : ''}${JSON.stringify(r.value.cid)}:{"Type":"${kuboPinType(r.value)}"}`
    if (out.length >= 64 * 1024) {
      yield encoder.encode(out)
      out = ''
    }
  }
  yield encoder.encode(out + '}}\n')
}
