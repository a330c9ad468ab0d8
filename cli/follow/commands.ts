/**
 * The commands of ipfs-cluster-follow but `run` (run.ts): the list of followed clusters, `init`,
 * `info` and `list`, with the output of IPFS Cluster 1.1.6's `cmd/ipfs-cluster-follow`. Every
 * command works on one cluster's folder, `<config>/<clusterName>/`.
 *
 * @example
 * ```ts
 * const ctx = followCtx('/home/me/.ipfs-cluster-follow', 'myc', io, gateway)
 * await initCluster(ctx, 'https://example.org/service.json', false)
 * ```
 */
import { join, resolve } from 'node:path'
import type { CliIO } from '../io.ts'
import type { IPFSConnector } from '../../src/components.ts'
import { newIdentity, saveIdentity } from '../../src/config/identity.ts'
import { errorMessage } from '../../src/errors.ts'
import {
  API_SOCKET,
  checkFollowedConfig,
  fetchFollowedConfig,
  followerConfig,
  readFollowerSource,
  SourceFetchError,
  sourceUrl,
  writeFollowerSource,
} from '../../src/cluster/follow.ts'
import { exists } from '../../src/util/fs.ts'
import { restClient } from '../../src/api/rest/client.ts'
import { ApiError } from '../../src/api/rest/client_types.ts'
import { FIRST_START, notInitialized, PROGRAM } from './help.ts'

/** What a command of one followed cluster works with. */
export interface FollowCtx {
  io: CliIO
  /** The folder of every followed cluster (`--config`), absolute. */
  root: string
  /** The cluster's name (the first argument). */
  name: string
  /** `<root>/<name>`. */
  dir: string
  /** The gateway a DNSLink source goes through (`--gateway`, IPFS_GATEWAY). */
  gateway: string
}

/** A command failed: its one line goes to stderr and the program exits with 1. */
export class FollowError extends Error {
  override name = 'FollowError'
}

/** A command that already said why it stops (on stdout, as the reference) and exits with 1. */
export class FollowExit extends Error {
  override name = 'FollowExit'
  constructor() {
    super('exit 1')
  }
}

/** Builds the context of one cluster's command. */
export function followCtx(root: string, name: string, io: CliIO, gateway: string): FollowCtx {
  const abs = resolve(root)
  return { io, root: abs, name, dir: join(abs, name), gateway }
}

/** Whether the cluster has a folder (the reference's isInitialized). */
export async function isInitialized(ctx: FollowCtx): Promise<boolean> {
  return await exists(ctx.dir)
}

/** Says the cluster is not initialized and stops with 1, as the reference does. */
export async function requireInitialized(ctx: FollowCtx): Promise<void> {
  if (await isInitialized(ctx)) return
  await ctx.io.stdout(notInitialized(ctx.name))
  throw new FollowExit()
}

/**
 * `ipfs-cluster-follow` without arguments: the clusters of the config folder (sub-folders with a
 * service.json), or the first-start text when there are none.
 */
export async function listClusters(root: string, io: CliIO): Promise<void> {
  const names: string[] = []
  try {
    for await (const e of Deno.readDir(resolve(root))) {
      if (e.isDirectory && await exists(join(root, e.name, 'service.json'))) names.push(e.name)
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new FollowError(`reading ${resolve(root)}: ${errorMessage(err)}`)
    }
  }
  if (names.length === 0) return void await io.stdout(FIRST_START)
  names.sort()
  let out =
    `Configurations found for ${names.length} follower peers. For info and help, try running:\n\n`
  for (const n of names) out += `${PROGRAM} "${n}"\n`
  out += `\nTip: "${PROGRAM} --help" for help and examples.\n`
  await io.stdout(out)
}

/**
 * `<name> init <url>`: the cluster's folder with a new identity and `{"source": <url>}`. A folder
 * that exists already is an error, unless `ignoreReinit` (`run --init`), which says so and goes on.
 */
export async function initCluster(
  ctx: FollowCtx,
  source: string,
  ignoreReinit: boolean,
): Promise<void> {
  const { io, dir, name } = ctx
  if (await isInitialized(ctx)) {
    if (ignoreReinit) {
      await io.stdout(
        'Configuration for this cluster already exists. Skipping initialization.\n' +
          `If you wish to re-initialize, simply delete ${dir}\n\n`,
      )
      return
    }
    throw new FollowError(
      `Configuration for this cluster already exists. Please delete ${dir} if you wish to ` +
        're-initialize.',
    )
  }
  const { url, dnslink } = sourceUrl(source, ctx.gateway)
  try {
    const u = new URL(url)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)')
  } catch {
    throw new FollowError(
      `invalid configuration URL ${JSON.stringify(url)}: give an http:// or https:// URL, or a ` +
        'DNSLink name with a gateway URL (--gateway, IPFS_GATEWAY)',
    )
  }
  if (dnslink) {
    await io.stdout(
      `${source} will be assumed to be an DNSLink-powered address: /ipns/${source}.\n` +
        `It will be resolved using the local IPFS daemon's gateway (${ctx.gateway}).\n` +
        'If this is not the case, specify the full url starting with http:// or https://.\n' +
        '(You can override the gateway URL by setting IPFS_GATEWAY)\n\n',
    )
  }
  const identityPath = join(dir, 'identity.json')
  const configPath = join(dir, 'service.json')
  try {
    // Private, as the reference's: the folder holds the identity and the cluster's secret.
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 })
    await saveIdentity(dir, await newIdentity())
  } catch (err) {
    throw new FollowError(`error saving ${identityPath}: ${errorMessage(err)}`)
  }
  await io.stdout(`Identity written to ${identityPath}.\n`)
  try {
    await writeFollowerSource(dir, url)
  } catch (err) {
    throw new FollowError(`saving ${configPath}: ${errorMessage(err)}`)
  }
  await io.stdout(
    `Configuration written to ${configPath}.\n` +
      `Cluster "${name}" follower peer initialized.\n\n` +
      `You can now use "${PROGRAM} ${name} run" to start a follower peer for this cluster.\n` +
      '(Remember to start your IPFS daemon before)\n',
  )
}

/**
 * The cluster's configuration as the follower runs it: its source fetched, checked (CRDT only)
 * and the follower's overrides applied. Errors are ConfigErrors naming the source.
 */
export async function loadFollowedConfig(
  ctx: FollowCtx,
  warn: (msg: string) => void = () => {},
  signal?: AbortSignal,
): Promise<{ source: string; config: ReturnType<typeof followerConfig> }> {
  const source = await readFollowerSource(ctx.dir)
  const text = checkFollowedConfig(await fetchFollowedConfig(source, signal), source)
  return { source, config: followerConfig(text, ctx.dir, ctx.io.env, warn) }
}

/** The REST client of the cluster's running peer: its socket, or CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS. */
export function peerClient(ctx: FollowCtx, timeoutMs = 10_000) {
  const host = ctx.io.env.CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS ||
    `/unix${join(ctx.dir, API_SOCKET)}`
  return restClient({ host, timeoutMs })
}

/**
 * `<name> info` (and `<name>` alone): the folder, whether the source answers, whether the peer
 * and its IPFS daemon are online.
 */
export async function info(ctx: FollowCtx): Promise<void> {
  await requireInitialized(ctx)
  let url: string
  let ipfsAddr: string | undefined
  try {
    const { source, config } = await loadFollowedConfig(ctx, () => {}, AbortSignal.timeout(10_000))
    url = `Available (${source})`
    ipfsAddr = config.ipfshttp?.node_multiaddress
  } catch (err) {
    if (!(err instanceof SourceFetchError)) {
      throw new FollowError(`reading the configurations in ${ctx.dir}: ${errorMessage(err)}`)
    }
    url = `failed retrieving configuration source (${err.url})`
  }
  await ctx.io.stdout(
    `Information about follower peer for Cluster "${ctx.name}":\n\n` +
      `Config folder: ${ctx.dir}\n` +
      `Config source URL: ${url}\n`,
  )
  const online = await peerClient(ctx, 5_000).version().then(() => true, () => false)
  await ctx.io.stdout(`Cluster Peer online: ${online}\n`)
  const ipfs = await ipfsOnline(ctx.io.env, ipfsAddr)
  await ctx.io.stdout(`IPFS peer online: ${ipfs}\n`)
}

/** Whether the IPFS daemon answers `id` within 5 s (one try: `info`, and each of `run`'s waits). */
export async function answersId(ipfs: IPFSConnector): Promise<boolean> {
  try {
    await ipfs.id(AbortSignal.timeout(5_000))
    return true
  } catch {
    return false
  }
}

/** Whether the IPFS daemon of the config (or the default and env's) answers `id`. */
async function ipfsOnline(env: Record<string, string>, addr?: string): Promise<boolean> {
  const { ipfsHttpSection } = await import('../../src/ipfsconn/ipfshttp/config.ts')
  const { ipfsHttpConnector } = await import('../../src/ipfsconn/ipfshttp/connector.ts')
  const cfg = ipfsHttpSection.load(addr ? { node_multiaddress: addr } : undefined, env)
  const ipfs = ipfsHttpConnector(cfg)
  try {
    return await answersId(ipfs)
  } finally {
    await ipfs.stop()
  }
}

/**
 * `<name> list`: every pin with this peer's status (`%-20s <cid> <name>`), asked of the running
 * peer; when it does not answer, the pins of the state on disk, each `offline`.
 */
export async function list(ctx: FollowCtx): Promise<void> {
  await requireInitialized(ctx)
  const print = (status: string, cid: string, name: string, error: string) =>
    ctx.io.stdout(`${status.padEnd(20)} ${cid} ${error ? `${name} (${error})` : name}\n`)
  try {
    for await (const g of peerClient(ctx, 0).statusAll({ local: true })) {
      // One peer only: the follower's own.
      const pi = Object.values(g.peer_map)[0]
      await print(pi?.status ?? '', g.cid, g.name, pi?.error ?? '')
    }
    return
  } catch (err) {
    if (err instanceof ApiError && err.code !== 0) {
      throw new FollowError(
        `The Peer API seems to be running but returned with code ${err.code}: ${err.message}`,
      )
    }
    if (!(err instanceof ApiError)) throw err
  }
  await listOffline(ctx, (cid, name) => print('offline', cid, name, ''))
}

/** The pins of the follower's state on disk (no peer running). */
async function listOffline(
  ctx: FollowCtx,
  print: (cid: string, name: string) => Promise<void> | void,
): Promise<void> {
  const { stateDbPath } = await import('../../src/state/open.ts')
  const { openKvState } = await import('../../src/state/kv_state.ts')
  const { clusterSection } = await import('../../src/cluster/config.ts')
  const { crdtSection } = await import('../../src/consensus/crdt/config.ts')
  const path = stateDbPath(ctx.dir, {
    cluster: clusterSection.defaults(),
    crdt: crdtSection.defaults(),
  })
  // A follower that never ran has no state: nothing to list (the reference lists nothing too).
  if (!(await exists(path))) return
  const state = await openKvState(path)
  try {
    for await (const pin of state.list()) await print(pin.cid, pin.name)
  } catch (err) {
    throw new FollowError(`error obtaining the pinset: ${errorMessage(err)}`)
  } finally {
    await state.close()
  }
}
