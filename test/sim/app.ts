/**
 * The simulated application: a key-value store of registers fed by the Raft log. Each write
 * carries an operation id and is applied at most once (the client-session dedup of the Raft
 * thesis §6.3), because a forwarded proposal duplicated by the network is appended twice.
 *
 * The state also keeps a running hash over every applied entry (`chain`), so that two nodes whose
 * states came from different paths (log replay, snapshot install) can be compared at any index.
 */
import type { Entry } from '../../src/consensus/raft/core/mod.ts'
import { fnv, mix } from './rng.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** A client write as stored in a log entry. */
export interface WriteOp {
  op: string
  k: string
  v: string
}

export function encodeWrite(w: WriteOp): Uint8Array {
  return enc.encode(JSON.stringify(w))
}

export function decodeWrite(data: Uint8Array): WriteOp {
  return JSON.parse(dec.decode(data))
}

/** Hash identifying an entry's content (type and payload). */
export function entryHash(e: Pick<Entry, 'type' | 'data'>): number {
  return fnv(e.data, e.type === 'normal' ? 1 : 2)
}

/** The application state machine of one node. */
export class KvApp {
  kv = new Map<string, string>()
  ops = new Set<string>()
  appliedIndex = 0
  chain = 0

  apply(e: Entry): WriteOp | undefined {
    this.appliedIndex = e.index
    this.chain = mix(this.chain, e.index, e.term, entryHash(e))
    if (e.type !== 'normal' || e.data.length === 0) return undefined
    const w = decodeWrite(e.data)
    if (this.ops.has(w.op)) return w
    this.ops.add(w.op)
    this.kv.set(w.k, w.v)
    return w
  }

  encode(): Uint8Array {
    return enc.encode(JSON.stringify({
      kv: [...this.kv],
      ops: [...this.ops],
      appliedIndex: this.appliedIndex,
      chain: this.chain,
    }))
  }

  static decode(data: Uint8Array): KvApp {
    const app = new KvApp()
    if (data.length === 0) return app
    const v = JSON.parse(dec.decode(data))
    app.kv = new Map(v.kv)
    app.ops = new Set(v.ops)
    app.appliedIndex = v.appliedIndex
    app.chain = v.chain
    return app
  }
}
