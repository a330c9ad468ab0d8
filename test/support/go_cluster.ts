/**
 * Real Go IPFS Cluster 1.1.6 peers in CRDT mode for interop tests, each beside its own real Kubo,
 * all inside one loopback-only network namespace together with whatever else the test starts.
 *
 * Go peers probe the LAN (mDNS, NAT port mapping, the DHT), so a test that runs them must run in
 * a namespace whose only interface is `lo`. `netnsTest` does that for a whole test: outside the
 * namespace it registers a test that re-runs this test file, filtered to that one test, in a
 * child `deno test` started by `unshare -n` (test/support/netns.ts); inside (the child) it
 * registers the body itself. Every process the body starts (Kubo, the Go peers, our daemon
 * through test/support/peer.ts) inherits the namespace, and so does the body's own libp2p.
 * Inside the namespace every port is free, so the Go peers get fixed ports and know each other's
 * addresses before any of them starts.
 *
 * @example
 * ```ts
 * netnsTest(import.meta, 'two Go peers agree on a pin', async () => {
 *   const cluster = await startGoCluster(2)
 *   try {
 *     const r = await cluster.peers[0].ctl(['pin', 'add', cid])
 *     await cluster.peers[1].waitLog(/new pin added/i)
 *   } finally {
 *     await cluster.stop()
 *   }
 * })
 * ```
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type KuboDaemon, startKubo } from './kubo.ts'
import { loopbackNetns } from './netns.ts'
import { runCmd, type RunResult, TOOLS_BIN } from './peer.ts'

/** The Go programs (test/tools/build-go-tools.sh builds them). */
export const GO_SERVICE = join(TOOLS_BIN, 'ipfs-cluster-service')
export const GO_CTL = join(TOOLS_BIN, 'ipfs-cluster-ctl')
export const GO_FOLLOW = join(TOOLS_BIN, 'ipfs-cluster-follow')

/** Set in the child `deno test` that runs inside the namespace. */
const NETNS_ENV = 'IPFS_CLUSTER_TEST_NETNS'

/** The secret Go peers of `startGoCluster` share unless told otherwise. */
export const GO_SECRET = '9a'.repeat(32)

/** Whether this process runs inside the test namespace (`netnsTest`'s child). */
export function inTestNetns(): boolean {
  return Deno.env.get(NETNS_ENV) === '1'
}

/**
 * Registers a test whose body runs inside one loopback-only network namespace, with every process
 * it starts. Outside: a test that runs `deno test --filter <name> <this file>` in a new namespace
 * and passes iff that child passes (its output goes to this one's). Ignored, with the reason,
 * when the Go programs (GO_SERVICE, GO_CTL and `opts.needs`) are not built; skipped when
 * namespaces are not available.
 *
 * @example
 * ```ts
 * netnsTest(import.meta, 'Go and TS peers exchange heads', async () => { … })
 * netnsTest(import.meta, 'the Go follower follows us', async () => { … }, { needs: [GO_FOLLOW] })
 * ```
 */
export function netnsTest(
  meta: ImportMeta,
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  opts: { needs?: string[] } = {},
): void {
  const missing = [GO_SERVICE, GO_CTL, ...opts.needs ?? []].filter((p) => !isFile(p))
  if (missing.length) {
    Deno.test({ name, ignore: true, fn() {} })
    console.warn(`${name}: ignored, run test/tools/build-go-tools.sh (missing ${missing})`)
    return
  }
  if (inTestNetns()) {
    Deno.test(name, fn)
    return
  }
  Deno.test(name, async () => {
    const netns = await loopbackNetns()
    if (!netns) {
      console.warn(`${name}: skipped, network namespaces are not available here`)
      return
    }
    const file = fileURLToPath(meta.url)
    const child = new Deno.Command(netns.cmd, {
      args: netns.args(Deno.execPath(), [
        'test',
        '-A',
        '--no-check',
        `--filter=${name}`,
        file,
      ]),
      env: { [NETNS_ENV]: '1' },
      stdin: 'null',
      stdout: 'inherit',
      stderr: 'inherit',
    }).spawn()
    const status = await child.status
    if (!status.success) {
      throw new Error(`the test inside its network namespace failed (${status.code})`)
    }
  })
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile
  } catch {
    return false
  }
}

/** Options of `startGoCluster`. */
export interface GoClusterOptions {
  /** `cluster.secret`; default GO_SECRET. */
  secret?: string
  /** First port: peer i listens on base + 10·i (cluster), +1 (REST), +2 (proxy), +3 (pinsvc). */
  basePort?: number
  /** `consensus.crdt.cluster_name`; default `ipfs-cluster`. */
  clusterName?: string
  /** `consensus.crdt.trusted_peers`; default `["*"]`. */
  trustedPeers?: string[]
  /** More `cluster.peer_addresses` for every peer (e.g. a TS peer of the test). */
  peerAddresses?: string[]
  /** `cluster.pubsub.heartbeat_interval`; default `1s` (10 s in Go's defaults: slow meshes). */
  heartbeat?: string
  /** `consensus.crdt.rebroadcast_interval`; default Go's (1 min). */
  rebroadcastInterval?: string
  /** `cluster.monitor_ping_interval`; default Go's (15 s). */
  pingInterval?: string
  /**
   * The daemon's `--loglevel`; default `info`. For debugging, env GO_CLUSTER_LOGLEVEL overrides it
   * and env GO_CLUSTER_LOGDIR keeps each peer's log there (`<peer id>.log`) when it stops.
   */
  logLevel?: string
  /** Edits each peer's service.json (parsed) last. */
  // deno-lint-ignore no-explicit-any
  edit?: (cfg: any, index: number) => void
}

/** One running Go peer and its Kubo. */
export interface GoPeer {
  /** Peer ID (identity.json). */
  id: string
  /** Its config folder. */
  dir: string
  /** `/ip4/127.0.0.1/tcp/<port>/p2p/<id>`: what another peer dials. */
  clusterAddr: string
  /** `/ip4/127.0.0.1/tcp/<port>`: the REST API, what `ipfs-cluster-ctl --host` takes. */
  restAddr: string
  kubo: KuboDaemon
  pid: number
  /** Runs the Go `ipfs-cluster-ctl --host <restAddr> …args`. */
  ctl(args: string[]): Promise<RunResult>
  /** The daemon's log so far (stderr and stdout, the last ~20,000 lines). */
  log(): string
  /** Resolves with the first log line matching `re` (seen before or after the call). */
  waitLog(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM (SIGKILL after 15 s), then its Kubo; idempotent. The config folder stays. */
  stop(): Promise<void>
}

/** N Go peers. */
export interface GoCluster {
  peers: GoPeer[]
  secret: string
  /** Stops every peer and Kubo and removes the config folders. */
  stop(): Promise<void>
}

/**
 * Starts `n` Go CRDT peers, each with a Kubo of its own, that know each other through
 * `cluster.peer_addresses`, and waits until each logs that it is ready. Must run inside the
 * test namespace (`netnsTest`): it refuses to start elsewhere.
 *
 * @example
 * ```ts
 * const cluster = await startGoCluster(2, { rebroadcastInterval: '2s' })
 * ```
 */
export async function startGoCluster(n: number, opts: GoClusterOptions = {}): Promise<GoCluster> {
  if (!inTestNetns()) {
    throw new Error('startGoCluster runs only inside the test network namespace (netnsTest)')
  }
  // Go peers probe every interface they see: make sure loopback is all there is.
  const others = Deno.networkInterfaces().filter((i) => i.name !== 'lo')
  if (others.length) {
    throw new Error(`not a loopback-only namespace: ${others.map((i) => i.name).join(', ')}`)
  }
  const secret = opts.secret ?? GO_SECRET
  const base = opts.basePort ?? 19000
  const root = await Deno.makeTempDir({ prefix: 'go-cluster-' })
  const peers: GoPeer[] = []
  const kubos: KuboDaemon[] = []
  const stopAll = async () => {
    for (const p of peers) await p.stop().catch(() => {})
    for (const k of kubos) await k.stop().catch(() => {})
    await Deno.remove(root, { recursive: true }).catch(() => {})
  }
  try {
    // Identities first: every peer's address list names all the others.
    const dirs: string[] = []
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      const dir = join(root, `peer${i}`)
      const r = await runCmd(GO_SERVICE, ['-c', dir, 'init', '--consensus', 'crdt'], {
        env: { CLUSTER_SECRET: secret },
      })
      if (r.code !== 0) throw new Error(`ipfs-cluster-service init failed: ${r.stderr}`)
      dirs.push(dir)
      ids.push(JSON.parse(await Deno.readTextFile(join(dir, 'identity.json'))).id)
    }
    const clusterAddr = (i: number) => `/ip4/127.0.0.1/tcp/${base + 10 * i}/p2p/${ids[i]}`
    for (let i = 0; i < n; i++) {
      const kubo = await startKubo()
      kubos.push(kubo)
      const file = join(dirs[i], 'service.json')
      const cfg = JSON.parse(await Deno.readTextFile(file))
      const port = base + 10 * i
      cfg.cluster.peername = `go${i}`
      cfg.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${port}`]
      cfg.cluster.peer_addresses = [
        ...ids.map((_, j) => j).filter((j) => j !== i).map(clusterAddr),
        ...opts.peerAddresses ?? [],
      ]
      cfg.cluster.enable_relay_hop = false
      cfg.cluster.mdns_interval = '0s'
      cfg.cluster.pubsub.heartbeat_interval = opts.heartbeat ?? '1s'
      if (opts.pingInterval) cfg.cluster.monitor_ping_interval = opts.pingInterval
      const crdt = cfg.consensus.crdt
      crdt.cluster_name = opts.clusterName ?? 'ipfs-cluster'
      crdt.trusted_peers = opts.trustedPeers ?? ['*']
      if (opts.rebroadcastInterval) crdt.rebroadcast_interval = opts.rebroadcastInterval
      cfg.api.restapi.http_listen_multiaddress = `/ip4/127.0.0.1/tcp/${port + 1}`
      cfg.api.ipfsproxy.listen_multiaddress = `/ip4/127.0.0.1/tcp/${port + 2}`
      cfg.api.ipfsproxy.node_multiaddress = kubo.apiMultiaddr
      cfg.api.pinsvcapi.http_listen_multiaddress = `/ip4/127.0.0.1/tcp/${port + 3}`
      cfg.ipfs_connector.ipfshttp.node_multiaddress = kubo.apiMultiaddr
      // Pebble's defaults reserve a 1 GiB cache and 64 MiB memtables: too much for a few pins.
      const pebble = cfg.datastore?.pebble?.pebble_options
      if (pebble) {
        pebble.cache_size_bytes = 8 << 20
        pebble.mem_table_size = 4 << 20
      }
      opts.edit?.(cfg, i)
      await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2))
      peers.push(
        startGoPeer({
          id: ids[i],
          dir: dirs[i],
          clusterAddr: clusterAddr(i),
          restAddr: `/ip4/127.0.0.1/tcp/${port + 1}`,
          kubo,
          logLevel: Deno.env.get('GO_CLUSTER_LOGLEVEL') ?? opts.logLevel ?? 'info',
        }),
      )
    }
    await Promise.all(peers.map((p) => p.waitLog(/IPFS Cluster is READY/, 90_000)))
    return { peers, secret, stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** Starts one configured Go peer and collects its log. */
function startGoPeer(o: {
  id: string
  dir: string
  clusterAddr: string
  restAddr: string
  kubo: KuboDaemon
  logLevel: string
}): GoPeer {
  const child = new Deno.Command(GO_SERVICE, {
    args: ['-c', o.dir, '--loglevel', o.logLevel, 'daemon'],
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn()
  const lines: string[] = []
  const waiters = new Set<
    { re: RegExp; resolve: (l: string) => void; fail: (err: Error) => void }
  >()
  let exited = false
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let buf = ''
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        lines.push(line)
        if (lines.length > 20_000) lines.splice(0, 10_000)
        for (const w of waiters) {
          if (w.re.test(line)) {
            waiters.delete(w)
            w.resolve(line)
          }
        }
      }
    }
  }
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {})
  const status = child.status.then(async (s) => {
    exited = true
    // A peer that exits fails whoever waits for a line at once, with its last words.
    await drained
    const tail = lines.slice(-30).join('\n')
    for (const w of waiters) w.fail(new Error(`Go peer ${o.id} exited (${s.code}):\n${tail}`))
    waiters.clear()
    return s
  })
  let stopped: Promise<void> | undefined
  return {
    id: o.id,
    dir: o.dir,
    clusterAddr: o.clusterAddr,
    restAddr: o.restAddr,
    kubo: o.kubo,
    pid: child.pid,
    ctl: (args) => runCmd(GO_CTL, ['--host', o.restAddr, ...args]),
    log: () => lines.join('\n'),
    waitLog(re, timeoutMs = 30_000) {
      const seen = lines.find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      if (exited) {
        return Promise.reject(new Error(`Go peer ${o.id} has exited; no line matches ${re}`))
      }
      return new Promise((resolve, reject) => {
        const w = {
          re,
          resolve: (l: string) => {
            clearTimeout(timer)
            resolve(l)
          },
          fail: (err: Error) => {
            clearTimeout(timer)
            reject(err)
          },
        }
        const timer = setTimeout(() => {
          waiters.delete(w)
          const tail = lines.slice(-30).join('\n')
          reject(
            new Error(`Go peer ${o.id}: no log line matching ${re} (exited: ${exited})\n${tail}`),
          )
        }, timeoutMs)
        waiters.add(w)
      })
    },
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          try {
            child.kill('SIGTERM')
          } catch { /* gone */ }
          let timer: ReturnType<typeof setTimeout> | undefined
          const late = await Promise.race([
            status.then(() => false),
            new Promise<boolean>((r) => timer = setTimeout(() => r(true), 15_000)),
          ])
          clearTimeout(timer)
          if (late) {
            try {
              child.kill('SIGKILL')
            } catch { /* gone */ }
            await status
          }
        }
        await drained
        // Debugging: the whole log kept (as far as the 20,000-line window goes).
        const keep = Deno.env.get('GO_CLUSTER_LOGDIR')
        if (keep) await Deno.writeTextFile(join(keep, `${o.id}.log`), lines.join('\n') + '\n')
        await o.kubo.stop()
      })()
      return stopped
    },
  }
}
