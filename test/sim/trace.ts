/**
 * The last K events of a run, kept cheaply (formatting happens only when a run fails), and the
 * one-line rendering of messages used in traces.
 */
import type { Message } from '../../src/consensus/raft/core/mod.ts'

/** Renders a message compactly, e.g. `n1→n2 append t3 prev=4/2 ents=[5..6] commit=4`. */
export function describeMessage(m: Message): string {
  const head = `${m.from}→${m.to} ${m.type} t${m.term}`
  switch (m.type) {
    case 'append': {
      const ents = m.entries.length === 0
        ? '[]'
        : `[${m.entries[0].index}..${m.entries[m.entries.length - 1].index}]`
      return `${head} prev=${m.index}/${m.logTerm} ents=${ents} commit=${m.commit}`
    }
    case 'appendResp':
      return m.reject
        ? `${head} REJECT ${m.index} hint=${m.rejectHint}/${m.logTerm}`
        : `${head} ok ${m.index}`
    case 'vote':
    case 'preVote':
      return `${head} last=${m.index}/${m.logTerm}${m.transfer ? ' transfer' : ''}`
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'REJECT' : 'grant'}`
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.ctx ? ` ctx=${m.ctx}` : ''}`
    case 'heartbeatResp':
      return `${head}${m.ctx ? ` ctx=${m.ctx}` : ''}`
    case 'snapshot':
      return `${head} snap=${m.snapshot.index}/${m.snapshot.term}`
    case 'readIndex':
      return `${head} ctx=${m.ctx}`
    case 'readIndexResp':
      return `${head} index=${m.index} ctx=${m.ctx}`
    case 'transferLeader':
      return `${head} to=${m.transferee}`
    default:
      return head
  }
}

type Line = [time: number, what: string | Message, detail?: string]

/** A fixed-size ring of trace lines. */
export class Trace {
  readonly #size: number
  #lines: Line[] = []
  #next = 0

  constructor(size: number) {
    this.#size = size
  }

  add(time: number, what: string | Message, detail?: string): void {
    if (this.#size === 0) return
    const line: Line = [time, what, detail]
    if (this.#lines.length < this.#size) this.#lines.push(line)
    else this.#lines[this.#next] = line
    this.#next = (this.#next + 1) % this.#size
  }

  lines(): string[] {
    const ordered = this.#lines.length < this.#size
      ? this.#lines
      : [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)]
    return ordered.map(([t, what, detail]) => {
      const text = typeof what === 'string' ? what : `deliver ${describeMessage(what)}`
      return `t=${String(t).padStart(6)} ${text}${detail ? ` ${detail}` : ''}`
    })
  }
}
