/**
 * The JSON Schemas of the REST API's wire types (`#/components/schemas` of `GET /openapi.json`),
 * one per type of src/types/ and src/components.ts, keys as the reference emits them (docs:
 * /work/shared/reference/ipfs-cluster.md §4). Each object schema is typed against its TS type
 * (`object<T>`), so a field added to a wire type without its schema is a type error here; and
 * test/api/rest/openapi_live.test.ts validates real answers against them.
 *
 * Also the query parameters several routes share (pin options, add options, `local`).
 *
 * @example
 * ```ts
 * const doc = restOpenApi(routes) // what GET /openapi.json answers
 * doc.components.schemas.Pin.required // ['replication_factor_min', …]
 * ```
 */
import type { AddedOutput } from '../../types/added.ts'
import { VERSION } from '../../types/id.ts'
import type { ID, IPFSID } from '../../types/id.ts'
import type { Alert, Metric } from '../../types/metric.ts'
import type { Pin } from '../../types/pin.ts'
import type { GlobalPinInfo, PinInfoShort } from '../../types/pininfo.ts'
import { TRACKER_STATUSES } from '../../types/status.ts'
import type {
  BandwidthStats,
  ConnectGraph,
  GlobalRepoGC,
  IPFSRepoGCItem,
  RepoGC,
} from '../../components.ts'
import type { ApiRoute } from '../common/http_api.ts'
import {
  array,
  boolean,
  integer,
  map,
  nullable,
  number,
  object,
  oneOfStrings,
  type OpenApiDocument,
  openApiDocument,
  type ParamDoc,
  ref,
  type Schema,
  string,
} from '../common/openapi.ts'

/** RFC 3339 with optional fraction, as Go writes `time.Time` (zero: `0001-01-01T00:00:00Z`). */
const time = (description: string) =>
  string({
    description,
    format: 'date-time',
    pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
  })
const cid = (description = 'A CID') => string({ description })
const peerId = (description = 'A cluster peer ID') => string({ description })
const multiaddr = (description = 'A multiaddress') => string({ description })
const strings = (items: Schema, description: string) => array(items, { description })

const PIN_TYPES = ['pin', 'meta-pin', 'clusterdag-pin', 'shard-pin', 'bad-type'] as const

const pin = object<Pin>({
  replication_factor_min: integer({
    description: 'Fewest peers to pin on: -1 every peer, 0 the cluster default',
  }),
  replication_factor_max: integer({ description: 'Most peers to pin on: -1 every peer' }),
  name: string(),
  mode: oneOfStrings(['recursive', 'direct']),
  shard_size: integer({ description: 'Bytes per shard of a sharded add' }),
  user_allocations: nullable(strings(peerId(), 'Peers the user asked for, first choice')),
  expire_at: time('When the pin is removed; the zero time is never'),
  metadata: nullable(map(string(), { description: 'meta-<key>=<value> of the request' })),
  pin_update: nullable(cid('The pin this one updated (pin-update)')),
  origins: nullable(strings(multiaddr(), 'Multiaddresses to fetch the content from')),
  cid: cid(),
  type: oneOfStrings(PIN_TYPES),
  allocations: strings(peerId(), 'Peers that pin it; empty: every peer'),
  max_depth: integer({ description: '-1 recursive, 0 direct, 1 a shard' }),
  reference: nullable(cid('The linked pin of a sharded add (meta, clusterDAG, shard)')),
  timestamp: time('When it was last committed'),
}, { description: 'One entry of the shared pinset' })

const pinInfoShort = object<PinInfoShort>({
  peername: string(),
  ipfs_peer_id: string({ description: "The peer's IPFS daemon" }),
  ipfs_peer_addresses: strings(multiaddr(), "The IPFS daemon's addresses"),
  status: oneOfStrings(['undefined', ...TRACKER_STATUSES]),
  timestamp: time('When the status was last set'),
  error: string({ description: 'Why the last operation failed; empty when it did not' }),
  attempt_count: integer(),
  priority_pin: boolean(),
}, { optional: ['ipfs_peer_id', 'ipfs_peer_addresses'], description: "One peer's view of a CID" })

const globalPinInfo = object<GlobalPinInfo>({
  cid: cid(),
  name: string(),
  allocations: nullable(strings(peerId(), 'Peers that pin it; empty: every peer')),
  origins: nullable(strings(multiaddr(), 'Multiaddresses to fetch the content from')),
  created: time('When it was pinned'),
  metadata: nullable(map(string())),
  peer_map: map(ref('PinInfoShort'), { description: 'By cluster peer ID' }),
}, { description: 'The status of a CID on every peer' })

const ipfsId = object<IPFSID>({
  id: string({ description: "The IPFS daemon's peer ID (absent when it did not answer)" }),
  addresses: strings(multiaddr(), "The IPFS daemon's addresses"),
  error: string({ description: 'Why the IPFS daemon could not be asked; empty when it was' }),
}, { optional: ['id'] })

const id = object<ID>({
  id: peerId(),
  addresses: strings(multiaddr(), 'Where the peer listens, each with /p2p/<id>'),
  cluster_peers: strings(peerId(), 'The members this peer knows'),
  cluster_peers_addresses: strings(multiaddr(), "The other members' addresses"),
  version: string(),
  commit: string({ description: 'Always empty' }),
  rpc_protocol_version: string({ examples: ['/ipfscluster/1.0/rpc'] }),
  error: string({ description: 'Why the peer could not answer; empty when it did' }),
  ipfs: ref('IPFSID'),
  peername: string(),
}, { description: "A cluster peer's identity" })

const metricProps = {
  name: string(),
  peer: peerId(),
  value: string({ description: 'The value, as text' }),
  expire: integer({ description: 'Expiry, Unix nanoseconds' }),
  valid: boolean(),
  weight: integer(),
  partitionable: boolean(),
  received_at: integer({ description: 'When it arrived, Unix nanoseconds (receiver clock)' }),
}
const metric = object<Metric>(metricProps, { description: 'One metric sample of one peer' })
const alert = object<Alert>({
  ...metricProps,
  triggered_at: time('When the alert was raised'),
}, { description: "A peer's metric that expired: the metric and when" })

const connectGraph = object<ConnectGraph>({
  cluster_id: peerId('The peer that drew the graph'),
  id_to_peername: map(string()),
  ipfs_links: map(strings(string(), 'IPFS peer IDs'), { description: 'IPFS peer → its peers' }),
  cluster_links: map(strings(peerId(), 'Cluster peer IDs'), {
    description: 'Cluster peer → the cluster peers it is connected to',
  }),
  cluster_trust_links: map(boolean(), { description: 'Cluster peer → trusted' }),
  cluster_to_ipfs: map(string(), { description: "Cluster peer → its IPFS daemon's ID" }),
}, { description: 'Who is connected to whom' })

const repoGCItem = object<IPFSRepoGCItem>({
  key: cid('A block removed'),
  error: string(),
}, { optional: ['key', 'error'] })

const repoGC = object<RepoGC>({
  peer: peerId(),
  peername: string(),
  keys: array(ref('IPFSRepoGCItem')),
  error: string({ description: "Why this peer's GC failed" }),
}, { optional: ['error'] })

const bandwidth = object<BandwidthStats>({
  total_in: integer({ description: 'Bytes' }),
  total_out: integer({ description: 'Bytes' }),
  rate_in: number({ description: 'Bytes per second' }),
  rate_out: number({ description: 'Bytes per second' }),
})

const addedOutput = object<AddedOutput>({
  name: string({ description: 'File or directory name; `shard-<n>`, `<name>-clusterDAG`' }),
  cid: nullable(cid('Null on a progress item')),
  bytes: integer({ description: 'Bytes added so far (progress items, CAR uploads)' }),
  size: integer({ description: 'The UnixFS size of the node' }),
  allocations: strings(peerId(), 'Where it was pinned'),
}, { optional: ['bytes', 'size', 'allocations'], description: 'One output item of an add' })

/** Every schema the REST document references. */
export const REST_SCHEMAS: Record<string, Schema> = {
  Error: object<{ code: number; message: string }>({
    code: integer({ description: 'The HTTP status' }),
    message: string(),
  }, { description: 'Every error answer' }),
  Version: object<{ version: string }>({ version: string({ examples: ['1.1.6'] }) }),
  IPFSID: ipfsId,
  ID: id,
  Pin: pin,
  PinInfoShort: pinInfoShort,
  GlobalPinInfo: globalPinInfo,
  Metric: metric,
  Alert: alert,
  ConnectGraph: connectGraph,
  IPFSRepoGCItem: repoGCItem,
  RepoGC: repoGC,
  GlobalRepoGC: object<GlobalRepoGC>({ peer_map: map(ref('RepoGC')) }),
  BandwidthStats: bandwidth,
  AddedOutput: addedOutput,
}

/** Path parameter `{hash}`. */
export const HASH_PARAM: Record<string, ParamDoc> = {
  hash: { description: 'A CID (any base; answered in its canonical form)' },
}

/** Path parameters `{keyType}/{path}` of the pin-by-path routes. */
export const PATH_PARAMS: Record<string, ParamDoc> = {
  keyType: { description: 'The namespace of the path' },
  path: {
    description: 'The rest of the path (may hold `/`): `<cid>[/sub/path]` or an IPNS name',
  },
}

/** `local=true`: this peer only. */
export const LOCAL_QUERY: Record<string, ParamDoc> = {
  local: { description: 'true: this peer only, not every peer', schema: boolean() },
}

/** The pin options of `POST /pins/…` (and `/add`, but for `pin-update`). */
export const PIN_OPTION_QUERY: Record<string, ParamDoc> = {
  name: { description: 'A name for the pin' },
  mode: {
    description: 'How IPFS pins it (unknown values: recursive)',
    schema: oneOfStrings(['recursive', 'direct']),
  },
  replication: { description: 'Sets both replication factors', schema: integer() },
  'replication-min': { description: '-1 every peer, 0 the cluster default', schema: integer() },
  'replication-max': { description: '-1 every peer, 0 the cluster default', schema: integer() },
  'shard-size': { description: 'Bytes per shard', schema: integer({ minimum: 0 }) },
  'user-allocations': {
    description: 'Comma-separated peer IDs to allocate to first (an ID that does not decode ' +
      'is a 400 here; the reference drops it)',
    schema: array(peerId()),
    explode: false,
  },
  'expire-at': { description: 'When to unpin (RFC 3339)', schema: time('RFC 3339') },
  'expire-in': {
    description: 'Unpin after this Go duration (at least 1s; ignored with expire-at)',
    schema: string({ examples: ['1h30m'] }),
  },
  'pin-update': { description: 'The CID of an existing pin this one replaces', schema: cid() },
  origins: {
    description: 'Comma-separated multiaddresses, each with /p2p/<id>, to fetch from',
    schema: array(multiaddr()),
    explode: false,
  },
}

const { 'pin-update': _update, ...addPinOptions } = PIN_OPTION_QUERY
const flag = (description: string): ParamDoc => ({ description, schema: boolean() })

/** `POST /add`'s parameters: pin options (but pin-update) and the importer's options. */
export const ADD_QUERY: Record<string, ParamDoc> = {
  ...addPinOptions,
  local: flag('Put the blocks on this peer only (it replaces the last allocation)'),
  recursive: flag('Add directories recursively'),
  hidden: flag('Include hidden files'),
  'wrap-with-directory': flag('Wrap the files in a directory'),
  shard: flag('Shard the DAG over several peers'),
  progress: flag('Stream progress items (`bytes`, `cid` null)'),
  'raw-leaves': flag('Raw leaves (default: true when cid-version > 0)'),
  'stream-channels': flag('false: one JSON array at the end instead of a stream'),
  nocopy: flag('Filestore (not supported)'),
  'no-pin': flag('Store the blocks, pin nothing'),
  format: {
    description: 'unixfs (files) or car (a CAR file with one root)',
    schema: oneOfStrings(['unixfs', 'car']),
  },
  layout: { description: 'DAG layout', schema: oneOfStrings(['balanced', 'trickle']) },
  chunker: {
    description: 'size-<bytes> or rabin-<min>-<avg>-<max>',
    schema: string({ examples: ['size-262144'] }),
  },
  hash: { description: 'Multihash function', schema: string({ examples: ['sha2-256'] }) },
  'cid-version': { description: 'CID version', schema: integer({ enum: [0, 1] }) },
}

const DESCRIPTION = `The REST API of an IPFS Cluster peer, compatible with IPFS Cluster 1.1.6
(whose clients, \`ipfs-cluster-ctl\` among them, work unchanged). Generated from the route table
the peer routes with: \`GET /openapi.json\` on a peer, or docs/openapi.json (\`deno task openapi\`).

Every answer is JSON (\`Content-Type: application/json\`, each value followed by a newline),
errors too: \`{"code":<status>,"message":"…"}\`. Lists are streamed as NDJSON (media types marked
\`x-ndjson\`): 204 when there is nothing to send. A path with a trailing \`/\` is redirected (307)
to the path without it; an unknown path is a 404 and a known path with another method a 405 with
\`Allow\`; a body larger than \`max_body_bytes\` is a 413.

Authentication, when \`basic_auth_credentials\` is set: HTTP Basic with one of its users, or
\`Authorization: Bearer <JWT>\` with a token from \`POST /token\`. Without it, no credentials
are needed. \`GET /health\`, \`GET /openapi.json\` and \`OPTIONS\` never need them.`

/** The REST API's OpenAPI document for its route table (what `GET /openapi.json` answers). */
export function restOpenApi(routes: readonly ApiRoute[]): OpenApiDocument {
  return openApiDocument(routes, {
    title: 'IPFS Cluster REST API',
    version: VERSION,
    description: DESCRIPTION,
    tags: {
      peers: 'Cluster membership and identity',
      pins: 'The pinset, pin status, adding content',
      ipfs: "The peers' IPFS daemons",
      health: 'Liveness, connectivity, alerts, traffic',
      monitor: 'Metrics the peers publish',
      auth: 'Tokens',
      meta: 'This document',
    },
    schemas: REST_SCHEMAS,
  })
}
