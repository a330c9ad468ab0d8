/**
 * What a peer's Raft data lets it do at start, and moving that data aside.
 *
 * The data folder (`consensus.raft.data_folder`, `<config>/raft`) holds `state.kv`: the Raft log,
 * hard state and membership beside the pinset, and the record of the cluster the data belongs to
 * (written at the data's first start: a fingerprint of the cluster secret, the peer, and whether
 * it founded or joined). `planStart` is pure: from what is stored and this start's inputs it
 * answers start fresh, resume, or refuse with one line naming the cause and the fix, because
 * this is where the Go original leaves its users with raw Raft errors or a peer that silently
 * never becomes ready (its issues #160, #635, #718, #840). `checkDataFolder` is its I/O edge;
 * `cleanupDataFolder` and `moveAside` rotate backups as the reference does (`raft.old.0` newest).
 *
 * @example
 * ```ts
 * const db = await openStateDb(configDir, cfg)
 * const plan = await checkDataFolder(db, {
 *   folder: dataFolder(configDir, cfg), self: ident.id, secret: cfg.cluster.secret,
 *   initPeerset: cfg.raft.init_peerset, bootstrap: bootstraps.length > 0,
 * }, log) // throws DataFolderError (one line) when the peer must not start
 * ```
 *
 * @module
 */
import { basename, dirname, join } from 'node:path'
import type { ConfState } from './core/mod.ts'
import { carryOverRaftState, forgetIdleRaftData, inspectRaftData } from './kv_storage.ts'
import { PIN_KEY_PREFIX } from '../../state/pinset_writer.ts'
import { ClusterError } from '../../errors.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { exists } from '../../util/fs.ts'

/** The KV key of the cluster record (in the state's meta space). */
export const CLUSTER_RECORD_KEY: Deno.KvKey = ['meta', 'cluster']

/** The cluster a peer's data belongs to, recorded at the data's first start. */
export interface ClusterRecord {
  /** `secretFingerprint` of the cluster secret (never the secret itself). */
  secret: string
  /** The peer that started on this data. */
  peer: string
  /** True when the peer started to join a cluster (`--bootstrap`), false when it founded one. */
  joined: boolean
  /** The founding voters (empty for a joining peer). */
  founders: string[]
}

/** What a data folder holds, as `planStart` needs it. */
export interface StoredData {
  /** Raft ran on this data (a term, a log entry or a snapshot). */
  raft: boolean
  /** The pinset holds at least one pin. */
  pins: boolean
  /** The latest stored membership. */
  conf: ConfState
  /** Every peer a stored membership names. */
  everMembers: string[]
  /** The cluster record; null when the data predates it. */
  cluster: ClusterRecord | null
}

/** This start's inputs. */
export interface StartInputs {
  /** The data folder, for messages. */
  folder: string
  /** This peer's ID. */
  self: string
  /** `secretFingerprint` of `cluster.secret`. */
  secretFingerprint: string
  /** `consensus.raft.init_peerset`. */
  initPeerset: string[]
  /** `daemon --bootstrap` (or `cluster.bootstrap`) names peers to join. */
  bootstrap: boolean
}

/** What the peer does with its data. */
export type StartPlan =
  | {
    /** No Raft data: start a new member. */
    kind: 'fresh'
    /** The initial voters: `init_peerset` and self (founding), or none (joining). */
    voters: string[]
    /** To record before consensus starts. */
    record: ClusterRecord
    /** INFO lines to log once. */
    notes: string[]
  }
  | {
    /** Raft data of this cluster with this peer in it: start on it, nothing wiped. */
    kind: 'resume'
    /** A record to write (data that predates records), else undefined. */
    record?: ClusterRecord
    notes: string[]
  }
  | {
    /** The peer must not start; `reason` is one line with the cause and the fix. */
    kind: 'refuse'
    reason: string
  }

/** A start refused by the peer's Raft data; its message is one line with the cause and the fix. */
export class DataFolderError extends ClusterError {
  override name = 'DataFolderError'
}

const CLEANUP = '"ipfs-cluster-service state cleanup"'

function unique(ids: Iterable<string>): string[] {
  return [...new Set(ids)]
}

function sameSet(a: string[], b: string[]): boolean {
  const s = new Set(a)
  return s.size === new Set(b).size && b.every((x) => s.has(x))
}

/**
 * Decides what a peer may do with its data (pure). See the module comment; each refusal names
 * the folder, the cause and the command that fixes it.
 */
export function planStart(stored: StoredData, inp: StartInputs): StartPlan {
  const { folder, self } = inp
  const fresh = `run ${CLEANUP} (it keeps the data as ${basename(folder)}.old.0) ` +
    'or start from a clean folder'
  if (!stored.raft) {
    if (inp.bootstrap && stored.pins) {
      return {
        kind: 'refuse',
        reason: `this peer's data folder (${folder}) holds a pinset, which joining a cluster ` +
          `with --bootstrap would replace with the cluster's; ${fresh}`,
      }
    }
    const voters = inp.bootstrap ? [] : unique([...inp.initPeerset, self])
    const record = {
      secret: inp.secretFingerprint,
      peer: self,
      joined: inp.bootstrap,
      founders: voters,
    }
    const notes = inp.bootstrap
      ? ['no Raft data: this peer waits to be added to the cluster it joins']
      : [`no Raft data: initializing a new Raft cluster with the voters ${voters.join(', ')}`]
    return { kind: 'fresh', voters, record, notes }
  }

  const rec = stored.cluster
  if (rec && rec.secret !== inp.secretFingerprint) {
    return {
      kind: 'refuse',
      reason: `this peer's Raft data (${folder}) belongs to another cluster (it was created ` +
        `with another cluster secret): put that secret back in service.json, or ${fresh}`,
    }
  }
  if (rec && rec.peer !== self) {
    return {
      kind: 'refuse',
      reason: `this peer's Raft data (${folder}) is peer ${rec.peer}'s, not this peer's ` +
        `(${self}): the folder was copied from another peer or identity.json changed; ${fresh}`,
    }
  }
  const member = stored.conf.voters.includes(self) || stored.conf.learners.includes(self)
  const wasMember = stored.everMembers.includes(self)
  // A joining peer may stop before the log it received reaches the entry that added it: it is
  // a member the leader still replicates to (the Go original refuses here, issue #718).
  const joining = !member && !wasMember && rec?.joined === true
  const notes: string[] = []
  if (joining) {
    notes.push(
      'this peer had not finished joining its cluster: it resumes and catches up from the leader',
    )
  } else if (inp.bootstrap) {
    return {
      kind: 'refuse',
      reason: member
        ? `--bootstrap given, but this peer already has Raft data (${folder}) as a member of ` +
          'its cluster: start it without --bootstrap to rejoin with that data, or run ' +
          `${CLEANUP} first to join from scratch`
        : `--bootstrap given, but this peer has old Raft data (${folder}) of a cluster it is ` +
          `no longer a member of; ${fresh}, then start with --bootstrap again`,
    }
  } else if (!member) {
    return {
      kind: 'refuse',
      reason: wasMember
        ? `this peer's Raft data (${folder}) says it was removed from its cluster (its stored ` +
          `peerset no longer contains ${self}); run ${CLEANUP} and start with ` +
          "--bootstrap <a member's multiaddress> to join again"
        : `this peer's Raft data (${folder}) names a peerset without this peer (${self}): the ` +
          `data was copied from another peer; ${fresh}`,
    }
  }
  const peerset = unique([...stored.conf.voters, ...stored.conf.learners])
  if (inp.initPeerset.length && !sameSet(unique([...inp.initPeerset, self]), peerset)) {
    notes.push(
      'existing Raft state found: consensus.raft.init_peerset is ignored; the stored peerset ' +
        `is ${peerset.join(', ') || 'empty'}`,
    )
  }
  const record = rec ? undefined : {
    secret: inp.secretFingerprint,
    peer: self,
    joined: false,
    founders: [],
  }
  return { kind: 'resume', record, notes }
}

/**
 * A fingerprint of a cluster secret (hex SHA-256 of a tagged form), stored instead of the
 * secret. An empty secret (no private network) has one too.
 */
export async function secretFingerprint(secret: string): Promise<string> {
  const bytes = new TextEncoder().encode(`ipfs-cluster secret\n${secret.trim().toLowerCase()}`)
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return Array.from(d.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Reads what `planStart` needs from an open state database (no writes). */
export async function readStoredData(kv: Deno.Kv): Promise<StoredData> {
  const raft = await inspectRaftData(kv)
  let pins = false
  for await (const _ of kv.list({ prefix: PIN_KEY_PREFIX }, { limit: 1 })) pins = true
  const cluster = (await kv.get<ClusterRecord>(CLUSTER_RECORD_KEY)).value
  return {
    raft: raft.hasState,
    pins,
    conf: raft.conf,
    everMembers: raft.everMembers,
    cluster,
  }
}

/** The inputs of `checkDataFolder`: `StartInputs` with the secret itself. */
export interface CheckInputs {
  folder: string
  self: string
  /** `cluster.secret` (hex, or empty). */
  secret: string
  initPeerset: string[]
  bootstrap: boolean
}

/**
 * At start, before consensus opens `kv` (the state database): plans the start, records the
 * cluster for new data, and logs the plan's notes at INFO. Throws `DataFolderError` when the peer
 * must not start. A `fresh` plan's `voters` are consensus's initial membership.
 */
export async function checkDataFolder(
  kv: Deno.Kv,
  inp: CheckInputs,
  log: Logger = nullLogger,
): Promise<Exclude<StartPlan, { kind: 'refuse' }>> {
  const stored = await readStoredData(kv)
  const plan = planStart(stored, {
    folder: inp.folder,
    self: inp.self,
    secretFingerprint: await secretFingerprint(inp.secret),
    initPeerset: inp.initPeerset,
    bootstrap: inp.bootstrap,
  })
  if (plan.kind === 'refuse') throw new DataFolderError(plan.reason)
  if (plan.kind === 'fresh') await forgetIdleRaftData(kv)
  if (plan.record) await kv.set(CLUSTER_RECORD_KEY, plan.record)
  for (const n of plan.notes) log.info(n)
  return plan
}

/** The name of backup `i` of `folder` (`<folder>.old.<i>` beside it; 0 is the newest). */
export function backupName(folder: string, i: number): string {
  return join(dirname(folder), `${basename(folder)}.old.${i}`)
}

/**
 * Moves a data folder (state.kv and its -wal/-shm files, with whatever else is in it) to
 * `<folder>.old.0`, after shifting older backups up by one and dropping the oldest so that at
 * most `keep` remain (the reference's rotation). Returns the backup's path, or undefined when
 * there is no folder. The database must be closed.
 */
export async function moveAside(folder: string, keep: number): Promise<string | undefined> {
  if (!(await exists(folder))) return undefined
  keep = Math.max(1, keep)
  let n = 0
  while (n < keep && await exists(backupName(folder, n))) n++
  if (n === keep) {
    await Deno.remove(backupName(folder, keep - 1), { recursive: true })
    n = keep - 1
  }
  for (let i = n; i > 0; i--) await Deno.rename(backupName(folder, i - 1), backupName(folder, i))
  const to = backupName(folder, 0)
  await Deno.rename(folder, to)
  return to
}

/** What `cleanupDataFolder` did. */
export type Cleanup =
  | { kind: 'none' }
  | { kind: 'removed' }
  | { kind: 'moved'; backup: string }

/**
 * Cleans a peer's data so that its next start is a first start (`state cleanup`, a removed or
 * departed peer): data with Raft state or pins goes to a rotated backup (`moveAside`), a folder
 * without either is deleted (the reference's CleanupRaft, which keeps no backup of an empty
 * folder). The database must be closed. Logs as the reference does (facility raft).
 */
export async function cleanupDataFolder(
  folder: string,
  keep: number,
  log: Logger = nullLogger,
): Promise<Cleanup> {
  if (!(await exists(folder))) return { kind: 'none' }
  const db = join(folder, 'state.kv')
  let empty = true
  if (await exists(db)) {
    try {
      // Only read, then kept as a backup or deleted: opened as Deno KV made it.
      const kv = await Deno.openKv(db)
      try {
        const s = await readStoredData(kv)
        empty = !s.raft && !s.pins
      } finally {
        kv.close()
      }
    } catch {
      // Unreadable data is still data: it is kept as a backup.
      empty = false
    }
  }
  if (empty) {
    log.info(`cleaning empty Raft data folder (${folder})`)
    await Deno.remove(folder, { recursive: true })
    return { kind: 'removed' }
  }
  log.info(`cleaning and backing up Raft data folder (${folder})`)
  const backup = (await moveAside(folder, keep))!
  return { kind: 'moved', backup }
}

/**
 * `carryOverRaftState` plus the cluster record: what `state import` keeps of the database it
 * replaces, so that the imported pinset still belongs to the same cluster and peer.
 */
export async function carryOverPeerData(from: Deno.Kv, to: Deno.Kv): Promise<void> {
  await carryOverRaftState(from, to)
  const rec = await from.get<ClusterRecord>(CLUSTER_RECORD_KEY)
  if (rec.value) await to.set(CLUSTER_RECORD_KEY, rec.value)
}
