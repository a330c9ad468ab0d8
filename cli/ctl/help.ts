/**
 * Help texts in the layout of urfave/cli v1 (NAME, USAGE, VERSION, DESCRIPTION, COMMANDS,
 * GLOBAL OPTIONS / OPTIONS), every line at most 120 columns. The wording follows the reference;
 * spacing is close to, not byte-identical with, Go's tabwriter output.
 *
 * @example
 * ```ts
 * appHelp(COMMANDS, GLOBAL_FLAGS) // 'NAME:\n   ipfs-cluster-ctl - CLI for IPFS Cluster\n…'
 * ```
 */
import type { Command } from './commands.ts'
import { formatDuration } from '../../src/types/mod.ts'
import type { FlagDef } from './flags.ts'

/** The program name and version printed by `--version`. */
export const PROGRAM = 'ipfs-cluster-ctl'
/** The version ctl reports, the reference release it follows. */
export const CTL_VERSION = '1.1.6'

/** The help flag every command has. */
export const HELP_FLAG: FlagDef = { names: ['help', 'h'], kind: 'bool', usage: 'show help' }

const DESCRIPTION = `
${PROGRAM} is a tool to manage IPFS Cluster nodes.

Use "${PROGRAM} help" to list all available commands and
"${PROGRAM} help <command>" to get usage information for a
specific one.

${PROGRAM} uses the IPFS Cluster API to perform requests and
display responses in a user-readable format. The location of the IPFS
Cluster server is assumed to be /ip4/127.0.0.1/tcp/9094, but can be configured
with the --host option. If several multiaddresses are specified
(comma-separated), requests will be sent to the first one and fail-over
over to the others. This also works for dns-based addresses which resolve
to multiple values.

To use the secure libp2p-http API endpoint, use "--host" with
the full cluster libp2p listener address, including the "/p2p/<peerID>"
part, or a /dnsaddr that resolves to it. Provide the cluster secret with
--secret as needed. (This implementation does not support libp2p-http.)

For feedback, bug reports or any additional information, visit
https://github.com/ipfs-cluster/ipfs-cluster.
`

function flagNames(f: FlagDef): string {
  const value = f.kind === 'bool' ? '' : ' value'
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
function columns(rows: [string, string][]): string {
  const w = Math.max(0, ...rows.map(([l]) => l.length))
  const indent = 3 + w + 2
  const width = Math.max(30, MAX_COLUMNS - indent)
  return rows.map(([l, r]) => {
    const [first, ...more] = wrap(r, width)
    return [`   ${l.padEnd(w)}  ${first}`.trimEnd(), ...more.map((m) => ' '.repeat(indent) + m)]
      .map((x) => x + '\n').join('')
  }).join('')
}

function flagRows(flags: FlagDef[]): [string, string][] {
  return flags.filter((f) => !f.hidden).map((f) => [
    flagNames(f),
    f.usage + flagDefault(f) + (f.envVar ? ` [$${f.envVar}]` : ''),
  ])
}

function commandRows(cmds: Command[], withHelp: boolean): [string, string][] {
  const rows: [string, string][] = cmds.filter((c) => !c.hidden).map((c) => [
    [c.name, ...(c.aliases ?? [])].join(', '),
    c.usage,
  ])
  if (withHelp) rows.push(['help, h', 'Shows a list of commands or help for one command'])
  return rows
}

/** `ipfs-cluster-ctl --help`. */
export function appHelp(cmds: Command[], globalFlags: FlagDef[]): string {
  return `NAME:\n   ${PROGRAM} - CLI for IPFS Cluster\n\n` +
    `USAGE:\n   ${PROGRAM} [global options] command [command options] [arguments...]\n\n` +
    `VERSION:\n   ${CTL_VERSION}\n\n` +
    `DESCRIPTION:\n   ${DESCRIPTION}\n\n` +
    `COMMANDS:\n${columns(commandRows(cmds, true))}\n` +
    `GLOBAL OPTIONS:\n${columns(flagRows(globalFlags))}`
}

/** Help of a command with subcommands (`ipfs-cluster-ctl pin`). */
export function groupHelp(path: string, cmd: Command): string {
  return `NAME:\n   ${path} - ${cmd.usage}\n\n` +
    `USAGE:\n   ${path} command [command options] [arguments...]\n\n` +
    `COMMANDS:\n${columns(commandRows(cmd.subcommands ?? [], false))}\n` +
    `OPTIONS:\n${columns(flagRows([HELP_FLAG]))}`
}

/** Help of a leaf command (`ipfs-cluster-ctl pin add --help`). */
export function commandHelp(path: string, cmd: Command): string {
  const args = cmd.argsUsage ?? '[arguments...]'
  let s = `NAME:\n   ${path} - ${cmd.usage}\n\n` +
    `USAGE:\n   ${path} [command options] ${args}`.trimEnd() + '\n'
  if (cmd.description) s += `\nDESCRIPTION:\n   ${cmd.description}\n`
  const flags = cmd.flags ?? []
  if (flags.length) s += `\nOPTIONS:\n${columns(flagRows(flags))}`
  return s
}
