/**
 * A micro-bench of the REST layer alone (the cluster behind it is an instant in-memory double):
 *
 * - ingest: `POST /pins/<cid>` with distinct CIDs from 64 concurrent connections (wrk + Lua), and
 *   the bare Deno.serve figure from the same machine beside it;
 * - listing: `GET /allocations` over N generated pins (never all in memory), read by curl, with
 *   the server's RSS sampled during the stream.
 *
 * Needs `wrk` (apt-get install wrk) for ingest and `curl` for listing. Local traffic only.
 *
 *   deno run -A test/api/rest/bench_server.ts [--pins 1000000] [--seconds 5]
 */
import { parseArgs } from 'node:util'
import process from 'node:process'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { restApi } from '../../../src/api/rest/server.ts'
import { encodePin, newPin } from '../../../src/types/mod.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { restConfig } from './helpers.ts'

const args = parseArgs({
  args: Deno.args,
  options: {
    pins: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '5' },
  },
})
const N = Number(args.values.pins)
const SECONDS = Number(args.values.seconds)
const enc = new TextEncoder()

async function cidList(n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    out.push(CID.createV1(0x55, await sha256.digest(enc.encode(`bench-${i}`))).toString())
  }
  return out
}

/** CPU time (user + system) this process has used, in ms. */
function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function mb(n: number) {
  return `${(n / 1024 / 1024).toFixed(0)} MiB`
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: 'piped', stderr: 'piped' }).output()
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`)
  return new TextDecoder().decode(out.stdout)
}

const cluster = fakeCluster({ recordCalls: false })
// Listing source: N pins generated on the fly, as the state hands them out (NDJSON chunks).
const template = newPin('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', {
  name: 'bench',
})
template.allocations = [FAKE_PEER_ID]
template.timestamp = '2026-01-01T00:00:00Z'
const templateText = encodePin(template)
cluster.pinsNDJSON = async function* (signal) {
  // Distinct CIDs: vary 6 base32 characters near the end of the template's CID.
  const [head, tail] = templateText.split(template.cid)
  const c = template.cid
  let chunk = ''
  for (let i = 0; i < N; i++) {
    if ((i & 1023) === 0) signal?.throwIfAborted()
    const code = i.toString(32).padStart(6, 'a').replace(/[0-9]/g, (d) => 'klmnopqrst'[Number(d)])
    chunk += head + c.slice(0, -7) + code + c.slice(-1) + tail + '\n'
    if (chunk.length >= 64 * 1024) {
      yield enc.encode(chunk)
      chunk = ''
    }
  }
  if (chunk) yield enc.encode(chunk)
}

const api = restApi(restConfig(), { cluster, configDir: Deno.cwd(), peerId: FAKE_PEER_ID })
await api.start()
const [addr] = api.addresses()
const port = addr.split('/')[4]
const base = `http://127.0.0.1:${port}`
console.log(`REST API at ${addr}; cores: ${navigator.hardwareConcurrency}`)

// --- listing ----------------------------------------------------------------
const rss0 = Deno.memoryUsage().rss
let peak = rss0
const sampler = setInterval(() => {
  peak = Math.max(peak, Deno.memoryUsage().rss)
}, 50)
const t0 = performance.now()
const listCpu0 = cpuMs()
const curlOut = await run('curl', [
  '-s',
  '-o',
  '/dev/null',
  '-w',
  '%{http_code} %{size_download}',
  `${base}/allocations`,
])
const secs = (performance.now() - t0) / 1000
clearInterval(sampler)
const [code, size] = curlOut.split(' ')
console.log(
  `GET /allocations, ${N} pins: HTTP ${code}, ${mb(Number(size))} in ${secs.toFixed(2)}s = ` +
    `${Math.round(N / secs)} pins/s, server CPU ${(cpuMs() - listCpu0).toFixed(0)} ms; ` +
    `server RSS ${mb(rss0)} before, peak ${mb(peak)} (+${mb(peak - rss0)})`,
)

// --- ingest -----------------------------------------------------------------
const dir = await Deno.makeTempDir()
try {
  const cids = await cidList(400_000)
  await Deno.writeTextFile(`${dir}/cids.txt`, cids.join('\n') + '\n')
  const lua = `
local cids = {}
for line in io.lines("${dir}/cids.txt") do cids[#cids + 1] = line end
local threads = {}
local counter = 0
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
function init(args)
  i = offset * 200000
end
request = function()
  i = i + 1
  return wrk.format("POST", "/pins/" .. cids[(i % #cids) + 1] .. "?name=bench")
end
`
  await Deno.writeTextFile(`${dir}/pins.lua`, lua)
  const ingestCpu0 = cpuMs()
  const wrkOut = await run('wrk', ['-t1', '-c64', `-d${SECONDS}s`, '-s', `${dir}/pins.lua`, base])
  const ingestCpu = cpuMs() - ingestCpu0
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(wrkOut)?.[1]
  const requests = Number(/(\d+) requests in/.exec(wrkOut)?.[1])
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(wrkOut)?.[1] ?? '0'
  console.log(
    `ingest POST /pins/<cid>, 64 connections, ${SECONDS}s: ${rps} req/s (non-2xx: ${non2xx}), ` +
      `server CPU ${
        (ingestCpu * 1000 / requests).toFixed(1)
      } µs/request; pinset ${cluster.pinset.size}`,
  )

  // The same load against a bare Deno.serve answering a fixed JSON body, for scale.
  const body = templateText + '\n'
  const bare = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen() {} },
    () => new Response(body, { headers: { 'content-type': 'application/json' } }),
  )
  const bareOut = await run('wrk', [
    '-t1',
    '-c64',
    `-d${SECONDS}s`,
    '-s',
    `${dir}/pins.lua`,
    `http://127.0.0.1:${bare.addr.port}`,
  ])
  await bare.shutdown()
  console.log(`bare Deno.serve, same load: ${/Requests\/sec:\s+([\d.]+)/.exec(bareOut)?.[1]} req/s`)
} finally {
  await Deno.remove(dir, { recursive: true })
}

await api.stop()
