/**
 * The JSON text of a batch of streamed items (rpc/frames.ts's ITEMS frames of `JSON_ITEMS`
 * methods). Items that are objects of one shape — the same keys in the same order, as every
 * PinInfo of a status stream — travel as columns: the keys once, the columns whose value is the
 * same in every item once, and one row per item with the rest. A peer's status stream repeats its
 * peer ID, peer name, IPFS ID and addresses, and mostly the same status, timestamps and empty
 * fields in every item: a PinInfo of ~470 bytes of JSON becomes a row of ~70 (mostly its CID),
 * and the bytes that libp2p encrypts twice (private network, Noise) and multiplexes shrink as
 * much. Any other batch is the JSON array of its items.
 *
 * ```
 * {"k":["cid","name","peer",…],"c":[1,2,…],"v":["","12D3KooW…",…],"r":[["bafy…"],…]}
 * ```
 *
 * `c` lists the constant columns by index, `v` their values, `r` holds each item's other columns
 * in key order. A constant column that is `undefined` in every item has index `-1 - i` in `c` and
 * no value: the decoded items lack that key, as `JSON.stringify` would leave it out. Decoded items
 * get their own copy of a constant object or array (they may be changed independently).
 *
 * @example
 * ```ts
 * const b = new JsonBatch()
 * for (const pi of infos) b.add(pi)
 * const text = b.take()
 * parseJsonBatch(text) // deep-equal to infos
 * ```
 *
 * @module
 */

/** Characters counted per item on top of its non-constant values (brackets, commas). */
const ROW_OVERHEAD = 4

/** A batch of JSON items being gathered; `take` returns its JSON text. */
export class JsonBatch {
  #items: unknown[] = []
  /** The shape of the batch's items so far; undefined when they are not all one shape. */
  #keys?: string[]
  /** Per column: the first item's value, and its JSON when it is an object. */
  #first: unknown[] = []
  #firstJson: (string | undefined)[] = []
  /** Per column: whether every item so far had the first item's value. */
  #same: boolean[] = []
  #plain = false
  /** Size of the batch's JSON so far, in characters (an estimate within a few per item). */
  chars = 0

  get count(): number {
    return this.#items.length
  }

  add(item: unknown): void {
    this.#items.push(item)
    if (!this.#plain && this.#items.length === 1) {
      if (this.#startShape(item)) return
    } else if (!this.#plain && this.#sameShape(item)) {
      return
    }
    if (!this.#plain) this.#toPlain()
    this.chars += JSON.stringify(item)?.length ?? 4
    this.chars += 1
  }

  /** The batch's JSON text; the batch starts again empty. */
  take(): string {
    const items = this.#items
    let text: string
    if (this.#plain || !this.#keys) {
      text = JSON.stringify(items)
    } else {
      const keys = this.#keys
      const c: number[] = []
      const v: unknown[] = []
      const varying: string[] = []
      for (let j = 0; j < keys.length; j++) {
        if (!this.#same[j]) varying.push(keys[j])
        else if (this.#first[j] === undefined) c.push(-1 - j)
        else {
          c.push(j)
          v.push(this.#first[j])
        }
      }
      const r = items.map((it) => {
        const o = it as Record<string, unknown>
        return varying.map((k) => o[k])
      })
      text = JSON.stringify({ k: keys, c, v, r })
    }
    this.#items = []
    this.#keys = undefined
    this.#first = []
    this.#firstJson = []
    this.#same = []
    this.#plain = false
    this.chars = 0
    return text
  }

  #startShape(item: unknown): boolean {
    if (!isRecord(item)) return false
    const keys = Object.keys(item)
    this.#keys = keys
    for (let j = 0; j < keys.length; j++) {
      const val = item[keys[j]]
      this.#first.push(val)
      const json = jsonOfObject(val)
      this.#firstJson.push(json)
      this.#same.push(true)
      this.chars += keys[j].length + 3 + valueChars(val, json)
    }
    this.chars += ROW_OVERHEAD
    return true
  }

  #sameShape(item: unknown): boolean {
    const keys = this.#keys
    if (!keys || !isRecord(item)) return false
    const got = Object.keys(item)
    if (got.length !== keys.length) return false
    for (let j = 0; j < keys.length; j++) if (got[j] !== keys[j]) return false
    let chars = ROW_OVERHEAD
    for (let j = 0; j < keys.length; j++) {
      const val = item[keys[j]]
      const first = this.#first[j]
      if (val === first) {
        if (!this.#same[j]) chars += valueChars(val, this.#firstJson[j])
        continue
      }
      // undefined has no JSON: a column that is undefined somewhere and not everywhere can only
      // travel as the items' own JSON.
      if (val === undefined || first === undefined) return false
      const json = jsonOfObject(val)
      if (json !== undefined && json === this.#firstJson[j]) {
        if (!this.#same[j]) chars += json.length + 1
        continue
      }
      if (this.#same[j]) {
        // The column varies from here on: the earlier rows carry the first value too.
        this.#same[j] = false
        this.chars += (this.#items.length - 1) * (valueChars(first, this.#firstJson[j]) + 1)
      }
      chars += valueChars(val, json) + 1
    }
    this.chars += chars
    return true
  }

  /** The items so far are not one shape: count them as the JSON array of the items. */
  #toPlain() {
    this.#plain = true
    this.chars = 2
    const items = this.#items
    for (let i = 0; i < items.length - 1; i++) {
      this.chars += (JSON.stringify(items[i])?.length ?? 4) + 1
    }
  }
}

/** The items of a batch's JSON text (either form); throws on anything else. */
export function parseJsonBatch(text: string): unknown[] {
  const parsed = JSON.parse(text)
  if (Array.isArray(parsed)) return parsed
  const { k, c, v, r } = parsed ?? {}
  if (!Array.isArray(k) || !Array.isArray(c) || !Array.isArray(v) || !Array.isArray(r)) {
    throw new SyntaxError('malformed JSON batch')
  }
  const keys = k as string[]
  // Per column: -1 varying, -2 absent, else the index of its constant in v.
  const kind = new Array<number>(keys.length).fill(-1)
  let ci = 0
  for (const x of c as number[]) {
    if (!Number.isInteger(x) || x >= keys.length || x < -keys.length) {
      throw new SyntaxError('malformed JSON batch')
    }
    if (x < 0) kind[-1 - x] = -2
    else kind[x] = ci++
  }
  if (ci !== v.length) throw new SyntaxError('malformed JSON batch')
  // A constant object or array is copied for each item: empty ones (most of them) as literals.
  const copies = v.map((x): (() => unknown) | undefined => {
    if (typeof x !== 'object' || x === null) return undefined
    if (Array.isArray(x) && x.length === 0) return () => []
    const json = JSON.stringify(x)
    return json === '{}' ? () => ({}) : () => JSON.parse(json)
  })
  const varying = kind.filter((x) => x === -1).length
  const out = new Array<unknown>(r.length)
  for (let i = 0; i < r.length; i++) {
    const row = r[i]
    if (!Array.isArray(row) || row.length !== varying) {
      throw new SyntaxError('malformed JSON batch')
    }
    const o: Record<string, unknown> = {}
    let at = 0
    for (let j = 0; j < keys.length; j++) {
      const kj = kind[j]
      if (kj === -1) o[keys[j]] = row[at++]
      else if (kj >= 0) o[keys[j]] = copies[kj] === undefined ? v[kj] : copies[kj]!()
    }
    out[i] = o
  }
  return out
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) &&
    Object.getPrototypeOf(x) === Object.prototype
}

/** The JSON of an object or array value (empty arrays, most of them, without stringifying). */
function jsonOfObject(val: unknown): string | undefined {
  if (typeof val !== 'object' || val === null) return undefined
  if (Array.isArray(val) && val.length === 0) return '[]'
  return JSON.stringify(val)
}

/** JSON characters of a value (`json` when it is an object, already stringified). */
function valueChars(val: unknown, json: string | undefined): number {
  if (json !== undefined) return json.length
  if (typeof val === 'string') return val.length + 2
  return 5
}
