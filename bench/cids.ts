/**
 * Distinct, valid CIDs for the bench: CIDv1, raw codec, sha2-256 of a counter's decimal text —
 * the same counter always gives the same CID, so the two implementations get identical inputs.
 * Files are written as bytes in 1 MiB chunks; a million CIDs take ~4 s on 2 cores.
 *
 * @example
 * ```ts
 * benchCid(7) // 'bafkrei…'
 * await writeCidFile('/tmp/cids.txt', 0, 1000)             // one CID a line (wrk's input)
 * await writePinsFile('/tmp/pins.ndjson', 0, 1000)         // `state import` input
 * ```
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { encodePin, newPin, storedPin } from '../src/types/pin.ts'

const enc = new TextEncoder()
const latin1 = new TextDecoder('latin1')
const ALPHABET = enc.encode('abcdefghijklmnopqrstuvwxyz234567')
// CIDv1 (0x01), raw codec (0x55), sha2-256 multihash (0x12, 32 bytes).
const PREFIX = [0x01, 0x55, 0x12, 0x20]
/** Characters of a CID: 'b' + base32 of 36 bytes (288 bits → 58 characters). */
export const BENCH_CID_LENGTH = 59

/**
 * Writes the CID for counter `i` as ASCII into `out` at `at` (BENCH_CID_LENGTH bytes). Hand-rolled
 * RFC 4648 base32 (lower case, no padding) on bytes: the generic multiformats path takes ~12 s for
 * a million CIDs, this a fraction of that (sha2-256 itself is ~2 µs a CID).
 */
export function encodeBenchCid(i: number, out: Uint8Array, at: number): void {
  const bytes = new Uint8Array(36)
  bytes.set(PREFIX)
  bytes.set(createHash('sha256').update(String(i)).digest(), 4)
  out[at++] = 0x62 // 'b', the multibase prefix of base32
  let bits = 0
  let value = 0
  for (let k = 0; k < 36; k++) {
    value = ((value & 0xff) << 8) | bytes[k]
    bits += 8
    while (bits >= 5) {
      out[at++] = ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out[at++] = ALPHABET[(value << (5 - bits)) & 31]
}

/** The CID for counter `i` (CIDv1 raw sha2-256, multibase base32 — as go-cid prints it). */
export function benchCid(i: number): string {
  const out = new Uint8Array(BENCH_CID_LENGTH)
  encodeBenchCid(i, out, 0)
  return latin1.decode(out)
}

/** A fixed commit time, so that both implementations import byte-identical pins. */
const TIMESTAMP = '2024-01-01T00:00:00Z'

/**
 * The NDJSON line of the pin for counter 0, split around its CID: every bench pin is the same
 * recursive data pin (replication -1, i.e. everywhere, what a single peer gets by default; empty
 * allocations; the stored form of the reference) and differs only by CID.
 */
function pinTemplate(): [Uint8Array, Uint8Array] {
  const cid = benchCid(0)
  const pin = newPin(cid, { replication_factor_min: -1, replication_factor_max: -1 })
  pin.timestamp = TIMESTAMP
  const [before, after] = encodePin(storedPin(pin)).split(cid)
  return [enc.encode(before), enc.encode(after + '\n')]
}

/** Writes `count` CIDs (start…start+count-1) to `path`, each between `before` and `after`. */
async function writeCids(
  path: string,
  start: number,
  count: number,
  before: Uint8Array,
  after: Uint8Array,
): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true })
  try {
    const line = before.length + BENCH_CID_LENGTH + after.length
    const perChunk = Math.max(1, Math.floor((1 << 20) / line))
    const buf = new Uint8Array(perChunk * line)
    for (let i = start; i < start + count; i += perChunk) {
      const n = Math.min(perChunk, start + count - i)
      for (let k = 0; k < n; k++) {
        const at = k * line
        buf.set(before, at)
        encodeBenchCid(i + k, buf, at + before.length)
        buf.set(after, at + before.length + BENCH_CID_LENGTH)
      }
      await writeAll(f, buf.subarray(0, n * line))
    }
  } finally {
    f.close()
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0
  while (off < bytes.length) off += await f.write(bytes.subarray(off))
}

/** Writes `count` CIDs (counters start…start+count-1), one a line. */
export function writeCidFile(path: string, start: number, count: number): Promise<void> {
  return writeCids(path, start, count, new Uint8Array(), enc.encode('\n'))
}

/** Writes `count` pins (counters start…start+count-1) as `state import` NDJSON. */
export function writePinsFile(path: string, start: number, count: number): Promise<void> {
  const [before, after] = pinTemplate()
  return writeCids(path, start, count, before, after)
}

// Bump when the files' content changes: cached files of an older version are not reused.
const CACHE_VERSION = 'v1'

/** Input files, generated once and kept in a cache folder (they are deterministic). */
export async function inputFile(
  kind: 'cids' | 'pins',
  count: number,
  log: (m: string) => void,
): Promise<string> {
  const dir = join(Deno.env.get('TMPDIR') ?? '/tmp', 'ipfs-cluster-bench-cache')
  await Deno.mkdir(dir, { recursive: true })
  const path = join(dir, `${CACHE_VERSION}-${kind}-${count}.${kind === 'cids' ? 'txt' : 'ndjson'}`)
  if (await Deno.stat(path).then(() => true, () => false)) return path
  log(`generating ${count} ${kind === 'cids' ? 'CIDs' : 'pins'} → ${path}`)
  const tmp = `${path}.${Deno.pid}.tmp`
  await (kind === 'cids' ? writeCidFile(tmp, 0, count) : writePinsFile(tmp, 0, count))
  await Deno.rename(tmp, path)
  return path
}
