/**
 * `ipfs-cluster-ctl`: parses the global flags, builds the REST client (the reference's app.Before)
 * and dispatches to a command. Everything goes through the given I/O and the exit code is
 * returned, so the whole CLI runs in-process in tests.
 *
 * @example
 * ```ts
 * const code = await ctlMain(['--enc=json', 'id'], {
 *   stdout: (s) => Deno.stdout.write(new TextEncoder().encode(s)).then(() => {}),
 *   stderr: (s) => Deno.stderr.write(new TextEncoder().encode(s)).then(() => {}),
 *   env: Deno.env.toObject(),
 * })
 * ```
 */
import { type RestClient, restClient } from '../../src/api/rest/client.ts'
import { EndpointError } from '../../src/api/rest/client_transport.ts'
import { type Command, COMMANDS, findCommand } from './commands.ts'
import { actionContext, CtlExit, type CtlIO, errorText } from './context.ts'
import { type FlagDef, type ParsedFlags, parseFlags, UsageError } from '../flags.ts'
import { commandHelp, groupHelp, HELP_FLAG } from '../help.ts'
import { appHelp, CTL_VERSION, PROGRAM } from './help.ts'
import { escapeControl } from '../../src/util/escape.ts'

export type { CtlIO } from './context.ts'

/** The global flags, as the reference declares them. */
export const GLOBAL_FLAGS: FlagDef[] = [
  {
    names: ['host', 'l'],
    kind: 'string',
    usage: 'API endpoint multiaddresses (comma-separated)',
    default: '/ip4/127.0.0.1/tcp/9094',
  },
  {
    names: ['secret'],
    kind: 'string',
    usage: 'cluster secret (32 byte pnet-key) as needed. Only when using the LibP2P endpoint',
    default: '',
  },
  { names: ['https', 's'], kind: 'bool', usage: 'use https to connect to the API' },
  {
    names: ['no-check-certificate'],
    kind: 'bool',
    usage: 'do not verify server TLS certificate. only valid with --https flag',
  },
  {
    names: ['encoding', 'enc'],
    kind: 'string',
    usage: 'output format encoding [text, json]',
    default: 'text',
  },
  {
    names: ['timeout', 't'],
    kind: 'int',
    usage: 'number of seconds to wait before timing out a request',
    default: 0,
  },
  { names: ['debug', 'd'], kind: 'bool', usage: 'set debug log level' },
  {
    names: ['basic-auth'],
    kind: 'string',
    usage: '<username>[:<password>] specify BasicAuth credentials for server that\n' +
      'requires authorization. implies --https, which you can disable with --force-http',
    envVar: 'CLUSTER_CREDENTIALS',
  },
  {
    names: ['force-http', 'f'],
    kind: 'bool',
    usage: 'force HTTP. only valid when using BasicAuth',
  },
  HELP_FLAG,
  { names: ['version', 'v'], kind: 'bool', usage: 'print the version' },
]

/** Runs ipfs-cluster-ctl with `args` (without the program name); resolves to the exit code. */
export async function ctlMain(args: string[], io: CtlIO): Promise<number> {
  try {
    await run(args, io)
    return 0
  } catch (err) {
    if (err instanceof CtlExit) return err.code
    if (err instanceof UsageError) {
      await io.stderr(`Incorrect Usage: ${escapeControl(err.message)}\n`)
      return 1
    }
    await io.stderr(`error : ${escapeControl(errorText(err))}\n`)
    return 1
  }
}

async function run(args: string[], io: CtlIO): Promise<void> {
  const global = parseFlags(GLOBAL_FLAGS, args, { env: io.env })
  if (global.bool('help')) return await io.stdout(appHelp(COMMANDS, GLOBAL_FLAGS))
  if (global.bool('version')) return await io.stdout(`${PROGRAM} version ${CTL_VERSION}\n`)
  const before = await setup(global, io)
  const rest = global.args
  if (rest.length === 0) return await io.stdout(appHelp(COMMANDS, GLOBAL_FLAGS))
  await dispatch(COMMANDS, PROGRAM, rest, io, before)
}

interface Setup {
  encoding: 'text' | 'json'
  client: () => RestClient
}

const fail = async (io: CtlIO, doing: string, err: unknown): Promise<never> => {
  await io.stderr(`error ${doing}: ${escapeControl(errorText(err))}\n`)
  throw new CtlExit(1)
}

/** The reference's app.Before: validates the global flags and prepares the client. */
async function setup(g: ParsedFlags, io: CtlIO): Promise<Setup> {
  if (g.bool('debug')) await io.stderr('DEBUG\tcluster-ctl\tdebug level enabled\n')
  const secret = g.string('secret')
  if (secret !== '' && !/^([0-9a-fA-F]{2})*$/.test(secret)) {
    await fail(io, 'parsing secret', new Error('encoding/hex: invalid byte in secret'))
  }
  let useHttps = g.bool('https')
  const creds = g.string('basic-auth')
  const colon = creds.indexOf(':')
  const user = colon < 0 ? creds : creds.slice(0, colon)
  const pass = colon < 0 ? '' : creds.slice(colon + 1)
  if (user !== '' && !useHttps && !g.bool('force-http')) {
    await io.stderr(
      'WARN\tcluster-ctl\tSSL automatically enabled with basic auth credentials. ' +
        'Set "force-http" to disable\n',
    )
    useHttps = true
  }
  const enc = g.string('encoding')
  if (enc !== 'text' && enc !== 'json') await fail(io, '', new Error('unsupported encoding'))
  let client: RestClient
  try {
    client = restClient({
      host: g.string('host'),
      https: useHttps,
      noCheckCertificate: g.bool('no-check-certificate'),
      basicAuth: user !== '' ? { user, pass } : undefined,
      timeoutMs: g.int('timeout') * 1000,
      clock: io.clock,
    })
  } catch (err) {
    const doing = err instanceof EndpointError && /libp2p/.test(err.message)
      ? 'creating API client'
      : 'parsing host multiaddress'
    return await fail(io, doing, err)
  }
  return { encoding: enc as 'text' | 'json', client: () => client }
}

async function noTopic(io: CtlIO, name: string): Promise<never> {
  await io.stderr(`No help topic for '${escapeControl(name)}'\n`)
  throw new CtlExit(3)
}

/** Runs `args[0]` among `cmds`, recursing into subcommand groups. */
async function dispatch(
  cmds: Command[],
  path: string,
  args: string[],
  io: CtlIO,
  s: Setup,
): Promise<void> {
  const name = args[0]
  if (name === 'help' || name === 'h') return await showHelp(cmds, path, args.slice(1), io)
  const cmd = findCommand(cmds, name)
  if (!cmd) return await noTopic(io, name)
  const cmdPath = `${path} ${cmd.name}`
  if (cmd.subcommands) {
    const f = parseFlags([HELP_FLAG], args.slice(1))
    if (f.bool('help') || f.args.length === 0) return await io.stdout(groupHelp(cmdPath, cmd))
    return await dispatch(cmd.subcommands, cmdPath, f.args, io, s)
  }
  const flags = parseFlags([...(cmd.flags ?? []), HELP_FLAG], args.slice(1), {
    reorder: true,
    env: io.env,
  })
  if (flags.bool('help')) return await io.stdout(commandHelp(cmdPath, cmd))
  await cmd.action?.(actionContext({ flags, io, encoding: s.encoding, client: s.client }))
}

/** `help [command [subcommand]]`. */
async function showHelp(cmds: Command[], path: string, args: string[], io: CtlIO): Promise<void> {
  if (args.length === 0) {
    if (path === PROGRAM) return await io.stdout(appHelp(COMMANDS, GLOBAL_FLAGS))
    return await io.stdout(groupHelp(path, { name: path, usage: '', subcommands: cmds }))
  }
  const cmd = findCommand(cmds, args[0])
  if (!cmd) return await noTopic(io, args[0])
  const cmdPath = `${path} ${cmd.name}`
  if (cmd.subcommands) {
    if (args.length > 1) return await showHelp(cmd.subcommands, cmdPath, args.slice(1), io)
    return await io.stdout(groupHelp(cmdPath, cmd))
  }
  await io.stdout(commandHelp(cmdPath, cmd))
}
