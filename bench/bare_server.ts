/**
 * The bare-server baseline: a `Deno.serve` that answers every request with an empty 200. The bench
 * drives it with the same load generator and script as the peers, in the same run, so the ingest
 * figures can be read against what the machine and the client allow at all (platform.md §6).
 *
 * @example
 * ```sh
 * deno run -A bench/bare_server.ts --port 0
 * # prints: bare server listening on http://127.0.0.1:40123
 * ```
 */
import { parseArgs } from 'node:util'

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { port: { type: 'string', default: '0' } },
  })
  const ac = new AbortController()
  let port = 0
  const server = Deno.serve({
    hostname: '127.0.0.1',
    port: Number(values.port),
    signal: ac.signal,
    onListen: (addr) => {
      port = addr.port
    },
  }, () => new Response(null, { status: 200 }))
  for (const sig of ['SIGTERM', 'SIGINT'] as const) Deno.addSignalListener(sig, () => ac.abort())
  console.log(`bare server listening on http://127.0.0.1:${port}`)
  await server.finished
}

if (import.meta.main) await main()
