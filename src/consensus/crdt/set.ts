/**
 * go-ds-crdt's Add-Wins Observed-Remove set (v0.6.8 set.go) on Deno KV: what merging one delta
 * changes, computed from what KV holds and handed back as mutations, so that the replica commits a
 * merge atomically with its heads, its processed mark and its owner's view.
 *
 * The rules (crdt-interop.md §2.5), which every replica, Go or not, must apply alike to converge:
 * - a delta's tombstones go first, then its elements;
 * - an element `(key, id)` is skipped if that version is tombstoned; it wins if its priority is
 *   above the key's current one, or equal with a byte-wise greater value (two elements of one key
 *   in one delta: the greater value);
 * - a tombstone `(key, id)` removes that version; the key's value becomes the best surviving
 *   version (highest priority, then greatest value) or none; the delete hook fires once per key
 *   tombstoned in the delta, even when another version survives.
 *
 * KV layout, under `['crdt', 's', …]`:
 * - `e, key, id` → {@linkcode Version}: every version seen and not tombstoned. Go keeps tombstoned
 *   ones too and checks the tombstones beside them; dropping them makes a removal (the tombstones
 *   of every live version) one prefix scan and the recomputation of the winner a read of the
 *   survivors only, without reading their delta nodes back as Go does.
 * - `t, key, id` → true: tombstones (kept forever, as in Go: a version may arrive after its tomb).
 * - `v, key` → {@linkcode Version}: the key's current winner; `list` streams this prefix.
 *
 * @example
 * ```ts
 * const change = await planMerge(kvSetReader(kv, blocks), delta, blockId(cid), cid)
 * for (const [key, c] of change) if (c.changed) view(key, c.value)
 * ```
 *
 * @module
 */
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import * as Digest from 'multiformats/hashes/digest'
import { deleteMutation, type Mutation, setMutation } from '../../state/kv_batch.ts'
import { compareBytes, decodeNode, type Delta, type Element } from './codec.ts'
import type { CrdtBlockstore } from './types.ts'

/** KV prefixes of the set. */
export const ELEMS = ['crdt', 's', 'e'] as const
export const TOMBS = ['crdt', 's', 't'] as const
export const VALUES = ['crdt', 's', 'v'] as const

/**
 * Values above this are not copied into KV (a value holds 64 KiB); the version then names the
 * delta node that carries it (`b`, its multihash) and the value is read from there.
 */
export const INLINE_MAX = 59_000

/** One version of a key: its priority and its value (or the node that carries it). */
export interface Version {
  p: number
  v?: Uint8Array
  b?: Uint8Array
}

/** What merging one delta does to one key. */
export interface KeyChange {
  /** Set mutations for this key (commit them with the view's). */
  mutations: Mutation[]
  /** The key's value changed (value, priority, or gone): `value` is the new winner. */
  changed: boolean
  /** The winner after the merge (undefined: none). */
  value: Uint8Array | undefined
  /** An element of this delta won (go-ds-crdt's PutHook), with the winning value. */
  put?: Uint8Array
  /** A tombstone of this delta named this key (DeleteHook). */
  deleted: boolean
}

/** The reads a merge needs (KV, through `kvSetReader`). */
export interface SetReader {
  /** The current winner of each key (undefined: none). */
  values(keys: readonly string[]): Promise<(Version | undefined)[]>
  /** Whether each `(key, id)` is tombstoned. */
  tombstoned(pairs: readonly (readonly [string, string])[]): Promise<boolean[]>
  /** The live versions of a key, by id. */
  versions(key: string): Promise<Map<string, Version>>
  /** The value a version stands for (read from its node when not inline). */
  resolve(key: string, v: Version): Promise<Uint8Array>
}

const GET_MANY = 10

async function getMany<T>(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<(T | null)[]> {
  const parts: Promise<Deno.KvEntryMaybe<T>[]>[] = []
  for (let i = 0; i < keys.length; i += GET_MANY) {
    parts.push(kv.getMany<T[]>(keys.slice(i, i + GET_MANY)) as Promise<Deno.KvEntryMaybe<T>[]>)
  }
  return (await Promise.all(parts)).flat().map((e) => e.value)
}

/**
 * The greatest value for `key` among a delta's elements (how Go reads a version back from its node).
 */
function greatestValue(delta: Delta, key: string): Uint8Array | undefined {
  let best: Uint8Array | undefined
  for (const e of delta.elements) {
    if (e.key === key && (best === undefined || compareBytes(best, e.value) < 0)) best = e.value
  }
  return best
}

/**
 * Reads the set from KV (values and versions whose value is in a node come from `blocks`).
 *
 * @example
 * ```ts
 * const reader = kvSetReader(kv, kvBlockstore(kv))
 * ```
 */
export function kvSetReader(kv: Deno.Kv, blocks: CrdtBlockstore): SetReader {
  return {
    values: (keys) =>
      getMany<Version>(kv, keys.map((k) => [...VALUES, k])).then((vs) =>
        vs.map((v) => v ?? undefined)
      ),
    tombstoned: (pairs) =>
      getMany<boolean>(kv, pairs.map(([k, id]) => [...TOMBS, k, id])).then((vs) =>
        vs.map((v) => v !== null)
      ),
    async versions(key) {
      const out = new Map<string, Version>()
      for await (const e of kv.list<Version>({ prefix: [...ELEMS, key] })) {
        out.set(e.key[ELEMS.length + 1] as string, e.value)
      }
      return out
    },
    resolve: (key, v) => resolveVersion(blocks, key, v),
  }
}

/** The bytes a version stands for. */
export async function resolveVersion(
  blocks: CrdtBlockstore,
  key: string,
  v: Version,
): Promise<Uint8Array> {
  if (v.v !== undefined) return v.v
  if (v.b === undefined) return new Uint8Array()
  const cid = CID.createV1(dagPb.code, Digest.decode(v.b))
  const bytes = await blocks.get(cid)
  if (bytes === undefined) {
    throw new Error(`delta node ${cid} holding the value of ${key} is missing`)
  }
  const { delta } = await decodeNode(cid, bytes)
  return greatestValue(delta, key) ?? new Uint8Array()
}

/** The version record for `value` at `priority` carried by the node whose multihash is `mh`. */
function versionOf(value: Uint8Array, priority: number, mh: Uint8Array): Version {
  return value.length > INLINE_MAX
    ? { p: priority, b: compact(mh) }
    : { p: priority, v: compact(value) }
}

/**
 * `bytes` on a buffer of its own. KV stores a Uint8Array with its whole ArrayBuffer (V8's
 * serializer), and values arrive as views: of protons-runtime's 8 KiB writer slab (local writes)
 * or of the received block (a Node Buffer, whose `slice()` is a view too): a pin's ~60-byte
 * api.pb.Pin stored as is took the whole buffer, and a merge of ~100 of them passed KV's 800 KiB
 * commit. `new Uint8Array(view)` copies, whatever the view's class.
 */
function compact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : new Uint8Array(bytes)
}

function sizeOf(v: Version): number {
  return (v.v?.length ?? 0) + (v.b?.length ?? 0) + 24
}

/** Keys longer than this are skipped (KV refuses keys over 2 KiB; cluster keys are ~60 bytes). */
export const MAX_KEY_BYTES = 1_500
const encoder = new TextEncoder()

/**
 * Computes what merging `delta`, carried by node `cid` (block ID `id`), changes in the set: per
 * key, the mutations and the outcome. Reads only; nothing is written. Callers serialise merges
 * (a merge reads what the previous one wrote).
 *
 * @example
 * ```ts
 * const changes = await planMerge(reader, delta, blockId(cid), cid)
 * ```
 */
export async function planMerge(
  reader: SetReader,
  delta: Delta,
  id: string,
  cid: CID,
  skipped: (key: string) => void = () => {},
): Promise<Map<string, KeyChange>> {
  const usable = (e: Element) => {
    if (encoder.encode(e.key).length <= MAX_KEY_BYTES) return true
    skipped(e.key)
    return false
  }
  // Tombstoned ids per key, and this delta's greatest value per key.
  const tombs = new Map<string, Set<string>>()
  for (const t of delta.tombstones) {
    if (!usable(t)) continue
    let s = tombs.get(t.key)
    if (!s) tombs.set(t.key, s = new Set())
    s.add(t.id)
  }
  const elems = new Map<string, Uint8Array>()
  for (const e of delta.elements) {
    if (!usable(e)) continue
    const cur = elems.get(e.key)
    if (cur === undefined || compareBytes(cur, e.value) < 0) elems.set(e.key, e.value)
  }

  const keys = [...new Set([...tombs.keys(), ...elems.keys()])]
  const elemKeys = [...elems.keys()]
  const [current, tombed, versions] = await Promise.all([
    reader.values(keys),
    reader.tombstoned(elemKeys.map((k) => [k, id] as const)),
    Promise.all([...tombs.keys()].map((k) => reader.versions(k))),
  ])
  const isTombed = new Map(elemKeys.map((k, i) => [k, tombed[i]]))
  const live = new Map([...tombs.keys()].map((k, i) => [k, versions[i]]))
  const mh = cid.multihash.bytes

  const out = new Map<string, KeyChange>()
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const before = current[i]
    let cur = before
    let curValue = cur ? await reader.resolve(key, cur) : undefined
    const change: KeyChange = { mutations: [], changed: false, value: undefined, deleted: false }

    const tombIds = tombs.get(key)
    if (tombIds) {
      change.deleted = true
      const vs = live.get(key)!
      for (const tid of tombIds) {
        change.mutations.push(setMutation([...TOMBS, key, tid], true, 8))
        if (vs.delete(tid)) change.mutations.push(deleteMutation([...ELEMS, key, tid]))
      }
      // The best survivor: highest priority, then greatest value. Go reads a survivor with an
      // empty value as none (its "greatest value" starts nil), and so does this.
      cur = undefined
      curValue = undefined
      for (const v of vs.values()) {
        const value = await reader.resolve(key, v)
        if (value.length === 0) continue
        if (
          cur === undefined || v.p > cur.p ||
          (v.p === cur.p && compareBytes(curValue!, value) < 0)
        ) {
          cur = v
          curValue = value
        }
      }
    }

    const value = elems.get(key)
    if (value !== undefined && !isTombed.get(key)) {
      const version = versionOf(value, delta.priority, mh)
      change.mutations.push(setMutation([...ELEMS, key, id], version, sizeOf(version)))
      const curP = cur?.p ?? 0
      const wins = delta.priority > curP ||
        (delta.priority === curP && compareBytes(curValue ?? new Uint8Array(), value) < 0)
      if (wins) {
        cur = version
        curValue = value
        change.put = value
      }
    }

    if (!sameVersion(before, cur)) {
      change.changed = true
      change.mutations.push(
        cur === undefined
          ? deleteMutation([...VALUES, key])
          : setMutation([...VALUES, key], cur, sizeOf(cur)),
      )
    }
    change.value = cur === undefined ? undefined : curValue
    out.set(key, change)
  }
  return out
}

function sameVersion(a: Version | undefined, b: Version | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  if (a.p !== b.p) return false
  if ((a.v === undefined) !== (b.v === undefined)) return false
  if (a.v && b.v) return compareBytes(a.v, b.v) === 0
  return compareBytes(a.b ?? new Uint8Array(), b.b ?? new Uint8Array()) === 0
}

/**
 * The tombstones that remove every live version of `key` (go-ds-crdt's `Rmv`); none if the key
 * was never seen or is already removed.
 *
 * @example
 * ```ts
 * const tombstones = await removal(kv, '/K')
 * if (tombstones.length === 0) return // nothing to publish
 * ```
 */
export async function removal(kv: Deno.Kv, key: string): Promise<Element[]> {
  const out: Element[] = []
  for await (const e of kv.list({ prefix: [...ELEMS, key] })) {
    out.push({ key, id: e.key[ELEMS.length + 1] as string, value: new Uint8Array() })
  }
  return out
}

/**
 * The key's current value.
 *
 * @example
 * ```ts
 * const pin = await valueOf(kv, blocks, dsKey(cid))
 * ```
 */
export async function valueOf(
  kv: Deno.Kv,
  blocks: CrdtBlockstore,
  key: string,
): Promise<Uint8Array | undefined> {
  const e = await kv.get<Version>([...VALUES, key])
  return e.value === null ? undefined : await resolveVersion(blocks, key, e.value)
}

/**
 * Live keys and values in key order, streamed from KV.
 *
 * @example
 * ```ts
 * for await (const { key, value } of listValues(kv, blocks, signal)) write(key, value)
 * ```
 */
export async function* listValues(
  kv: Deno.Kv,
  blocks: CrdtBlockstore,
  signal?: AbortSignal,
): AsyncIterable<{ key: string; value: Uint8Array }> {
  for await (const e of kv.list<Version>({ prefix: [...VALUES] }, { batchSize: 500 })) {
    signal?.throwIfAborted()
    const key = e.key[VALUES.length] as string
    yield { key, value: await resolveVersion(blocks, key, e.value) }
  }
}
