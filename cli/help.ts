/**
 * Help pages in the layout of urfave/cli v1, which both ipfs-cluster-ctl and ipfs-cluster-service
 * use: NAME, USAGE, DESCRIPTION, COMMANDS, OPTIONS, every line at most 120 columns. The wording
 * comes from each program's command table; spacing is close to, not byte-identical with, Go's
 * tabwriter output.
 *
 * @example
 * ```ts
 * commandHelp('ipfs-cluster-service daemon', DAEMON) // 'NAME:\n   ipfs-cluster-service daemon - …'
 * ```
 */
import { formatDuration } from '../src/types/duration.ts'
import type { FlagDef } from './flags.ts'

/** What a help page shows of a command; the command tables of ctl and service both fit. */
export interface HelpEntry {
  name: string
  aliases?: string[]
  usage: string
  argsUsage?: string
  description?: string
  flags?: FlagDef[]
  subcommands?: HelpEntry[]
  hidden?: boolean
}

/** The help flag every command has. */
export const HELP_FLAG: FlagDef = { names: ['help', 'h'], kind: 'bool', usage: 'show help' }

function flagNames(f: FlagDef): string {
  const value = f.kind === 'bool' ? '' : ` ${f.placeholder ?? 'value'}`
  return f.names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`) + value).join(', ')
}

function flagDefault(f: FlagDef): string {
  switch (f.kind) {
    case 'string':
      return f.default ? ` (default: ${JSON.stringify(f.default)})` : ''
    case 'int':
      return ` (default: ${f.default ?? 0})`
    case 'duration':
      return ` (default: ${formatDuration(Number(f.default ?? 0))})`
    default:
      return ''
  }
}

const MAX_COLUMNS = 120

/** Word-wraps `text` to `width` columns (explicit newlines kept). */
function wrap(text: string, width: number): string[] {
  const out: string[] = []
  for (const para of text.split('\n')) {
    let line = ''
    for (const word of para.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        out.push(line)
        line = word
      } else line = line === '' ? word : `${line} ${word}`
    }
    out.push(line)
  }
  return out
}

/**
 * Two columns, the left one padded to its widest entry plus two spaces; long right-hand texts
 * wrap under themselves so that no line exceeds 120 columns.
 */
export function columns(rows: [string, string][]): string {
  const w = Math.max(0, ...rows.map(([l]) => l.length))
  const indent = 3 + w + 2
  const width = Math.max(30, MAX_COLUMNS - indent)
  return rows.map(([l, r]) => {
    const [first, ...more] = wrap(r, width)
    return [`   ${l.padEnd(w)}  ${first}`.trimEnd(), ...more.map((m) => ' '.repeat(indent) + m)]
      .map((x) => x + '\n').join('')
  }).join('')
}

/** One row per visible flag: its names and its usage, default and environment variable. */
export function flagRows(flags: FlagDef[]): [string, string][] {
  return flags.filter((f) => !f.hidden).map((f) => [
    flagNames(f),
    f.usage + flagDefault(f) + (f.envVar ? ` [$${f.envVar}]` : ''),
  ])
}

/** One row per visible command (with its aliases), plus `help, h` for an application. */
export function commandRows(cmds: HelpEntry[], withHelp: boolean): [string, string][] {
  const rows: [string, string][] = cmds.filter((c) => !c.hidden).map((c) => [
    [c.name, ...(c.aliases ?? [])].join(', '),
    c.usage,
  ])
  if (withHelp) rows.push(['help, h', 'Shows a list of commands or help for one command'])
  return rows
}

/** Help of a command with subcommands (`ipfs-cluster-ctl pin`, `ipfs-cluster-service state`). */
export function groupHelp(path: string, cmd: HelpEntry): string {
  return `NAME:\n   ${path} - ${cmd.usage}\n\n` +
    `USAGE:\n   ${path} command [command options] [arguments...]\n\n` +
    `COMMANDS:\n${columns(commandRows(cmd.subcommands ?? [], false))}\n` +
    `OPTIONS:\n${columns(flagRows([HELP_FLAG]))}`
}

/** Help of a leaf command (`ipfs-cluster-ctl pin add --help`, `… service daemon --help`). */
export function commandHelp(path: string, cmd: HelpEntry): string {
  const flags = (cmd.flags ?? []).filter((f) => !f.hidden)
  const args = cmd.argsUsage ?? '[arguments...]'
  let s = `NAME:\n   ${path} - ${cmd.usage}\n\n` +
    `USAGE:\n   ${path}${flags.length ? ' [command options]' : ''} ${args}`.trimEnd() + '\n'
  if (cmd.description) s += `\nDESCRIPTION:\n   ${cmd.description}\n`
  if (flags.length) s += `\nOPTIONS:\n${columns(flagRows(flags))}`
  return s
}
