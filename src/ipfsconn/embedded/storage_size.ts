/**
 * Byte sizes written the way Kubo's `Datastore.StorageMax` is ("10GB", "512MiB", "1.5 TB"),
 * parsed like go-humanize's ParseBytes: SI units are powers of 1000, IEC units (KiB…) powers of
 * 1024, the unit is case-insensitive and may be shortened to its first letter ("10G" = 10 GB).
 *
 * @example
 * ```ts
 * parseStorageSize('10GB') // 10_000_000_000
 * parseStorageSize('1KiB') // 1024
 * ```
 */

const UNITS: Readonly<Record<string, number>> = (() => {
  const out: Record<string, number> = { '': 1, b: 1 }
  'kmgtpe'.split('').forEach((p, i) => {
    const si = 1000 ** (i + 1)
    const iec = 1024 ** (i + 1)
    out[p] = si
    out[p + 'b'] = si
    out[p + 'i'] = iec
    out[p + 'ib'] = iec
  })
  return out
})()

/** Parses a size; throws an Error naming the accepted forms on bad input. */
export function parseStorageSize(s: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$/.exec(s)
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined) {
    throw new Error(
      `invalid size ${JSON.stringify(s)} (a number with an optional unit: B, KB, MB, GB, TB, ` +
        `PB, EB or KiB, MiB, GiB, TiB, PiB, EiB)`,
    )
  }
  return Math.floor(parseFloat(m[1]) * unit)
}
