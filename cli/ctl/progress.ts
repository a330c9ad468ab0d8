/**
 * The progress bar of `ctl add` on a terminal: bytes sent of the total, the rate and the time
 * left, redrawn in place on stderr at most every `intervalMs`, and wiped when the add ends so
 * that only the outputs remain. Off a terminal ctl stays quiet (scripts read stdout only).
 *
 * The rate is the average since the start: the upload is paced by the cluster (blocks reach every
 * destination before the next ones are read), so its average is what the rest will take.
 *
 * @example
 * ```ts
 * const bar = progressBar({ total: 1 << 30, write: (s) => io.stderr(s), clock })
 * bar.update(sentSoFar) // from the body stream
 * await bar.done()
 * ```
 */
import type { Clock } from '../../src/util/clock.ts'

/** Binary units for the bar (a terminal user reads MiB/s, as ipfs's own progress bar shows). */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** `1536` → `1.5 KiB`: one decimal below 100 of a unit, none above. */
export function binaryBytes(n: number): string {
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${n} B` : `${v < 100 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`
}

/** `75` → `1m15s`, as Go prints a duration rounded to seconds. */
export function shortDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  if (h > 0) return `${h}h${m}m${r}s`
  if (m > 0) return `${m}m${r}s`
  return `${r}s`
}

/** What one frame of the bar shows. */
export interface ProgressState {
  sent: number
  /** Unknown for URLs (then no bar and no ETA, only bytes and rate). */
  total?: number
  elapsedMs: number
}

/**
 * One line of the bar, at most `width` columns:
 * `[=========>          ]  45% 460.8 MiB / 1.0 GiB  98.2 MiB/s  ETA 5s`.
 */
export function renderProgress(st: ProgressState, width = 80): string {
  const rate = st.elapsedMs > 0 ? st.sent / (st.elapsedMs / 1000) : 0
  const rateText = `${binaryBytes(Math.round(rate))}/s`
  if (st.total === undefined || st.total <= 0) {
    return `${binaryBytes(st.sent)}  ${rateText}`.slice(0, width)
  }
  const sent = Math.min(st.sent, st.total)
  const frac = sent / st.total
  const eta = rate > 0 ? `ETA ${shortDuration((st.total - sent) / rate)}` : 'ETA -'
  const tail = ` ${String(Math.floor(frac * 100)).padStart(3)}% ${binaryBytes(sent)} / ${
    binaryBytes(st.total)
  }  ${rateText}  ${eta}`
  const barWidth = Math.max(10, width - tail.length - 2)
  const filled = Math.floor(frac * barWidth)
  const bar = frac >= 1
    ? '='.repeat(barWidth)
    : '='.repeat(filled) + '>' + ' '.repeat(barWidth - filled - 1)
  return `[${bar}]${tail}`.slice(0, width)
}

/** Options of progressBar. */
export interface ProgressBarOptions {
  total?: number
  write: (s: string) => void | Promise<void>
  clock: Clock
  /** Redraws at most this often. Default 200 ms. */
  intervalMs?: number
  width?: number
}

/** A bar drawn in place with `\r`; `clear()` wipes it (before other output), `done()` too. */
export interface ProgressBar {
  update(sent: number): void
  clear(): Promise<void>
  done(): Promise<void>
}

/** Draws the bar on a terminal stream. */
export function progressBar(o: ProgressBarOptions): ProgressBar {
  const start = o.clock.now()
  const interval = o.intervalMs ?? 200
  const width = o.width ?? 80
  let last = -Infinity
  let drawn = 0
  let writing: Promise<void> = Promise.resolve()
  const draw = (sent: number) => {
    const line = renderProgress({ sent, total: o.total, elapsedMs: o.clock.now() - start }, width)
    // Pad over a longer previous frame; `\r` returns to its start.
    const frame = '\r' + line.padEnd(drawn)
    drawn = line.length
    writing = writing.then(() => o.write(frame)).catch(() => {})
  }
  return {
    update(sent) {
      const now = o.clock.now()
      if (now - last < interval && (o.total === undefined || sent < o.total)) return
      last = now
      draw(sent)
    },
    clear,
    done: clear,
  }
  async function clear() {
    if (drawn > 0) {
      const wipe = '\r' + ' '.repeat(drawn) + '\r'
      drawn = 0
      last = -Infinity
      writing = writing.then(() => o.write(wipe)).catch(() => {})
    }
    await writing
  }
}
