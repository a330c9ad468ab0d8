/**
 * A sync pass: the tracker's walk over the pinset (the start-up sync, then every
 * `pin_recover_interval`, and `RecoverAll`) that finds the pins this peer should hold and its
 * IPFS daemon does not, and queues them — a few at a time, as the workers take them, so that a
 * backlog of a million pins is a position in the state (a cursor), not a million operations in
 * memory.
 *
 * The pass takes a snapshot of the daemon's recursive and direct pins (fingerprints, 16 bytes a
 * pin) and walks the state in key order. A pin the snapshot holds is passed over from its key
 * alone, without parsing the pin. The first walk queues pins until the window is full; past
 * that, one walk resumes after the cursor as the window drains while another counts what
 * remains (for pinQueueSize). Until the cursor reaches a pin it still owes, the tracker reports that pin as
 * `pin_queued`: what the reference reports once its own recover queued every missing pin.
 * Operations queued elsewhere for the pass (failed ones retried) are `adopt`ed: the summary of
 * the pass counts them too.
 *
 * @example
 * ```ts
 * const pass = new SyncPass({ state, ipfsPins, isLocal, operation, queue, full, room, pace, now })
 * await pass.prepare()
 * pass.owes(cid) // true: not reached yet and missing from IPFS
 * await pass.run(signal)
 * ```
 */
import type { StateEntry, StateReader } from '../components.ts'
import type { Pin } from '../types/pin.ts'
import type { DigestSet } from '../util/digest_set.ts'
import type { Operation, OperationOrigin } from './operation.ts'

/** What a pass needs from the tracker. */
export interface SyncPassDeps {
  /** This peer's ID (a pin allocated to it is local). */
  peerId: string
  state: () => StateReader
  /** The IPFS daemon's recursive and direct pins, listed now. */
  ipfsPins: (signal: AbortSignal) => Promise<DigestSet>
  /** True for a pin this peer must hold (not a meta pin; allocated here or everywhere). */
  isLocal: (pin: Pin) => boolean
  /** The CID's current operation. */
  operation: (cid: string) => Operation | undefined
  /** Queues a pin operation behind every other pin operation; false when one already exists. */
  queue: (pin: Pin, origin: OperationOrigin) => boolean
  /** True when the pass's queue holds as much as it may. */
  full: () => boolean
  /** Resolves when the queue has room again. */
  room: (signal: AbortSignal) => Promise<void>
  /** Lets foreground work (API requests, new pins) go first; called every few pins. */
  pace: (signal: AbortSignal) => Promise<void>
  /** Sleeps `ms` (rejects when the signal aborts). */
  rest: (ms: number, signal: AbortSignal) => Promise<void>
  now: () => number
  /**
   * True when the snapshot shows the IPFS pinset unchanged since a moment every local pin was in
   * it (the tracker's mark of its last clean stop): the pass then walks nothing.
   */
  unchanged?: (snapshot: DigestSet) => Promise<boolean>
}

/** What a finished pass did. */
export interface SyncSummary {
  /** Pins of the state walked (first walk). */
  checked: number
  /** Pin operations the pass queued (missing pins, and pins that had failed before). */
  queued: number
  pinned: number
  failed: number
  /** The first failure's message. */
  firstError: string
  /** True when the pass walked nothing: IPFS held the pinset of the tracker's last clean stop. */
  unchanged: boolean
  /** Milliseconds from the start of the pass to the end of its last operation. */
  ms: number
}

// The pass's walk lets foreground work in this often (pins walked).
const PACE_EVERY = 256
// The count of what remains rests COUNT_REST_MS every COUNT_STEP pins: a million pins are
// counted in ~4 s more than a plain walk, beside the walk that queues them.
const COUNT_STEP = 1024
const COUNT_REST_MS = 4

/** One pass; see the module comment. A pass runs once. */
export class SyncPass implements OperationOrigin {
  /** Epoch ms the pass began: the timestamp of the pins it still owes. */
  readonly started: number
  readonly #deps: SyncPassDeps
  readonly #peerId: Uint8Array
  readonly #abort = new AbortController()
  #snapshot: DigestSet | undefined
  #preparing: Promise<void> | undefined
  /** The last CID reached; '' sorts before every CID. */
  #cursor = ''
  #done = false
  /** Pins owed after the first window, as counted so far; and those queued since. */
  #counted = 0
  #fed = 0
  #checked = 0
  #queued = 0
  #pinned = 0
  #failed = 0
  #replaced = 0
  #firstError = ''
  #settledWaiter: (() => void) | undefined

  constructor(deps: SyncPassDeps) {
    this.#deps = deps
    this.#peerId = encoder.encode(deps.peerId)
    this.started = deps.now()
  }

  /** Aborted when the pass is replaced or the tracker stops. */
  get signal(): AbortSignal {
    return this.#abort.signal
  }

  /** True while the IPFS snapshot is being taken (`owes` cannot tell yet). */
  get listing(): boolean {
    return !this.#done && this.#snapshot === undefined
  }

  /** True once the pass walked the whole state, failed or was abandoned. */
  get done(): boolean {
    return this.#done
  }

  /** Pins ahead of the cursor the pass will queue when it gets there (as counted so far). */
  get remaining(): number {
    return this.#done ? 0 : Math.max(0, this.#counted - this.#fed)
  }

  /**
   * Whether the pass still owes this pin, given that it has no operation and is local: true when
   * the cursor has not reached it and the snapshot lacks it; undefined while the snapshot is
   * being taken (the answer is then IPFS's own).
   */
  owes(cid: string): boolean | undefined {
    if (this.#done || cid <= this.#cursor) return false
    if (!this.#snapshot) return undefined
    return !this.#snapshot.hasCid(cid)
  }

  /** Abandons the pass (replaced by a newer one, or the tracker stops). Idempotent. */
  abandon(): void {
    this.#done = true
    this.#abort.abort()
    this.#settledWaiter?.()
  }

  /** Takes the IPFS snapshot (once; later calls wait for the first). */
  prepare(): Promise<void> {
    this.#preparing ??= this.#deps.ipfsPins(this.#abort.signal).then((s) => {
      this.#snapshot = s
    })
    return this.#preparing
  }

  /**
   * Walks the state and queues what it owes, then waits until every operation it queued has
   * settled; resolves with what it did. Rejects when the snapshot or the state cannot be read,
   * or with an AbortError when abandoned.
   */
  async run(): Promise<SyncSummary> {
    const signal = this.#abort.signal
    let unchanged = false
    try {
      await this.prepare()
      unchanged = (await this.#deps.unchanged?.(this.#snapshot!)) ?? false
      signal.throwIfAborted()
      // Unchanged: every local pin of this pinset is in this very IPFS pinset; nothing to walk.
      if (!unchanged && await this.#fill(signal)) {
        // More than a window: feed it as it drains, and count the rest beside (pinQueueSize).
        // Together, so that an abort's rejection of either is handled.
        await Promise.all([this.#count(this.#cursor, signal), this.#resume(signal)])
      }
      this.#done = true
      while (this.#queued > this.#pinned + this.#failed + this.#replaced && !signal.aborted) {
        await new Promise<void>((r) => (this.#settledWaiter = r))
      }
      signal.throwIfAborted()
      return {
        checked: this.#checked,
        queued: this.#queued,
        pinned: this.#pinned,
        failed: this.#failed,
        firstError: this.#firstError,
        unchanged,
        ms: this.#deps.now() - this.started,
      }
    } finally {
      this.#done = true
      this.#snapshot = undefined // 16 MiB a million pins: not kept past the pass
    }
  }

  /** Counts an operation queued elsewhere (a failed one retried) in this pass's summary. */
  adopt(op: Operation): void {
    op.origin = this
    this.#queued++
  }

  /** OperationOrigin: one of the pass's operations ended (pinned, failed, or replaced). */
  settled(op: Operation): void {
    if (op.phase === 'done') this.#pinned++
    else if (op.phase === 'error') {
      this.#failed++
      this.#firstError ||= op.error
    } else this.#replaced++
    this.#settledWaiter?.()
    this.#settledWaiter = undefined
  }

  /**
   * The first walk: from the first key, queueing until the window is full. True when it
   * stopped there (more pins may be owed after the cursor).
   */
  async #fill(signal: AbortSignal): Promise<boolean> {
    for await (const e of this.#deps.state().scan({ signal })) {
      const pin = this.#due(e)
      if (pin && this.#deps.full()) return true
      this.#checked++
      if (pin && this.#deps.queue(pin, this)) this.#queued++
      this.#cursor = e.cid
      if (this.#checked % PACE_EVERY === 0) await this.#deps.pace(signal)
    }
    signal.throwIfAborted()
    return false
  }

  /**
   * Counts the pins owed after `after`, beside the walk that queues them: `remaining` is this
   * count less what that walk has queued since. Only pinQueueSize waits for it, so it goes at
   * a walk: its garbage (a KV entry per pin) is collected as it goes instead of growing V8's
   * heap by ~50 MB beside the catch-up's own.
   */
  async #count(after: string, signal: AbortSignal): Promise<void> {
    let n = 0
    for await (const e of this.#deps.state().scan({ after, signal })) {
      this.#checked++
      if (this.#missing(e)) this.#counted++
      if (++n % COUNT_STEP === 0) await this.#deps.rest(COUNT_REST_MS, signal)
      else if (n % PACE_EVERY === 0) await this.#deps.pace(signal)
    }
  }

  /** Later walks: from the cursor, queueing as the window drains. */
  async #resume(signal: AbortSignal): Promise<void> {
    let n = 0
    for await (const e of this.#deps.state().scan({ after: this.#cursor, signal })) {
      if (this.#missing(e)) {
        if (this.#deps.full()) await this.#deps.room(signal)
        this.#fed++ // counted by #count, whether queued now or already in hand
        // Operations may have come and gone while waiting for room.
        const pin = this.#deps.operation(e.cid) ? undefined : parsePin(e.value)
        if (pin && this.#deps.queue(pin, this)) this.#queued++
      }
      this.#cursor = e.cid
      if (++n % PACE_EVERY === 0) await this.#deps.pace(signal)
    }
    signal.throwIfAborted()
  }

  /**
   * The pin to queue for a state entry, if any: a local pin missing from the snapshot with no
   * operation (failed operations are retried by whoever started the pass, before it walks).
   * Pins the snapshot holds are decided from the key alone.
   */
  #due(e: StateEntry): Pin | undefined {
    if (this.#deps.operation(e.cid) || !this.#missing(e)) return undefined
    return parsePin(e.value)
  }

  /**
   * True for a local pin the snapshot lacks, operations aside: decided from the key, then from
   * the stored bytes, and only then by parsing the pin.
   */
  #missing(e: StateEntry): boolean {
    if (this.#snapshot!.hasCid(e.cid)) return false
    const local = localFromBytes(e.value, this.#peerId)
    if (local !== undefined) return local
    const pin = parsePin(e.value)
    return pin !== undefined && this.#deps.isLocal(pin)
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
// The state stores pins with the reference's field order (types/pin.ts storedPin).
const STORED = encoder.encode('{"replication_factor_min":')
const EVERYWHERE = encoder.encode('{"replication_factor_min":-1,"replication_factor_max":-1,')
// Inside a string (a name) the quotes would be escaped: this only matches the type field.
const META = encoder.encode('"type":"meta-pin"')

/**
 * Whether a stored pin is local, from its JSON bytes where that is certain: a pin for every
 * peer (rf −1) that is no meta pin is; a pin in the state's field order whose bytes do not hold
 * this peer's ID is not (its allocations cannot name it). Undefined: parse it to know. Counting
 * a million missing pins this way allocates nothing per pin (decoding and parsing each one
 * made V8 grow its heap by ~50 MB during the walk).
 */
function localFromBytes(v: Uint8Array, peerId: Uint8Array): boolean | undefined {
  if (indexOf(v, META) >= 0) return undefined
  if (startsWith(v, EVERYWHERE)) return true
  if (startsWith(v, STORED) && indexOf(v, peerId) < 0) return false
  return undefined
}

function startsWith(v: Uint8Array, prefix: Uint8Array): boolean {
  if (v.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (v[i] !== prefix[i]) return false
  return true
}

/** Index of `needle` in `v`, or -1. */
function indexOf(v: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]
  const last = v.length - needle.length
  for (let i = v.indexOf(first); i >= 0 && i <= last; i = v.indexOf(first, i + 1)) {
    let k = 1
    while (k < needle.length && v[i + k] === needle[k]) k++
    if (k === needle.length) return i
  }
  return -1
}

/** A stored pin; undefined for bytes that are no pin (the state never writes one; a walk goes on). */
function parsePin(bytes: Uint8Array): Pin | undefined {
  try {
    return JSON.parse(decoder.decode(bytes)) as Pin
  } catch {
    return undefined
  }
}
