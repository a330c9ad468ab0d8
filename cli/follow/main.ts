/**
 * `ipfs-cluster-follow`: runs follower peers of CRDT clusters, one folder per followed cluster
 * (`<config>/<clusterName>/`), with the commands, help and messages of IPFS Cluster 1.1.6's
 * `cmd/ipfs-cluster-follow`. Flags are parsed as its CLI library does (urfave/cli v2: flags
 * before arguments, at each level): global `--config` before the cluster name, `--init` and
 * `--gateway` after the subcommand.
 *
 * Departures, each for a clear error: a usage error is one line on stderr and exit 1 (the
 * reference prints it with the whole help page on stdout and exits 0); an unknown subcommand is
 * refused (the reference shows `info`); `-c` works as the reference declares it (its CLI
 * library never registered the alias).
 *
 * @example
 * ```ts
 * const code = await followMain(['myc', 'init', 'https://example.org/service.json'], stdio())
 * ```
 */
import { join } from 'node:path'
import type { CliIO } from '../io.ts'
import { type FlagDef, parseFlags, UsageError } from '../flags.ts'
import { errorMessage } from '../../src/errors.ts'
import { VERSION } from '../../src/types/id.ts'
import { DEFAULT_GATEWAY } from '../../src/cluster/follow.ts'
import {
  appHelp,
  clusterHelp,
  DEFAULT_FOLDER,
  isSubcommand,
  PROGRAM,
  type Subcommand,
  subcommandHelp,
} from './help.ts'
import {
  followCtx,
  FollowError,
  FollowExit,
  info,
  initCluster,
  list,
  listClusters,
} from './commands.ts'

const HELP: FlagDef = { names: ['help', 'h'], kind: 'bool', usage: 'show help' }

/** The global flags (the reference's, `-c` included). */
function globalFlags(defaultPath: string): FlagDef[] {
  return [
    {
      names: ['config', 'c'],
      kind: 'string',
      usage: 'path to the followers configuration and data FOLDER',
      default: defaultPath,
      envVar: 'IPFS_CLUSTER_PATH',
    },
    HELP,
    { names: ['version', 'v'], kind: 'bool', usage: 'print the version' },
  ]
}

const GATEWAY: FlagDef = {
  names: ['gateway'],
  kind: 'string',
  usage: 'gateway URL',
  default: DEFAULT_GATEWAY,
  envVar: 'IPFS_GATEWAY',
  hidden: true,
}

/** Each subcommand's flags. */
const SUB_FLAGS: Record<Subcommand, FlagDef[]> = {
  info: [HELP],
  init: [GATEWAY, HELP],
  run: [
    { names: ['init'], kind: 'string', usage: 'initialize cluster peer with the given URL' },
    GATEWAY,
    HELP,
  ],
  list: [HELP],
}

/** Runs ipfs-cluster-follow with `args`; returns the exit code. */
export async function followMain(args: string[], io: CliIO): Promise<number> {
  try {
    return await dispatch(args, io)
  } catch (err) {
    if (err instanceof FollowExit) return 1
    if (err instanceof UsageError) {
      await io.stderr(`Incorrect Usage: ${err.message}\n`)
      return 1
    }
    const msg = errorMessage(err).replace(/\s*\n\s*/g, ' ')
    await io.stderr(`${err instanceof FollowError ? msg : `error: ${msg}`}\n`)
    return 1
  }
}

async function dispatch(args: string[], io: CliIO): Promise<number> {
  const home = io.env.HOME || '.'
  const g = parseFlags(globalFlags(join(home, DEFAULT_FOLDER)), args, { env: io.env })
  if (g.bool('help')) {
    await io.stdout(appHelp(join(home, DEFAULT_FOLDER)))
    return 0
  }
  if (g.bool('version')) {
    await io.stdout(`${PROGRAM} version ${VERSION}\n`)
    return 0
  }
  const [name, ...rest] = g.args
  const root = g.string('config')
  if (name === undefined) {
    await listClusters(root, io)
    return 0
  }
  if (name === 'help' || name === 'h') {
    await io.stdout(appHelp(join(home, DEFAULT_FOLDER)))
    return 0
  }
  // The cluster level: only --help, then the subcommand.
  const c = parseFlags([HELP], rest, { env: io.env })
  const [sub, ...subArgs] = c.args
  if (c.bool('help') || sub === 'help' || sub === 'h') {
    const topic = sub === 'help' || sub === 'h' ? subArgs[0] : undefined
    if (topic !== undefined && !isSubcommand(topic)) {
      throw new UsageError(`No help topic for '${topic}'`)
    }
    await io.stdout(topic ? subcommandHelp(name, topic) : clusterHelp(name))
    return 0
  }
  if (sub !== undefined && !isSubcommand(sub)) {
    throw new FollowError(
      `${PROGRAM} ${name}: unknown subcommand "${sub}" (info, init, run, list; ` +
        `"${PROGRAM} ${name} --help" lists them)`,
    )
  }
  const s = sub ?? 'info'
  const f = parseFlags(SUB_FLAGS[s], subArgs, { env: io.env })
  if (f.bool('help')) {
    await io.stdout(subcommandHelp(name, s))
    return 0
  }
  const gateway = s === 'init' || s === 'run' ? f.string('gateway') : DEFAULT_GATEWAY
  const ctx = followCtx(root, name, io, gateway)
  switch (s) {
    case 'info':
      await info(ctx)
      return 0
    case 'init':
      if (f.args.length === 0) throw new FollowError('configuration URL not provided')
      await initCluster(ctx, f.args[0], false)
      return 0
    case 'list':
      await list(ctx)
      return 0
    case 'run': {
      const { run } = await import('./run.ts')
      return await run(ctx, { init: f.string('init') || undefined })
    }
  }
}
