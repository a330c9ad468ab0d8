/**
 * The text output of ipfs-cluster-ctl 1.1.6, formatter by formatter (cmd/ipfs-cluster-ctl/
 * formatters.go). Each function returns the exact text, trailing newline included. Inputs are the
 * REST client's decoded objects (Go zero values filled in), so `null` lists print as Go's nil.
 *
 * Every string that comes from the server goes through `esc` (control characters escaped, see
 * src/util/escape.ts): the reference prints them raw, so a pin named `x\r\nX-Injected: 1` forged
 * an output line. Strings without control characters print exactly as the reference prints them.
 *
 * @example
 * ```ts
 * formatVersion({ version: '1.1.6' }) // '1.1.6\n'
 * formatPin(pin) // 'Qm… | name | PIN | Repl. Factor: 2--3 | Allocations: [a b] | Recursive | …\n'
 * ```
 */
import type {
  AddedOutput,
  BandwidthByProtocol,
  GlobalRepoGC,
  Version,
} from '../../src/api/rest/client.ts'
import { goTime, isZeroTime } from '../../src/api/rest/client_decode.ts'
import { exactInt } from '../../src/api/rest/client_json.ts'
import type { Alert, GlobalPinInfo, ID, Metric, Pin } from '../../src/types/mod.ts'
import { escapeControl as esc } from '../../src/util/escape.ts'
import { goFixed, humanBytes, relTime } from './humanize.ts'

/** Go's sort.Strings order (byte order, not locale order). */
export function goSort(list: readonly string[]): string[] {
  return [...list].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/** `%-<w>s`: pads on the right to `w` runes. */
export function padRight(s: string, w: number): string {
  const n = [...s].length
  return n >= w ? s : s + ' '.repeat(w - n)
}

/** `%<w>s`: pads on the left to `w` runes. */
export function padLeft(s: string, w: number): string {
  const n = [...s].length
  return n >= w ? s : ' '.repeat(w - n) + s
}

/** How Go prints an api.Cid: an undefined CID prints as "b" (empty base32). */
function cidText(c: string | null | undefined): string {
  return c ? esc(c) : 'b'
}

/** An ID block (`id`, `peers ls`). */
export function formatID(id: ID): string {
  if (id.error) return `${esc(id.id)} | ERROR: ${esc(id.error)}\n`
  let s = `${esc(id.id)} | ${esc(id.peername)} | Sees ${
    (id.cluster_peers?.length ?? 0) - 1
  } other peers\n`
  s += '  > Addresses:\n'
  for (const a of goSort(id.addresses ?? [])) s += `    - ${esc(a)}\n`
  if (id.ipfs?.error) return s + `  > IPFS ERROR: ${esc(id.ipfs.error)}\n`
  s += `  > IPFS: ${esc(id.ipfs?.id ?? '')}\n`
  for (const a of goSort(id.ipfs?.addresses ?? [])) s += `    - ${esc(a)}\n`
  return s
}

/** A cluster-wide status (`status`, `recover`, `pin add`). */
export function formatGlobalPinInfo(g: GlobalPinInfo): string {
  let s = cidText(g.cid)
  if (g.name) s += ` | ${esc(g.name)}`
  s += ':\n'
  const peerMap = g.peer_map ?? {}
  for (const k of goSort(Object.keys(peerMap))) {
    const v = peerMap[k]
    s += `    > ${padRight(esc(v.peername || k), 20)} : ${esc(String(v.status).toUpperCase())}`
    if (v.error) s += `: ${esc(v.error)}`
    s += ` | ${goTime(v.timestamp)} | Attempts: ${v.attempt_count} | Priority: ${v.priority_pin}\n`
  }
  return s
}

/** Go's `Format("2006-01-02 15:04:05")` of an RFC3339 time, in the time's own zone. */
function wallClock(t: string): string {
  return goTime(t).slice(0, 19).replace('T', ' ')
}

/** A pin line (`pin ls`, `pin add --no-status`). */
export function formatPin(p: Pin): string {
  let t = esc(String(p.type).toUpperCase())
  if (p.mode === 'direct') t += '-DIRECT'
  let s = `${cidText(p.cid)} | ${esc(p.name)} | ${t} | `
  if (p.replication_factor_min === -1 && p.replication_factor_max === -1) {
    s += 'Repl. Factor: -1 | Allocations: [everywhere]'
  } else {
    s += `Repl. Factor: ${p.replication_factor_min}--${p.replication_factor_max}` +
      ` | Allocations: [${esc(goSort(p.allocations ?? []).join(' '))}]`
  }
  const rec = p.max_depth === 0
    ? 'Direct'
    : p.max_depth === -1
    ? 'Recursive'
    : `Recursive-${p.max_depth}`
  s += ` | ${rec}`
  s += ` | Metadata: ${Object.keys(p.metadata ?? {}).length === 0 ? 'no' : 'yes'}`
  s += ` | Exp: ${isZeroTime(p.expire_at) ? '∞' : wallClock(p.expire_at)}`
  s += ` | Added: ${isZeroTime(p.timestamp) ? 'unknown' : wallClock(p.timestamp)}\n`
  return s
}

/** An `add` output line; `quiet` prints the CID only. */
export function formatAddedOutput(o: AddedOutput, quiet = false): string {
  return quiet ? `${cidText(o.cid)}\n` : `added ${cidText(o.cid)} ${esc(o.name)}\n`
}

/** `version`. */
export function formatVersion(v: Version): string {
  return `${esc(v.version)}\n`
}

/** An API error block (printed on stdout). */
export function formatError(code: number, message: string): string {
  return `An error occurred:\n  Code: ${code}\n  Message: ${esc(message)}\n`
}

/** Unix nanoseconds (exact digits when known) as epoch milliseconds. */
function nsToMs(obj: unknown, key: string, value: number): number {
  const digits = exactInt(obj, key)
  if (digits !== undefined) return Number(BigInt(digits) / 1_000_000n)
  return value / 1e6
}

/** A metric line (`health metrics <name>`); `now` in epoch ms. */
export function formatMetric(m: Metric, now: number): string {
  let v = m.value
  if (m.name === 'freespace' && m.weight > 0) v = humanBytes(m.weight)
  const expires = relTime(nsToMs(m, 'expire', m.expire), now)
  return `${esc(m.peer)} | ${esc(m.name)}: ${esc(v)} | Expires in: ${expires}\n`
}

/** An alert line (`health alerts`); `now` in epoch ms. */
export function formatAlert(a: Alert, now: number): string {
  const expired = relTime(nsToMs(a, 'expire', a.expire), now)
  const triggered = relTime(Date.parse(goTime(a.triggered_at)), now)
  return `${esc(a.peer)}: ${esc(a.name)}. Expired at: ${expired}. Triggered at: ${triggered}\n`
}

/** `health bandwidth`: one line per protocol, sorted. */
export function formatBandwidth(bw: BandwidthByProtocol | null): string {
  let s = ''
  const map = bw ?? {}
  for (const k of goSort(Object.keys(map))) {
    const st = map[k]
    s += `${padLeft(esc(k), 25)}: In: ${padLeft(humanBytes(st.total_in), 7)}. Out: ${
      padLeft(humanBytes(st.total_out), 7)
    }. RateIn: ${goFixed(st.rate_in, 2)}B/s. RateOut: ${goFixed(st.rate_out, 2)}B/s\n`
  }
  return s
}

/** `ipfs gc`: per peer (sorted by ID), the collected CIDs. */
export function formatRepoGC(gc: GlobalRepoGC): string {
  let s = ''
  const map = gc.peer_map ?? {}
  for (const id of goSort(Object.keys(map))) {
    const item = map[id]
    const name = esc(item.peername || id)
    s += item.error
      ? `${padRight(name, 15)} | ERROR: ${esc(item.error)}\n`
      : `${padRight(name, 15)}\n`
    s += '  > CIDs:\n'
    for (const k of item.keys ?? []) {
      s += k.error ? `    - ERROR: ${esc(k.error)}\n` : `    - ${cidText(k.key)}\n`
    }
  }
  return s
}
