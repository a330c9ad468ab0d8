/**
 * service.json: load, validate, override from the environment, and save, with the sections and
 * keys of IPFS Cluster 1.x. Each component owns its section's schema (its `config.ts`); this file
 * only knows where each section lives in the file.
 *
 * @example
 * ```ts
 * const cfg = await loadServiceConfig('/home/me/.ipfs-cluster', Deno.env.toObject())
 * cfg.restapi?.http_listen_multiaddress // ['/ip4/127.0.0.1/tcp/9094']
 * ```
 */
import { join } from 'node:path'
import { ConfigError } from '../errors.ts'
import { type ClusterConfig, clusterSection, newSecret } from '../cluster/config.ts'
import { raftSection } from '../consensus/raft/config.ts'
import { pinSvcApiSection, restApiSection } from '../api/rest/config.ts'
import { ipfsProxySection } from '../api/ipfsproxy/config.ts'
import { ipfsHttpSection } from '../ipfsconn/ipfshttp/config.ts'
import { embeddedSection } from '../ipfsconn/embedded/config.ts'
import { statelessSection } from '../pintracker/config.ts'
import { pubsubmonSection } from '../monitor/config.ts'
import { balancedSection } from '../allocator/config.ts'
import { diskSection, numpinSection, pinqueueSection, tagsSection } from '../informer/config.ts'
import { bool, type ConfigOf, defineSection, duration, maddr, num, str } from './schema.ts'

const metricsSection = defineSection('observations.metrics', 'METRICS', {
  enable_stats: bool(false),
  prometheus_endpoint: maddr('/ip4/127.0.0.1/tcp/8888'),
  reporting_interval: duration(30_000, { positive: true }),
})
const tracingSection = defineSection('observations.tracing', 'TRACING', {
  enable_tracing: bool(false),
  jaeger_agent_endpoint: maddr('/ip4/0.0.0.0/udp/6831'),
  sampling_prob: num(0.3, { min: 0, max: 1 }),
  service_name: str('cluster-daemon'),
})

/**
 * Where each section lives in service.json: [top-level key, sub key]. The order is the order the
 * reference writes them in (components sorted by name within a group), so a saved file reads the
 * same as one written by the Go implementation.
 */
export const SECTIONS = {
  raft: { path: ['consensus', 'raft'], section: raftSection },
  ipfsproxy: { path: ['api', 'ipfsproxy'], section: ipfsProxySection },
  pinsvcapi: { path: ['api', 'pinsvcapi'], section: pinSvcApiSection },
  restapi: { path: ['api', 'restapi'], section: restApiSection },
  embedded: { path: ['ipfs_connector', 'embedded'], section: embeddedSection },
  ipfshttp: { path: ['ipfs_connector', 'ipfshttp'], section: ipfsHttpSection },
  stateless: { path: ['pin_tracker', 'stateless'], section: statelessSection },
  pubsubmon: { path: ['monitor', 'pubsubmon'], section: pubsubmonSection },
  balanced: { path: ['allocator', 'balanced'], section: balancedSection },
  disk: { path: ['informer', 'disk'], section: diskSection },
  numpin: { path: ['informer', 'numpin'], section: numpinSection },
  pinqueue: { path: ['informer', 'pinqueue'], section: pinqueueSection },
  tags: { path: ['informer', 'tags'], section: tagsSection },
  metrics: { path: ['observations', 'metrics'], section: metricsSection },
  tracing: { path: ['observations', 'tracing'], section: tracingSection },
} as const

type Sections = typeof SECTIONS
type SectionConfig<K extends keyof Sections> = ConfigOf<Sections[K]['section']['fields']>

/**
 * A loaded service.json. A component section is `undefined` when absent from the file: as in the
 * reference, absent APIs/informers are not started (the daemon fills defaults where it must).
 */
export type ServiceConfig =
  & { cluster: ClusterConfig; source?: string; datastore?: unknown }
  & { [K in keyof Sections]?: SectionConfig<K> }

/** Top-level keys service.json may hold, with the sub-keys we know. */
const KNOWN_TOP: Record<string, string[]> = {
  source: [],
  cluster: [],
  consensus: ['raft', 'crdt'],
  api: ['restapi', 'pinsvcapi', 'ipfsproxy'],
  ipfs_connector: ['ipfshttp', 'embedded'],
  pin_tracker: ['stateless'],
  monitor: ['pubsubmon'],
  allocator: ['balanced'],
  informer: ['disk', 'numpin', 'tags', 'pinqueue'],
  observations: ['metrics', 'tracing'],
  datastore: ['pebble', 'badger', 'badger3', 'leveldb'],
}

/** Parses service.json text into a ServiceConfig; env overrides applied. */
export function parseServiceConfig(text: string, env: Record<string, string> = {}): ServiceConfig {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`service.json is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('service.json must hold a JSON object')
  }
  const obj = json as Record<string, Record<string, unknown>>
  for (const [top, value] of Object.entries(obj)) {
    if (!Object.hasOwn(KNOWN_TOP, top)) {
      throw new ConfigError(
        `service.json: unknown section ${JSON.stringify(top)} (allowed: ${
          Object.keys(KNOWN_TOP).join(', ')
        })`,
      )
    }
    const subs = KNOWN_TOP[top]
    if (subs.length && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new ConfigError(`${top}: must be a JSON object`)
    }
    if (subs.length) {
      for (const sub of Object.keys(value)) {
        if (!subs.includes(sub)) {
          throw new ConfigError(
            `service.json: unknown component ${top}.${sub} (allowed: ${subs.join(', ')})`,
          )
        }
      }
    }
  }
  if (typeof obj.source === 'string') {
    throw new ConfigError(
      `service.json points to a remote configuration (source ${obj.source}); ` +
        'remote configurations are not supported: copy the file locally',
    )
  }
  if (obj.consensus && 'crdt' in obj.consensus && !('raft' in obj.consensus)) {
    throw new ConfigError(
      'consensus.crdt: this implementation runs Raft consensus only (allowed: consensus.raft); ' +
        'see docs/compat.md',
    )
  }
  const cfg: ServiceConfig = { cluster: clusterSection.load(obj.cluster, env) }
  for (const [key, { path, section }] of Object.entries(SECTIONS)) {
    const raw = obj[path[0]]?.[path[1]]
    if (raw === undefined) continue
    ;(cfg as Record<string, unknown>)[key] = section.load(raw, env)
  }
  if (obj.datastore) cfg.datastore = obj.datastore
  return cfg
}

/** Reads `<dir>/service.json`. Throws ConfigError with the path when missing or invalid. */
export async function loadServiceConfig(
  dir: string,
  env: Record<string, string> = {},
): Promise<ServiceConfig> {
  const file = join(dir, 'service.json')
  let text: string
  try {
    text = await Deno.readTextFile(file)
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(
        `${file} does not exist: run "ipfs-cluster-service init" first (or pass --config)`,
      )
    }
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`)
  }
  return parseServiceConfig(text, env)
}

/** Options for a fresh configuration (`service init`). */
export interface InitOptions {
  /** Which IPFS connector to write: Kubo over HTTP (default) or the embedded Helia node. */
  connector?: 'ipfshttp' | 'embedded'
  /** Pick random free ports instead of the defaults (9094–9097). */
  randomPorts?: boolean
  /** Raft init_peerset peer IDs (from `--peers`). */
  peers?: string[]
  peername?: string
  secret?: string
}

/** Builds the ServiceConfig `service init` writes: every section with its defaults, env applied. */
export function defaultServiceConfig(
  opts: InitOptions = {},
  env: Record<string, string> = {},
): ServiceConfig {
  const cluster = clusterSection.load(undefined, env)
  if (!env.CLUSTER_SECRET) cluster.secret = opts.secret ?? newSecret()
  if (!env.CLUSTER_PEERNAME) cluster.peername = opts.peername ?? hostname()
  const cfg: ServiceConfig = { cluster }
  const connector = opts.connector ?? 'ipfshttp'
  for (const [key, { section }] of Object.entries(SECTIONS)) {
    // informer.numpin is written and started too (the reference's init skips it and its daemon
    // never wires it): the pin count is a metric operators ask for. See docs/compat.md.
    if (key === 'ipfshttp' && connector !== 'ipfshttp') continue
    if (key === 'embedded' && connector !== 'embedded') continue
    ;(cfg as Record<string, unknown>)[key] = section.load(undefined, env)
  }
  if (opts.peers?.length) cfg.raft!.init_peerset = opts.peers
  return cfg
}

/** Serializes a ServiceConfig as service.json text (two-space indent, like the reference). */
export function serviceConfigToJSON(cfg: ServiceConfig): string {
  const out: Record<string, Record<string, unknown>> = {
    cluster: clusterSection.toJSON(cfg.cluster),
  }
  for (const [key, { path, section }] of Object.entries(SECTIONS)) {
    const c = (cfg as Record<string, unknown>)[key]
    if (c === undefined) continue
    out[path[0]] ??= {}
    // deno-lint-ignore no-explicit-any
    out[path[0]][path[1]] = section.toJSON(c as any)
  }
  if (cfg.datastore) out.datastore = cfg.datastore as Record<string, unknown>
  return JSON.stringify(out, null, 2) + '\n'
}

/** Writes `<dir>/service.json` with mode 0600 (it holds the cluster secret). */
export async function saveServiceConfig(dir: string, cfg: ServiceConfig): Promise<void> {
  await Deno.mkdir(dir, { recursive: true })
  const file = join(dir, 'service.json')
  const tmp = `${file}.tmp`
  await Deno.writeTextFile(tmp, serviceConfigToJSON(cfg), { mode: 0o600 })
  await Deno.rename(tmp, file)
}

function hostname(): string {
  try {
    return Deno.hostname()
  } catch {
    return 'cluster-peer'
  }
}

/** The default config folder: $IPFS_CLUSTER_PATH, else $HOME/.ipfs-cluster. */
export function defaultConfigDir(env: Record<string, string>): string {
  if (env.IPFS_CLUSTER_PATH) return env.IPFS_CLUSTER_PATH
  return join(env.HOME ?? '.', '.ipfs-cluster')
}
