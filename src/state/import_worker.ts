/**
 * The worker of `storedPinBatchesInWorker` (import_parse.ts): receives the import source and the
 * overrides, answers with batches of stored pins, sending only as many as it was given credit for
 * (the main thread grants one per batch it took), then `done` or the error that stopped it.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  type ImportOverrides,
  type ImportSource,
  storedPinBatches,
  type WorkerReply,
} from './import_parse.ts'
import { errorMessage } from '../errors.ts'

let credit = 0
let wake: (() => void) | undefined

self.onmessage = (e: MessageEvent) => {
  const m = e.data as
    | { credit: number }
    | { source: ImportSource; overrides: ImportOverrides }
  if ('credit' in m) {
    credit += m.credit
    wake?.()
    wake = undefined
  } else {
    void run(m.source, m.overrides)
  }
}

async function run(source: ImportSource, overrides: ImportOverrides) {
  const reply = (m: WorkerReply) => self.postMessage(m)
  try {
    for await (const batch of storedPinBatches(source, overrides)) {
      while (credit === 0) await new Promise<void>((resolve) => (wake = resolve))
      credit--
      self.postMessage({ batch } satisfies WorkerReply, [batch.records.buffer])
    }
    reply({ done: true })
  } catch (err) {
    reply({ error: { name: (err as Error)?.name ?? 'Error', message: errorMessage(err) } })
  }
}
