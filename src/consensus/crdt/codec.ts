/**
 * go-ds-crdt v0.6.8's wire formats, byte for byte: the `Delta`/`Element` protobuf (pb/delta.proto),
 * the `CRDTBroadcast` payload (pb/bcast.proto), the dag-pb node carrying a delta (ipld.go), and the
 * string forms Go derives from CIDs: block IDs (element ids, tombstone ids), datastore keys (the
 * cluster's pin keys) and the pubsub topic of a cluster name.
 *
 * Byte-identical encoding matters: two replicas that store one element at one priority keep the
 * byte-wise greater value, and element ids are the base32 of the node's multihash, so a node that
 * hashes differently on a Go peer and here would split one delta into two element versions.
 *
 * @example
 * ```ts
 * const { cid, bytes } = await encodeNode({ elements: [{ key, id: '', value }], tombstones: [], priority: 1 }, [])
 * const id = blockId(cid) // "/CIQ…": the id every receiver gives the elements of this delta
 * await broadcaster.broadcast(encodeBroadcast([cid]))
 * ```
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { reader, writer } from 'protons-runtime'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { varint } from 'multiformats'
import { base32upper } from 'multiformats/bases/base32'
import { base58btc } from 'multiformats/bases/base58'
import { sha256 } from 'multiformats/hashes/sha2'
import { ValidationError } from '../../errors.ts'

/** A received block, broadcast or key that is not in go-ds-crdt's format. */
export class CrdtFormatError extends ValidationError {
  override name = 'CrdtFormatError'
}

/** One element version: `id` travels empty; the receiver sets it to the carrying node's block ID. */
export interface Element {
  key: string
  id: string
  value: Uint8Array
}

/** A delta: what one DAG node adds and removes, at one priority (the node's height). */
export interface Delta {
  elements: Element[]
  tombstones: Element[]
  priority: number
}

/** A decoded delta node: its delta and the CIDs of the nodes it follows (its links). */
export interface DeltaNode {
  delta: Delta
  links: CID[]
}

const VARINT = 0
const LEN = 2
const EMPTY = new Uint8Array(0)
const encoder = new TextEncoder()

/** Encoded size of one Element message (without its own tag and length). */
function elementBodySize(e: Element): number {
  let s = 0
  const k = encoder.encode(e.key).length
  if (k > 0) s += 1 + varint.encodingLength(k) + k
  const i = encoder.encode(e.id).length
  if (i > 0) s += 1 + varint.encodingLength(i) + i
  if (e.value.length > 0) s += 1 + varint.encodingLength(e.value.length) + e.value.length
  return s
}

/**
 * What an element adds to an encoded delta (tag, length and body): for batches that commit once
 * their delta grows past a size, without encoding it again on every operation.
 *
 * @example
 * ```ts
 * size += elementSize({ key, id: '', value })
 * ```
 */
export function elementSize(e: Element): number {
  const b = elementBodySize(e)
  return 1 + varint.encodingLength(b) + b
}

/** What the priority field adds to an encoded delta (0 for priority 0, which proto3 omits). */
export function prioritySize(priority: number): number {
  return priority > 0 ? 1 + varint.encodingLength(priority) : 0
}

function writeElement(w: ReturnType<typeof writer>, field: number, e: Element): void {
  w.uint32((field << 3) | LEN).fork()
  if (e.key !== '') w.uint32((1 << 3) | LEN).string(e.key)
  if (e.id !== '') w.uint32((2 << 3) | LEN).string(e.id)
  if (e.value.length > 0) w.uint32((3 << 3) | LEN).bytes(e.value)
  w.ldelim()
}

/**
 * Encodes a delta as Go's `proto.Marshal` does (fields in number order, proto3 zero values omitted).
 *
 * @example
 * ```ts
 * const bytes = encodeDelta({ elements: [{ key: '/k', id: '', value }], tombstones: [], priority: 1 })
 * ```
 */
export function encodeDelta(d: Delta): Uint8Array {
  const w = writer()
  for (const e of d.elements) writeElement(w, 1, e)
  for (const e of d.tombstones) writeElement(w, 2, e)
  if (d.priority > 0) w.uint32((3 << 3) | VARINT).uint64Number(d.priority)
  return w.finish()
}

function readElement(r: ReturnType<typeof reader>, end: number): Element {
  const e: Element = { key: '', id: '', value: EMPTY }
  while (r.pos < end) {
    const tag = r.uint32()
    switch (tag >>> 3) {
      case 1:
        e.key = r.string()
        break
      case 2:
        e.id = r.string()
        break
      case 3:
        // A copy: the input is often a view of a larger buffer, which KV would store whole.
        e.value = new Uint8Array(r.bytes())
        break
      default:
        r.skipType(tag & 7)
    }
  }
  if (r.pos !== end) throw new CrdtFormatError('truncated Element in delta')
  return e
}

/**
 * Decodes a delta (unknown fields are skipped, as Go keeps and ignores them).
 *
 * @example
 * ```ts
 * const { elements, tombstones, priority } = decodeDelta(node.Data)
 * ```
 */
export function decodeDelta(bytes: Uint8Array): Delta {
  const d: Delta = { elements: [], tombstones: [], priority: 0 }
  try {
    const r = reader(bytes)
    while (r.pos < r.len) {
      const tag = r.uint32()
      const field = tag >>> 3
      if ((field === 1 || field === 2) && (tag & 7) === LEN) {
        const len = r.uint32()
        const e = readElement(r, r.pos + len)
        ;(field === 1 ? d.elements : d.tombstones).push(e)
      } else if (field === 3 && (tag & 7) === VARINT) {
        const p = r.uint64()
        if (p > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new CrdtFormatError('delta priority too large')
        }
        d.priority = Number(p)
      } else {
        r.skipType(tag & 7)
      }
    }
  } catch (err) {
    if (err instanceof CrdtFormatError) throw err
    throw new CrdtFormatError(`malformed delta: ${(err as Error).message}`)
  }
  return d
}

/**
 * Encodes a CRDTBroadcast: one `Head { bytes Cid = 1 }` per CID, binary CIDs.
 *
 * @example
 * ```ts
 * await broadcaster.broadcast(encodeBroadcast([head]))
 * ```
 */
export function encodeBroadcast(heads: readonly CID[]): Uint8Array {
  const w = writer()
  for (const c of heads) {
    w.uint32((1 << 3) | LEN).fork()
    w.uint32((1 << 3) | LEN).bytes(c.bytes)
    w.ldelim()
  }
  return w.finish()
}

/**
 * Decodes a CRDTBroadcast. Like Go, a payload that carries any field besides `Heads` (or does not
 * parse) is taken as a legacy broadcast: the whole payload is one raw CID.
 *
 * @example
 * ```ts
 * for (const head of decodeBroadcast(msg.data)) await handle(head)
 * ```
 */
export function decodeBroadcast(data: Uint8Array): CID[] {
  const heads: CID[] = []
  let legacy = false
  try {
    const r = reader(data)
    while (r.pos < r.len) {
      const tag = r.uint32()
      if (tag >>> 3 !== 1 || (tag & 7) !== LEN) {
        legacy = true
        break
      }
      const end = r.uint32() + r.pos
      let cid: Uint8Array | undefined
      while (r.pos < end) {
        const t = r.uint32()
        if (t >>> 3 === 1 && (t & 7) === LEN) cid = r.bytes()
        else r.skipType(t & 7)
      }
      if (r.pos !== end) throw new Error('truncated Head')
      if (!cid) throw new CrdtFormatError('broadcast head without a CID')
      heads.push(decodeCid(cid))
    }
  } catch (err) {
    if (err instanceof CrdtFormatError) throw err
    legacy = true
  }
  if (legacy) {
    try {
      return [CID.decode(data)]
    } catch {
      throw new CrdtFormatError('broadcast is neither a CRDTBroadcast nor a CID')
    }
  }
  return heads
}

function decodeCid(bytes: Uint8Array): CID {
  try {
    return CID.decode(bytes)
  } catch {
    throw new CrdtFormatError('broadcast head is not a CID')
  }
}

/**
 * The CID go-ds-crdt uses for a delta node: CIDv1, dag-pb, over the given CID's multihash (Go
 * looks blocks, heads and processed marks up by multihash, so a CIDv0 and its CIDv1 are one node).
 *
 * @example
 * ```ts
 * nodeCid(CID.parse('Qm…')).toString() // 'bafybei…'
 * ```
 */
export function nodeCid(c: CID): CID {
  return c.version === 1 && c.code === dagPb.code ? c : CID.createV1(dagPb.code, c.multihash)
}

/** Orders CIDs by their binary form, as go-ds-crdt's `heads.List` does. */
export function compareCids(a: CID, b: CID): number {
  return compareBytes(a.bytes, b.bytes)
}

/** Byte-wise comparison (Go's `bytes.Compare`): negative, 0 or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i]
  }
  return a.length - b.length
}

/**
 * Builds the dag-pb node of a delta: Data = the delta, one link per previous head sorted by CID
 * bytes with Name "" and Tsize 0 (what Go's merkledag encoder writes), CIDv1 dag-pb sha2-256.
 *
 * @example
 * ```ts
 * const { cid, bytes } = await encodeNode(delta, heads)
 * await blocks.put(cid, bytes)
 * ```
 */
export async function encodeNode(
  delta: Delta,
  links: readonly CID[],
): Promise<{ cid: CID; bytes: Uint8Array }> {
  const sorted = links.map(nodeCid).sort(compareCids)
  const bytes = dagPb.encode({
    Data: encodeDelta(delta),
    Links: sorted.map((Hash) => ({ Hash, Name: '', Tsize: 0 })),
  })
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  return { cid, bytes }
}

/**
 * Decodes a delta node received or read back, after checking that the bytes hash to `cid` (a peer
 * may send anything) and that it is dag-pb with sha2-256, the only form go-ds-crdt writes.
 *
 * @example
 * ```ts
 * const { delta, links } = await decodeNode(cid, await fetcher.fetch(cid, signal))
 * ```
 */
export async function decodeNode(cid: CID, bytes: Uint8Array): Promise<DeltaNode> {
  if (cid.multihash.code !== sha256.code) {
    throw new CrdtFormatError(`delta node ${cid} is not hashed with sha2-256`)
  }
  const digest = await sha256.digest(bytes)
  if (compareBytes(digest.bytes, cid.multihash.bytes) !== 0) {
    throw new CrdtFormatError(`block does not match its CID ${cid}`)
  }
  if (cid.code !== dagPb.code) throw new CrdtFormatError(`delta node ${cid} is not dag-pb`)
  let node: dagPb.PBNode
  try {
    node = dagPb.decode(bytes)
  } catch (err) {
    throw new CrdtFormatError(`delta node ${cid} is not dag-pb: ${(err as Error).message}`)
  }
  // The links on bytes of their own: dag-pb's CIDs are views of the block, and a CID kept (a walk's
  // queue, the heads) would keep the whole block (~1 MiB) alive with it.
  const links = node.Links.map((l) => nodeCid(CID.decode(new Uint8Array(l.Hash.bytes))))
  return { delta: decodeDelta(node.Data ?? EMPTY), links }
}

/**
 * go-ds-crdt's block ID: "/" + RFC 4648 base32 (upper case, no padding) of the node's multihash.
 * Element versions and tombstones are named by it (with the slash), so it must match Go exactly.
 *
 * @example
 * ```ts
 * blockId(cid) // '/CIQ…'
 * ```
 */
export function blockId(cid: CID): string {
  return '/' + base32upper.baseEncode(cid.multihash.bytes)
}

/**
 * The datastore key of a CID as IPFS Cluster's state writes it (`dshelp.CidToDsKey`): "/" +
 * base32 upper no padding of the CID bytes.
 *
 * @example
 * ```ts
 * dsKey(CID.parse('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')) // '/CIQJ23BL4UHXA2KTI6NLTXZM4PW4VEFWQBJ4ACZQAS37BLGL4HUO5XY'
 * ```
 */
export function dsKey(cid: CID): string {
  return '/' + base32upper.baseEncode(cid.bytes)
}

/**
 * The CID of a datastore key written by `dsKey`. Throws a CrdtFormatError for anything else.
 *
 * @example
 * ```ts
 * cidFromDsKey('/CIQJ23BL4UHXA2KTI6NLTXZM4PW4VEFWQBJ4ACZQAS37BLGL4HUO5XY').toString() // 'QmYw…'
 * ```
 */
export function cidFromDsKey(key: string): CID {
  const s = key.startsWith('/') ? key.slice(1) : key
  try {
    return CID.decode(base32upper.baseDecode(s))
  } catch {
    throw new CrdtFormatError(`not a CID datastore key: ${key}`)
  }
}

/**
 * The pubsub topic of a cluster name: base58btc (no multibase prefix) of the MD5 multihash
 * (`d5 01 10` + digest), as IPFS Cluster's CRDT consensus derives it.
 *
 * @example
 * ```ts
 * topicName('ipfs-cluster') // 'fzhnp2UwTBkgNabrJi1VanzwgN'
 * ```
 */
export function topicName(clusterName: string): string {
  const digest = createHash('md5').update(clusterName).digest()
  const mh = new Uint8Array(3 + digest.length)
  mh.set([0xd5, 0x01, 0x10])
  mh.set(digest, 3)
  return base58btc.baseEncode(mh)
}
