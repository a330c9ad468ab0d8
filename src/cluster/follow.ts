/**
 * What a follower peer runs on (ipfs-cluster-follow): its configuration is the cluster's own
 * service.json, published at a URL by the cluster's operators and fetched again at every start;
 * the follower's folder keeps only `{"source": "<url>"}` and its identity. This module turns a
 * source into a URL, checks a fetched configuration (it must be a CRDT cluster's), and applies
 * the follower's local overrides, as IPFS Cluster 1.1.6's `cmd/ipfs-cluster-follow` does:
 * follower mode on, the REST API on the folder's unix socket only, no IPFS proxy and no Pinning
 * Service API, metrics and tracing off.
 *
 * @example
 * ```ts
 * const { url } = sourceUrl('example.org', 'http://127.0.0.1:8080')
 * const cfg = followerConfig(checkFollowedConfig(await fetchFollowedConfig(url), url), dir, env)
 * cfg.cluster.follower_mode // true
 * ```
 */
import { join } from 'node:path'
import { ConfigError, errorMessage } from '../errors.ts'
import { parseServiceConfig, type ServiceConfig } from '../service_config.ts'
import { restApiSection } from '../api/rest/config.ts'
import type { Warn } from '../config/schema.ts'

/** The gateway a DNSLink source is resolved through (the reference's default, scheme added). */
export const DEFAULT_GATEWAY = '127.0.0.1:8080'
/** The follower's REST API socket, in its folder (the reference's name). */
export const API_SOCKET = 'api-socket'

/**
 * The URL of a source given to `init`: an `http://`/`https://` URL as is; anything else is a
 * DNSLink name read through the gateway (`<gateway>/ipns/<name>`). The reference's default
 * gateway has no scheme, which its HTTP client then refuses; a gateway without one gets `http://`.
 */
export function sourceUrl(source: string, gateway: string): { url: string; dnslink: boolean } {
  if (/^https?:\/\//.test(source)) return { url: source, dnslink: false }
  const gw = (/^[a-z][a-z0-9+.-]*:\/\//i.test(gateway) ? gateway : `http://${gateway}`)
    .replace(/\/+$/, '')
  return { url: `${gw}/ipns/${source}`, dnslink: true }
}

/** The configuration source could not be reached (the reference's errFetchingSource). */
export class SourceFetchError extends ConfigError {
  override name = 'SourceFetchError'
  constructor(readonly url: string, cause: unknown) {
    super(`failed retrieving configuration source (${url}): ${errorMessage(cause)}`)
  }
}

/**
 * Fetches a follower's configuration: the body of a 2xx answer. A status of 300 or more is the
 * reference's `unsuccessful request (<status>): <body>`; an unreachable source, a bad URL or a
 * timeout is a SourceFetchError.
 */
export async function fetchFollowedConfig(
  url: string,
  signal: AbortSignal = AbortSignal.timeout(60_000),
): Promise<string> {
  let res: Response
  try {
    res = await fetch(url, { signal, redirect: 'follow' })
  } catch (err) {
    throw new SourceFetchError(url, err)
  }
  let body: string
  try {
    body = await res.text()
  } catch (err) {
    throw new SourceFetchError(url, err)
  }
  if (res.status >= 300) {
    const excerpt = body.length > 200 ? `${body.slice(0, 200)}…` : body
    throw new ConfigError(
      `configuration source ${url}: unsuccessful request (${res.status}): ${excerpt.trim()}`,
    )
  }
  return body
}

/**
 * Checks that a fetched configuration can be followed, before it is parsed: a JSON object that
 * does not point to another source and holds exactly one consensus section, `crdt` (a follower
 * subscribes to the cluster's CRDT topic; a Raft cluster has nothing to follow). Returns the
 * text; the error names the source and what is wrong.
 */
export function checkFollowedConfig(text: string, url: string): string {
  const at = `the configuration at ${url}`
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${at} is not valid JSON: ${errorMessage(err)}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${at} is not a JSON object (a service.json)`)
  }
  const top = json as Record<string, unknown>
  const key = (o: Record<string, unknown>, k: string) =>
    Object.keys(o).find((x) => x.toLowerCase() === k)
  const src = key(top, 'source')
  if (src !== undefined && top[src] !== '' && top[src] !== null) {
    throw new ConfigError(
      `${at} points to another source (${JSON.stringify(top[src])}); a remote configuration ` +
        'must be the whole service.json, not a redirection',
    )
  }
  const c = key(top, 'consensus')
  const consensus = c === undefined ? {} : top[c]
  const sections = typeof consensus === 'object' && consensus !== null
    ? Object.keys(consensus).filter((k) => (consensus as Record<string, unknown>)[k] !== null)
    : []
  if (sections.length === 1 && sections[0] === 'crdt') return text
  if (sections.length === 0) {
    throw new ConfigError(
      `${at} has no consensus section; a follower follows a CRDT cluster: it needs ` +
        'consensus.crdt',
    )
  }
  if (sections.length > 1) {
    throw new ConfigError(
      `${at} has ${sections.length} consensus sections (${
        sections.map((s) => `consensus.${s}`).join(', ')
      }); a follower needs exactly one: consensus.crdt`,
    )
  }
  throw new ConfigError(
    `${at} uses consensus.${sections[0]}; ipfs-cluster-follow follows CRDT clusters only ` +
      '(consensus.crdt)',
  )
}

/**
 * The configuration a follower runs with: the cluster's (parsed, env overrides applied) with the
 * follower's overrides. Listen addresses, secret, peer addresses, pubsub, CRDT settings, the IPFS
 * connector, tracker, monitor, allocator and informers are the cluster's; the REST API is
 * replaced by one on `<dir>/api-socket` (CLUSTER_RESTAPI_* still apply), and the APIs a follower
 * does not serve are dropped.
 */
export function followerConfig(
  text: string,
  dir: string,
  env: Record<string, string>,
  warn: Warn = () => {},
): ServiceConfig {
  const cfg = parseServiceConfig(text, env, warn)
  cfg.cluster.follower_mode = true
  cfg.restapi = restApiSection.load(
    { http_listen_multiaddress: [`/unix${join(dir, API_SOCKET)}`] },
    env,
    warn,
  )
  // The reference's follower serves its REST API only, and exports no metrics nor traces, so
  // that nothing about the follower's user leaves the machine.
  delete cfg.ipfsproxy
  delete cfg.pinsvcapi
  delete cfg.metrics
  delete cfg.tracing
  return cfg
}

/**
 * Reads a follower folder's service.json (`{"source": "<url>"}`) and returns its source URL.
 * A folder whose service.json holds a whole configuration is not a follower's.
 */
export async function readFollowerSource(dir: string): Promise<string> {
  const file = join(dir, 'service.json')
  let json: unknown
  try {
    json = JSON.parse(await Deno.readTextFile(file))
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(`${file} does not exist: run "ipfs-cluster-follow <name> init <url>"`)
    }
    throw new ConfigError(`cannot read ${file}: ${errorMessage(err)}`)
  }
  const source = typeof json === 'object' && json !== null
    ? (json as Record<string, unknown>).source
    : undefined
  if (typeof source !== 'string' || source === '') {
    throw new ConfigError(
      `${file} has no "source": a follower's service.json is {"source": "<url of the ` +
        'cluster\'s configuration>"}',
    )
  }
  return source
}

/** Writes a follower folder's service.json: the source only (mode 0600, as the reference). */
export async function writeFollowerSource(dir: string, url: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 })
  const text = JSON.stringify({ source: url }, null, 2) + '\n'
  await Deno.writeTextFile(join(dir, 'service.json'), text, { mode: 0o600, createNew: true })
}
