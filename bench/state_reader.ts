/**
 * `deno run -A bench/state_reader.ts`: how fast `state import` reads its input, the reader alone
 * (`readPinsNDJSON`: JSON values → validated pins, no state writes), over 1,000,000 bench pins in
 * three layouts of the same pins: NDJSON as `state export` writes it, each pin pretty-printed
 * (2-space indent), and all pins on one line with nothing between them. Prints wall and CPU
 * seconds, pins/s and the RSS after each, against the target of a few seconds for a million pins.
 *
 * `stateReaderBench(pinsFile, log)` gives the lines to `bench/main.ts`.
 *
 * @example
 * ```sh
 * deno run -A bench/state_reader.ts               # 1,000,000 pins (~1 min with the files)
 * deno run -A bench/state_reader.ts --pins 100000
 * ```
 */
import { cpuUsage } from 'node:process'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readPinsNDJSON } from '../src/state/ndjson.ts'
import { writePinsFile } from './cids.ts'

/** Seconds of CPU a million NDJSON pins may take ("a few seconds", issue 6). */
const TARGET_CPU_S_PER_MILLION = 5

/** Rewrites an NDJSON file line by line (never whole) into another layout. */
async function relayout(from: string, to: string, line: (l: string) => string): Promise<void> {
  const out = await Deno.open(to, { write: true, create: true, truncate: true })
  try {
    const enc = new TextEncoder()
    let rest = ''
    let chunk = ''
    for await (
      const text of (await Deno.open(from)).readable.pipeThrough(new TextDecoderStream())
    ) {
      const lines = (rest + text).split('\n')
      rest = lines.pop()!
      for (const l of lines) if (l) chunk += line(l)
      if (chunk.length > 1 << 20) {
        await out.write(enc.encode(chunk))
        chunk = ''
      }
    }
    if (rest) chunk += line(rest)
    await out.write(enc.encode(chunk))
  } finally {
    out.close()
  }
}

/** Reads a file with the state reader; wall and CPU seconds and the pins read. */
async function measure(file: string): Promise<{ pins: number; wall: number; cpu: number }> {
  const c0 = cpuUsage()
  const t0 = performance.now()
  let pins = 0
  using f = await Deno.open(file)
  for await (const _ of readPinsNDJSON(f.readable)) pins++
  const c = cpuUsage(c0)
  return { pins, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 }
}

/** Measures the three layouts of the pins in `pinsFile` (NDJSON); one line per layout. */
export async function stateReaderBench(
  pinsFile: string,
  log: (s: string) => void = () => {},
): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: 'bench-reader-' })
  try {
    const pretty = join(dir, 'pretty.json')
    const concat = join(dir, 'concat.json')
    log('state reader: writing the pretty-printed and one-line layouts')
    await relayout(pinsFile, pretty, (l) => JSON.stringify(JSON.parse(l), null, 2) + '\n')
    await relayout(pinsFile, concat, (l) => l)
    const lines: string[] = []
    for (
      const [name, file] of [['NDJSON', pinsFile], ['pretty-printed', pretty], ['one line', concat]]
    ) {
      log(`state reader: ${name}`)
      const r = await measure(file)
      const perMillion = r.cpu / r.pins * 1e6
      const verdict = name === 'NDJSON'
        ? ` (target < ${TARGET_CPU_S_PER_MILLION} s CPU per million: ${
          perMillion < TARGET_CPU_S_PER_MILLION ? 'PASS' : 'FAIL'
        })`
        : ''
      lines.push(
        `state reader, ${name}: ${r.pins} pins in ${r.wall.toFixed(2)} s (${
          r.cpu.toFixed(2)
        } s CPU), ${Math.round(r.pins / r.wall)} pins/s, RSS ${
          Math.round(Deno.memoryUsage().rss / 2 ** 20)
        } MiB${verdict}`,
      )
    }
    return lines
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { pins: { type: 'string' } } })
  const pins = Number(values.pins ?? 1_000_000)
  const dir = await Deno.makeTempDir({ prefix: 'bench-reader-' })
  try {
    const file = join(dir, 'pins.ndjson')
    console.error(`writing ${pins} pins`)
    await writePinsFile(file, 0, pins)
    for (const l of await stateReaderBench(file, (s) => console.error(s))) console.log(l)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
}
