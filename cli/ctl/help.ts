/**
 * The application help of ipfs-cluster-ctl (NAME, USAGE, VERSION, DESCRIPTION, COMMANDS, GLOBAL
 * OPTIONS) in the wording of the reference; command pages come from cli/help.ts.
 *
 * @example
 * ```ts
 * appHelp(COMMANDS, GLOBAL_FLAGS) // 'NAME:\n   ipfs-cluster-ctl - CLI for IPFS Cluster\n…'
 * ```
 */
import type { FlagDef } from '../flags.ts'
import { columns, commandRows, flagRows, type HelpEntry } from '../help.ts'

/** The program name and version printed by `--version`. */
export const PROGRAM = 'ipfs-cluster-ctl'
/** The version ctl reports, the reference release it follows. */
export const CTL_VERSION = '1.1.6'

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

/** `ipfs-cluster-ctl --help`. */
export function appHelp(cmds: HelpEntry[], globalFlags: FlagDef[]): string {
  return `NAME:\n   ${PROGRAM} - CLI for IPFS Cluster\n\n` +
    `USAGE:\n   ${PROGRAM} [global options] command [command options] [arguments...]\n\n` +
    `VERSION:\n   ${CTL_VERSION}\n\n` +
    `DESCRIPTION:\n   ${DESCRIPTION}\n\n` +
    `COMMANDS:\n${columns(commandRows(cmds, true))}\n` +
    `GLOBAL OPTIONS:\n${columns(flagRows(globalFlags))}`
}
