/**
 * A stopped CRDT peer's store, for `ipfs-cluster-service state …` (IPFS Cluster 1.1.6
 * `cmdutils/state.go` crdtStateManager and the `state crdt` commands):
 *
 * - `cleanCrdt` drops every CRDT key (the replica's set, heads, blocks, marks) and the pinset
 *   view, as Go's `crdt.Clean` drops everything under the namespace; the next start is a new
 *   replica that learns the cluster's heads from the others;
 * - `importCrdt` is Go's import: clean, then the pins streamed into an offline replica as one
 *   batch (the replica closes a delta past 1 MiB of encoded delta, go-ds-crdt's batch limit),
 *   broadcast to nobody; the other peers get them when this peer next announces its heads;
 * - `crdtInfo` and `setDirty` back `state crdt info` and `mark-dirty`/`mark-clean`.
 *
 * @example
 * ```ts
 * const n = await importCrdt(kv, state, cfg, storedPinBatchesInWorker(file, overrides))
 * ```
 *
 * @module
 */
import type { PinState } from '../../state/kv_state.ts'
import { deleteMutation, PipelinedKvWriter } from '../../state/kv_batch.ts'
import type { EncodedRecords } from '../../state/sorted_runs.ts'
import { parseCid } from '../../types/cid.ts'
import type { Pin } from '../../types/pin.ts'
import { systemClock } from '../../util/clock.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { kvBlockstore } from './blockstore.ts'
import { dsKey } from './codec.ts'
import type { CrdtConfig } from './config.ts'
import { crdtConsensus } from './crdt_consensus.ts'
import { type Head, Heads } from './heads.ts'
import { encodePinPb } from './pin_pb.ts'
import { CRDT_PREFIX, crdtReplica, DIRTY } from './replica.ts'
import { replicaOptions } from './start.ts'
import type { BlockFetcher, Broadcaster } from './types.ts'

/** Drops the replica's keys and the pinset view (with its applied counter and tracker mark). */
export async function cleanCrdt(kv: Deno.Kv, state: PinState): Promise<void> {
  const w = new PipelinedKvWriter(kv)
  for await (const e of kv.list({ prefix: CRDT_PREFIX }, { batchSize: 1000 })) {
    await w.add(deleteMutation(e.key))
  }
  await w.flush([])
  await state.clear()
}

/** What `state crdt info` prints: the heads, the greatest height, the dirty flag. */
export async function crdtInfo(
  kv: Deno.Kv,
): Promise<{ heads: Head[]; maxHeight: number; dirty: boolean }> {
  const heads = await Heads.load(kv)
  const dirty = (await kv.get(DIRTY)).value !== null
  return { heads: heads.list(), maxHeight: heads.maxHeight(), dirty }
}

/** Marks the store dirty (a repair runs at the next start) or clean. */
export async function setDirty(kv: Deno.Kv, dirty: boolean): Promise<void> {
  if (dirty) await kv.set(DIRTY, true)
  else await kv.delete(DIRTY)
}

/** Announces nothing and hears nothing: the replica of a stopped peer. */
const offlineBroadcaster: Broadcaster = {
  broadcast: () => Promise.resolve(),
  // deno-lint-ignore require-yield
  async *messages(signal) {
    if (signal.aborted) return
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  },
}
const offlineFetcher: BlockFetcher = {
  fetch: () => Promise.reject(new Error('the peer is offline: no block can be fetched')),
}

/**
 * Replaces a stopped peer's CRDT store with the given pins (batches of the import parser,
 * state/import_parse.ts: checked, overrides applied, stored JSON) (see the module comment).
 * Resolves with the number of pins imported.
 */
export async function importCrdt(
  kv: Deno.Kv,
  state: PinState,
  cfg: CrdtConfig,
  batches: AsyncIterable<EncodedRecords>,
  log: Logger = nullLogger,
): Promise<number> {
  await cleanCrdt(kv, state)
  const consensus = crdtConsensus(
    // The import is one batch of its own, whatever the section says about the daemon's.
    { ...cfg, batching: { ...cfg.batching, max_batch_size: 0 } },
    {
      peerId: '',
      state,
      hooks: { onPin: () => {}, onUnpin: () => {}, onRestore: () => {} },
      validPeers: () => [],
      log,
      replica: (hooks) =>
        crdtReplica({
          kv,
          blocks: kvBlockstore(kv),
          broadcaster: offlineBroadcaster,
          fetcher: offlineFetcher,
          hooks,
          clock: systemClock,
          log,
        }, { ...replicaOptions(cfg), repairIntervalMs: 0 }),
    },
  )
  let n = 0
  // The parser's layout (sorted_runs.ts): per record, key and value lengths (u32 LE), then the
  // key and the value (a pin's stored JSON).
  const decoder = new TextDecoder()
  async function* ops() {
    for await (const batch of batches) {
      const view = new DataView(batch.records.buffer, batch.records.byteOffset)
      let at = 0
      for (const key of batch.keys) {
        const klen = view.getUint32(at, true)
        const vlen = view.getUint32(at + 4, true)
        const json = batch.records.subarray(at + 8 + klen, at + 8 + klen + vlen)
        at += 8 + klen + vlen
        const pin = JSON.parse(decoder.decode(json)) as Pin
        n++
        yield { key: dsKey(parseCid(key)), value: encodePinPb(pin) }
      }
    }
  }
  try {
    await consensus.ready()
    await consensus.replica.commitBatch(ops())
  } finally {
    await consensus.stop()
  }
  return n
}
