/**
 * The ipfs-cluster-ctl 1.1.6 command tree: names, flags, help texts and actions (the Go
 * cmd/ipfs-cluster-ctl/main.go, command by command). Actions only parse arguments, call the REST
 * client and print through the context; there is no cluster logic here.
 *
 * @example
 * ```ts
 * const cmd = findCommand(COMMANDS, 'pin')?.subcommands?.find((c) => c.name === 'add')
 * ```
 */
import type { AddedOutput, AddParams } from '../../src/api/rest/client.ts'
import { defaultAddParams } from '../../src/api/rest/client_add.ts'
import type { GlobalPinInfo, Pin, TrackerStatus } from '../../src/types/mod.ts'
import { formatTime, isPeerId, parseCid, TRACKER_STATUSES } from '../../src/types/mod.ts'
import type { ActionContext } from './context.ts'
import { type FlagDef, parseGoDuration } from '../flags.ts'
import type { HelpEntry } from '../help.ts'
import {
  formatAddedOutput,
  formatAlert,
  formatBandwidth,
  formatGlobalPinInfo,
  formatID,
  formatMetric,
  formatPin,
  formatRepoGC,
  formatVersion,
  goSort,
} from './format_text.ts'
import { goJsonIndent } from './format_json.ts'
import { escapeControl } from '../../src/util/escape.ts'
import { makeDot } from './graph.ts'
import { type ProgressBar, progressBar } from './progress.ts'
import { systemClock } from '../../src/util/clock.ts'

/** A command or a group of subcommands. */
export interface Command extends HelpEntry {
  subcommands?: Command[]
  action?: (ctx: ActionContext) => Promise<void>
}

const WAIT_DESC = 'Wait for the pin to reach the minimum replication factor before returning'
const WAIT_LIMIT_DESC = 'How many peers should reach the desired status to finish waiting'
const WAIT_TIMEOUT_DESC = 'How long to --wait (in seconds). Default: forever'

const localFlag: FlagDef = {
  names: ['local'],
  kind: 'bool',
  usage: 'run operation only on the contacted peer',
}
const waitFlags = (statusDesc: string): FlagDef[] => [
  { names: ['no-status', 'ns'], kind: 'bool', usage: statusDesc },
  { names: ['wait', 'w'], kind: 'bool', usage: WAIT_DESC },
  { names: ['wait-limit', 'wl'], kind: 'int', usage: WAIT_LIMIT_DESC, default: 0 },
  { names: ['wait-timeout', 'wt'], kind: 'duration', usage: WAIT_TIMEOUT_DESC, default: 0 },
]

function parseMetadata(ctx: ActionContext, list: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const s of list) {
    const eq = s.indexOf('=')
    if (eq < 0) {
      return ctx.fail('parsing metadata', new Error('metadata were not in the format key=value'))
    }
    out[s.slice(0, eq)] = s.slice(eq + 1)
  }
  return Promise.resolve(out)
}

async function expireAt(ctx: ActionContext): Promise<string | undefined> {
  const s = ctx.flags.string('expire-in')
  if (s === '') return undefined
  const d = parseGoDuration(s)
  if (d === undefined) {
    return await ctx.fail('parsing expire-in', new Error(`time: invalid duration "${s}"`))
  }
  return formatTime(ctx.now() + d)
}

async function decodeCid(ctx: ActionContext, s: string, doing = 'parsing cid'): Promise<string> {
  try {
    return parseCid(s).toString()
  } catch (err) {
    return await ctx.fail(doing, err)
  }
}

/** The reference's waitFor wrapper: the timeout only counts when longer than the 1 s period. */
async function wait(
  ctx: ActionContext,
  cid: string,
  target: TrackerStatus,
  timeoutMs: number,
  limit: number,
): Promise<GlobalPinInfo> {
  try {
    return await ctx.client().waitFor(cid, target, {
      limit,
      timeoutMs: timeoutMs > 1000 ? timeoutMs : 0,
    })
  } catch (err) {
    return await ctx.fail('waiting for pin status', err)
  }
}

/** What pin add/rm/update print: the status (after --wait, or 1 s later), or the pin. */
async function handlePinResponse(ctx: ActionContext, pin: Pin, target: TrackerStatus) {
  let status: GlobalPinInfo | undefined
  if (ctx.flags.bool('wait')) {
    const limit = ctx.flags.isSet('wait-limit')
      ? ctx.flags.int('wait-limit')
      : target === 'pinned'
      ? pin.replication_factor_min
      : 0
    status = await wait(ctx, pin.cid, target, ctx.flags.duration('wait-timeout'), limit)
  }
  if (ctx.flags.bool('no-status')) return await ctx.print(pin, formatPin)
  if (!status?.cid) {
    await ctx.sleep(1000)
    return await ctx.respond(ctx.client().status(pin.cid, { local: false }), formatGlobalPinInfo)
  }
  await ctx.print(status, formatGlobalPinInfo)
}

async function pinAction(ctx: ActionContext): Promise<void> {
  const f = ctx.flags
  let rmin = f.int('replication-min')
  let rmax = f.int('replication-max')
  const rpl = f.int('replication')
  if (rpl !== 0) [rmin, rmax] = [rpl, rpl]
  let userAllocs: string[] | null = null
  if (f.string('allocations') !== '') {
    const allocs = f.string('allocations').split(',').map((s) => s.trim())
    if (!allocs.every(isPeerId)) {
      await ctx.fail('decoding allocations', new Error('some peer IDs could not be decoded'))
    }
    userAllocs = allocs
  }
  const expire = await expireAt(ctx)
  const mode = f.string('mode') === 'direct' ? 'direct' : 'recursive'
  let pin: Pin
  try {
    pin = await ctx.client().pinPath(ctx.args[0] ?? '', {
      replication_factor_min: rmin,
      replication_factor_max: rmax,
      name: f.string('name'),
      mode,
      user_allocations: userAllocs,
      expire_at: expire,
      metadata: await parseMetadata(ctx, f.strings('metadata')),
    })
  } catch (err) {
    return await ctx.error(err)
  }
  await handlePinResponse(ctx, pin, 'pinned')
}

async function unpinAction(ctx: ActionContext): Promise<void> {
  let pin: Pin
  try {
    pin = await ctx.client().unpinPath(ctx.args[0] ?? '')
  } catch (err) {
    return await ctx.error(err)
  }
  await handlePinResponse(ctx, pin, 'unpinned')
}

async function updateAction(ctx: ActionContext): Promise<void> {
  const from = await decodeCid(ctx, ctx.args[0] ?? '', 'parsing from Cid')
  const expire = await expireAt(ctx)
  let pin: Pin
  try {
    pin = await ctx.client().pinPath(ctx.args[1] ?? '', {
      pin_update: from,
      name: ctx.flags.string('name'),
      expire_at: expire,
    })
  } catch (err) {
    return await ctx.error(err)
  }
  await handlePinResponse(ctx, pin, 'pinned')
}

async function statusAction(ctx: ActionContext): Promise<void> {
  const cids: string[] = []
  for (const s of ctx.args) cids.push(await decodeCid(ctx, s))
  const local = ctx.flags.bool('local')
  const client = ctx.client()
  if (cids.length === 1) {
    let gpi: GlobalPinInfo | undefined
    let error: unknown
    try {
      gpi = await client.status(cids[0], { local })
    } catch (err) {
      error = err
    }
    // The reference prints the (zero) status it got before printing the error.
    if (gpi) await ctx.print(gpi, formatGlobalPinInfo)
    else if (error instanceof Error && error.name === 'ApiError') {
      await ctx.print(zeroGlobalPinInfo(), formatGlobalPinInfo)
    }
    if (error !== undefined) await ctx.error(error)
    return
  }
  if (cids.length > 1) {
    return await ctx.respondStream(client.statusAll({ local, cids }), formatGlobalPinInfo)
  }
  const filter = ctx.flags.string('filter')
  if (filter !== '' && !filterIsKnown(filter)) {
    await ctx.fail('parsing filter flag', new Error('invalid filter name'))
  }
  await ctx.respondStream(client.statusAll({ local, filter }), formatGlobalPinInfo)
}

function filterIsKnown(filter: string): boolean {
  const known = new Set<string>([...TRACKER_STATUSES, 'error', 'queued'])
  return filter.replaceAll(' ', '').split(',').some((s) => known.has(s))
}

function zeroGlobalPinInfo(): GlobalPinInfo {
  return {
    cid: null as unknown as string,
    name: '',
    allocations: null,
    origins: null,
    created: '0001-01-01T00:00:00Z',
    metadata: null,
    peer_map: null as unknown as GlobalPinInfo['peer_map'],
  }
}

async function addAction(ctx: ActionContext): Promise<void> {
  const f = ctx.flags
  const paths = ctx.args
  if (paths.length === 0) await ctx.fail('', new Error('need at least one path'))
  const p: AddParams = defaultAddParams()
  p.replication_factor_min = f.int('replication-min')
  p.replication_factor_max = f.int('replication-max')
  const expire = await expireAt(ctx)
  if (expire) p.expire_at = expire
  p.metadata = await parseMetadata(ctx, f.strings('metadata'))
  p.name = f.string('name')
  if (f.string('allocations') !== '') {
    // Go's StringsToPeers drops IDs that do not decode.
    p.user_allocations = f.string('allocations').split(',').filter(isPeerId)
  }
  p.no_pin = f.bool('no-pin')
  p.format = f.string('format')
  p.shard = f.bool('shard')
  p.shard_size = f.int('shard-size')
  if (p.shard_size <= 0) {
    await ctx.fail('', new Error('--shard-size must be a positive number of bytes'))
  }
  p.recursive = f.bool('recursive')
  p.local = f.bool('local')
  p.layout = f.string('layout')
  p.chunker = f.string('chunker')
  p.raw_leaves = f.bool('raw-leaves')
  p.hidden = f.bool('hidden')
  p.wrap = f.bool('wrap-with-directory') || paths.length > 1
  p.cid_version = f.int('cid-version')
  p.hash_fun = f.string('hash')
  if (p.hash_fun !== 'sha2-256') p.cid_version = 1
  if (p.cid_version > 0) p.raw_leaves = true
  p.no_copy = f.bool('nocopy')
  if (p.no_copy) p.raw_leaves = true
  if (p.wrap && p.format === 'car') {
    await ctx.fail(
      '',
      new Error('only a single CAR file can be added and wrap-with-directory is not supported'),
    )
  }
  const qq = f.bool('quieter')
  const q = f.bool('quiet') || qq
  const buffer = f.bool('no-stream')
  const buffered: AddedOutput[] = []
  let last: AddedOutput | undefined
  let addError: unknown
  // On a terminal, a progress bar on stderr while the content uploads (quiet modes hide it, as
  // `ipfs add -q` does); elsewhere nothing but the outputs.
  let bar: ProgressBar | undefined
  const onSent = ctx.io.stderrIsTerminal && !q
    ? (sent: number, total: number | undefined) => {
      bar ??= progressBar({ total, write: ctx.io.stderr, clock: ctx.io.clock ?? systemClock })
      bar.update(sent)
    }
    : undefined
  try {
    for await (const v of ctx.client().add(paths, p, { onSent })) {
      last = v
      if (buffer) buffered.push(v)
      else if (!qq) {
        await bar?.clear()
        await ctx.print(v, (o) => formatAddedOutput(o, q))
      }
    }
  } catch (err) {
    addError = err
  }
  await bar?.done()
  if (last?.cid) {
    if (buffer) {
      const list = qq ? [last] : buffered
      await ctx.write(
        ctx.encoding === 'json'
          ? goJsonIndent(list) + '\n'
          : list.map((o) => formatAddedOutput(o, q)).join(''),
      )
    } else if (qq) {
      await ctx.print(last, (o) => formatAddedOutput(o, q))
    }
    if (f.bool('wait')) {
      let rplMin = p.replication_factor_min
      try {
        rplMin = (await ctx.client().allocation(last.cid)).replication_factor_min
      } catch { /* use the requested factor, as the reference does */ }
      await wait(ctx, last.cid, 'pinned', f.duration('wait-timeout'), rplMin)
    }
  }
  if (addError !== undefined) await ctx.error(addError)
}

async function graphAction(ctx: ActionContext): Promise<void> {
  let graph
  try {
    graph = await ctx.client().graph()
  } catch (err) {
    return await ctx.error(err)
  }
  const dot = makeDot(graph, ctx.flags.bool('all-ipfs-peers'))
  const file = ctx.flags.string('file')
  if (file === '') return await ctx.write(dot)
  try {
    await (ctx.io.writeFile ?? Deno.writeTextFile)(file, dot)
  } catch (err) {
    await ctx.fail('creating output file', err)
  }
}

/** Lists every command path (the hidden `commands` command). */
export function walkCommands(cmds: Command[], parent: string): string {
  let s = ''
  for (const c of cmds) {
    const h = `${parent} ${c.name}`
    s += h + '\n'
    s += walkCommands(c.subcommands ?? [], h)
  }
  return s
}

const statusAllString = goSort([...TRACKER_STATUSES, 'error', 'queued'].map((s) => '  - ' + s))
  .join('\n')

/** The command tree, in the reference's order. */
export const COMMANDS: Command[] = [
  {
    name: 'id',
    usage: 'Retrieve peer information',
    description: `
This command displays information about the peer that the tool is contacting
(usually running in localhost).
`,
    action: (ctx) => ctx.respond(ctx.client().id(), formatID),
  },
  {
    name: 'peers',
    usage: 'List and manage IPFS Cluster peers',
    description: 'List and manage IPFS Cluster peers',
    subcommands: [
      {
        name: 'ls',
        usage: 'list the nodes participating in the IPFS Cluster',
        argsUsage: ' ',
        description: `
This command provides a list of the ID information of all the peers in the Cluster.
`,
        action: (ctx) => ctx.respondStream(ctx.client().peers(), formatID),
      },
      {
        name: 'rm',
        usage: 'remove a peer from the Cluster',
        argsUsage: '<peer ID>',
        description: `
This command removes a peer from the cluster. If the peer is online, it will
automatically shut down. All other cluster peers should be online for the
operation to succeed, otherwise some nodes may be left with an outdated list of
cluster peers.
`,
        action: async (ctx) => {
          const pid = ctx.args[0] ?? ''
          if (!isPeerId(pid)) {
            await ctx.fail(
              'parsing peer ID',
              new Error(`failed to parse peer ID: ${JSON.stringify(pid)}`),
            )
          }
          try {
            await ctx.client().peerRemove(pid)
          } catch (err) {
            await ctx.error(err)
          }
        },
      },
    ],
  },
  {
    name: 'add',
    usage: 'Add a file or directory to ipfs and pin it in the cluster',
    argsUsage: '<path>',
    description: `
Add allows to add and replicate content to several ipfs daemons, performing
a Cluster Pin operation on success. It takes elements from local paths as
well as from web URLs (accessed with a GET request). Providing several
arguments will automatically set --wrap-in-directory.

Cluster "add" works, by default, just like "ipfs add" and has similar options
in terms of DAG layout, chunker, hash function etc. It also supports adding
CAR files directly (--format car), as long as they have a single root. When
adding CAR files, all the options related to dag-building are ignored.

Added content will be allocated and sent block by block to the peers that
should pin it (among which may not necessarily be the local ipfs daemon).
Once all the blocks have arrived, they will be "cluster-pinned". This makes
cluster add slower than a local ipfs add, but the result is a fully replicated
on completion. If you prefer faster adding, use the --local flag to add
directly to the local IPFS node and pin in the destinations after that.
Note that the local IPFS node may not be among the destinations, which will
leave the unpinned content in it.

Optional replication-min and replication-max factors can be provided: -1 means
"pin everywhere" and 0 means use cluster's default setting (i.e., replication
factor set in config). Positive values indicate how many peers should pin this
content.
`,
    flags: [
      { names: ['recursive', 'r'], kind: 'bool', usage: 'Add directory paths recursively' },
      { names: ['quiet', 'q'], kind: 'bool', usage: 'Write only hashes to output (one per line)' },
      { names: ['quieter', 'Q'], kind: 'bool', usage: 'Write only final hash to output' },
      {
        names: ['no-stream'],
        kind: 'bool',
        usage: 'Buffer output locally. Produces a valid JSON array with --enc=json.',
      },
      { names: ['local'], kind: 'bool', usage: 'Add to local peer but pin normally' },
      { names: ['name', 'n'], kind: 'string', usage: 'Sets a name for this pin', default: '' },
      {
        names: ['replication-min', 'rmin'],
        kind: 'int',
        usage: 'Sets the minimum replication factor for pinning this file',
        default: 0,
      },
      {
        names: ['replication-max', 'rmax'],
        kind: 'int',
        usage: 'Sets the maximum replication factor for pinning this file',
        default: 0,
      },
      {
        names: ['expire-in'],
        kind: 'string',
        usage: 'Duration after which the pin should be unpinned automatically',
      },
      {
        names: ['metadata'],
        kind: 'stringSlice',
        usage: 'Pin metadata: key=value. Can be added multiple times',
      },
      {
        names: ['allocations', 'allocs'],
        kind: 'string',
        usage: 'Optional comma-separated list of peer IDs',
      },
      { names: ['no-pin'], kind: 'bool', usage: 'Do not pin after adding' },
      {
        names: ['shard'],
        kind: 'bool',
        usage: 'Split the DAG into shards, each allocated on its own (content bigger than a peer)',
      },
      {
        names: ['shard-size'],
        kind: 'int',
        usage: 'Bytes of blocks in one shard (with --shard)',
        default: 104857600,
      },
      { names: ['wait'], kind: 'bool', usage: WAIT_DESC },
      { names: ['wait-timeout', 'wt'], kind: 'duration', usage: WAIT_TIMEOUT_DESC, default: 0 },
      {
        names: ['wrap-with-directory', 'w'],
        kind: 'bool',
        usage: 'Wrap a with a directory object',
      },
      {
        names: ['format'],
        kind: 'string',
        usage: "'unixfs' (add as unixfs DAG), 'car' (import CAR file)",
        default: 'unixfs',
      },
      {
        names: ['layout'],
        kind: 'string',
        usage: 'Dag layout to use for dag generation: balanced or trickle',
        default: '',
      },
      {
        names: ['hidden', 'H'],
        kind: 'bool',
        usage: 'Include files that are hidden.  Only takes effect on recursive add',
      },
      {
        names: ['chunker', 's'],
        kind: 'string',
        usage: "'size-<size>' or 'rabin-<min>-<avg>-<max>'",
        default: 'size-262144',
      },
      { names: ['raw-leaves'], kind: 'bool', usage: 'Use raw blocks for leaves (experimental)' },
      {
        names: ['cid-version'],
        kind: 'int',
        usage: 'CID version. Non default implies raw-leaves',
        default: 0,
      },
      {
        names: ['hash'],
        kind: 'string',
        usage: 'Hash function to use. Implies cid-version=1',
        default: 'sha2-256',
      },
      {
        names: ['nocopy'],
        kind: 'bool',
        usage: 'Add the URL using filestore. Implies raw-leaves. (experimental)',
      },
    ],
    action: addAction,
  },
  {
    name: 'pin',
    usage: 'Pin and unpin and list items in IPFS Cluster',
    description: 'Pin and unpin and list items in IPFS Cluster',
    subcommands: [
      {
        name: 'add',
        usage: 'Pin an item in the cluster',
        argsUsage: '<CID|Path>',
        description: `
This command tells IPFS Cluster to start managing a CID. Depending on
the pinning strategy, this will trigger IPFS pin requests. The CID will
become part of the Cluster's state and will tracked from this point.

When the request has succeeded, the command returns the status of the CID
in the cluster and should be part of the list offered by "pin ls".

An optional replication factor can be provided: -1 means "pin everywhere"
and 0 means use cluster's default setting (i.e., replication factor set in
config). Positive values indicate how many peers should pin this content.

An optional allocations argument can be provided, allocations should be a
comma-separated list of peer IDs on which we want to pin. Peers in allocations
are prioritized over automatically-determined ones, but replication factors
would still be respected.
`,
        flags: [
          {
            names: ['replication', 'r'],
            kind: 'int',
            usage: 'Sets a custom replication factor (overrides -rmax and -rmin)',
            default: 0,
          },
          {
            names: ['replication-min', 'rmin'],
            kind: 'int',
            usage: 'Sets the minimum replication factor for this pin',
            default: 0,
          },
          {
            names: ['replication-max', 'rmax'],
            kind: 'int',
            usage: 'Sets the maximum replication factor for this pin',
            default: 0,
          },
          {
            names: ['allocations', 'allocs'],
            kind: 'string',
            usage: 'Optional comma-separated list of peer IDs',
          },
          { names: ['name', 'n'], kind: 'string', usage: 'Sets a name for this pin', default: '' },
          {
            names: ['mode'],
            kind: 'string',
            usage: 'Select a way to pin: recursive or direct',
            default: 'recursive',
          },
          {
            names: ['expire-in'],
            kind: 'string',
            usage: 'Duration after which pin should be unpinned automatically',
          },
          {
            names: ['metadata'],
            kind: 'stringSlice',
            usage: 'Pin metadata: key=value. Can be added multiple times',
          },
          ...waitFlags('Prevents fetching pin status after pinning (faster, quieter)'),
        ],
        action: pinAction,
      },
      {
        name: 'rm',
        usage: 'Unpin an item from the cluster',
        argsUsage: '<CID|Path>',
        description: `
This command tells IPFS Cluster to no longer manage a CID. This will
trigger unpinning operations in all the IPFS nodes holding the content.

When the request has succeeded, the command returns the status of the CID
in the cluster. The CID should disappear from the list offered by "pin ls",
although unpinning operations in the cluster may take longer or fail.
`,
        flags: waitFlags('Prevents fetching pin status after unpinning (faster, quieter)'),
        action: unpinAction,
      },
      {
        name: 'update',
        usage: 'Pin a new item based on an existing one',
        argsUsage: '<existing-CID> <new-CID|Path>',
        description: `
This command will add a new pin to the cluster taking all the options from an
existing one, including name. This means that the new pin will bypass the
allocation process and will be allocated to the same peers as the existing
one.

The cluster peers will try to Pin the new item on IPFS using the "pin update"
command. This is especially efficient when the content of two pins (their DAGs)
are similar.

Unlike the "pin update" command in the ipfs daemon, this will not unpin the
existing item from the cluster. Please run "pin rm" for that.
`,
        flags: [
          {
            names: ['name', 'n'],
            kind: 'string',
            usage: 'Sets a name for this updated pin',
            default: '',
          },
          {
            names: ['expire-in'],
            kind: 'string',
            usage: 'Duration after which the pin should be unpinned automatically after updating',
          },
          ...waitFlags('Prevents fetching pin status after updating (faster, quieter)'),
        ],
        action: updateAction,
      },
      {
        name: 'ls',
        usage: 'List items in the cluster pinset',
        argsUsage: '[CID]',
        description: `
This command will list the CIDs which are tracked by IPFS Cluster and to
which peers they are currently allocated. This list does not include
any monitoring information about the IPFS status of the CIDs, it
merely represents the list of pins which are part of the shared state of
the cluster. For IPFS-status information about the pins, use "status".

The filter only takes effect when listing all pins. The possible values are:
  - all (default)
  - pin (normal pins, recursive or direct)
  - meta-pin (sharded pins)
  - clusterdag-pin (sharding-dag root pins)
  - shard-pin (individual shard pins)
`,
        flags: [
          {
            names: ['filter'],
            kind: 'string',
            usage: 'Comma separated list of pin types. See help above.',
            default: 'all',
          },
        ],
        action: async (ctx) => {
          const arg = ctx.args[0] ?? ''
          if (arg !== '') {
            const cid = await decodeCid(ctx, arg)
            return await ctx.respond(ctx.client().allocation(cid), formatPin)
          }
          await ctx.respondStream(ctx.client().allocations(ctx.flags.string('filter')), formatPin)
        },
      },
    ],
  },
  {
    name: 'status',
    usage: 'Retrieve the status of tracked items',
    argsUsage: '[CID1] [CID2]...',
    description: `
This command retrieves the status of the CIDs tracked by IPFS
Cluster, including which member is pinning them and any errors.
If one of several CIDs are provided, the status will be only fetched
for a single item.  Metadata CIDs are included in the status response.

When the --local flag is passed, it will only fetch the status from the
contacted cluster peer. By default, status will be fetched from all peers.

When the --filter flag is passed, it will only fetch the peer information
where status of the pin matches at least one of the filter values (a comma
separated list). The following are valid status values:

${statusAllString}`,
    flags: [localFlag, {
      names: ['filter'],
      kind: 'string',
      usage: 'comma-separated list of filters',
    }],
    action: statusAction,
  },
  {
    name: 'recover',
    usage: 'Recover tracked items in error state',
    argsUsage: '[CID]',
    description: `
This command asks Cluster peers to re-track or re-forget CIDs in
error state, usually because the IPFS pin or unpin operation has failed.

The command will wait for any operations to succeed and will return the status
of the item upon completion. Note that, when running on the full sets of tracked
CIDs (without argument), it may take a considerably long time.

When the --local flag is passed, it will only trigger recover
operations on the contacted peer (as opposed to on every peer).
`,
    flags: [localFlag],
    action: async (ctx) => {
      const local = ctx.flags.bool('local')
      const arg = ctx.args[0] ?? ''
      if (arg !== '') {
        const cid = await decodeCid(ctx, arg)
        return await ctx.respond(ctx.client().recover(cid, { local }), formatGlobalPinInfo)
      }
      await ctx.respondStream(ctx.client().recoverAll({ local }), formatGlobalPinInfo)
    },
  },
  {
    name: 'version',
    usage: 'Retrieve cluster version',
    argsUsage: ' ',
    description: `
This command retrieves the IPFS Cluster version and can be used
to check that it matches the CLI version (shown by -v).
`,
    action: (ctx) => ctx.respond(ctx.client().version(), formatVersion),
  },
  {
    name: 'health',
    usage: 'Cluster monitoring information',
    description: 'Cluster monitoring information',
    subcommands: [
      {
        name: 'graph',
        usage: 'create a graph displaying connectivity of cluster peers',
        description: `
This command queries all connected cluster peers and their ipfs peers to generate a
graph of the connections.  Output is a dot file encoding the cluster's connection state.
`,
        flags: [
          {
            names: ['file', 'f'],
            kind: 'string',
            usage: 'sets an output dot-file for the connectivity graph',
            default: '',
          },
          {
            names: ['all-ipfs-peers'],
            kind: 'bool',
            usage: 'causes the graph to mark nodes for ipfs peers not directly in the cluster',
          },
        ],
        action: graphAction,
      },
      {
        name: 'metrics',
        usage: 'List latest metrics logged by this peer',
        argsUsage: '<metric name>',
        description: `
This commands displays the latest valid metrics of the given type logged
by this peer for all current cluster peers.

If no argument is provided, the command retrieves all currently existing metric types.

Currently supported metrics depend on the informer component used,
but usually are:

- freespace
- ping
`,
        action: async (ctx) => {
          const name = ctx.args[0] ?? ''
          if (name === '') {
            return await ctx.respond(
              ctx.client().metricNames(),
              (list) => (list ?? []).map((s) => escapeControl(s) + '\n').join(''),
            )
          }
          const now = ctx.now()
          await ctx.respond(
            ctx.client().metrics(name),
            (list) => (list ?? []).map((m) => formatMetric(m, now)).join(''),
          )
        },
      },
      {
        name: 'alerts',
        usage: 'List the latest expired metric alerts',
        description: `
This command provides a list of "alerts" that the cluster has seen.

An alert is triggered when one of the metrics seen for a peer expires, and no
new metrics have been received.

Different alerts may be handled in different ways. i.e. ping alerts may
trigger automatic repinnings if configured.
`,
        action: async (ctx) => {
          const now = ctx.now()
          await ctx.respond(
            ctx.client().alerts(),
            (list) => (list ?? []).map((a) => formatAlert(a, now)).join(''),
          )
        },
      },
      {
        name: 'bandwidth',
        usage: 'Lists bandwidth stats for libp2p protocols',
        description: `
This command lists information about bytes sent, received and current bandwidth
rates for each libp2p protocol that the peer uses.
`,
        action: (ctx) => ctx.respond(ctx.client().bandwidth(), formatBandwidth),
      },
    ],
  },
  {
    name: 'ipfs',
    usage: 'Manage IPFS daemon',
    description: 'Manage IPFS daemon',
    subcommands: [
      {
        name: 'gc',
        usage: 'run garbage collection on IPFS repos of cluster peers',
        description: `
This command will instruct current Cluster peers to run "repo gc" on their
respective IPFS daemons.

When --local flag is passed, it will garbage collect only on the local IPFS
daemon, otherwise on all IPFS daemons.
`,
        flags: [localFlag],
        action: (ctx) =>
          ctx.respond(ctx.client().repoGC({ local: ctx.flags.bool('local') }), formatRepoGC),
      },
    ],
  },
  {
    name: 'commands',
    usage: 'List all commands',
    argsUsage: ' ',
    hidden: true,
    action: (ctx) =>
      ctx.write(walkCommands(COMMANDS, 'ipfs-cluster-ctl') + 'ipfs-cluster-ctl help\n'),
  },
]

/** Finds a command by name or alias. */
export function findCommand(cmds: Command[], name: string): Command | undefined {
  return cmds.find((c) => c.name === name || c.aliases?.includes(name))
}
