/**
 * The ipfs-cluster-service 1.1.6 command tree as its help shows it: names, flags, usage lines and
 * descriptions in the reference's wording (cmd/ipfs-cluster-service/main.go), reworded only where
 * this implementation differs (Raft only, no remote configuration source, the `--ipfs` and
 * `--init` extensions). The flags here are the ones the commands parse, so help and parsing agree.
 *
 * @example
 * ```ts
 * const f = parseFlags([...INIT.flags!, HELP_FLAG], ['--randomports'], { reorder: true })
 * ```
 */
import type { FlagDef } from '../flags.ts'
import { columns, commandRows, flagRows, HELP_FLAG, type HelpEntry } from '../help.ts'
import { VERSION } from '../../src/types/id.ts'

/** The program's name, as help and messages print it. */
export const PROGRAM = 'ipfs-cluster-service'

/** Flags before the command. */
export const GLOBAL_FLAGS: FlagDef[] = [
  {
    names: ['config', 'c'],
    kind: 'string',
    placeholder: 'FOLDER',
    usage: 'path to the configuration and data FOLDER (default: "~/.ipfs-cluster")',
    envVar: 'IPFS_CLUSTER_PATH',
  },
  {
    names: ['force', 'f'],
    kind: 'bool',
    usage: 'forcefully proceed with some actions. i.e. overwriting configuration',
  },
  { names: ['debug', 'd'], kind: 'bool', usage: 'enable full debug logging (very verbose)' },
  {
    names: ['loglevel', 'l'],
    kind: 'string',
    usage: 'set overall and component-wise log levels',
    envVar: 'IPFS_CLUSTER_LOG_LEVEL',
  },
  HELP_FLAG,
  { names: ['version', 'v'], kind: 'bool', usage: 'print the version' },
]

const DESCRIPTION = `
${PROGRAM} runs an IPFS Cluster peer.

A peer participates in the cluster consensus, follows a distributed log
of pinning and unpinning requests and manages pinning operations to a
configured IPFS daemon (or to an IPFS node embedded in the peer).

This peer also provides an API for cluster management and a number of
components for internal communication using LibP2P.

This is a re-implementation of IPFS Cluster ${VERSION} in TypeScript for Deno: its
configuration files, commands, flags and REST API are those of the original;
https://github.com/ipfs-cluster/ipfs-cluster describes them.

${PROGRAM} needs valid configuration and identity files to run.
These are independent from IPFS. The identity includes its own
libp2p key-pair. They can be initialized with "init" and their
default locations are ~/.ipfs-cluster/service.json
and ~/.ipfs-cluster/identity.json.


EXAMPLES:

Initial configuration:

$ ${PROGRAM} init

Launch a cluster:

$ ${PROGRAM} daemon

Launch a peer and join existing cluster:

$ ${PROGRAM} daemon --bootstrap /ip4/192.168.1.2/tcp/9096/p2p/QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL

Customize logs using --loglevel flag. To customize component-level
logging pass a comma-separated list of component-identifer:log-level
pair or without identifier for overall loglevel. Valid loglevels
are critical, error, warning, notice, info and debug.

$ ${PROGRAM} --loglevel info,cluster:debug,pintracker:debug daemon
`

/** `init`. */
export const INIT: HelpEntry = {
  name: 'init',
  usage: 'Creates a configuration and generates an identity',
  argsUsage: '[http-source-url]',
  description: `
This command will initialize a new service.json configuration file and, if it
does already exist, generate a new identity.json for ${PROGRAM}.

A default standard configuration file will be created. (The reference can
instead write a configuration that refers to a [source-url], fetched when the
daemon starts; this implementation refuses that: copy the file locally.)

A cluster secret will be generated as required by ${PROGRAM}.
Alternatively, this secret can be manually provided with --custom-secret
(in which case it will be prompted), or by setting the CLUSTER_SECRET
environment variable.

--consensus chooses 'raft' (the default here; the reference's default is
'crdt') or 'crdt'. --datastore is accepted and not used: the state lives in
Deno KV.

The --ipfs flag chooses the IPFS node the peer drives: 'ipfshttp' (the RPC API
of an IPFS daemon such as Kubo, the reference's connector) or 'embedded' (an
IPFS node inside the peer).

Note that the --force flag allows to overwrite an existing
configuration with default values. To generate a new identity, please
remove the identity.json file first and clean any Raft state.

By default, an empty peerstore file will be created too. Initial contents can
be provided with the --peers flag. The "init_peerset" list in the "raft"
configuration section will be prefilled to the peer IDs in the given
multiaddresses.
`,
  flags: [
    {
      names: ['consensus'],
      kind: 'string',
      usage: "select consensus: 'crdt' or 'raft'",
      default: 'raft',
    },
    {
      names: ['datastore'],
      kind: 'string',
      usage: "select datastore: 'badger', 'badger3', 'leveldb' or 'pebble'",
      default: 'pebble',
    },
    {
      names: ['custom-secret', 's'],
      kind: 'bool',
      usage: 'prompt for the cluster secret (when no source specified)',
    },
    {
      names: ['peers'],
      kind: 'string',
      usage: 'comma-separated list of multiaddresses to init with (see help)',
    },
    { names: ['force', 'f'], kind: 'bool', usage: 'overwrite configuration without prompting' },
    {
      names: ['randomports'],
      kind: 'bool',
      usage: 'configure random ports to listen on instead of defaults',
    },
    {
      names: ['ipfs'],
      kind: 'string',
      usage: "IPFS node: 'ipfshttp' (an IPFS daemon's API) or 'embedded' (extension)",
      default: 'ipfshttp',
    },
    {
      names: ['ipfs-public-network'],
      kind: 'bool',
      usage:
        'the embedded IPFS node joins the public IPFS network: bootstrap peers, DHT (extension)',
    },
  ],
}

/** `daemon`. */
export const DAEMON: HelpEntry = {
  name: 'daemon',
  usage: 'Runs the IPFS Cluster peer (default)',
  flags: [
    {
      names: ['upgrade', 'u'],
      kind: 'bool',
      usage: 'run state migrations before starting (deprecated/unused)',
    },
    {
      names: ['bootstrap', 'j'],
      kind: 'string',
      usage: 'join a cluster providing a comma-separated list of existing peers multiaddress(es)',
    },
    {
      names: ['leave', 'x'],
      kind: 'bool',
      usage: 'remove peer from cluster on exit. Overrides "leave_on_shutdown"',
      hidden: true,
    },
    { names: ['stats'], kind: 'bool', usage: 'enable stats collection' },
    { names: ['tracing'], kind: 'bool', usage: 'enable tracing collection' },
    {
      names: ['no-trust'],
      kind: 'bool',
      usage: 'do not trust bootstrap peers (only for "crdt" consensus)',
    },
    {
      names: ['init'],
      kind: 'bool',
      usage:
        'first write a default configuration with an embedded IPFS node when the folder has none (extension)',
    },
  ],
}

/** `state export`. */
export const STATE_EXPORT: HelpEntry = {
  name: 'export',
  usage: 'save the state to a JSON file',
  description: `
This command dumps the current cluster pinset (state) as a JSON file. The
resulting file can be used to migrate, restore or backup a Cluster peer.
By default, the state will be printed to stdout.
`,
  flags: [{ names: ['file', 'f'], kind: 'string', usage: 'writes to an output file' }],
}

/** `state import`. */
export const STATE_IMPORT: HelpEntry = {
  name: 'import',
  usage: "load the state from a file produced by 'export'",
  description: `
This command reads in an exported pinset (state) file and replaces the
existing one. This can be used, for example, to restore a Cluster peer from a
backup.

If an argument is provided, it will be treated it as the path of the file
to import. If no argument is provided, stdin will be used.
`,
  flags: [
    { names: ['force', 'f'], kind: 'bool', usage: 'skips confirmation prompt' },
    {
      names: ['replication-min', 'rmin'],
      kind: 'int',
      usage: 'Overwrite replication-factor-min for all pins on import',
      default: 0,
    },
    {
      names: ['replication-max', 'rmax'],
      kind: 'int',
      usage: 'Overwrite replication-factor-max for all pins on import',
      default: 0,
    },
    {
      names: ['allocations', 'allocs'],
      kind: 'string',
      usage: 'Overwrite allocations for all pins on import. Comma-separated list of peer IDs',
    },
  ],
}

/** `state cleanup`. */
export const STATE_CLEANUP: HelpEntry = {
  name: 'cleanup',
  usage: 'remove persistent data',
  description: `
This command removes any persisted consensus data in this peer, including the
current pinset (state). The next start of the peer will be like a first start
to all effects. Peers may need to bootstrap and sync from scratch after this.
`,
  flags: [{ names: ['force', 'f'], kind: 'bool', usage: 'skip confirmation prompt' }],
}

/** `state crdt`: the reference's tools for a CRDT peer's store. */
export const STATE_CRDT: HelpEntry = {
  name: 'crdt',
  usage: 'CRDT-state commands',
  subcommands: [
    { name: 'info', usage: 'Print information about the CRDT store' },
    { name: 'dot', usage: 'Write the CRDT-DAG as DOT file' },
    { name: 'mark-dirty', usage: 'Marks the CRDT-store as dirty' },
    { name: 'mark-clean', usage: 'Marks the CRDT-store as clean' },
  ],
}

/** `state`. */
export const STATE: HelpEntry = {
  name: 'state',
  usage: "Manages the peer's persistent state (pinset)",
  subcommands: [STATE_CRDT, STATE_EXPORT, STATE_IMPORT, STATE_CLEANUP],
}

/** `version`. */
export const VERSION_CMD: HelpEntry = { name: 'version', usage: 'Prints the ipfs-cluster version' }

/** Every command, in the reference's order. */
export const COMMANDS: HelpEntry[] = [INIT, DAEMON, STATE, VERSION_CMD]

/** `ipfs-cluster-service --help`. */
export function appHelp(): string {
  return `NAME:\n   ${PROGRAM} - IPFS Cluster peer\n\n` +
    `USAGE:\n   ${PROGRAM} [global options] command [command options] [arguments...]\n\n` +
    `VERSION:\n   ${VERSION}\n\n` +
    `DESCRIPTION:\n   ${DESCRIPTION}\n\n` +
    `COMMANDS:\n${columns(commandRows(COMMANDS, true))}\n` +
    `GLOBAL OPTIONS:\n${columns(flagRows(GLOBAL_FLAGS))}`
}
