/**
 * Reading a `state import` stream into pins as the state stores them, with the command's
 * overrides applied: batches of records keyed by the normalized CID whose value is the stored
 * JSON (`encodePin(storedPin(pin))`), encoded for `SortedRuns`. Parsing and validating every pin
 * is most of an import's work on the JavaScript thread, so `storedPinBatchesInWorker` runs it on a
 * worker thread (import_worker.ts), which hands over each batch's bytes without a copy, while this
 * thread sorts and writes (import.ts); the worker runs a few batches ahead at most.
 *
 * @example
 * ```ts
 * for await (const b of storedPinBatchesInWorker(file.readable, { replicationMin: 2 })) {
 *   await sortedRuns.add(b)
 * }
 * ```
 */
import { encodePin, type Pin, storedPin } from '../types/pin.ts'
import { readPinsNDJSON } from './ndjson.ts'
import { checkPinSize } from './pinset_writer.ts'
import { type EncodedRecords, RecordBatch } from './sorted_runs.ts'
import { ValidationError } from '../errors.ts'

/** What `state import --rmin/--rmax/--allocs` sets on every pin. */
export interface ImportOverrides {
  /** Replaces each pin's replication_factor_min when positive (as the reference does). */
  replicationMin?: number
  /** Replaces each pin's replication_factor_max when positive. */
  replicationMax?: number
  /** Replaces each pin's allocations when not empty. */
  allocations?: string[]
}

/**
 * What to import: a file path (read where the parsing runs: a stream handed to a worker costs a
 * message per chunk on both threads) or a stream (stdin).
 */
export type ImportSource = string | ReadableStream<Uint8Array>

/** Pins per batch. */
const BATCH = 1000
/** Batches the worker may send before this thread has taken them. */
const AHEAD = 32

/** Applies `state import`'s overrides to a pin. */
export function applyOverrides(pin: Pin, o: ImportOverrides): Pin {
  if (o.replicationMin !== undefined && o.replicationMin > 0) {
    pin.replication_factor_min = o.replicationMin
  }
  if (o.replicationMax !== undefined && o.replicationMax > 0) {
    pin.replication_factor_max = o.replicationMax
  }
  if (o.allocations?.length) pin.allocations = [...o.allocations]
  return pin
}

/**
 * Parses an import stream on this thread (see `readPinsNDJSON` for the format and errors); a pin
 * too large for the state fails it like a malformed one.
 */
export async function* storedPinBatches(
  source: ImportSource,
  overrides: ImportOverrides = {},
): AsyncIterable<EncodedRecords> {
  const file = typeof source === 'string' ? await Deno.open(source) : undefined
  try {
    const b = new RecordBatch()
    for await (const pin of readPinsNDJSON(file ? file.readable : source as ReadableStream)) {
      applyOverrides(pin, overrides)
      checkPinSize(pin.cid, b.push(pin.cid, encodePin(storedPin(pin))))
      if (b.length >= BATCH) yield b.take()
    }
    if (b.length > 0) yield b.take()
  } finally {
    try {
      file?.close()
    } catch {
      // closed by its stream at the end of the file
    }
  }
}

/** Messages from the worker. */
export type WorkerReply =
  | { batch: EncodedRecords }
  | { done: true }
  | { error: { name: string; message: string } }

/**
 * `storedPinBatches` on a worker thread (a stream is transferred to it). Errors come back with
 * their message (a `ValidationError` stays one). Leaving the loop early stops the worker.
 */
export async function* storedPinBatchesInWorker(
  source: ImportSource,
  overrides: ImportOverrides = {},
  signal?: AbortSignal,
): AsyncIterable<EncodedRecords> {
  const worker = new Worker(new URL('./import_worker.ts', import.meta.url), { type: 'module' })
  const queue: EncodedRecords[] = []
  let done = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  worker.onmessage = (e: MessageEvent<WorkerReply>) => {
    const m = e.data
    if ('batch' in m) queue.push(m.batch)
    else if ('done' in m) done = true
    else {
      failure = m.error.name === 'ValidationError'
        ? new ValidationError(m.error.message)
        : new Error(m.error.message)
    }
    notify()
  }
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault()
    failure = new Error(`import worker: ${e.message}`)
    notify()
  }
  const onAbort = () => notify()
  signal?.addEventListener('abort', onAbort)
  try {
    worker.postMessage({ source, overrides }, typeof source === 'string' ? [] : [source])
    worker.postMessage({ credit: AHEAD })
    for (;;) {
      signal?.throwIfAborted()
      if (failure) throw failure
      const b = queue.shift()
      if (b) {
        worker.postMessage({ credit: 1 })
        yield b
      } else if (done) {
        return
      } else {
        await new Promise<void>((resolve) => (wake = resolve))
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    worker.terminate()
  }
}
