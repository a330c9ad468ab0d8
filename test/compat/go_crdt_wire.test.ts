/**
 * The CRDT wire between real Go IPFS Cluster 1.1.6 peers and our network edges, in one
 * loopback-only network namespace (test/support/go_cluster.ts): two Go CRDT peers (go0, go1),
 * each beside a real Kubo, and our cluster host (src/net/host.ts, same secret, dialling go0 only)
 * with the CRDT broadcaster (gossipsub) and block exchange (bitswap) on it.
 *
 * Go → us: a pin added with the Go ctl at go0 reaches our broadcaster as a head authored by go0;
 * our bitswap fetches that delta node from go0; it decodes (dag-pb, Delta) to an element whose
 * key is the pin's datastore key and whose value is the pin's protobuf.
 * Us → Go: a delta node we build (a pin of another CID, linking Go's head, one priority higher)
 * and announce is fetched from us by go0 over bitswap, merged, and the pin is listed by both Go
 * peers' ctl; go1, not connected to us, gets the node from go0.
 * On the way: pnet + Noise + Yamux over TCP between Go and JS, gossipsub /meshsub/1.2.0 with our
 * host in go0's mesh, bitswap /ipfs/bitswap/1.2.0 both ways.
 */
import '../../src/deno_shim.ts'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { startHost } from '../../src/net/host.ts'
import { DEFAULT_PUBSUB, type GossipSub } from '../../src/net/pubsub.ts'
import { pubsubBroadcaster } from '../../src/consensus/crdt/broadcaster.ts'
import { startBlockExchange } from '../../src/consensus/crdt/block_exchange.ts'
import {
  decodeBroadcast,
  decodeNode,
  type DeltaNode,
  dsKey,
  encodeBroadcast,
  encodeNode,
  topicName,
} from '../../src/consensus/crdt/codec.ts'
import { decodePinPb, encodePinPb } from '../../src/consensus/crdt/pin_pb.ts'
import type { CrdtBlockstore } from '../../src/consensus/crdt/types.ts'
import { newPin } from '../../src/types/pin.ts'
import { netnsTest, startGoCluster } from '../support/go_cluster.ts'
import { waitFor } from '../support/wait.ts'
import { logging } from '../../src/util/log.ts'

/** The CRDT blocks our side holds, in memory. */
function memoryBlocks(): CrdtBlockstore {
  const m = new Map<string, Uint8Array>()
  const key = (cid: CID) => cid.multihash.bytes.toString()
  return {
    has: (cid) => Promise.resolve(m.has(key(cid))),
    get: (cid) => Promise.resolve(m.get(key(cid))),
    put: (cid, bytes) => Promise.resolve(void m.set(key(cid), bytes)),
  }
}

/** The peers of our mesh for a topic (the class has it; the exported interface does not). */
function meshPeers(pubsub: GossipSub, topic: string): string[] {
  return (pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(topic)
}

const BITSWAP = '/ipfs/bitswap/1.2.0'
const ms = (t0: number) => Math.round(performance.now() - t0)

netnsTest(
  import.meta,
  'compat: CRDT heads and delta blocks cross between Go 1.1.6 peers and our gossipsub + bitswap',
  async () => {
    const cluster = await startGoCluster(2, { logLevel: 'info,crdt:debug' })
    const [go0, go1] = cluster.peers
    const host = await startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      secret: cluster.secret,
      peerAddresses: [go0.clusterAddr],
      pubsub: { ...DEFAULT_PUBSUB, heartbeatMs: 1000 },
    })
    const topic = topicName('ipfs-cluster')
    const bc = pubsubBroadcaster({ pubsub: host.pubsub, topic, isTrusted: () => true })
    // A short idle limit for inbound bitswap streams, so that Go's long-lived sender stream goes
    // idle between the rounds (the default is 10 s); the exchange keeps it open and says so.
    const lines: string[] = []
    const exchange = await startBlockExchange({
      libp2p: host.libp2p,
      blocks: memoryBlocks(),
      messageReceiveTimeoutMs: 1000,
      log: logging('debug', (l) => lines.push(l)).get('crdt'),
    })
    const got: { from: string; heads: CID[]; at: number }[] = []
    const reading = new AbortController()
    const reader = (async () => {
      for await (const m of bc.messages(reading.signal)) {
        got.push({ from: m.from, heads: decodeBroadcast(m.data), at: performance.now() })
      }
    })()
    const figures: Record<string, number | string> = {}
    const enc = new TextEncoder()

    /** Pins new content at go0 with the Go ctl; returns go0's head carrying it, fetched here. */
    const goToUs = async (round: number) => {
      const pinned = CID.parse(await go0.kubo.add(enc.encode(`go ${round} ${crypto.randomUUID()}`)))
      const t0 = performance.now()
      const add = await go0.ctl(['pin', 'add', pinned.toString()])
      assert.equal(add.code, 0, add.stderr)
      let head: { cid: CID; node: DeltaNode } | undefined
      await waitFor(async () => {
        for (const m of got.splice(0)) {
          assert.equal(m.from, go0.id, 'the only other author is go0')
          for (const cid of m.heads) {
            const f0 = performance.now()
            const bytes = await exchange.fetch(cid, AbortSignal.timeout(30_000))
            figures[`r${round}_fetchFromGoMs`] = ms(f0)
            const node = await decodeNode(cid, bytes)
            if (node.delta.elements.some((e) => e.key === dsKey(pinned))) head = { cid, node }
          }
        }
        return head !== undefined
      }, { what: `go0’s head carrying pin ${round}`, timeoutMs: 60_000 })
      figures[`r${round}_pinToHeadAndBlockMs`] = ms(t0)
      const el = head!.node.delta.elements.find((e) => e.key === dsKey(pinned))!
      assert.equal(el.id, '', 'elements travel with an empty id')
      const pin = decodePinPb(el.value, pinned.toString())
      assert.equal(pin.cid, pinned.toString())
      assert.equal(pin.type, 'pin')
      assert.equal(pin.max_depth, -1)
      return head!
    }

    /** Announces our delta (a pin of content in go1's Kubo) after `prev`; both Go peers list it. */
    const usToGo = async (round: number, prev: { cid: CID; node: DeltaNode }) => {
      const ours = CID.parse(await go1.kubo.add(enc.encode(`ts ${round} ${crypto.randomUUID()}`)))
      const ourPin = {
        ...newPin(ours.toString(), {
          replication_factor_min: -1,
          replication_factor_max: -1,
          name: `from-ts-${round}`,
        }),
        timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      }
      const ourNode = await encodeNode({
        elements: [{ key: dsKey(ours), id: '', value: encodePinPb(ourPin) }],
        tombstones: [],
        priority: prev.node.delta.priority + 1,
      }, [prev.cid])
      await exchange.blocks.put(ourNode.cid, ourNode.bytes)
      const served = exchange.stats().served
      const t0 = performance.now()
      await waitFor(async () => {
        // Announced again each round, as go-ds-crdt's rebroadcast would.
        await bc.broadcast(encodeBroadcast([ourNode.cid]))
        await new Promise((r) => setTimeout(r, 500))
        return exchange.stats().served > served
      }, { what: `go0 fetching our delta node ${round} over bitswap`, timeoutMs: 60_000 })
      figures[`r${round}_announceToGoFetchMs`] = ms(t0)
      for (const [name, go] of [['go0', go0], ['go1', go1]] as const) {
        await waitFor(async () => {
          const r = await go.ctl(['--enc', 'json', 'pin', 'ls', ours.toString()])
          return r.code === 0 && r.stdout.includes(`"from-ts-${round}"`)
        }, { what: `our pin ${round} listed by ${name}`, timeoutMs: 60_000 })
        figures[`r${round}_announceToListedAt_${name}Ms`] = ms(t0)
      }
      const ls = JSON.parse((await go1.ctl(['--enc', 'json', 'pin', 'ls', ours.toString()])).stdout)
      assert.equal(ls.cid, ours.toString())
      assert.equal(ls.replication_factor_min, -1)
      return { cid: ourNode.cid, node: await decodeNode(ourNode.cid, ourNode.bytes) }
    }

    const bitswapStreams = (conn: Connection, direction: 'inbound' | 'outbound') =>
      conn.streams.filter((s) => s.protocol === BITSWAP && s.direction === direction).length

    try {
      // pnet + Noise + Yamux: the start-up bootstrap dialled go0.
      assert.deepEqual(host.bootstrapped, [go0.id], 'connected to go0 at start')
      const conn = host.libp2p.getConnections(peerIdFromString(go0.id))[0]
      assert.ok(conn, 'a connection to go0')
      figures.encryption = conn.encryption ?? '?'
      figures.multiplexer = conn.multiplexer ?? '?'

      // gossipsub: go0 is subscribed to the CRDT topic and in our mesh for it.
      const t0 = performance.now()
      await waitFor(
        () => meshPeers(host.pubsub, topic).includes(go0.id),
        { what: 'go0 in our CRDT topic mesh', timeoutMs: 60_000 },
      )
      figures.meshMs = ms(t0)
      figures.meshsub = conn.streams.find((s) => s.protocol?.startsWith('/meshsub/'))?.protocol ??
        '?'

      const first = await goToUs(1)
      assert.equal(first.cid.version, 1)
      assert.equal(first.cid.code, 0x70, 'dag-pb')
      assert.equal(first.node.delta.priority, 1, 'the first delta of a new cluster')
      assert.deepEqual(first.node.links, [])
      const mine = await usToGo(1, first)

      // Go keeps one bitswap sender stream per peer (boxo; its server answers on new streams):
      // once that stream has been idle past messageReceiveTimeoutMs, both directions again. A reset stream here made Go mark us
      // unresponsive and never fetch round 2's node (block_exchange.ts, module comment).
      const idle = (n: number) =>
        lines.filter((l) => l.includes('kept idle inbound bitswap')).length >= n
      await waitFor(() => idle(1), { what: 'go0’s sender stream idle', timeoutMs: 60_000 })
      assert.ok(bitswapStreams(conn, 'inbound') >= 1, 'go0’s sender stream is still open')
      const second = await goToUs(2)
      assert.deepEqual(second.node.links.map(String), [mine.cid.toString()], 'Go linked our head')
      assert.equal(second.node.delta.priority, mine.node.delta.priority + 1)
      await usToGo(2, second)
      figures.inboundBitswapStreamsFromGo0 = bitswapStreams(conn, 'inbound')

      figures.go1ConnectedToUs = host.libp2p.getConnections(peerIdFromString(go1.id)).length > 0
        ? 'yes'
        : 'no'
      figures.bitswapServed = exchange.stats().served
      figures.bitswapFetched = exchange.stats().fetched
      // No delta ever failed to decode at Go.
      for (const go of [go0, go1]) {
        assert.doesNotMatch(go.log(), /not a ProtoNode|error.*unmarshal/i)
      }
      console.log(`crdt wire figures: ${JSON.stringify(figures)}`)
    } catch (err) {
      console.error(`figures so far: ${JSON.stringify(figures)}`)
      for (const go of [go0, go1]) {
        console.error(`--- ${go.id} log (tail) ---\n${go.log().split('\n').slice(-400).join('\n')}`)
      }
      throw err
    } finally {
      reading.abort()
      await reader
      await bc.stop()
      await exchange.stop()
      await host.stop({ save: false })
      await cluster.stop()
    }
  },
)
