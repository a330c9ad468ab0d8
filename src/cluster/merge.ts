/**
 * The cluster-wide status of every pin, merged one CID at a time from every member's stream
 * (reference §5.6, StatusAll / RecoverAll) without holding the pinset: each member streams its
 * statuses in the state's key order (`compareCidKeys`), so a k-way merge over the streams' heads
 * needs one item per member in memory, whatever the pinset's size.
 *
 * A member whose stream fails — at once (unreachable) or part way — reports `cluster_error`
 * with its message for every CID merged after that point, as the reference does for every CID
 * it collected (it gathers the whole pinset first; a stream cannot go back to CIDs already
 * sent). A member whose failure is `skip`ped (a refused call: the reference omits them) appears
 * nowhere.
 *
 * @example
 * ```ts
 * for await (const g of mergeStatuses(members.map((peer) => ({ peer, items: rpc.stream(…) })), {
 *   failed: (peer, cid, error) => clusterErrorInfo(peer, cid, error),
 * })) console.log(g.cid)
 * ```
 */
import { compareCidKeys } from '../types/cid.ts'
import { globalOf, type GlobalPinInfo, type PinInfo } from '../types/pininfo.ts'
import { errorMessage } from '../errors.ts'
import { MinHeap } from '../util/heap.ts'

/** One member's stream of statuses, in key order. */
export interface PeerStream {
  peer: string
  items: AsyncIterable<PinInfo>
}

/** How the merge reports members that fail. */
export interface MergeOptions {
  /** The status of a failed member for a CID (`cluster_error` and the message). */
  failed(peer: string, cid: string, error: string): PinInfo
  /** True for failures that leave the member out altogether (refused calls). */
  skip?(err: unknown): boolean
  /** Told of each failure once, when it happens (for the log). */
  onError?(peer: string, err: unknown): void
}

interface Head {
  /** The member's position in the input (ties between members: stable order). */
  i: number
  pi: PinInfo
}

/**
 * Merges the members' streams per CID, in key order. Holds at most one item per member; reads
 * the members' next items concurrently once a CID is out.
 */
export async function* mergeStatuses(
  streams: PeerStream[],
  opts: MergeOptions,
): AsyncGenerator<GlobalPinInfo> {
  const its = streams.map((s) => s.items[Symbol.asyncIterator]())
  const heads = new MinHeap<Head>((a, b) => {
    const c = compareCidKeys(a.pi.cid, b.pi.cid)
    return c < 0 || (c === 0 && a.i < b.i)
  })
  /** Members that failed, with the message every later CID carries for them. */
  const failed = new Map<string, string>()
  const done = new Set<number>()

  async function advance(i: number): Promise<void> {
    try {
      const r = await its[i].next()
      if (r.done) done.add(i)
      else heads.push({ i, pi: r.value })
    } catch (err) {
      done.add(i)
      opts.onError?.(streams[i].peer, err)
      if (!opts.skip?.(err)) failed.set(streams[i].peer, errorMessage(err))
    }
  }

  try {
    await Promise.all(its.map((_, i) => advance(i)))
    for (;;) {
      const first = heads.pop()
      if (!first) return
      const group = [first]
      while (heads.size > 0 && heads.peek()!.pi.cid === first.pi.cid) group.push(heads.pop()!)
      const cid = first.pi.cid
      const entries: PinInfo[] = group.map((h) => h.pi)
      for (const [peer, message] of failed) entries.push(opts.failed(peer, cid, message))
      const g = globalOf(cid, entries)
      yield g
      await Promise.all(group.map((h) => advance(h.i)))
    }
  } finally {
    // Stops the members still streaming (the consumer left early, or aborted).
    await Promise.allSettled(its.map((it, i) => done.has(i) ? undefined : it.return?.()))
  }
}
