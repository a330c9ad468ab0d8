/**
 * The bench's IPFS side: the project's Kubo double (test/support/kubo_double.ts) in `instant` mode,
 * run as its own process, with two things a bench of a million pins needs:
 *
 * - `--pinned FILE` fills its pinset from a file of CIDs (one a line) before it listens, so that
 *   after a `state import` the IPFS side already holds every pin — the steady state of a peer
 *   that restarts — without a million RPC calls;
 * - the full `pin/ls?stream=true` listing is streamed lazily from the pinset (through the double's
 *   `override` knob). The double builds that answer as one string, which blocks its event loop
 *   for ~0.6 s at a million pins, and every other call a peer makes meanwhile (`id`…) would wait:
 *   that would time the double, not the peer. A real Kubo streams this listing;
 * - `GET /bench/pins` answers how many pins it holds (bench/catchup.ts waits on it).
 *
 * @example
 * ```sh
 * deno run -A bench/ipfs_double.ts --pinned /tmp/cids.txt
 * # prints: /ip4/127.0.0.1/tcp/40123 (its node_multiaddress), then serves until SIGTERM
 * ```
 */
import { parseArgs } from 'node:util'
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import {
  kuboDoubleHandler,
  type KuboDoubleState,
  newDoubleState,
} from '../test/support/kubo_double.ts'

/** The double's pinset key for a CID: its multihash in base32 (as the double keys its map). */
function key(cid: CID): string {
  return base32.baseEncode(cid.multihash.bytes)
}

/** Pins every CID of `file` in `state`; returns how many. */
export async function seedPins(state: KuboDoubleState, file: string): Promise<number> {
  const dec = new TextDecoder()
  let rest = ''
  let n = 0
  const add = (line: string) => {
    const s = line.trim()
    if (!s) return
    const c = CID.parse(s)
    state.pins.set(key(c), { cid: c.toString(), type: 'recursive' })
    n++
  }
  const f = await Deno.open(file)
  for await (const chunk of f.readable) {
    const lines = (rest + dec.decode(chunk, { stream: true })).split('\n')
    rest = lines.pop()!
    for (const l of lines) add(l)
  }
  add(rest)
  return n
}

/**
 * A lazily streamed full `pin/ls` (no `arg`), NDJSON `{"Cid","Type"}` as Kubo sends it; undefined
 * for every other call, which the double answers itself.
 */
export function streamingPinLs(state: KuboDoubleState) {
  return ({ endpoint, params }: { endpoint: string; params: URLSearchParams }) => {
    if (endpoint !== 'pin/ls' || params.has('arg')) return undefined
    if (params.get('stream') !== 'true' && params.get('s') !== 'true') return undefined
    const type = params.get('type') ?? 'all'
    if (!['all', 'recursive', 'direct', 'indirect'].includes(type)) return undefined
    const it = state.pins.values()
    const enc = new TextEncoder()
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(ctl) {
          let chunk = ''
          for (let i = 0; i < 2048; i++) {
            const r = it.next()
            if (r.done) {
              if (chunk) ctl.enqueue(enc.encode(chunk))
              ctl.close()
              return
            }
            if (type !== 'all' && r.value.type !== type) continue
            chunk += `{"Cid":"${r.value.cid}","Type":"${r.value.type}"}\n`
          }
          ctl.enqueue(enc.encode(chunk))
        },
      }),
      { headers: { 'content-type': 'application/json', 'x-chunked-output': '1' } },
    )
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: { port: { type: 'string', default: '0' }, pinned: { type: 'string' } },
  })
  const state = newDoubleState()
  if (values.pinned) await seedPins(state, values.pinned)
  state.override = streamingPinLs(state)
  const ac = new AbortController()
  const kubo = kuboDoubleHandler(state, { instant: true, closing: ac.signal })
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: Number(values.port), signal: ac.signal, onListen() {} },
    // GET /bench/pins: how many pins the double holds (the catch-up measure polls it).
    (req) =>
      new URL(req.url).pathname === '/bench/pins'
        ? new Response(String(state.pins.size))
        : kubo(req),
  )
  for (const sig of ['SIGTERM', 'SIGINT'] as const) Deno.addSignalListener(sig, () => ac.abort())
  console.log(`/ip4/127.0.0.1/tcp/${server.addr.port}`)
  await server.finished
}

if (import.meta.main) await main()
