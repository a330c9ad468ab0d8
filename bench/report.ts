/**
 * The bench's output: one row per figure with our value, IPFS Cluster 1.1.6's value, their ratio
 * (ours ÷ Go), the target and PASS/FAIL for ours, as a plain-text table that greps well; the same
 * rows as JSON for tools.
 *
 * @example
 * ```ts
 * const row: Row = { measure: 'ingest (pins/s)', ours: 6100, go: 4200, target: atLeast(5000) }
 * console.log(renderTable([row], { withGo: true }))
 * ```
 */

/** A target a figure of ours must meet. */
export interface Target {
  /** `>= 5000`, `< 2 s`… */
  text: string
  met(value: number): boolean
}

/** Target: value ≥ n. */
export function atLeast(n: number, unit = ''): Target {
  return { text: `>= ${bound(n)}${unit}`, met: (v) => v >= n }
}

/** Target: value < n. */
export function below(n: number, unit = ''): Target {
  return { text: `< ${bound(n)}${unit}`, met: (v) => v < n }
}

/** Target: value ≤ n. */
export function atMost(n: number, unit = ''): Target {
  return { text: `<= ${bound(n)}${unit}`, met: (v) => v <= n }
}

function bound(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

/** One figure of both implementations. */
export interface Row {
  measure: string
  ours?: number
  go?: number
  /** Decimals to print (default: 0 for ≥ 100, else 2). */
  digits?: number
  target?: Target
}

/** Verdict of a row: PASS/FAIL against the target (ours), `-` without a target. */
export function verdict(row: Row): 'PASS' | 'FAIL' | '-' {
  if (!row.target) return '-'
  if (row.ours === undefined || !Number.isFinite(row.ours)) return 'FAIL'
  return row.target.met(row.ours) ? 'PASS' : 'FAIL'
}

/** ours ÷ Go, when both exist. */
export function ratio(row: Row): number | undefined {
  if (row.ours === undefined || row.go === undefined || row.go === 0) return undefined
  return row.ours / row.go
}

function fmt(n: number | undefined, digits?: number): string {
  if (n === undefined || !Number.isFinite(n)) return '-'
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : 2)
  return n.toFixed(d)
}

/** The table: header, one line per row, columns separated by ` | `. */
export function renderTable(rows: Row[], opts: { withGo: boolean }): string {
  const header = ['measure', 'ours', 'IPFS Cluster 1.1.6', 'ours/Go', 'target', 'result']
  const lines = rows.map((r) => [
    r.measure,
    fmt(r.ours, r.digits),
    opts.withGo ? fmt(r.go, r.digits) : '-',
    opts.withGo ? fmt(ratio(r), 2) : '-',
    r.target?.text ?? '-',
    verdict(r),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const render = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')
  return [render(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...lines.map(render)]
    .join('\n')
}

/**
 * Reads the rows of `renderTable`'s output back, by measure: the six trimmed cells of each row
 * (the header and the rule left out). The smoke tests check the printed table with it.
 */
export function parseTableRows(text: string): Map<string, string[]> {
  return new Map(
    text.split('\n').filter((l) => l.split(' | ').length === 6 && !l.startsWith('measure '))
      .map((l) => {
        const cells = l.split(' | ').map((c) => c.trim())
        return [cells[0], cells] as const
      }),
  )
}

/** The closing line: `RESULT: <n> PASS, <n> FAIL`. */
export function summaryLine(rows: Row[], extraLines: string[] = []): string {
  // Extra lines (the Raft figures) carry their verdict as their last word.
  const v = [...rows.map(verdict), ...extraLines.map((l) => l.trim().split(/\s+/).at(-1) ?? '')]
  return `RESULT: ${v.filter((x) => x === 'PASS').length} PASS, ${
    v.filter((x) => x === 'FAIL').length
  } FAIL`
}

/** Rows as plain JSON (targets as text, verdict and ratio included). */
export function rowsToJSON(rows: Row[]): unknown[] {
  return rows.map((r) => ({
    measure: r.measure,
    ours: r.ours ?? null,
    go: r.go ?? null,
    ratio: ratio(r) ?? null,
    target: r.target?.text ?? null,
    result: verdict(r),
  }))
}
