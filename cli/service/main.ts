/**
 * `ipfs-cluster-service`: init, daemon, state export/import/cleanup, version — the commands,
 * flags, prompts and messages of IPFS Cluster 1.1.6. Command logic lives in src/; this file parses
 * arguments and prints.
 *
 * @example
 * ```ts
 * const code = await serviceMain(['--config', dir, 'init', '--force'], stdio())
 * ```
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  defaultConfigDir,
  defaultServiceConfig,
  loadServiceConfig,
  saveServiceConfig,
} from '../../src/config/service.ts'
import { identityExists, newIdentity, saveIdentity } from '../../src/config/identity.ts'
import { savePeerstore } from '../../src/config/peerstore.ts'
import { acquireLock } from '../../src/util/lock.ts'
import { logging } from '../../src/util/log.ts'
import { dataFolder, openStateFor, stateDbPath } from '../../src/state/open.ts'
import { replacePinset } from '../../src/state/import.ts'
import { storedPinBatchesInWorker } from '../../src/state/import_parse.ts'
import { carryOverRaftState } from '../../src/consensus/raft/kv_storage.ts'
import { encodePin } from '../../src/types/pin.ts'
import { VERSION } from '../../src/types/id.ts'
import { errorMessage } from '../../src/errors.ts'
import { type CliIO, UsageError } from '../io.ts'

const PROGRAM = 'ipfs-cluster-service'
const OVERWRITE_PROMPT = 'The configuration file will be overwritten. Continue? [y/n]:'
const IMPORT_PROMPT = 'The pinset (state) of this peer will be replaced. Continue? [y/n]:'
const CLEANUP_PROMPT =
  'The peer state will be removed.  Existing pins may be lost. Continue? [y/n]:'

const GLOBAL = {
  config: { type: 'string', short: 'c' },
  force: { type: 'boolean', short: 'f' },
  debug: { type: 'boolean', short: 'd' },
  loglevel: { type: 'string', short: 'l' },
  version: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const

const HELP = `NAME:
   ${PROGRAM} - IPFS Cluster peer

USAGE:
   ${PROGRAM} [global options] command [command options] [arguments...]

DESCRIPTION:
   ${PROGRAM} runs an IPFS Cluster peer (a Deno re-implementation of IPFS Cluster ${VERSION}).

COMMANDS:
   init     Creates a configuration and generates an identity
   daemon   Runs the IPFS Cluster peer (default)
   state    Manages the peer's persistent state (pinset)
   version  Prints the ipfs-cluster version
   help, h  Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --config FOLDER, -c FOLDER  path to the configuration and data FOLDER (default: "~/.ipfs-cluster") [$IPFS_CLUSTER_PATH]
   --force, -f                 forcefully proceed with some actions. i.e. overwriting configuration
   --debug, -d                 enable full debug logging (very verbose)
   --loglevel value, -l value  set overall and component-wise log levels (default: "info") [$IPFS_CLUSTER_LOG_LEVEL]
   --help, -h                  show help
   --version, -v               print the version
`

/** Runs ipfs-cluster-service with `args`; returns the exit code. */
export async function serviceMain(args: string[], io: CliIO): Promise<number> {
  try {
    return await run(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      await io.stderr(`${err.message}\n`)
      return 1
    }
    await io.stderr(
      `error ${(err as { doing?: string }).doing ?? 'running'}: ${errorMessage(err)}\n`,
    )
    return 1
  }
}

function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(
  args: string[],
  options: T,
  what: string,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError(`Incorrect Usage: ${errorMessage(err)} (${what})`)
  }
}

function doing(what: string, err: unknown): Error {
  // The innermost step names the error: `reading import file` stays when `importing state` wraps.
  const e: Error & { doing?: string } = err instanceof Error ? err : new Error(String(err))
  e.doing ??= what
  return e
}

/** Splits global flags (before the command) from the command and its arguments. */
function splitGlobal(args: string[]): { global: string[]; rest: string[] } {
  const withValue = new Set(['--config', '-c', '--loglevel', '-l'])
  let i = 0
  while (i < args.length && args[i].startsWith('-')) {
    if (withValue.has(args[i])) i++
    i++
  }
  return { global: args.slice(0, i), rest: args.slice(i) }
}

async function run(args: string[], io: CliIO): Promise<number> {
  const { global, rest } = splitGlobal(args)
  const g = parse(global, GLOBAL, 'global options').values
  if (g.version) {
    await io.stdout(`${PROGRAM} version ${VERSION}\n`)
    return 0
  }
  const [cmd, ...cmdArgs] = rest
  if (g.help || cmd === 'help' || cmd === 'h') {
    await io.stdout(HELP)
    return 0
  }
  const env = io.env
  const configDir = g.config ?? defaultConfigDir(env)
  const logLevel = g.debug ? 'debug' : g.loglevel ?? env.IPFS_CLUSTER_LOG_LEVEL ?? 'info'
  // Checked before any command runs: a bad spec must not fail a state import after the wipe.
  try {
    logging(logLevel, () => {})
  } catch (err) {
    throw doing('setting log level', err)
  }
  const ctx = { io, env, configDir, logLevel, force: !!g.force }
  switch (cmd) {
    case undefined:
      await io.stderr(HELP)
      return 1
    case 'init':
      return await init(cmdArgs, ctx)
    case 'daemon':
      return await daemon(cmdArgs, ctx)
    case 'state':
      return await state(cmdArgs, ctx)
    case 'version':
      await io.stdout(`${VERSION}\n`)
      return 0
    default:
      throw new UsageError(`No help topic for '${cmd}'`)
  }
}

interface Ctx {
  io: CliIO
  env: Record<string, string>
  configDir: string
  logLevel: string
  force: boolean
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path)
    return true
  } catch {
    return false
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const port = (l.addr as Deno.NetAddr).port
  l.close()
  return port
}

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
  if (opts.consensus === 'crdt') {
    throw doing(
      'choosing consensus',
      new Error('this implementation runs Raft consensus only: use --consensus raft (the default)'),
    )
  }
  const configExists = await exists(configPath)
  const hasIdentity = await identityExists(configDir)
  await Deno.mkdir(configDir, { recursive: true })
  const lock = configExists || hasIdentity ? await acquireLock(configDir, PROGRAM) : undefined
  try {
    if (configExists && !opts.force) {
      if (!(await io.confirm(OVERWRITE_PROMPT))) return 0
    }
    const peerIds = opts.peers.map((p) => {
      const m = /\/p2p\/([^/]+)$/.exec(p)
      if (!m) throw doing(`parsing peer multiaddress: ${p}`, new Error('no /p2p/ peer ID in it'))
      return m[1]
    })
    const cfg = defaultServiceConfig({ connector: opts.ipfs, peers: peerIds }, env)
    if (opts.publicNetwork && cfg.embedded) cfg.embedded.public_network = true
    if (opts.randomPorts) {
      cfg.cluster.listen_multiaddress = await Promise.all(
        cfg.cluster.listen_multiaddress.map(async (a) => withPort(a, await freePort())),
      )
      for (const api of [cfg.restapi, cfg.pinsvcapi]) {
        if (api) {
          api.http_listen_multiaddress = await Promise.all(
            api.http_listen_multiaddress.map(async (a) => withPort(a, await freePort())),
          )
        }
      }
      if (cfg.embedded) {
        cfg.embedded.listen_multiaddress = await Promise.all(
          cfg.embedded.listen_multiaddress.map(async (a) => withPort(a, await freePort())),
        )
      }
      if (cfg.ipfsproxy) {
        cfg.ipfsproxy.listen_multiaddress = withPort(
          cfg.ipfsproxy.listen_multiaddress,
          await freePort(),
        )
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
    await savePeerstore(peerstorePath, opts.peers)
    if (opts.peers.length) {
      await io.stderr(
        `peerstore written to ${peerstorePath} with ${opts.peers.length} entries.\n`,
      )
    } else {
      await io.stderr(`new empty peerstore written to ${peerstorePath}.\n`)
    }
    return 0
  } finally {
    await lock?.release()
  }
}

async function init(args: string[], ctx: Ctx): Promise<number> {
  const { values, positionals } = parse(args, {
    consensus: { type: 'string', default: 'raft' },
    datastore: { type: 'string', default: 'pebble' },
    'custom-secret': { type: 'boolean', short: 's' },
    peers: { type: 'string' },
    force: { type: 'boolean', short: 'f' },
    randomports: { type: 'boolean' },
    ipfs: { type: 'string', default: 'ipfshttp' },
    'ipfs-public-network': { type: 'boolean' },
  }, 'init')
  if (positionals.length) {
    throw doing(
      'generating default configuration',
      new Error('remote configuration sources are not supported; copy the file locally'),
    )
  }
  if (!['leveldb', 'badger', 'badger3', 'pebble'].includes(values.datastore!)) {
    throw doing(
      'choosing datastore',
      new Error("flag value must be set to 'leveldb', 'badger', 'badger3' or 'pebble'"),
    )
  }
  if (values.ipfs !== 'ipfshttp' && values.ipfs !== 'embedded') {
    throw new UsageError(
      `invalid value for --ipfs: ${values.ipfs} (allowed: ipfshttp, embedded)`,
    )
  }
  if (values['ipfs-public-network'] && values.ipfs !== 'embedded') {
    throw new UsageError(
      '--ipfs-public-network applies to the embedded IPFS node (--ipfs embedded); ' +
        "a Kubo daemon's own config decides whether it joins the public network",
    )
  }
  let secret: string | undefined
  if (values['custom-secret']) {
    secret = (await ctx.io.prompt('Enter cluster secret (32-byte hex string): ')).trim()
    ctx.env = { ...ctx.env, CLUSTER_SECRET: secret }
  }
  return await initConfig(ctx, {
    force: !!values.force || ctx.force,
    randomPorts: !!values.randomports,
    peers: values.peers ? values.peers.split(',').map((s) => s.trim()).filter(Boolean) : [],
    ipfs: values.ipfs as 'ipfshttp' | 'embedded',
    consensus: values.consensus!,
    publicNetwork: !!values['ipfs-public-network'],
  })
}

async function daemon(args: string[], ctx: Ctx): Promise<number> {
  const { values } = parse(args, {
    upgrade: { type: 'boolean', short: 'u' },
    bootstrap: { type: 'string', short: 'j' },
    leave: { type: 'boolean', short: 'x' },
    stats: { type: 'boolean' },
    tracing: { type: 'boolean' },
    'no-trust': { type: 'boolean' },
    init: { type: 'boolean' },
  }, 'daemon')
  if (values.init && !(await exists(join(ctx.configDir, 'service.json')))) {
    const code = await initConfig(ctx, {
      force: true,
      randomPorts: false,
      peers: [],
      ipfs: 'embedded',
      consensus: 'raft',
    })
    if (code !== 0) return code
  }
  const { runDaemon } = await import('../../src/daemon.ts')
  return await runDaemon({
    configDir: ctx.configDir,
    env: ctx.env,
    logging: logging(ctx.logLevel),
    leave: !!values.leave,
    bootstrap: values.bootstrap ? values.bootstrap.split(',').map((s) => s.trim()) : [],
    signals: ctx.io.signals,
  })
}

async function state(args: string[], ctx: Ctx): Promise<number> {
  const [sub, ...rest] = args
  const { io, configDir } = ctx
  switch (sub) {
    case 'export': {
      const { values } = parse(rest, { file: { type: 'string', short: 'f' } }, 'state export')
      const lock = await lockOrFail(configDir)
      try {
        const cfg = await loadConfig(ctx)
        const st = await openStateFor(configDir, cfg)
        try {
          const out = values.file
            ? await Deno.open(values.file, { write: true, create: true, truncate: true })
            : undefined
          const enc = new TextEncoder()
          let buf = ''
          const flush = async () => {
            if (!buf) return
            if (out) await writeAll(out, enc.encode(buf))
            else await io.stdout(buf)
            buf = ''
          }
          for await (const pin of st.list()) {
            buf += encodePin(pin) + '\n'
            if (buf.length > 64 * 1024) await flush()
          }
          await flush()
          out?.close()
        } finally {
          st.close()
        }
      } catch (err) {
        throw doing('exporting state', err)
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'import': {
      const { values, positionals } = parse(rest, {
        force: { type: 'boolean', short: 'f' },
        'replication-min': { type: 'string' },
        rmin: { type: 'string' },
        'replication-max': { type: 'string' },
        rmax: { type: 'string' },
        allocations: { type: 'string' },
        allocs: { type: 'string' },
      }, 'state import')
      const int = (v: string | undefined, name: string) => {
        if (v === undefined) return 0
        if (!/^-?\d+$/.test(v)) throw new UsageError(`invalid value "${v}" for flag -${name}`)
        return parseInt(v, 10)
      }
      const rmin = int(values['replication-min'] ?? values.rmin, 'replication-min')
      const rmax = int(values['replication-max'] ?? values.rmax, 'replication-max')
      const allocsStr = values.allocations ?? values.allocs
      const allocs = allocsStr ? allocsStr.split(',').map((s) => s.trim()).filter(Boolean) : []
      const lock = await lockOrFail(configDir)
      try {
        if (!values.force && !ctx.force && !(await io.confirm(IMPORT_PROMPT))) return 0
        const file = positionals[0]
        if (file) {
          try {
            // Checked here for the message; the parsing thread opens it again to read it.
            ;(await Deno.open(file)).close()
          } catch (err) {
            throw doing('reading import file', err)
          }
        } else {
          await io.stdout('reading from stdin, Ctrl-D to finish\n')
        }
        try {
          const cfg = await loadConfig(ctx)
          await Deno.mkdir(dataFolder(configDir, cfg), { recursive: true })
          // One pass: the new pinset is built beside the old one, which a bad pin anywhere in the
          // input leaves untouched (src/state/import.ts).
          const overrides = { replicationMin: rmin, replicationMax: rmax, allocations: allocs }
          await replacePinset(
            stateDbPath(configDir, cfg),
            storedPinBatchesInWorker(file ?? io.stdin(), overrides),
            { carryOver: carryOverRaftState },
          )
        } catch (err) {
          throw doing('importing state', err)
        }
        serviceLog(ctx).info(
          'state successfully imported.  Make sure all peers have consistent states',
        )
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'cleanup': {
      const { values } = parse(rest, { force: { type: 'boolean', short: 'f' } }, 'state cleanup')
      const lock = await lockOrFail(configDir)
      try {
        if (!values.force && !ctx.force && !(await io.confirm(CLEANUP_PROMPT))) return 0
        const cfg = await loadConfig(ctx)
        const st = await openStateFor(configDir, cfg)
        try {
          await st.clear()
        } catch (err) {
          throw doing('cleaning state', err)
        } finally {
          st.close()
        }
        serviceLog(ctx).info('data correctly cleaned up')
      } finally {
        await lock.release()
      }
      return 0
    }
    case 'crdt':
      throw doing('running state crdt', new Error('this peer runs Raft consensus; no CRDT state'))
    default:
      throw new UsageError(
        sub ? `No help topic for '${sub}'` : 'state needs a sub-command: export, import, cleanup',
      )
  }
}

/** The `service` logger of a state command, writing through the command's IO (stderr). */
/** Reads service.json; what it holds that this peer ignores is logged once (facility config). */
function loadConfig(ctx: Ctx) {
  const log = logging(ctx.logLevel, (line) => void ctx.io.stderr(`${line}\n`)).get('config')
  return loadServiceConfig(ctx.configDir, ctx.env, (m) => log.warn(m))
}

function serviceLog(ctx: Ctx) {
  return logging(ctx.logLevel, (line) => void ctx.io.stderr(`${line}\n`)).get('service')
}

async function lockOrFail(dir: string) {
  try {
    return await acquireLock(dir, PROGRAM)
  } catch (err) {
    throw doing('obtaining execution lock', err)
  }
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array) {
  let off = 0
  while (off < bytes.length) off += await f.write(bytes.subarray(off))
}
