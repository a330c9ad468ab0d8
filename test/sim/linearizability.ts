/**
 * A linearizability checker for a key-value store of registers, in the style of Porcupine:
 * Wing & Gong's search with Lowe's memoisation, run per key (a history of independent
 * registers is linearizable iff each key's sub-history is).
 *
 * An operation is an interval `[call, ret]` on a global event counter. A write whose outcome
 * the client never learned has `ret = Infinity`: it may take effect at any point after its call,
 * or never (linearizing it after everything else is the same as never). Reads without an answer
 * carry no information and are left out by the recorder.
 */

/** One client operation on one key. */
export interface RegisterOp {
  kind: 'put' | 'get'
  key: string
  /** Written value (put) or observed value (get; null = never written). */
  value: string | null
  call: number
  ret: number
  /** For error messages. */
  label: string
}

interface Node {
  op: number
  isCall: boolean
  prev: Node | null
  next: Node | null
  match: Node | null
}

/** True if the ops on one register admit a linearization. */
export function linearizableRegister(ops: RegisterOp[]): boolean {
  if (ops.length === 0) return true
  const events: { t: number; op: number; isCall: boolean }[] = []
  ops.forEach((o, i) => {
    events.push({ t: o.call, op: i, isCall: true })
    events.push({ t: o.ret, op: i, isCall: false })
  })
  // Calls sort before returns at equal times (only Infinity can tie).
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1))
  const head: Node = { op: -1, isCall: false, prev: null, next: null, match: null }
  let tail = head
  const calls: Node[] = []
  for (const e of events) {
    const n: Node = { op: e.op, isCall: e.isCall, prev: tail, next: null, match: null }
    tail.next = n
    tail = n
    if (e.isCall) calls[e.op] = n
    else {
      calls[e.op].match = n
      n.match = calls[e.op]
    }
  }
  const lift = (c: Node) => {
    c.prev!.next = c.next
    if (c.next) c.next.prev = c.prev
    const r = c.match!
    r.prev!.next = r.next
    if (r.next) r.next.prev = r.prev
  }
  const unlift = (c: Node) => {
    const r = c.match!
    r.prev!.next = r
    if (r.next) r.next.prev = r
    c.prev!.next = c
    if (c.next) c.next.prev = c
  }
  let state: string | null = null
  let linearized = 0n
  const seen = new Set<string>()
  const stack: { node: Node; state: string | null }[] = []
  let entry = head.next
  while (head.next !== null) {
    if (entry === null) return false
    if (entry.isCall) {
      const o = ops[entry.op]
      const ok = o.kind === 'put' || o.value === state
      const newState: string | null = o.kind === 'put' ? o.value : state
      if (ok) {
        const lin = linearized | (1n << BigInt(entry.op))
        const key = `${lin.toString(36)}|${newState}`
        if (!seen.has(key)) {
          seen.add(key)
          stack.push({ node: entry, state })
          state = newState
          linearized = lin
          lift(entry)
          entry = head.next
          continue
        }
      }
      entry = entry.next
    } else {
      // A return whose call we could not linearize before it: undo the last choice.
      const top = stack.pop()
      if (!top) return false
      state = top.state
      linearized &= ~(1n << BigInt(top.node.op))
      unlift(top.node)
      entry = top.node.next
    }
  }
  return true
}

/** Checks every key's history; returns the keys that are not linearizable. */
export function checkHistory(ops: RegisterOp[]): string[] {
  const byKey = new Map<string, RegisterOp[]>()
  for (const o of ops) {
    let list = byKey.get(o.key)
    if (!list) byKey.set(o.key, list = [])
    list.push(o)
  }
  const bad: string[] = []
  for (const [key, list] of byKey) if (!linearizableRegister(list)) bad.push(key)
  return bad
}
