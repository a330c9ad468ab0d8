/**
 * Starts a real Kubo daemon for tests: a fresh repo in a temp folder, every address on 127.0.0.1,
 * nothing that reaches the internet, and a `stop()` that kills it by PID and removes the repo.
 *
 * The daemon is online but loopback-only, so two of them can `swarm/connect` and exchange blocks
 * over bitswap. Starting takes ~0.15 s once the binary is warm (see docs/ipfshttp.md).
 *
 * @example
 * ```ts
 * const kubo = await startKubo()
 * try {
 *   const cid = await kubo.add(new TextEncoder().encode('hello'))
 *   await fetch(`${kubo.apiUrl}/api/v0/pin/add?arg=${cid}`, { method: 'POST' })
 * } finally {
 *   await kubo.stop()
 * }
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Options of startKubo. */
export interface StartKuboOptions {
  /** Also serve the RPC API on a unix socket (`<repo>/api.sock`); see `apiUnixMultiaddr`. */
  unixSocket?: boolean
  /** Time limit for the API to answer `id`. Default 20 s. */
  timeoutMs?: number
  /** Extra config keys, applied last: `{ 'Datastore.StorageMax': '1GB' }`. */
  config?: Record<string, unknown>
  /** Run with `--offline` (no swarm at all). Default false: loopback-only online daemon. */
  offline?: boolean
}

/** A running Kubo daemon. */
export interface KuboDaemon {
  /** The daemon's process ID (benches read its CPU time). */
  pid: number
  /** `http://127.0.0.1:<port>` (append `/api/v0/<cmd>`). */
  apiUrl: string
  /** `/ip4/127.0.0.1/tcp/<port>`: what `node_multiaddress` takes. */
  apiMultiaddr: string
  /** `/unix/<repo>/api.sock` when started with `unixSocket`. */
  apiUnixMultiaddr?: string
  gatewayUrl: string
  repoPath: string
  peerId: string
  /** Swarm addresses with `/p2p/<id>`, for another daemon's `swarm/connect`. */
  swarmAddrs: string[]
  /** Milliseconds from spawning the daemon to its first answer to `id`. */
  startMs: number
  /**
   * Adds bytes as one file (not pinned unless `pin`), returns its CID. With `wrap: name` the file
   * is wrapped in a directory and the directory's CID is returned (`/ipfs/<dir>/<name>` resolves).
   */
  add(
    bytes: Uint8Array,
    opts?: { pin?: boolean; wrap?: string; rawLeaves?: boolean; cidVersion?: 0 | 1 },
  ): Promise<string>
  stop(): Promise<void>
}

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..', '..')

/** Finds a Kubo binary: $IPFS_BIN, .tools/bin/ipfs, `ipfs` on PATH; builds one as a last resort. */
export async function findKuboBinary(): Promise<string> {
  const candidates: string[] = []
  const env = Deno.env.get('IPFS_BIN')
  if (env) candidates.push(env)
  candidates.push(join(repoRoot, '.tools', 'bin', 'ipfs'))
  for (const dir of (Deno.env.get('PATH') ?? '').split(':')) {
    if (dir) candidates.push(join(dir, 'ipfs'))
  }
  for (const c of candidates) if (await isExecutable(c)) return c
  const script = join(repoRoot, 'test', 'tools', 'build-go-tools.sh')
  const out = await new Deno.Command('bash', { args: [script], stdout: 'piped', stderr: 'piped' })
    .output()
  const built = join(repoRoot, '.tools', 'bin', 'ipfs')
  if (out.success && await isExecutable(built)) return built
  throw new Error(
    'no Kubo binary: set IPFS_BIN, put `ipfs` on PATH, or run test/tools/build-go-tools.sh ' +
      `(it failed here: ${
        new TextDecoder().decode(out.stderr).trim().split('\n').slice(-3).join(' | ')
      })`,
  )
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path)
    return st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0
  } catch {
    return false
  }
}

/**
 * Config that keeps the daemon on loopback and off the internet (on top of `--profile test`,
 * which already sets 127.0.0.1 addresses on port 0, empty Bootstrap, no MDNS, no AutoConf/AutoTLS).
 */
function loopbackConfig(repo: string, unix: boolean): Record<string, unknown> {
  return {
    'Addresses.API': unix
      ? ['/ip4/127.0.0.1/tcp/0', `/unix/${repo}/api.sock`]
      : '/ip4/127.0.0.1/tcp/0',
    'Addresses.Gateway': '/ip4/127.0.0.1/tcp/0',
    'Addresses.Swarm': ['/ip4/127.0.0.1/tcp/0'],
    'Bootstrap': [],
    'Routing.Type': 'none', // no DHT, no delegated HTTP routers
    'Provide.Enabled': false, // no (re)providing
    'AutoNAT.ServiceMode': 'disabled',
    'Swarm.RelayClient.Enabled': false,
    'Swarm.RelayService.Enabled': false,
    'HTTPRetrieval.Enabled': false, // no fetching blocks from HTTP gateways
    'Discovery.MDNS.Enabled': false,
    'AutoConf.Enabled': false,
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown) {
  const keys = path.split('.')
  let cur = obj
  for (const k of keys.slice(0, -1)) {
    if (!cur[k] || typeof cur[k] !== 'object') cur[k] = {}
    cur = cur[k] as Record<string, unknown>
  }
  cur[keys[keys.length - 1]] = value
}

/** Starts a loopback-only Kubo daemon in a fresh temp repo. */
export async function startKubo(opts: StartKuboOptions = {}): Promise<KuboDaemon> {
  const bin = await findKuboBinary()
  const repoPath = await Deno.makeTempDir({ prefix: 'kubo-test-' })
  // IPFS_TELEMETRY=off: never let the telemetry plugin phone home, whatever the build's default.
  const env = { IPFS_PATH: repoPath, IPFS_TELEMETRY: 'off', DO_NOT_TRACK: '1' }
  let child: Deno.ChildProcess | undefined
  let drains: Promise<unknown>[] = []
  let out: ReturnType<typeof lineReader> | undefined
  const cleanup = async () => {
    if (child) {
      try {
        child.kill('SIGTERM')
      } catch { /* already gone */ }
      const exited = await withTimeout(child.status, 5000)
      if (!exited) {
        try {
          child.kill('SIGKILL')
        } catch { /* gone */ }
        await child.status
      }
      out?.discardRest()
      await Promise.all(drains)
      child = undefined
    }
    await Deno.remove(repoPath, { recursive: true }).catch(() => {})
  }
  try {
    const init = await new Deno.Command(bin, {
      args: ['init', '--profile', 'test', '--empty-repo'],
      env,
      stdout: 'piped',
      stderr: 'piped',
    }).output()
    if (!init.success) {
      throw new Error(`ipfs init failed: ${new TextDecoder().decode(init.stderr)}`)
    }
    // Edit the config file directly: one write instead of a dozen `ipfs config` processes.
    const cfgPath = join(repoPath, 'config')
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath))
    const settings = { ...loopbackConfig(repoPath, !!opts.unixSocket), ...opts.config }
    for (const [k, v] of Object.entries(settings)) setPath(cfg, k, v)
    await Deno.writeTextFile(cfgPath, JSON.stringify(cfg, null, 2))

    const t0 = performance.now()
    const args = ['daemon']
    if (opts.offline) args.push('--offline')
    child = new Deno.Command(bin, { args, env, stdout: 'piped', stderr: 'piped' }).spawn()
    out = lineReader(child.stdout)
    const err = tailCollector(child.stderr)
    drains = [out.drained, err.done]
    // The daemon prints its bound addresses (ports were 0) before "Daemon is ready".
    let apiMultiaddr = ''
    let gateway = ''
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
    const status = child.status
    while (!apiMultiaddr || !gateway) {
      const next = await withTimeout(
        Promise.race([out.next(), status.then((s) => ({ exit: s.code }))]),
        deadline - Date.now(),
      )
      if (next === undefined) throw new Error('ipfs daemon did not start in time')
      if ('exit' in next) {
        await err.done
        throw new Error(`ipfs daemon exited (${next.exit}): ${err.text()}`)
      }
      if (next.line === undefined) throw new Error(`ipfs daemon closed stdout: ${err.text()}`)
      const m = /^RPC API server listening on (\/ip4\/\S+)/.exec(next.line)
      if (m) apiMultiaddr = m[1]
      const g = /^Gateway server listening on \/ip4\/([^/]+)\/tcp\/(\d+)/.exec(next.line)
      if (g) gateway = `http://${g[1]}:${g[2]}`
    }
    // From here on stdout is only drained, so the daemon never blocks on a full pipe.
    out.discardRest()
    const [, , host, , port] = apiMultiaddr.split('/')
    const apiUrl = `http://${host}:${port}`
    let id: { ID: string; Addresses: string[] } | undefined
    while (!id) {
      if (Date.now() > deadline) throw new Error('ipfs daemon API did not answer id in time')
      try {
        const r = await fetch(`${apiUrl}/api/v0/id`, {
          method: 'POST',
          signal: AbortSignal.timeout(2000),
        })
        if (r.ok) id = await r.json()
        else await r.body?.cancel()
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    const startMs = Math.round(performance.now() - t0)
    const proc = child
    const daemon: KuboDaemon = {
      pid: proc.pid,
      apiUrl,
      apiMultiaddr,
      apiUnixMultiaddr: opts.unixSocket ? `/unix${join(repoPath, 'api.sock')}` : undefined,
      gatewayUrl: gateway,
      repoPath,
      peerId: id.ID,
      swarmAddrs: id.Addresses ?? [],
      startMs,
      add: (bytes, o = {}) => addBytes(apiUrl, bytes, o),
      stop: async () => {
        if (proc !== child) return
        await cleanup()
      },
    }
    return daemon
  } catch (err) {
    await cleanup()
    throw err
  }
}

async function addBytes(
  apiUrl: string,
  bytes: Uint8Array,
  o: { pin?: boolean; wrap?: string; rawLeaves?: boolean; cidVersion?: 0 | 1 },
): Promise<string> {
  const q = new URLSearchParams({ pin: String(o.pin ?? false) })
  if (o.wrap) q.set('wrap-with-directory', 'true')
  if (o.rawLeaves !== undefined) q.set('raw-leaves', String(o.rawLeaves))
  if (o.cidVersion !== undefined) q.set('cid-version', String(o.cidVersion))
  const form = new FormData()
  form.append('file', new Blob([bytes as BlobPart]), o.wrap ?? 'file')
  const res = await fetch(`${apiUrl}/api/v0/add?${q}`, { method: 'POST', body: form })
  const text = await res.text()
  if (!res.ok) throw new Error(`ipfs add failed (${res.status}): ${text}`)
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { Hash?: string })
  const last = lines[lines.length - 1]?.Hash
  if (!last) throw new Error(`ipfs add: no Hash in ${text}`)
  return last
}

/** Resolves with the promise's value, or undefined after `ms` (the timer is always cleared). */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), Math.max(0, ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Reads lines on demand; `discardRest()` switches to draining; `drained` resolves at EOF. */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  let eof = false
  let draining = false
  let resolveDrained: () => void
  const drained = new Promise<void>((r) => resolveDrained = r)
  return {
    drained,
    async next(): Promise<{ line?: string }> {
      for (;;) {
        const nl = buf.indexOf('\n')
        if (nl >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          return { line }
        }
        if (eof) {
          resolveDrained()
          return {}
        }
        const r = await reader.read()
        if (r.done) eof = true
        else buf += r.value
      }
    },
    discardRest() {
      if (draining) return
      draining = true
      buf = ''
      ;(async () => {
        while (!eof) {
          const r = await reader.read()
          if (r.done) eof = true
        }
      })().catch(() => {}).finally(() => resolveDrained())
    },
  }
}

/** Keeps the last ~10 kB of a stream (the daemon's stderr), for error messages. */
function tailCollector(stream: ReadableStream<Uint8Array>) {
  let text = ''
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk
      if (text.length > 20_000) text = text.slice(-10_000)
    }
  })().catch(() => {})
  return { done, text: () => text.trim() }
}
