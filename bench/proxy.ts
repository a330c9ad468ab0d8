/**
 * The IPFS proxy's pass-through (issue 9's target: a 1 GiB `cat` through the proxy within 80 % of
 * Kubo's direct speed). A real Kubo (offline) holds a file of random bytes; our peer runs as a
 * process with its proxy in front of that Kubo; `curl` reads `cat` of the file directly from Kubo
 * and through the proxy, in turns, and the peer's RSS is sampled (/proc) while the proxy streams.
 * Printed: MiB/s of each read, the medians, their ratio, and the peer's highest RSS.
 *
 * @example
 * ```sh
 * deno run -A bench/proxy.ts               # 1 GiB, 3 rounds
 * deno run -A bench/proxy.ts --size 256M --rounds 5
 * ```
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startKubo } from '../test/support/kubo.ts'
import { startPeerProcess, TOOLS_BIN } from '../test/support/peer.ts'

const MiB = 1024 * 1024

/** The process's resident set, in MiB, from /proc (undefined where there is none). */
function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** Reads `url` with curl to /dev/null: bytes and MiB/s. */
async function curlRead(url: string): Promise<{ bytes: number; mibps: number }> {
  const t0 = performance.now()
  const out = await new Deno.Command('curl', {
    args: ['-sS', '-f', '-X', 'POST', '-o', '/dev/null', '-w', '%{size_download}', url],
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  const s = (performance.now() - t0) / 1000
  if (!out.success) throw new Error(`curl ${url}: ${new TextDecoder().decode(out.stderr)}`)
  const bytes = Number(new TextDecoder().decode(out.stdout))
  return { bytes, mibps: bytes / MiB / s }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: { size: { type: 'string', default: '1G' }, rounds: { type: 'string', default: '3' } },
  })
  const rounds = Number(values.rounds)
  const kubo = await startKubo({ offline: true })
  const tmp = await Deno.makeTempDir({ prefix: 'bench-proxy-' })
  let peer: Awaited<ReturnType<typeof startPeerProcess>> | undefined
  try {
    const file = join(tmp, 'data.bin')
    const gen = await new Deno.Command('bash', {
      args: ['-c', `head -c ${values.size} /dev/urandom > "$0"`, file],
    }).output()
    if (!gen.success) throw new Error('cannot write the test file')
    const add = await new Deno.Command(join(TOOLS_BIN, 'ipfs'), {
      args: ['add', '-Q', '--pin=false', file],
      env: { IPFS_PATH: kubo.repoPath },
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    if (!add.success) throw new Error(`ipfs add: ${new TextDecoder().decode(add.stderr)}`)
    const cid = new TextDecoder().decode(add.stdout).trim()
    await Deno.remove(file)

    peer = await startPeerProcess({
      ipfs: kubo.apiMultiaddr,
      edit: (cfg) => (cfg.api.ipfsproxy.node_multiaddress = kubo.apiMultiaddr),
    })
    const cfg = JSON.parse(await Deno.readTextFile(join(peer.configDir, 'service.json')))
    const port = /\/tcp\/(\d+)$/.exec([cfg.api.ipfsproxy.listen_multiaddress].flat()[0])![1]
    const direct = `${kubo.apiUrl}/api/v0/cat?arg=${cid}`
    const proxied = `http://127.0.0.1:${port}/api/v0/cat?arg=${cid}`

    const rssIdle = rssMiB(peer.pid)
    let rssMax = 0
    const d: number[] = []
    const p: number[] = []
    for (let i = 0; i < rounds; i++) {
      const a = await curlRead(direct)
      d.push(a.mibps)
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, rssMiB(peer!.pid) ?? 0)
      }, 100)
      const b = await curlRead(proxied).finally(() => clearInterval(sampler))
      p.push(b.mibps)
      if (a.bytes !== b.bytes) throw new Error(`sizes differ: ${a.bytes} vs ${b.bytes}`)
      console.log(
        `round ${i + 1}: ${(a.bytes / MiB).toFixed(0)} MiB  direct ${a.mibps.toFixed(0)} MiB/s` +
          `  proxy ${b.mibps.toFixed(0)} MiB/s`,
      )
    }
    const ratio = median(p) / median(d)
    console.log(
      `median: direct ${median(d).toFixed(0)} MiB/s, proxy ${median(p).toFixed(0)} MiB/s ` +
        `(${(ratio * 100).toFixed(0)} % of direct; target ≥ 80 %)`,
    )
    console.log(
      `peer RSS: ${rssIdle?.toFixed(0) ?? '?'} MiB before, at most ${
        rssMax.toFixed(0)
      } MiB while proxying`,
    )
    console.log(`RESULT ${ratio >= 0.8 ? 'PASS' : 'FAIL'}`)
  } finally {
    await peer?.stop()
    await kubo.stop()
    await Deno.remove(tmp, { recursive: true }).catch(() => {})
  }
}

if (import.meta.main) await main()
