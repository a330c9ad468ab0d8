/**
 * The RPC wire between two cluster hosts on 127.0.0.1 (TCP + Noise + Yamux + pnet): unary
 * round-trips a second with 1 and 64 calls in flight, PinInfo-shaped items a second through a
 * streamed call (`PinTracker.StatusAll`), and MiB a second of 256 KiB blocks through an upload
 * (`IPFSConnector.BlockStream`, what an add sends to each destination). Both hosts in this process by default; `--processes`
 * puts the callee in a second process (this file with `--serve`).
 *
 * @example
 * ```sh
 * deno run -A bench/rpc.ts                         # both hosts here
 * deno run -A bench/rpc.ts --processes             # callee in its own process
 * deno run -A bench/rpc.ts --seconds 2 --items 100000 --mib 512
 * ```
 */
import '../src/deno_shim.ts'
import { parseArgs } from 'node:util'
import { cpuUsage } from 'node:process'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { startHost } from '../src/net/host.ts'
import type { RpcClient, RpcHandlers } from '../src/rpc/methods.ts'
import { rpcWire } from '../src/rpc/wire.ts'
import { handlersWith, pinInfo, rpcPeers, SECRET, stopAll } from '../test/rpc/hosts.ts'

/** The callee's methods: a version, a status stream of `n` items, a sink for blocks. */
const handlers: Partial<RpcHandlers> = {
  'Cluster.Version': () => Promise.resolve('1.1.6'),
  'IPFSConnector.BlockStream': async (_args, blocks) => {
    for await (const _ of blocks) { /* stored nowhere: the wire is measured */ }
  },
  'PinTracker.StatusAll': async function* ([n]) {
    for (let i = 0; i < n; i++) yield pinInfo(i)
  },
}

/** Operations a second, and this process's CPU microseconds per operation (user + system). */
interface Rate {
  perS: number
  cpuUs: number
}

async function timed(run: () => Promise<number>): Promise<Rate> {
  const cpu0 = cpuUsage()
  const t0 = performance.now()
  const n = await run()
  const cpu = cpuUsage(cpu0)
  return { perS: n / ((performance.now() - t0) / 1000), cpuUs: (cpu.user + cpu.system) / n }
}

function unaryRate(
  client: RpcClient,
  peer: string,
  concurrency: number,
  seconds: number,
): Promise<Rate> {
  return timed(async () => {
    const end = performance.now() + seconds * 1000
    let n = 0
    const worker = async () => {
      while (performance.now() < end) {
        await client.call(peer, 'Cluster.Version', [])
        n++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return n
  })
}

/** The stream's rate, and this process's RSS before it and at its peak (MiB). */
async function streamRate(
  client: RpcClient,
  peer: string,
  items: number,
): Promise<Rate & { rssBefore: number; rssPeak: number }> {
  const rss = () => Deno.memoryUsage().rss / 2 ** 20
  const rssBefore = rss()
  let rssPeak = rssBefore
  const t = setInterval(() => rssPeak = Math.max(rssPeak, rss()), 100)
  try {
    const rate = await timed(async () => {
      let n = 0
      for await (const _ of client.stream(peer, 'PinTracker.StatusAll', [items])) n++
      if (n !== items) throw new Error(`got ${n} of ${items} items`)
      return n
    })
    return { ...rate, rssBefore, rssPeak: Math.max(rssPeak, rss()) }
  } finally {
    clearInterval(t)
  }
}

/** MiB a second of `mib` MiB of distinct 256 KiB blocks (a UnixFS leaf's size) uploaded. */
function uploadRate(client: RpcClient, peer: string, mib: number): Promise<Rate> {
  return timed(async () => {
    const bytes = crypto.getRandomValues(new Uint8Array(65536))
    const leaf = new Uint8Array(262158)
    for (let i = 0; i < 4; i++) leaf.set(bytes, i * 65536)
    async function* blocks() {
      for (let i = 0; i < mib * 4; i++) yield { cid: `leaf-${i}`, bytes: leaf }
    }
    await client.upload(peer, 'IPFSConnector.BlockStream', [], blocks())
    return mib
  })
}

async function measure(
  client: RpcClient,
  peer: string,
  seconds: number,
  items: number,
  mib: number,
) {
  await unaryRate(client, peer, 8, 0.5) // warm-up: streams opened, code compiled
  await streamRate(client, peer, Math.min(items, 20_000))
  await uploadRate(client, peer, 16)
  const c1 = await unaryRate(client, peer, 1, seconds)
  const c64 = await unaryRate(client, peer, 64, seconds)
  const stream = await streamRate(client, peer, items)
  const upload = await uploadRate(client, peer, mib)
  return { c1, c64, stream, upload }
}

/** The callee of `--processes`: prints its address, serves until stdin closes. */
async function serve(): Promise<void> {
  const host = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: SECRET,
  })
  const rpc = await rpcWire({
    libp2p: host.libp2p,
    handlers: handlersWith(handlers),
    isTrusted: () => true,
  })
  console.log(host.addresses()[0])
  for await (const _ of Deno.stdin.readable) { /* until the parent closes it */ }
  await rpc.stop()
  await host.stop()
}

async function inOneProcess(seconds: number, items: number, mib: number) {
  const [a, b] = await rpcPeers(2, () => handlers)
  try {
    return await measure(a.rpc.client, b.id, seconds, items, mib)
  } finally {
    await stopAll([a, b])
  }
}

async function inTwoProcesses(seconds: number, items: number, mib: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ['run', '-A', new URL(import.meta.url).pathname, '--serve'],
    stdin: 'piped',
    stdout: 'piped',
    stderr: 'inherit',
  }).spawn()
  const writer = child.stdin.getWriter()
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
    let out = ''
    while (!out.includes('\n')) {
      const r = await reader.read()
      if (r.done) throw new Error('the callee process ended before printing its address')
      out += r.value
    }
    reader.releaseLock()
    const addr = multiaddr(out.trim())
    const host = await startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      secret: SECRET,
    })
    const peer = addr.getComponents().find((c) => c.name === 'p2p')!.value!
    await host.libp2p.dial(addr)
    const rpc = await rpcWire({
      libp2p: host.libp2p,
      handlers: handlersWith({}),
      isTrusted: () => true,
    })
    try {
      return await measure(rpc.client, peer, seconds, items, mib)
    } finally {
      await rpc.stop()
      await host.stop()
    }
  } finally {
    await writer.close()
    await child.status
  }
}

/** Runs the bench with `args` (see the module comment); prints the figures. */
export async function rpcMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      serve: { type: 'boolean', default: false },
      processes: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '3' },
      items: { type: 'string', default: '200000' },
      mib: { type: 'string', default: '256' },
    },
  })
  if (values.serve) return await serve()
  const seconds = Number(values.seconds)
  const items = Number(values.items)
  const mib = Number(values.mib)
  const where = values.processes ? 'two processes' : 'one process'
  const r = values.processes
    ? await inTwoProcesses(seconds, items, mib)
    : await inOneProcess(seconds, items, mib)
  const fmt = (x: Rate) =>
    `${Math.round(x.perS).toLocaleString('en-US')}/s (${x.cpuUs.toFixed(1)} µs CPU each${
      values.processes ? ', caller only' : ''
    })`
  console.log(`rpc wire, ${where}, 127.0.0.1 (TCP + Noise + Yamux + pnet):`)
  console.log(`  unary round-trips, 1 in flight:   ${fmt(r.c1)}`)
  console.log(`  unary round-trips, 64 in flight:  ${fmt(r.c64)}`)
  console.log(`  streamed PinInfo items (${items.toLocaleString('en-US')}): ${fmt(r.stream)}`)
  console.log(
    `  uploaded 256 KiB blocks (${mib} MiB): ${r.upload.perS.toFixed(1)} MiB/s (${
      (r.upload.cpuUs / 1000).toFixed(1)
    } ms CPU a MiB${values.processes ? ', caller only' : ''})`,
  )
  console.log(
    `  RSS while streaming: ${Math.round(r.stream.rssBefore)} MiB before, ${
      Math.round(r.stream.rssPeak)
    } MiB at the peak${values.processes ? ' (caller)' : ''}`,
  )
}

if (import.meta.main) await rpcMain(Deno.args)
