/**
 * The two implementations under test, driven the same way through their own CLIs: a fresh config
 * folder from `init` (Raft consensus by default, or CRDT: `init --consensus crdt`), the same edits to service.json (REST API and
 * cluster listener on 127.0.0.1 free ports, the IPFS connector pointed at the instant double, mDNS
 * off, no IPFS proxy or pinning-service API), offline `state import`, then `daemon`.
 *
 * @example
 * ```ts
 * const impl = implementations({ repo, goBin }).go
 * await impl.init(dir)
 * const ports = await configurePeer(dir, { ipfsApi: '/ip4/127.0.0.1/tcp/5001' })
 * const proc = procs.start('go-daemon', impl.daemon(dir), { cwd: repo, env: cleanEnv() })
 * ```
 */
import { taskFlags } from '../test/support/peer.ts'
import { join } from 'node:path'
import { freePort } from '../src/util/free_port.ts'

/** Which implementation. */
export type ImplKey = 'ours' | 'go'

/** Which consensus a peer runs (`init --consensus`). */
export type ConsensusKind = 'raft' | 'crdt'

/** One implementation's commands. */
export interface Implementation {
  key: ImplKey
  label: string
  /** Writes a fresh config into `dir`: `init --consensus <consensus>` (default raft). */
  init(dir: string, consensus?: ConsensusKind): Promise<void>
  /**
   * The folder (relative to the config folder) that holds a CRDT peer's whole state: the DAG
   * blocks, the set and the heads (ours: the Deno KV database; Go: its pebble datastore).
   */
  crdtStore: string
  /** Offline `state import -f <file>`; resolves with the seconds it took. */
  importState(dir: string, file: string): Promise<number>
  /** argv of that `state import`. */
  importCommand(dir: string, file: string): string[]
  /** argv of `daemon` on `dir`. */
  daemon(dir: string): string[]
}

/** Where the programs are. */
export interface ImplPaths {
  /** The repository root (cli/main.ts is run from here, so deno.json applies). */
  repo: string
  /** IPFS Cluster 1.1.6's ipfs-cluster-service. */
  goBin: string
  deno?: string
  /** Kills a running init or import when aborted (the bench was interrupted). */
  signal?: AbortSignal
}

/** The environment for every peer command: ours minus anything that would override the config. */
export function cleanEnv(): Record<string, string> {
  const env = Deno.env.toObject()
  for (const k of Object.keys(env)) {
    if (k.startsWith('CLUSTER_') || k.startsWith('IPFS_CLUSTER_')) delete env[k]
  }
  return env
}

async function run(
  cmd: string[],
  cwd: string,
  what: string,
  signal?: AbortSignal,
): Promise<number> {
  const t0 = performance.now()
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    env: cleanEnv(),
    clearEnv: true,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
    signal,
  }).output()
  if (out.code !== 0) {
    const dec = new TextDecoder()
    throw new Error(
      `${what} failed (exit ${out.code}): ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`
        .trim(),
    )
  }
  return (performance.now() - t0) / 1000
}

/** Both implementations. */
export function implementations(paths: ImplPaths): Record<ImplKey, Implementation> {
  const deno = paths.deno ?? Deno.execPath()
  // With the permissions and V8 flags of the service task, as users run it.
  const ours = (dir: string, ...args: string[]) => [
    deno,
    'run',
    ...taskFlags('service'),
    join(paths.repo, 'cli/main.ts'),
    'service',
    '--config',
    dir,
    ...args,
  ]
  const go = (dir: string, ...args: string[]) => [paths.goBin, '--config', dir, ...args]
  return {
    ours: {
      key: 'ours',
      label: 'ours (Deno)',
      init: async (dir, consensus = 'raft') =>
        void await run(
          ours(dir, 'init', '--consensus', consensus, '--force'),
          paths.repo,
          'ours: init',
          paths.signal,
        ),
      crdtStore: 'crdt',
      importState: (dir, file) =>
        run(
          ours(dir, 'state', 'import', '-f', file),
          paths.repo,
          'ours: state import',
          paths.signal,
        ),
      importCommand: (dir, file) => ours(dir, 'state', 'import', '-f', file),
      daemon: (dir) => ours(dir, 'daemon'),
    },
    go: {
      key: 'go',
      label: 'IPFS Cluster 1.1.6 (Go)',
      init: async (dir, consensus = 'raft') =>
        void await run(
          go(dir, 'init', '--consensus', consensus, '--force'),
          paths.repo,
          'go: init',
          paths.signal,
        ),
      // `init --consensus crdt` writes the pebble datastore section.
      crdtStore: 'pebble',
      importState: (dir, file) =>
        run(go(dir, 'state', 'import', '-f', file), paths.repo, 'go: state import', paths.signal),
      importCommand: (dir, file) => go(dir, 'state', 'import', '-f', file),
      daemon: (dir) => go(dir, 'daemon'),
    },
  }
}

export { freePort }

/** The addresses a configured peer uses. */
export interface PeerPorts {
  /** `http://127.0.0.1:<port>` of the REST API. */
  rest: string
  cluster: number
}

type Json = Record<string, unknown>

/**
 * Edits `<dir>/service.json` for the bench (same edits for both implementations): everything on
 * 127.0.0.1, the connector at `ipfsApi`, mDNS off (it would multicast on the LAN), and only the
 * REST API among the APIs.
 */
export async function configurePeer(dir: string, opts: { ipfsApi: string }): Promise<PeerPorts> {
  const path = join(dir, 'service.json')
  const cfg = JSON.parse(await Deno.readTextFile(path)) as Json
  const section = (obj: Json, key: string): Json => {
    const v = obj[key]
    if (!v || typeof v !== 'object') throw new Error(`${path}: no "${key}" section`)
    return v as Json
  }
  const restPort = freePort()
  const clusterPort = freePort()
  const cluster = section(cfg, 'cluster')
  cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${clusterPort}`]
  cluster.mdns_interval = '0s'
  const api = section(cfg, 'api')
  const restapi = section(api, 'restapi')
  restapi.http_listen_multiaddress = `/ip4/127.0.0.1/tcp/${restPort}`
  cfg.api = { restapi }
  section(section(cfg, 'ipfs_connector'), 'ipfshttp').node_multiaddress = opts.ipfsApi
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2) + '\n')
  return { rest: `http://127.0.0.1:${restPort}`, cluster: clusterPort }
}
