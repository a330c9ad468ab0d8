/**
 * `ipfs-cluster-service`: init, daemon, state export/import/cleanup, version — the commands,
 * flags, help, prompts and messages of IPFS Cluster 1.1.6. This file parses the global flags,
 * answers `--help`/`-h`/`help <command>` for every command and dispatches; each command's module
 * (and what it needs: the config loader, the state, the daemon) is loaded only when that command
 * runs, so `version` and help load almost nothing.
 *
 * @example
 * ```ts
 * const code = await serviceMain(['--config', dir, 'init', '--force'], stdio())
 * ```
 */
import { logging } from '../../src/util/log.ts'
import { VERSION } from '../../src/types/id.ts'
import { errorMessage } from '../../src/errors.ts'
import type { CliIO } from '../io.ts'
import { type ParsedFlags, parseFlags, UsageError } from '../flags.ts'
import { commandHelp, groupHelp, HELP_FLAG, type HelpEntry } from '../help.ts'
import {
  appHelp,
  COMMANDS,
  DAEMON,
  GLOBAL_FLAGS,
  INIT,
  PROGRAM,
  STATE,
  VERSION_CMD,
} from './commands.ts'
import { type Ctx, doing } from './context.ts'

/** Runs ipfs-cluster-service with `args`; returns the exit code. */
export async function serviceMain(args: string[], io: CliIO): Promise<number> {
  try {
    return await run(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      await io.stderr(`Incorrect Usage: ${err.message}\n`)
      return 1
    }
    await io.stderr(
      `error ${(err as { doing?: string }).doing ?? 'running'}: ${errorMessage(err)}\n`,
    )
    return 1
  }
}

/** A help page was asked for (`--help`, `-h`, `help …`, a command group without subcommand). */
class Help {
  constructor(readonly text: string) {}
}

/** An unknown command: one line, and the reference's exit code (1 at the top, 3 below it). */
class NoTopic {
  constructor(readonly name: string, readonly code: number) {}
}

async function run(args: string[], io: CliIO): Promise<number> {
  const g = parseFlags(GLOBAL_FLAGS, args, { env: io.env })
  if (g.bool('version')) {
    await io.stdout(`${PROGRAM} version ${VERSION}\n`)
    return 0
  }
  const [cmd, ...cmdArgs] = g.args
  try {
    if (g.bool('help')) throw new Help(appHelp())
    if (cmd === 'help' || cmd === 'h') throw new Help(helpFor(cmdArgs))
    return await dispatch(g, cmd, cmdArgs, io)
  } catch (err) {
    if (err instanceof Help) {
      await io.stdout(err.text)
      return 0
    }
    if (err instanceof NoTopic) {
      await io.stderr(`No help topic for '${err.name}'\n`)
      return err.code
    }
    throw err
  }
}

/** `help [command [subcommand]]`: the page of the deepest command named. */
function helpFor(names: string[]): string {
  let cmds = COMMANDS
  let path = PROGRAM
  let page = appHelp()
  for (const name of names) {
    const cmd = cmds.find((c) => c.name === name)
    if (!cmd) throw new NoTopic(name, 3)
    path = `${path} ${cmd.name}`
    page = cmd.subcommands ? groupHelp(path, cmd) : commandHelp(path, cmd)
    if (!cmd.subcommands) break
    cmds = cmd.subcommands
  }
  return page
}

/** Parses a leaf command's flags; `--help`/`-h` anywhere among them asks for its help page. */
function parseCommand(path: string, cmd: HelpEntry, args: string[], env: Record<string, string>) {
  const f = parseFlags([...(cmd.flags ?? []), HELP_FLAG], args, { reorder: true, env })
  if (f.bool('help')) throw new Help(commandHelp(path, cmd))
  return f
}

/**
 * Runs a command. Its flags are parsed before anything else happens, so a bad flag or a help
 * request never touches the config folder; its module is imported only then.
 */
async function dispatch(
  g: ParsedFlags,
  cmd: string | undefined,
  args: string[],
  io: CliIO,
): Promise<number> {
  const env = io.env
  const path = `${PROGRAM} ${cmd}`
  let command: (ctx: Ctx) => Promise<number>
  switch (cmd) {
    case undefined:
      await io.stderr(appHelp())
      return 1
    case 'version':
      parseCommand(path, VERSION_CMD, args, env)
      await io.stdout(`${VERSION}\n`)
      return 0
    case 'init': {
      const f = parseCommand(path, INIT, args, env)
      command = async (ctx) => await (await import('./init.ts')).init(f, ctx)
      break
    }
    case 'daemon': {
      const f = parseCommand(path, DAEMON, args, env)
      command = async (ctx) => await (await import('./daemon.ts')).daemon(f, ctx)
      break
    }
    case 'state': {
      const [sub, f] = stateCommand(args, env)
      command = async (ctx) => await (await import('./state.ts')).state(sub, f, ctx)
      break
    }
    default:
      throw new NoTopic(cmd, 1)
  }
  const logLevel = g.bool('debug') ? 'debug' : g.string('loglevel') || 'info'
  // Checked before any command runs: a bad spec must not fail a state import after the wipe.
  try {
    logging(logLevel, () => {})
  } catch (err) {
    throw doing('setting log level', err)
  }
  const configDir = g.string('config') ||
    (await import('../../src/service_config.ts')).defaultConfigDir(env)
  return await command({ io, env, configDir, logLevel, force: g.bool('force') })
}

/** `state <sub> [flags]`: the subcommand and its flags; the group's help when none is named. */
function stateCommand(args: string[], env: Record<string, string>): [string, ParsedFlags] {
  const path = `${PROGRAM} state`
  const g = parseFlags([HELP_FLAG], args)
  const [name, ...rest] = g.args
  if (g.bool('help') || name === undefined) throw new Help(groupHelp(path, STATE))
  if (name === 'help' || name === 'h') throw new Help(helpFor(['state', ...rest]))
  const sub = STATE.subcommands!.find((c) => c.name === name)
  if (!sub) throw new NoTopic(name, 3)
  if (sub.subcommands) {
    // `state crdt <tool>`: run by state.ts as `crdt <tool>`.
    const c = parseFlags([HELP_FLAG], rest, { reorder: true })
    const [tool, ...toolArgs] = c.args
    if (c.bool('help') || tool === undefined) throw new Help(groupHelp(`${path} ${name}`, sub))
    const entry = sub.subcommands.find((t) => t.name === tool)
    if (!entry) throw new NoTopic(tool, 3)
    return [`${name} ${tool}`, parseCommand(`${path} ${name} ${tool}`, entry, toolArgs, env)]
  }
  return [name, parseCommand(`${path} ${name}`, sub, rest, env)]
}
