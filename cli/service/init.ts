/**
 * `ipfs-cluster-service init`: writes service.json, identity.json (when missing) and the
 * peerstore, with the reference's prompts and messages. `daemon --init` runs it too.
 *
 * @example
 * ```ts
 * await initConfig(ctx, { force: true, randomPorts: false, peers: [], ipfs: 'embedded', consensus: 'raft' })
 * ```
 */
import { join } from 'node:path'
import { defaultServiceConfig, saveServiceConfig } from '../../src/service_config.ts'
import { identityExists, newIdentity, saveIdentity } from '../../src/config/identity.ts'
import { savePeerstore } from '../../src/config/peerstore.ts'
import { parsePeerMultiaddr } from '../../src/config/peer_multiaddr.ts'
import { acquireLock } from '../../src/util/lock.ts'
import { type ParsedFlags, UsageError } from '../flags.ts'
import { PROGRAM } from './commands.ts'
import { type Ctx, doing } from './context.ts'

const OVERWRITE_PROMPT = 'The configuration file will be overwritten. Continue? [y/n]:'

import { exists } from '../../src/util/fs.ts'
import { freePort } from '../../src/util/free_port.ts'

function withPort(maddr: string, port: number): string {
  return maddr.replace(/\/(tcp|udp)\/\d+/, `/$1/${port}`)
}

/** `init`: writes service.json, identity.json (if missing) and the peerstore. */
export async function initConfig(
  ctx: Ctx,
  opts: {
    force: boolean
    randomPorts: boolean
    peers: string[]
    ipfs: 'ipfshttp' | 'embedded'
    consensus: string
    /** The embedded IPFS node joins the public IPFS network (`--ipfs-public-network`). */
    publicNetwork?: boolean
  },
): Promise<number> {
  const { io, configDir, env } = ctx
  const configPath = join(configDir, 'service.json')
  const identityPath = join(configDir, 'identity.json')
  if (opts.consensus !== 'raft' && opts.consensus !== 'crdt') {
    throw doing('choosing consensus', new Error("flag value must be set to 'raft' or 'crdt'"))
  }
  // Every address is checked before anything is written (the reference writes service.json and
  // identity.json, then fails on an address without /p2p/).
  const peers = opts.peers.map((p) => {
    try {
      return parsePeerMultiaddr(p)
    } catch (err) {
      throw doing(`parsing peer multiaddress: ${p}`, err)
    }
  })
  const configExists = await exists(configPath)
  const hasIdentity = await identityExists(configDir)
  await Deno.mkdir(configDir, { recursive: true })
  const lock = configExists || hasIdentity ? await acquireLock(configDir, PROGRAM) : undefined
  try {
    if (configExists && !opts.force) {
      if (!(await io.confirm(OVERWRITE_PROMPT))) return 0
    }
    // init_peerset: each peer once; the peerstore: every address that has one, in order.
    const peerIds = [...new Set(peers.map((p) => p.id))]
    const addrs = peers.filter((p) => p.dialable).map((p) => p.addr)
    const cfg = defaultServiceConfig(
      { connector: opts.ipfs, peers: peerIds, consensus: opts.consensus as 'raft' | 'crdt' },
      env,
    )
    if (opts.publicNetwork && cfg.embedded) cfg.embedded.public_network = true
    if (opts.randomPorts) {
      const random = (addrs: string[]) => addrs.map((a) => withPort(a, freePort()))
      cfg.cluster.listen_multiaddress = random(cfg.cluster.listen_multiaddress)
      for (const api of [cfg.restapi, cfg.pinsvcapi]) {
        if (api) api.http_listen_multiaddress = random(api.http_listen_multiaddress)
      }
      if (cfg.embedded) cfg.embedded.listen_multiaddress = random(cfg.embedded.listen_multiaddress)
      if (cfg.ipfsproxy) {
        cfg.ipfsproxy.listen_multiaddress = random(cfg.ipfsproxy.listen_multiaddress)
      }
    }
    try {
      await saveServiceConfig(configDir, cfg)
    } catch (err) {
      throw doing('saving default configuration', err)
    }
    await io.stderr(`configuration written to ${configPath}.\n`)
    if (!hasIdentity) {
      await saveIdentity(configDir, await newIdentity())
      await io.stderr(`new identity written to ${identityPath}\n`)
    }
    const peerstorePath = join(configDir, cfg.cluster.peerstore_file || 'peerstore')
    await savePeerstore(peerstorePath, addrs)
    if (peers.length) {
      await io.stderr(`peerstore written to ${peerstorePath} with ${addrs.length} entries.\n`)
    } else {
      await io.stderr(`new empty peerstore written to ${peerstorePath}.\n`)
    }
    return 0
  } finally {
    await lock?.release()
  }
}

/** `init [http-source-url]` with its parsed flags. */
export async function init(f: ParsedFlags, ctx: Ctx): Promise<number> {
  if (f.args.length) {
    throw doing(
      'generating default configuration',
      new Error('remote configuration sources are not supported; copy the file locally'),
    )
  }
  if (!['leveldb', 'badger', 'badger3', 'pebble'].includes(f.string('datastore'))) {
    throw doing(
      'choosing datastore',
      new Error("flag value must be set to 'leveldb', 'badger', 'badger3' or 'pebble'"),
    )
  }
  const ipfs = f.string('ipfs')
  if (ipfs !== 'ipfshttp' && ipfs !== 'embedded') {
    throw new UsageError(`invalid value "${ipfs}" for flag -ipfs: allowed: ipfshttp, embedded`)
  }
  if (f.bool('ipfs-public-network') && ipfs !== 'embedded') {
    throw new UsageError(
      '--ipfs-public-network applies to the embedded IPFS node (--ipfs embedded); ' +
        "a Kubo daemon's own config decides whether it joins the public network",
    )
  }
  let secret: string | undefined
  if (f.bool('custom-secret')) {
    secret = (await ctx.io.prompt('Enter cluster secret (32-byte hex string): ')).trim()
    ctx.env = { ...ctx.env, CLUSTER_SECRET: secret }
  }
  return await initConfig(ctx, {
    force: f.bool('force') || ctx.force,
    randomPorts: f.bool('randomports'),
    // As the reference: an empty element ("a,,b", a trailing comma) is a bad address.
    peers: f.string('peers') === '' ? [] : f.string('peers').split(',').map((s) => s.trim()),
    ipfs,
    consensus: f.string('consensus'),
    publicNetwork: f.bool('ipfs-public-network'),
  })
}
