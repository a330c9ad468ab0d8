/**
 * The help pages and fixed messages of ipfs-cluster-follow, word for word those of IPFS Cluster
 * 1.1.6's `cmd/ipfs-cluster-follow` (urfave/cli v2's layout: three-space indents, OPTIONS pages).
 * Two departures: the global options list `--config value, -c value` (the reference declares
 * the alias but its CLI library never registers it), and nothing else.
 *
 * @example
 * ```ts
 * appHelp('/home/me/.ipfs-cluster-follow') // 'NAME:\n   ipfs-cluster-follow - IPFS Cluster Follower\n…'
 * subcommandHelp('myc', 'run')             // the `myc run --help` page
 * ```
 */
import { VERSION } from '../../src/types/id.ts'

/** The program's name, in every text. */
export const PROGRAM = 'ipfs-cluster-follow'
/** The folder under $HOME that holds the followed clusters. */
export const DEFAULT_FOLDER = '.ipfs-cluster-follow'

/** Indents every non-empty line of `text` by three spaces (urfave/cli v2's help template). */
const indent = (text: string) => text.split('\n').map((l) => (l === '' ? '' : `   ${l}`)).join('\n')

const P = PROGRAM
const DESCRIPTION = `
${P} helps running IPFS Cluster follower peers.

Follower peers subscribe to a Cluster controlled by a set of "trusted
peers". They collaborate in pinning items as dictated by the trusted peers and
do not have the power to make Cluster-wide modifications to the pinset.

Follower peers cannot access information nor trigger actions in other peers.

${P} can be used to follow different clusters by launching it 
with different options. Each Cluster has an identity, a configuration 
and a datastore associated to it, which are kept under 
"~/${DEFAULT_FOLDER}/<cluster_name>".

For feedback, bug reports or any additional information, visit
https://github.com/ipfs-cluster/ipfs-cluster.


EXAMPLES:

List configured follower peers:

$ ${P}

Display information for a follower peer:

$ ${P} <clusterName> info

Initialize a follower peer:

$ ${P} <clusterName> init <example.url>

Launch a follower peer (will stay running):

$ ${P} <clusterName> run

List items in the pinset for a given cluster:

$ ${P} <clusterName> list

Getting help and usage info:

$ ${P} --help
$ ${P} <clusterName> --help
$ ${P} <clusterName> info --help
$ ${P} <clusterName> init --help
$ ${P} <clusterName> run --help
$ ${P} <clusterName> list --help

`

/** `ipfs-cluster-follow --help`, with the default config folder it shows. */
export function appHelp(defaultPath: string): string {
  return `NAME:
   ${P} - IPFS Cluster Follower

USAGE:
   ${P} [global options] <clusterName> [subcommand]...

VERSION:
   ${VERSION}

DESCRIPTION:
   ${indent(DESCRIPTION)}

COMMANDS:
   help, h  Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --config FOLDER, -c FOLDER  path to the followers configuration and data FOLDER (default: ${
    JSON.stringify(defaultPath)
  }) [$IPFS_CLUSTER_PATH]
   --help, -h                  show help
   --version, -v               print the version
`
}

/** `ipfs-cluster-follow <name> --help`. */
export function clusterHelp(name: string): string {
  return `NAME:
   ${P} ${name} - Follower peer management for "${name}"

USAGE:
   ${P} ${name} [subcommand]

COMMANDS:
   info     displays information for this peer
   init     initializes the follower peer
   run      runs the follower peer
   list     list items in the peers' pinset
   help, h  Shows a list of commands or help for one command

OPTIONS:
   --help, -h  show help
`
}

/** The subcommands of a followed cluster. */
export type Subcommand = 'info' | 'init' | 'run' | 'list'

const SUBCOMMANDS: Record<
  Subcommand,
  (name: string) => {
    usage: string
    args: string
    description: string
    options: string
  }
> = {
  info: (name) => ({
    usage: 'displays information for this peer',
    args: '',
    description: `
This command display useful information for "${name}"'s follower peer.
`,
    options: '   --help, -h  show help',
  }),
  init: (name) => ({
    usage: 'initializes the follower peer',
    args: ' <template_URL>',
    description: `
This command initializes a follower peer for the cluster named "${name}". You
will need to pass the peer configuration URL. The command will generate a new
peer identity and leave things ready to run "${P} ${name} run".

An error will be returned if a configuration folder for a cluster peer with
this name already exists. If you wish to re-initialize from scratch, delete
this folder first.
`,
    options: '   --help, -h  show help',
  }),
  run: (name) => ({
    usage: 'runs the follower peer',
    args: '',
    description: `

This commands runs a "${name}" cluster follower peer. The peer should have already
been initialized with "init" alternatively the --init flag needs to be
passed.

Before running, ensure that you have connectivity and that the IPFS daemon is
running.

You can obtain more information about this follower peer by running
"${P} ${name}" (without any arguments).

The peer will stay running in the foreground until manually stopped.
`,
    options: '   --init value  initialize cluster peer with the given URL before running\n' +
      '   --help, -h    show help',
  }),
  list: () => ({
    usage: "list items in the peers' pinset",
    args: '',
    description: `

This commands lists all the items pinned by this follower cluster peer on IPFS.

If the peer is currently running, it will display status information for each
pin (such as PINNING). If not, it will just display the current list of pins
as obtained from the internal state on disk.
`,
    options: '   --help, -h  show help',
  }),
}

/** True for the names of a cluster's subcommands. */
export function isSubcommand(s: string | undefined): s is Subcommand {
  return s !== undefined && Object.hasOwn(SUBCOMMANDS, s)
}

/** `ipfs-cluster-follow <name> <subcommand> --help`. */
export function subcommandHelp(name: string, sub: Subcommand): string {
  const s = SUBCOMMANDS[sub](name)
  return `NAME:
   ${P} ${name} ${sub} - ${s.usage}

USAGE:
   ${P} ${name} ${sub} [command options]${s.args}

DESCRIPTION:
   ${indent(s.description)}

OPTIONS:
${s.options}
`
}

/** What the program prints when no cluster is configured. */
export const FIRST_START = `
No clusters configured yet!
 
If this is the first time you are running ${P},
be sure to check out the usage documentation. Here are some
examples to get you going:

$ ${P} --help                     - general description and usage help
$ ${P} <clusterName> --help       - Help and subcommands for the <clusterName>'s follower peer
$ ${P} <clusterName> info --help  - Help for the "info" subcommand (same for others).
`

/** What a subcommand of a cluster that has no folder prints (exit 1). */
export function notInitialized(name: string): string {
  return `
This cluster peer has not been initialized.

Try running "${P} ${name} init <config-url>" first.
`
}
