/**
 * service.json: load, validate, override from the environment, and save, with the sections and
 * keys of IPFS Cluster 1.x. Each component owns its section's schema (its `config.ts`), including
 * the legacy keys of older releases and the sections of reference components this implementation
 * does not run (the datastores); this file only knows where each section lives in the file, that
 * `cluster` is required, and that `consensus` holds exactly one of `raft` and `crdt`.
 *
 * @example
 * ```ts
 * const cfg = await loadServiceConfig('/home/me/.ipfs-cluster', Deno.env.toObject())
 * cfg.restapi?.http_listen_multiaddress // ['/ip4/127.0.0.1/tcp/9094']
 * ```
 */
import { join } from 'node:path'
import { ConfigError } from './errors.ts'
import { type ClusterConfig, clusterSection, newSecret } from './cluster/config.ts'
import { raftSection } from './consensus/raft/config.ts'
import { crdtSection } from './consensus/crdt/config.ts'
import { restApiSection } from './api/rest/config.ts'
import { pinSvcApiSection } from './api/pinsvc/config.ts'
import { ipfsProxySection } from './api/ipfsproxy/config.ts'
import { ipfsHttpSection } from './ipfsconn/ipfshttp/config.ts'
import { embeddedSection } from './ipfsconn/embedded/config.ts'
import { maptrackerSection, statelessSection } from './pintracker/config.ts'
import { monbasicSection, pubsubmonSection } from './monitor/config.ts'
import { balancedSection } from './allocator/config.ts'
import { diskSection, numpinSection, pinqueueSection, tagsSection } from './informer/config.ts'
import { metricsSection, tracingSection } from './observations/config.ts'
import { badger3Section, badgerSection, leveldbSection, pebbleSection } from './state/config.ts'
import {
  type ConfigOf,
  type IgnoredSection,
  matchKey,
  unknownName,
  type Warn,
} from './config/schema.ts'

/**
 * Where each section lives in service.json: [top-level key, sub key]. The order is the order the
 * reference writes them in (components sorted by name within a group), so a saved file reads the
 * same as one written by the Go implementation.
 */
export const SECTIONS = {
  crdt: { path: ['consensus', 'crdt'], section: crdtSection },
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

/**
 * Components of IPFS Cluster (1.1.6, and older releases for monbasic and maptracker) that this
 * implementation does not run: a file may hold them; their keys are checked, their values ignored.
 */
const IGNORED: readonly IgnoredSection[] = [
  pebbleSection,
  badgerSection,
  badger3Section,
  leveldbSection,
  monbasicSection,
  maptrackerSection,
]

/**
 * The top-level keys of service.json, in the order of the reference's jsonConfig
 * (config/config.go, v1.1.6), each with the components it may hold; `sharder` is the group of
 * v0.5.0–v0.7.0. A group's components are ours (SECTIONS) and the ignored ones.
 */
const TOP: Record<string, string[]> = {
  source: [],
  cluster: [],
  consensus: [],
  api: [],
  ipfs_connector: [],
  state: [],
  pin_tracker: [],
  monitor: [],
  allocator: [],
  informer: [],
  observations: [],
  datastore: [],
  sharder: [],
}
for (const { path } of Object.values(SECTIONS)) TOP[path[0]].push(path[1])
for (const { name } of IGNORED) {
  const [top, sub] = name.split('.')
  TOP[top].push(sub)
}

/** Top-level groups no component of 1.1.6 reads: accepted whatever they hold, and reported. */
const UNUSED_TOP: Record<string, string> = {
  state: 'IPFS Cluster 1.1.6 registers no component here; ignored',
  sharder: 'IPFS Cluster 0.5–0.7 only; ignored (as 1.1.6 does)',
}

type Sections = typeof SECTIONS
type SectionConfig<K extends keyof Sections> = ConfigOf<Sections[K]['section']['fields']>

/**
 * A loaded service.json. A component section is `undefined` when absent from the file: as in the
 * reference, absent APIs/informers are not started (the daemon fills defaults where it must).
 */
export type ServiceConfig =
  & { cluster: ClusterConfig; source?: string; datastore?: unknown }
  & { -readonly [K in keyof Sections]?: SectionConfig<K> }

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses service.json text into a ServiceConfig; env overrides applied.
 *
 * What the reference knows and this implementation does not act on (legacy keys, datastores…)
 * is accepted and reported through `warn`, one line per key or section; a key nobody knows is a
 * ConfigError that suggests the nearest known one. The `cluster` section is required, and
 * `consensus` must hold exactly one of `raft` and `crdt` (the reference refuses to start
 * otherwise: "could not determine the consensus component").
 */
export function parseServiceConfig(
  text: string,
  env: Record<string, string> = {},
  warn: Warn = () => {},
): ServiceConfig {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`service.json is not valid JSON: ${(err as Error).message}`)
  }
  if (!isObject(json)) throw new ConfigError('service.json must hold a JSON object')

  // Top-level names match as Go struct fields do (case-insensitively); component names are map
  // keys there, so they match exactly.
  const groups: Record<string, Record<string, unknown>> = {}
  let cluster: unknown
  for (const [key, value] of Object.entries(json)) {
    const top = matchKey(key, Object.keys(TOP))
    if (top === undefined) throw unknownName('', key, 'section', Object.keys(TOP))
    if (top === 'source') {
      if (typeof value === 'string' && value !== '') {
        throw new ConfigError(
          `source: service.json points to a remote configuration (${value}); ` +
            'remote configurations are not supported: copy the file locally',
        )
      }
      if (value !== '' && value !== null) throw new ConfigError('source: must be a string')
      continue
    }
    if (top === 'cluster') {
      cluster = value
      continue
    }
    if (value === null) {
      warn(`${top}: null, read as absent`)
      continue
    }
    if (!isObject(value)) throw new ConfigError(`${top}: must be a JSON object`)
    if (Object.hasOwn(UNUSED_TOP, top)) {
      warn(`${top}: ${UNUSED_TOP[top]}`)
      continue
    }
    const group: Record<string, unknown> = {}
    for (const [sub, v] of Object.entries(value)) {
      if (!TOP[top].includes(sub)) throw unknownName(top, sub, 'component', TOP[top])
      if (v === null) warn(`${top}.${sub}: null, read as absent`)
      else group[sub] = v
    }
    groups[top] = group
  }

  if (cluster === undefined || cluster === null) {
    throw new ConfigError(
      `cluster: the section is ${cluster === null ? 'null' : 'missing'}; it holds the peer's ` +
        'name, secret and listen addresses (run "ipfs-cluster-service init" to write a ' +
        'service.json, or restore the section)',
    )
  }
  const cfg: ServiceConfig = { cluster: clusterSection.load(cluster, env, warn) }
  const consensus = groups.consensus ?? {}
  if (consensus.raft === undefined && consensus.crdt === undefined) {
    throw new ConfigError(
      'consensus: no consensus is configured (allowed: consensus.raft, consensus.crdt); add ' +
        '"consensus": {"raft": {}} for Raft with its defaults (or {"crdt": {}}), or run ' +
        '"ipfs-cluster-service init"',
    )
  }
  if (consensus.raft !== undefined && consensus.crdt !== undefined) {
    throw new ConfigError(
      'consensus: both consensus.raft and consensus.crdt are configured; a peer runs one ' +
        'consensus: remove the other section (IPFS Cluster refuses this file too: "could not ' +
        'determine the consensus component")',
    )
  }
  for (const [key, { path, section }] of Object.entries(SECTIONS)) {
    const raw = groups[path[0]]?.[path[1]]
    if (raw === undefined) continue
    ;(cfg as Record<string, unknown>)[key] = section.load(raw, env, warn)
  }
  for (const ignored of IGNORED) {
    const [top, sub] = ignored.name.split('.')
    const raw = groups[top]?.[sub]
    if (raw === undefined) continue
    ignored.check(raw)
    warn(`${ignored.name}: ${ignored.note}`)
  }
  if (groups.datastore && Object.keys(groups.datastore).length) cfg.datastore = groups.datastore
  return cfg
}

/**
 * Reads `<dir>/service.json`. Throws ConfigError with the path when missing or invalid; `warn`
 * receives what is accepted but not acted on (see parseServiceConfig).
 */
export async function loadServiceConfig(
  dir: string,
  env: Record<string, string> = {},
  warn: Warn = () => {},
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
  return parseServiceConfig(text, env, warn)
}

/** Options for a fresh configuration (`service init`). */
export interface InitOptions {
  /** Which IPFS connector to write: Kubo over HTTP (default) or the embedded Helia node. */
  connector?: 'ipfshttp' | 'embedded'
  /** Pick random free ports instead of the defaults (9094–9097). */
  randomPorts?: boolean
  /** Which consensus to write: `consensus.raft` (default) or `consensus.crdt`. */
  consensus?: 'raft' | 'crdt'
  /** Raft init_peerset peer IDs (from `--peers`); ignored for CRDT. */
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
    // never wires it): the pin count is a metric operators ask for. Sections of components this
    // implementation does not have are not written: a file that has them loads with a warning.
    // See docs/compat.md.
    if (section.unimplemented) continue
    if (key === 'ipfshttp' && connector !== 'ipfshttp') continue
    // The IPFS proxy stands in front of a Kubo: an embedded node has no RPC API behind it.
    if (key === 'ipfsproxy' && connector !== 'ipfshttp') continue
    if (key === 'embedded' && connector !== 'embedded') continue
    // One consensus section, as the reference's init writes.
    if (key === 'raft' && opts.consensus === 'crdt') continue
    if (key === 'crdt' && opts.consensus !== 'crdt') continue
    ;(cfg as Record<string, unknown>)[key] = section.load(undefined, env)
  }
  if (opts.peers?.length && cfg.raft) cfg.raft.init_peerset = opts.peers
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
