/**
 * The `consensus.crdt` section (env `CLUSTER_CRDT_<KEY>`, and `CLUSTER_CRDT_BATCHING_<KEY>` for
 * the batching keys, as Go's envconfig names them): the keys, defaults and JSON forms of IPFS
 * Cluster 1.1.6 `consensus/crdt/config.go` (jsonConfig, batchingConfigJSON).
 *
 * What Go does that is kept:
 * - `trusted_peers` holding `"*"` trusts every peer (the list is then written as `["*"]`, the
 *   init default); a file without the key trusts nobody but this peer (Go resets the list before
 *   reading the file);
 * - empty strings and 0 where Go calls `SetIfNotDefault` (cluster_name, peerset_metric,
 *   datastore_namespace, max_queue_size) mean the default; `rebroadcast_interval`,
 *   `peerset_metric`, `datastore_namespace` and a default `max_queue_size` are left out of a
 *   written file;
 * - batching is on only when both `max_batch_size` and `max_batch_age` are above 0.
 *
 * One difference: a duration Go cannot parse is silently left at its default there (the error of
 * `ParseDurations` is dropped); here it is refused with the key's name.
 *
 * @example
 * ```ts
 * const cfg = crdtSection.load({ cluster_name: 'mine', trusted_peers: ['12D3KooW…'] }, env)
 * batchingEnabled(cfg) // false
 * ```
 *
 * @module
 */
import {
  type ConfigOf,
  defineSection,
  duration,
  type Field,
  int,
  nested,
  str,
} from '../../config/schema.ts'
import { parsePeerId } from '../../types/peer_id.ts'

/** A field whose empty string (or 0) in a file means its default, as Go's SetIfNotDefault. */
function orDefault<T>(f: Field<T>, empty: unknown): Field<T> {
  return {
    ...f,
    parse: (v, warn) => (v === empty ? f.default : f.parse(v, warn)),
    parseEnv: (s) => (s === '' ? f.default : f.parseEnv(s)),
  }
}

/** A duration that may be "" (the default), as Go's ParseDurations skips empty strings. */
function dur(defMs: number, opts: { positive?: boolean } = {}): Field<number> {
  return orDefault(duration(defMs, opts), '')
}

/** `trusted_peers`: peer IDs or "*"; normalized to `["*"]` when it holds "*". */
function trustedPeers(): Field<string[]> {
  const parse = (v: unknown): string[] => {
    if (v === null) return []
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) {
      throw new Error(`must be a list of peer IDs or "*", got ${JSON.stringify(v)}`)
    }
    if (v.includes('*')) return ['*']
    return (v as string[]).map((p) => {
      const id = parsePeerId(p)
      if (id === undefined) {
        throw new Error(`error parsing trusted peers: ${JSON.stringify(p)} is not a peer ID`)
      }
      return id
    })
  }
  return {
    kind: 'peer IDs',
    default: ['*'],
    // Go resets the list before reading a file: a file without the key trusts nobody.
    absent: [],
    parse,
    parseEnv: (s) => parse(s === '' ? [] : s.split(',').map((x) => x.trim())),
    toJSON: (v) => v,
  }
}

const BATCHING = 'consensus.crdt.batching'
const batchingFields = {
  max_batch_size: int(0),
  max_batch_age: dur(0),
  max_queue_size: {
    ...orDefault(int(50_000), 0),
    omitDefault: true,
    check: (v: number) => (v <= 0 ? `must be positive, got ${v}` : undefined),
  },
}

/** Field definitions of `consensus.crdt`. */
const section = defineSection('consensus.crdt', 'CRDT', {
  cluster_name: orDefault(str('ipfs-cluster'), ''),
  trusted_peers: trustedPeers(),
  batching: nested(BATCHING, batchingFields),
  repair_interval: dur(3_600_000),
  rebroadcast_interval: { ...dur(60_000, { positive: true }), omitDefault: true },
  peerset_metric: { ...orDefault(str('ping'), ''), omitDefault: true },
  datastore_namespace: { ...orDefault(str('/c'), ''), omitDefault: true },
})
const batchingSection = defineSection(BATCHING, 'CRDT_BATCHING', batchingFields)

/**
 * The `consensus.crdt` section. Its `load` also reads `CLUSTER_CRDT_BATCHING_<KEY>` (Go's
 * envconfig recurses into the nested struct), which the generic nested field does not.
 */
export const crdtSection: typeof section = {
  ...section,
  load(json, env = {}, warn) {
    const cfg = section.load(json, env, warn)
    const names = Object.keys(batchingFields).map((k) => batchingSection.envName(k))
    if (names.some((n) => env[n] !== undefined)) {
      // The batching keys as loaded, then their env overrides (checked with their names).
      cfg.batching = batchingSection.load(batchingSection.toJSON(cfg.batching), env, warn)
    }
    return cfg
  },
}

/** The loaded `consensus.crdt` section. */
export type CrdtConfig = ConfigOf<typeof section.fields>

/** Batching is on when both `max_batch_size` and `max_batch_age` are above 0 (Go). */
export function batchingEnabled(cfg: CrdtConfig): boolean {
  return cfg.batching.max_batch_size > 0 && cfg.batching.max_batch_age > 0
}

/**
 * Whether `cfg` trusts `peer`: every peer under `"*"`, else `self` and the listed ones
 * (crdt-interop §1.4; Go `Consensus.IsTrustedPeer`). `extra` adds peers trusted at start
 * (`daemon --bootstrap` without `--no-trust`).
 *
 * @example
 * ```ts
 * const trusted = trustChecker(cfg, selfId)
 * trusted('12D3KooW…') // true under "*"
 * ```
 */
export function trustChecker(
  cfg: CrdtConfig,
  self: string,
  extra: Iterable<string> = [],
): (peer: string) => boolean {
  if (cfg.trusted_peers.includes('*')) return () => true
  const set = new Set([self, ...cfg.trusted_peers, ...extra])
  return (peer) => set.has(peer)
}
